/**
 * `kiln quantize` on a PyTorch export: the fusions ONNX Runtime made, the transformer ops kept float
 * and why, --float-ops, and a clear error for a bad --float-ops.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runMain as run } from '../../cli/helpers.js';
import { EXPORTED_DIR } from '../../fixtures/exported/reference.js';
import { tmpDir } from './helpers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
before(async () => (tmp = await tmpDir()));
after(() => tmp.cleanup());

describe('kiln quantize on an exported ViT', () => {
  it('dynamic: lists the DynamicQuantizeMatMul kernels ONNX Runtime fused, and why attention stays float', async () => {
    const out = join(tmp.dir, 'vit.dyn.onnx');
    const r = await run(['quantize', `${EXPORTED_DIR}/vit17.onnx`, '--mode', 'dynamic', '--no-suggest', '--batch-size', '16', '--out', out]);
    assert.equal(r.code, 0, r.err);
    // Integer kernels first, then the float ones left (attention's MatMuls, the patch convolution).
    // The patch convolution stays float (49 products per output), its kernel stored in 8 bits and
    // folded back into a float constant as ONNX Runtime loads the model: nothing of it is left to run.
    assert.match(r.out, /ONNX Runtime runs \(after its graph optimizations\): DynamicQuantizeMatMul ×9, (FusedMatMul ×4, Conv ×1|Conv ×1, FusedMatMul ×4); the float32 model: (?=[^\n]*\bMatMul ×6)(?=[^\n]*FusedMatMul ×4)(?=[^\n]*Gemm ×3)/);
    assert.match(r.out, /\/patch\/Conv +each output sums only 49 products .*; its kernel is stored in 8 bits \(ONNX Runtime turns it back into the float kernel as the model loads\)/);
    assert.match(r.out, /\/encoder\/layers\.0\/self_attn\/MatMul_1\s+both inputs are activations: dynamic quantization needs a constant weight/);
    assert.doesNotMatch(r.out, /Speed:/, '--no-suggest');
  });
  it('static with --float-ops none: Softmax runs in its int8 kernel', async () => {
    const r = await run(['quantize', `${EXPORTED_DIR}/vit17.onnx`, '--mode', 'static', '--float-ops', 'none', '--calibration-samples', '64', '--no-suggest', '--out', join(tmp.dir, 'vit.int8.onnx')]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /ONNX Runtime runs \(after its graph optimizations\): .*QLinearSoftmax ×2/);
    assert.match(r.out, /\/encoder\/layers\.0\/norm1\/LayerNormalization\s+computed in float between an 8-bit input and output/);
  });
  it('refuses an unknown --float-ops kind, naming the choices', async () => {
    const r = await run(['quantize', `${EXPORTED_DIR}/vit17.onnx`, '--mode', 'static', '--float-ops', 'LayerNorm', '--out', join(tmp.dir, 'x.onnx')]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /--float-ops takes a comma-separated list of LayerNormalization, Gelu, Softmax \(or none\), got 'LayerNorm'/);
  });
});
