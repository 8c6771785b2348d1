/**
 * Static and dynamic int8 of graphs PyTorch exported (test/fixtures/exported): the small ViT at opset 13
 * (LayerNorm decomposed) and 17 (LayerNormalization), and the MLP. Attention's activation×activation
 * MatMuls get both inputs quantized, weights are int8 per output channel, LayerNorm / GELU / Softmax
 * stay float with their reasons, the logits stay within a bound set by the quantization steps on
 * PyTorch's reference batch, inputs and outputs keep their names, calibration data goes through the
 * model's layout and declared preprocessing, and dynamic mode writes the pattern ONNX Runtime fuses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { tensorFromProto, tensorToProto } from '../../../src/graph/onnx-io.js';
import { decodeModel, encodeModel, type ModelProto, type NodeProto } from '../../../src/graph/proto.js';
import { quantize, type QuantizedModel } from '../../../src/optimize/quantize/quantize.js';
import { Tensor } from '../../../src/tensor.js';
import { GraphModel } from '../../../src/train/graph-model.js';
import { loadModel } from '../../../src/train/load.js';
import { EXPORTED_DIR, decodeTensor, readReference } from '../../fixtures/exported/reference.js';
import { fashion, optimizedOps, rejectsWith, runOrt, tmpDir } from './helpers.js';
import { i64, node, recurrentModel } from '../prune/graph-helpers.js';
import { tokenTask } from '../../fixtures/exported/token-task.js';
import { OnnxModel } from '../../../src/model/onnx-model.js';

const VITS = ['vit13', 'vit17'] as const;
const fixture = (name: string) => `${EXPORTED_DIR}/${name}.onnx`;
const readFixture = (name: string) => new Uint8Array(readFileSync(fixture(name)));
/** Attention's two activation×activation MatMuls in each of the ViT's two encoder layers. */
const ATTENTION_MATMULS = [0, 1].flatMap((l) => [`/encoder/layers.${l}/self_attn/MatMul_1`, `/encoder/layers.${l}/self_attn/MatMul_2`]);

let tmp: { dir: string; cleanup: () => Promise<void> };
const staticInt8 = new Map<string, QuantizedModel>();

before(async () => {
  tmp = await tmpDir();
  const d = await fashion();
  for (const name of VITS) staticInt8.set(name, await quantize(await loadModel(fixture(name)), { mode: 'static', calibration: d.train.images, calibrationSamples: 256 }));
});
after(() => tmp.cleanup());

function initializer(proto: ModelProto, name: string): Tensor {
  const t = proto.graph!.initializer!.find((i) => i.name === name);
  assert.ok(t, `initializer '${name}'`);
  return tensorFromProto(t);
}

function producer(proto: ModelProto, value: string): NodeProto | undefined {
  return proto.graph!.node!.find((n) => n.output!.includes(value));
}

/** The scale and zero point of the QuantizeLinear/DequantizeLinear pair a DequantizeLinear belongs to. */
function qParams(proto: ModelProto, dq: NodeProto): { scale: number; zeroPoint: number } {
  return { scale: (initializer(proto, dq.input![1]!).data as Float32Array)[0]!, zeroPoint: Number(initializer(proto, dq.input![2]!).data[0]) };
}

for (const name of VITS) {
  describe(`static int8 of PyTorch's ${name} export`, () => {
    it('quantizes both inputs of the attention MatMuls (Q·Kᵀ and P·V), and ONNX Runtime runs every MatMul in integer kernels', async () => {
      const q = staticInt8.get(name)!;
      const proto = decodeModel(q.bytes);
      for (const node of ATTENTION_MATMULS) {
        const matmul = proto.graph!.node!.find((n) => n.name === node);
        assert.ok(matmul, `node ${node} keeps its name`);
        for (const input of matmul.input!) {
          const dq = producer(proto, input);
          assert.equal(dq?.opType, 'DequantizeLinear', `${node} reads ${input} through DequantizeLinear`);
          assert.equal(producer(proto, dq.input![0]!)?.opType, 'QuantizeLinear', `${input}: computed, quantized at run time (not a constant)`);
        }
        assert.equal(q.report.layers.find((l) => l.layer === node)?.precision, 'int8');
      }
      // Of the ten MatMuls (six with weights, four in attention) none is left in float.
      const ops = await optimizedOps(q.bytes, tmp.dir);
      assert.equal((ops['com.microsoft.MatMulIntegerToFloat'] ?? 0) + (ops.QLinearMatMul ?? 0), 10, JSON.stringify(ops));
      assert.equal(ops.MatMul ?? 0, 0, JSON.stringify(ops));
      assert.equal(ops['com.microsoft.FusedMatMul'] ?? 0, 0, JSON.stringify(ops));
      assert.equal(ops['com.microsoft.QGemm'], 3, 'the two out-projections and the head');
    });

    it('stores every MatMul/Gemm weight as int8 with one scale per output channel, each within half a step of the float weight', () => {
      const q = staticInt8.get(name)!;
      const proto = decodeModel(q.bytes);
      const original = decodeModel(readFixture(name));
      let checked = 0;
      for (const node of original.graph!.node!.filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm')) {
        const w = original.graph!.initializer!.find((t) => t.name === node.input![1]);
        if (!w) continue;
        const float = tensorFromProto(w);
        const transB = node.attribute?.find((a) => a.name === 'transB')?.i === 1;
        const axis = transB ? 0 : 1; // the axis of output channels: N of MatMul's [K, N], of Gemm's transposed [N, K]
        const dq = proto.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.input![0] === `${w.name}/int8`)!;
        assert.ok(dq, `${w.name}: int8 behind a DequantizeLinear`);
        assert.equal(dq.attribute?.find((a) => a.name === 'axis')?.i, axis, `${w.name}: per-channel axis`);
        const values = initializer(proto, `${w.name}/int8`);
        const scales = initializer(proto, dq.input![1]!).data as Float32Array;
        assert.equal(values.dtype, 'int8');
        assert.equal(scales.length, float.shape[axis], `${w.name}: one scale per output channel`);
        const inner = axis === 1 ? 1 : float.shape[1]!;
        const channels = float.shape[axis]!;
        const data = float.data as Float32Array;
        for (let i = 0; i < data.length; i++) {
          const s = scales[Math.floor(i / inner) % channels]!;
          assert.ok(Math.abs((values.data as Int8Array)[i]! * s - data[i]!) <= s / 2 + 1e-7, `${w.name}[${i}]`);
        }
        checked++;
      }
      assert.equal(checked, 9, 'six MatMul weights (in-projections, feed-forward) and three Gemm weights');
    });

    it('keeps LayerNorm, GELU and Softmax in float and says why', () => {
      const r = staticInt8.get(name)!.report;
      const norms = r.layers.filter((l) => l.ops.includes('LayerNormalization') || l.ops.join(',') === 'ReduceMean,Sub,Pow,ReduceMean,Add,Sqrt,Div,Mul,Add');
      assert.equal(norms.length, 5, 'two per encoder layer and the final norm, each one report line');
      for (const l of norms) {
        assert.equal(l.precision, 'float32');
        assert.match(l.reason!, /^LayerNorm kept float \(floatOps\): ONNX Runtime has no int8 LayerNormalization kernel/);
      }
      const gelus = r.layers.filter((l) => l.ops.includes('Erf'));
      assert.deepEqual(gelus.map((l) => l.ops.join(',')), ['Div,Erf,Add,Mul,Mul', 'Div,Erf,Add,Mul,Mul']);
      for (const l of gelus) assert.match(l.reason!, /^GELU kept float \(floatOps\)/);
      const softmaxes = r.layers.filter((l) => l.ops.includes('Softmax'));
      assert.equal(softmaxes.length, 2);
      for (const l of softmaxes) assert.match(l.reason!, /^Softmax kept float \(floatOps\)/);
      assert.deepEqual(r.settings.floatOps, ['LayerNormalization', 'Gelu', 'Softmax']);
      // Shape arithmetic (Shape, Gather, Unsqueeze, Concat of sizes) is not reported as float work.
      assert.ok(!r.layers.some((l) => l.ops.includes('Shape') || l.ops.includes('Unsqueeze')), r.layers.map((l) => l.layer).join(', '));
    });

    it("gives logits within the bound of the classifier's own rounding on PyTorch's reference batch", async () => {
      const q = staticInt8.get(name)!;
      const proto = decodeModel(q.bytes);
      const ref = readReference(name);
      const x = decodeTensor(ref.batch.input!);
      const expected = decodeTensor(ref.evalLogits).data as Float32Array;
      const got = await runOrt(q.bytes, x);
      /*
       * The tolerance, from the file's own quantization steps: rounding the classifier's input to its
       * step s_in (at most s_in/2 each) and its int8 weights to theirs (s_w[j]/2) can move logit j by
       * up to Σ_i |w_ji|·s_in/2 + s_w[j]/2 · Σ_i |x_i|, with |x_i| at most the input's quantized range.
       * The errors of the layers upstream reach the classifier through a LayerNorm, which rescales them;
       * the whole model must stay inside the classifier's own worst case.
       */
      const head = proto.graph!.node!.find((n) => n.output!.includes('logits'))!;
      const input = qParams(proto, producer(proto, head.input![0]!)!);
      const extent = Math.max(input.zeroPoint, 255 - input.zeroPoint) * input.scale;
      const w = initializer(proto, 'head.weight/int8');
      const ws = initializer(proto, 'head.weight/scale').data as Float32Array;
      const [classes, features] = w.shape as [number, number];
      let bound = 0;
      for (let j = 0; j < classes; j++) {
        let l1 = 0;
        for (let i = 0; i < features; i++) l1 += Math.abs((w.data as Int8Array)[j * features + i]! * ws[j]!);
        bound = Math.max(bound, (input.scale / 2) * l1 + (ws[j]! / 2) * features * extent);
      }
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(got[i]! - expected[i]!));
      assert.ok(worst <= bound, `max |Δlogit| ${worst} within the bound ${bound}`);
      assert.ok(bound < 0.05 * Math.max(...expected.map(Math.abs)), `the bound (${bound}) is a small fraction of the logits`);
      // Same class wherever float's top two logits are further apart than twice the bound.
      for (let row = 0; row < x.shape[0]!; row++) {
        const f = [...expected.subarray(row * 10, row * 10 + 10)];
        const g = [...got.subarray(row * 10, row * 10 + 10)];
        const sorted = [...f].sort((a, b) => b - a);
        if (sorted[0]! - sorted[1]! > 2 * bound) assert.equal(g.indexOf(Math.max(...g)), f.indexOf(sorted[0]!), `row ${row}`);
      }
    });

    it('keeps the original input and output names, shapes and opset', () => {
      const q = decodeModel(staticInt8.get(name)!.bytes);
      const o = decodeModel(readFixture(name));
      const io = (p: ModelProto) => JSON.stringify([p.graph!.input!.map((v) => [v.name, v.type]), p.graph!.output!.map((v) => [v.name, v.type])]);
      assert.equal(io(q), io(o));
      assert.deepEqual(q.opsetImport!.map((s) => [s.domain ?? '', Number(s.version)]), o.opsetImport!.map((s) => [s.domain ?? '', Number(s.version)]));
    });
  });
}

describe('static int8 with floatOps: []', () => {
  it('puts LayerNorm and GELU between 8-bit values and Softmax into its int8 kernel, saying so', async () => {
    const d = await fashion();
    const q = await quantize(await loadModel(fixture('vit17')), { mode: 'static', calibration: d.train.images, calibrationSamples: 128, floatOps: [] });
    const proto = decodeModel(q.bytes);
    const norm = proto.graph!.node!.find((n) => n.name === '/encoder/layers.0/norm1/LayerNormalization')!;
    assert.equal(producer(proto, norm.input![0]!)?.opType, 'DequantizeLinear', 'the residual sum reaches LayerNorm in 8 bits');
    assert.match(q.report.layers.find((l) => l.layer === norm.name)!.reason!, /computed in float between an 8-bit input and output \(ONNX Runtime has no int8 LayerNormalization kernel/);
    const ops = await optimizedOps(q.bytes, tmp.dir);
    assert.equal(ops['com.microsoft.QLinearSoftmax'], 2, JSON.stringify(ops));
    assert.equal(ops.QLinearMatMul, 4, 'Q·Kᵀ now has an 8-bit output, read by the int8 Softmax');
  });
});

describe('calibration through the model layout and preprocessing', () => {
  it('feeds channels-last images to a channels-first export, normalized by its declared mean and std', async () => {
    const d = await fashion();
    const x = d.train.images.slice(0, 64);
    const mean = 0.286;
    const std = 0.353;
    const model = await loadModel(fixture('vit17'), { layout: 'nchw', mean: [mean], std: [std] });
    // minConvReduction 0: the patch convolution takes int8 too, so the model input itself is quantized.
    const q = await quantize(model, { mode: 'static', calibration: x, minConvReduction: 0 });
    const proto = decodeModel(q.bytes);
    const scale = (initializer(proto, 'input/scale').data as Float32Array)[0]!;
    const zeroPoint = (initializer(proto, 'input/zp').data as Uint8Array)[0]!;
    const pixels = x.data as Float32Array;
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of pixels) {
      lo = Math.min(lo, (p - mean) / std);
      hi = Math.max(hi, (p - mean) / std);
    }
    // The calibrated range is the normalized pixels' range, not [0, 1].
    assert.ok(Math.abs(scale - (hi - lo) / 255) < 1e-6, `scale ${scale} for [${lo}, ${hi}]`);
    assert.equal(zeroPoint, Math.round(-lo / scale));
    // The int8 file declares the same preprocessing, so whoever runs it feeds it the same way.
    assert.deepEqual(JSON.parse(q.description.metadata['kiln.preprocessing']!), { layout: 'nchw', mean: [mean], std: [std] });
    const evaluated = await quantize(model, { mode: 'static', calibration: x, evaluate: { x: d.test.images.slice(0, 500), y: d.test.labels.slice(0, 500), latencyRuns: 1 } });
    const e = evaluated.report.evaluation!;
    assert.ok(e.agreement >= 0.97, `agreement ${e.agreement}: float and int8 evaluated on the same normalized input`);
  });
});

describe('dynamic int8 of exported MatMul models', () => {
  for (const [name, matmuls] of [
    ['mlp', 3],
    ['vit17', 9],
  ] as const) {
    it(`${name}: every weight MatMul/Gemm becomes the pattern ONNX Runtime fuses into DynamicQuantizeMatMul, biases included`, async () => {
      const q = await quantize(await loadModel(fixture(name)), { mode: 'dynamic' });
      const proto = decodeModel(q.bytes);
      const count = (op: string) => proto.graph!.node!.filter((n) => n.opType === op).length;
      assert.equal(count('MatMulInteger'), matmuls);
      assert.ok(count('DynamicQuantizeLinear') >= 1);
      const ops = await optimizedOps(q.bytes, tmp.dir);
      assert.equal(ops['com.microsoft.DynamicQuantizeMatMul'], matmuls, JSON.stringify(ops));
      assert.equal(ops.MatMulInteger ?? 0, 0);
      if (name === 'vit17') {
        // PyTorch's Linear on 3-D input is MatMul then Add(bias, ·): the bias moved into the fused kernel.
        for (const l of ['/encoder/layers.0/self_attn/MatMul', '/encoder/layers.0/linear1/MatMul', '/encoder/layers.0/linear2/MatMul']) {
          assert.match(q.report.layers.find((r) => r.layer === l)!.reason!, /with its bias Add .* DynamicQuantizeMatMul/);
        }
        // Left: the position embedding, four residual Adds and two Adds of int64 sizes; the six biases went into the kernels.
        assert.equal(ops.Add, 7, JSON.stringify(ops));
        assert.match(q.report.layers.find((r) => r.layer === '/encoder/layers.0/self_attn/MatMul_1')!.reason!, /both inputs are activations: dynamic quantization needs a constant weight/);
        assert.match(q.report.layers.find((r) => r.layer === '/patch/Conv')!.reason!, /sums only 49 products/);
      }
    });
  }
});

describe('bad input on exported graphs', () => {
  it('an exclude that matches no node', async () => {
    const d = await fashion();
    const model = await loadModel(fixture('vit17'));
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: d.train.images.slice(0, 8), exclude: ['/encoder/layers.0/self_attn/MatMul_9'] }), 'INVALID_ARGUMENT', /no layer named '\/encoder\/layers.0\/self_attn\/MatMul_9' \(\d+ layers\/nodes; similar: .*\/encoder\/layers.0\/self_attn\/MatMul_1/);
    await rejectsWith(() => quantize(model, { mode: 'dynamic', exclude: ['linear9'] }), 'INVALID_ARGUMENT', /no layer named 'linear9' \(\d+ layers\/nodes, e\.g\. /);
  });
  it('an unknown floatOps kind', async () => {
    const d = await fashion();
    const model = await loadModel(fixture('vit17'));
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: d.train.images.slice(0, 8), floatOps: ['LayerNorm' as never] }), 'INVALID_ARGUMENT', /floatOps takes a list of LayerNormalization, Gelu, Softmax, got \["LayerNorm"\]/);
  });
  it('an exported graph that is quantized already, with or without Kiln metadata', async () => {
    const q = staticInt8.get('vit17')!;
    await rejectsWith(() => quantize(q.bytes, { mode: 'dynamic' }), 'INVALID_ARGUMENT', /already quantized \(mode 'static'/);
    const bare = encodeModel({ ...decodeModel(q.bytes), metadataProps: [] });
    await rejectsWith(() => quantize(bare, { mode: 'dynamic' }), 'INVALID_ARGUMENT', /already quantized: it has \d+ QuantizeLinear, \d+ DequantizeLinear node\(s\)/);
  });
});

describe('static int8 of a model with a second output that another node reads (a model returning (logits, features))', () => {
  it('quantizes the readers and keeps the output as its node computes it, under its name', async () => {
    const proto = decodeModel(readFixture('resnet'));
    const g = proto.graph!;
    // The pooled features feed the head and are an output too.
    const features = { name: '/Flatten_output_0', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 16 }] } } } };
    const twoOutputs: ModelProto = { ...proto, graph: { ...g, output: [...g.output!, features] } };
    const d = await fashion();
    const q = await quantize(await GraphModel.fromProto(twoOutputs, 'two-outputs.onnx'), { mode: 'static', calibration: d.train.images, calibrationSamples: 64 });
    const out = decodeModel(q.bytes);
    assert.deepEqual(out.graph!.output!.map((o) => o.name), ['logits', '/Flatten_output_0']);
    assert.equal(producer(out, '/Flatten_output_0')?.opType, 'Flatten', 'the output is the Flatten node\'s own value');
  });
});

describe("int8 of a recurrent model (PyTorch's LSTM, GRU and RNN exports)", () => {
  // W and R of each layer: [directions, gates·hidden, input or hidden].
  const RECURRENT_WEIGHTS = ['onnx::LSTM_323', 'onnx::LSTM_324', 'onnx::GRU_344', 'onnx::GRU_345', 'onnx::RNN_350', 'onnx::RNN_351'];
  for (const mode of ['static', 'dynamic'] as const) {
    it(`${mode}: the layers compute in float with W and R stored in 8 bits per gate row, which ONNX Runtime folds back into float kernels as it loads`, async () => {
      const d = await fashion();
      const float = readFixture('rnn');
      const q = await quantize(await loadModel(fixture('rnn')), mode === 'static' ? { mode, calibration: d.train.images, calibrationSamples: 64 } : { mode });
      const source = decodeModel(float);
      const out = decodeModel(q.bytes);
      const names = new Set(out.graph!.initializer!.map((t) => t.name));
      for (const name of RECURRENT_WEIGHTS) {
        assert.ok(!names.has(name), `${name} is no longer stored in float`);
        const w = initializer(source, name);
        const values = initializer(out, `${name}/int8`);
        const scales = initializer(out, `${name}/scale`);
        assert.equal(values.dtype, 'int8');
        const [dirs, rows, cols] = w.shape as [number, number, number];
        assert.deepEqual(scales.shape, [dirs, rows, 1]);
        // Every weight within half a step of its direction's and row's scale.
        for (let i = 0; i < dirs * rows * cols; i++) {
          const s = (scales.data as Float32Array)[Math.floor(i / cols)]!;
          assert.ok(Math.abs((values.data as Int8Array)[i]! * s - (w.data as Float32Array)[i]!) <= s / 2 + 1e-7, `${name}[${i}]`);
        }
      }
      assert.ok(q.bytes.length < float.length / 1.5, `${float.length} → ${q.bytes.length} bytes`);
      for (const layer of ['/lstm/LSTM', '/gru/GRU', '/rnn/RNN']) {
        const decision = q.report.layers.find((r) => r.layer === layer)!;
        assert.equal(decision.precision, 'float32');
        assert.match(decision.reason!, /its weights are stored in 8 bits/);
      }
      // ONNX Runtime folds each Cast and Mul into a float initializer: the layers read constant weights.
      const ops = await optimizedOps(q.bytes, tmp.dir);
      assert.equal(ops.Cast ?? 0, 0, JSON.stringify(ops));
      assert.equal(ops.Mul ?? 0, 0, JSON.stringify(ops));
      assert.deepEqual([ops.LSTM, ops.GRU, ops.RNN], [1, 1, 1]);
      const x = d.test.images.slice(0, 64).reshape([64, 1, 28, 28]);
      const before = await runOrt(float, x);
      const after = await runOrt(q.bytes, x);
      let worst = 0;
      for (let i = 0; i < before.length; i++) worst = Math.max(worst, Math.abs(before[i]! - after[i]!));
      assert.ok(worst < 0.1, `largest logit change ${worst}`);
      // torch's zero initial states are no layer to report.
      assert.ok(!q.report.layers.some((r) => r.ops.includes('ConstantOfShape')), JSON.stringify(q.report.layers.map((r) => r.ops)));
    });
  }

  it('a layer named in exclude keeps its weights in float, in both modes', async () => {
    const d = await fashion();
    for (const options of [{ mode: 'dynamic' as const }, { mode: 'static' as const, calibration: d.train.images, calibrationSamples: 32 }]) {
      const q = await quantize(await loadModel(fixture('rnn')), { ...options, exclude: ['/lstm/LSTM'] });
      const names = new Set(decodeModel(q.bytes).graph!.initializer!.map((t) => t.name));
      assert.ok(names.has('onnx::LSTM_323') && names.has('onnx::LSTM_324'), `${options.mode}: the excluded LSTM's W and R stay float`);
      assert.ok(names.has('onnx::GRU_344/int8'), `${options.mode}: the others are still stored in 8 bits`);
      assert.equal(q.report.layers.find((r) => r.layer === '/lstm/LSTM')!.reason, 'excluded by request');
    }
  });

  it("static: a recurrent layer whose Y is not written ('', only its final state read) calibrates and quantizes", async () => {
    // x [N, 5, 4] → steps → RNN (Y '', Y_h [1, N, 6]) → [N, 6] → Gemm.
    const proto = recurrentModel(['', 'yh']);
    const q = await quantize(encodeModel(proto), { mode: 'static', calibration: calibrationSteps(64) });
    const x = calibrationSteps(16);
    const [before, after] = [await runOrt(encodeModel(proto), x), await runOrt(q.bytes, x)];
    let worst = 0;
    for (let i = 0; i < before.length; i++) worst = Math.max(worst, Math.abs(before[i]! - after[i]!));
    assert.ok(worst < 0.05, `largest change ${worst}`);
  });
});

describe('int8 of weights a file computes from its constants (torch.onnx.export with do_constant_folding=False)', () => {
  // The RNN's W [1, 6, 4] is built as torch builds an LSTM's gate blocks: Slices of the parameter
  // 'rnn.weight' [6, 4] along its rows, concatenated in another order, then Unsqueezed. The Gemm's
  // weight is a Transpose of 'fc.weight'.
  const computed = (): ModelProto => {
    const proto = recurrentModel(['', 'yh']);
    const g = proto.graph!;
    const w = g.initializer!.find((t) => t.name === 'w')!;
    const fc = g.initializer!.find((t) => t.name === 'fc')!;
    g.initializer = [
      ...g.initializer!.filter((t) => t !== w && t !== fc),
      tensorToProto('rnn.weight', tensorFromProto(w).reshape([6, 4])),
      tensorToProto('fc.weight', transposed(tensorFromProto(fc))),
      tensorToProto('zero', i64(0)),
      tensorToProto('three', i64(3)),
      tensorToProto('six', i64(6)),
    ];
    const fcNode = g.node!.find((n) => n.name === 'fc')!;
    fcNode.input = ['f', 'fc_t'];
    g.node = [
      node('Slice', ['rnn.weight', 'three', 'six', 'zero'], ['upper']),
      node('Slice', ['rnn.weight', 'zero', 'three', 'zero'], ['lower']),
      node('Concat', ['upper', 'lower'], ['reordered'], { axis: 0 }),
      node('Unsqueeze', ['reordered', 'zero'], ['w']),
      node('Transpose', ['fc.weight'], ['fc_t'], { perm: [1, 0] }),
      ...g.node!,
    ];
    return proto;
  };

  for (const mode of ['static', 'dynamic'] as const) {
    it(`${mode}: they are read as the constants they are — the RNN's W stored in 8 bits, the Gemm quantized — with the float model's outputs`, async () => {
      const proto = computed();
      const float = encodeModel(proto);
      const q = await quantize(float, mode === 'static' ? { mode, calibration: calibrationSteps(64) } : { mode });
      const out = decodeModel(q.bytes);
      const names = out.graph!.initializer!.map((t) => t.name!);
      assert.ok(names.includes('w/int8'), JSON.stringify(names));
      assert.ok(!names.includes('rnn.weight') && !names.includes('fc.weight'), `the float parameters are gone: ${JSON.stringify(names)}`);
      assert.ok(!out.graph!.node!.some((n) => n.opType === 'Slice' || n.opType === 'Concat' || n.output!.includes('fc_t')), 'nothing computes the weights any more');
      assert.match(q.report.layers.find((r) => r.layer === 'rnn')!.reason!, /its weights are stored in 8 bits/);
      assert.equal(q.report.layers.find((r) => r.layer === 'fc')!.precision, 'int8');
      const x = calibrationSteps(16);
      const [before, after] = [await runOrt(float, x), await runOrt(q.bytes, x)];
      let worst = 0;
      for (let i = 0; i < before.length; i++) worst = Math.max(worst, Math.abs(before[i]! - after[i]!));
      assert.ok(worst < 0.05, `largest change ${worst}`);
    });
  }
});

function transposed(t: Tensor): Tensor {
  const [r, c] = t.shape as [number, number];
  const d = t.data as Float32Array;
  return new Tensor(Float32Array.from({ length: r * c }, (_, i) => d[(i % r) * c + Math.floor(i / r)]!), [c, r], 'float32');
}

describe("int8 of a text model's embedding table (textcls: nn.Embedding, 32 rows of 16)", () => {
  for (const mode of ['static', 'dynamic'] as const) {
    it(`${mode}: the table is stored in 8 bits per row, the lookup reads it back in float, the predictions stay`, async () => {
      const float = readFixture('textcls');
      const { x } = tokenTask(64, 31, false);
      const q = await quantize(float, mode === 'static' ? { mode, calibration: x, calibrationSamples: 64 } : { mode });
      const out = decodeModel(q.bytes);
      const names = out.graph!.initializer!.map((t) => t.name);
      assert.ok(!names.includes('embed.weight'), 'the float table is gone');
      const table = initializer(decodeModel(float), 'embed.weight');
      const values = initializer(out, 'embed.weight/int8');
      const scales = initializer(out, 'embed.weight/scale');
      assert.deepEqual([values.dtype, values.shape, scales.shape], ['int8', [32, 16], [32, 1]]);
      for (let i = 0; i < 32 * 16; i++) {
        const s = (scales.data as Float32Array)[Math.floor(i / 16)]!;
        assert.ok(Math.abs((values.data as Int8Array)[i]! * s - (table.data as Float32Array)[i]!) <= s / 2 + 1e-7, `embed.weight[${i}]`);
      }
      assert.match(q.report.layers.find((r) => r.layer === '/embed/Gather')!.reason!, /its table is stored in 8 bits per row/);
      const [before, after] = await Promise.all([new OnnxModel(float, decodeModel(float)).predict(x), new OnnxModel(q.bytes, out).predict(x)]);
      let worst = 0;
      for (let i = 0; i < before.size; i++) worst = Math.max(worst, Math.abs((before.data as Float32Array)[i]! - (after.data as Float32Array)[i]!));
      assert.ok(worst < 0.1, `largest logit change ${worst}`);
    });
  }
});

/** Sequences [n, 5, 4] of values in [-1, 1]. */
function calibrationSteps(n: number): Tensor {
  return new Tensor(Float32Array.from({ length: n * 20 }, (_, i) => Math.sin(i * 0.37)), [n, 5, 4], 'float32');
}
