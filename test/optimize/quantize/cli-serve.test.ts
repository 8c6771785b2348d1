/**
 * `kiln quantize` (src/cli/quantize.ts) on a tiny IDX data set — the before/after table, the layers
 * kept in float and why, the saved file — and the quantized file served by `kiln.serve`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runMain as run } from '../../cli/helpers.js';
import { writeRandomIdxDir } from '../../data/random-idx-dir.js';
import { client, layers, loadModel, OnnxModel, quantize, sequential, serve } from '../../../src/index.js';
import { Random } from '../../../src/random.js';
import { Tensor } from '../../../src/tensor.js';
import { tmpDir } from './helpers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let modelFile: string;
const model = sequential({
  seed: 4,
  layers: [
    layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [8, 8, 1] }),
    layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu' }),
    layers.flatten(),
    layers.dense({ units: 16, activation: 'relu' }),
    layers.dense({ units: 10 }),
  ],
});

before(async () => {
  tmp = await tmpDir();
  await writeRandomIdxDir(tmp.dir, { seed: 11, train: 96, test: 64, side: 8 });
  modelFile = join(tmp.dir, 'model.onnx');
  await model.save(modelFile);
});
after(() => tmp.cleanup());

describe('kiln quantize', () => {
  it('prints size, accuracy and latency before and after, and the layers kept in float', async () => {
    const out = join(tmp.dir, 'model.int8.onnx');
    const r = await run(['quantize', modelFile, '--mode', 'static', '--dataset', tmp.dir, '--calibration-samples', '64', '--out', out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Quantized .*model\.onnx \(static int8\) → .*model\.int8\.onnx/);
    assert.match(r.out, /Size\s+[\d.]+ KiB\s+[\d.]+ KiB\s+[\d.]+× smaller/);
    assert.match(r.out, /Accuracy\s+[\d.]+%\s+[\d.]+%\s+[+-][\d.]+ points/);
    assert.match(r.out, /Latency \(batch 64\)\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+× (faster|slower)/);
    assert.match(r.out, /Calibration: minmax on 64 examples/);
    assert.match(r.out, /Layers kept in float:[\s\S]*conv2d\s+each output sums only 9 products/);
    const saved = await loadModel(out);
    assert.ok(saved instanceof OnnxModel);
    assert.equal(JSON.parse(saved.description.metadata['kiln.quantization']!).mode, 'static');
  });

  it('writes JSON with --json, and the other modes', async () => {
    for (const mode of ['dynamic', 'float16']) {
      const out = join(tmp.dir, `model.${mode}.onnx`);
      const r = await run(['quantize', modelFile, '--mode', mode, '--dataset', tmp.dir, '--json', '--out', out]);
      assert.equal(r.code, 0, r.err);
      const report = JSON.parse(r.out);
      assert.equal(report.mode, mode);
      assert.equal(report.file, out);
      assert.ok(report.compression > 1.5);
      assert.ok(report.evaluation.after.latencyMs > 0);
    }
  });

  it('fails clearly on an unsupported mode or an already quantized model', async () => {
    let r = await run(['quantize', modelFile, '--mode', 'int4', '--dataset', tmp.dir]);
    assert.equal(r.code, 1);
    assert.match(r.err, /unsupported --mode 'int4'; expected one of dynamic, static, float16, qat/);
    r = await run(['quantize', join(tmp.dir, 'model.int8.onnx'), '--mode', 'static', '--dataset', tmp.dir, '--no-eval']);
    assert.equal(r.code, 1);
    assert.match(r.err, /already quantized/);
  });
});

describe('the quantized model in kiln serve', () => {
  it('loads and answers like the model run locally', async () => {
    const rng = new Random(5);
    const x = new Tensor(Float32Array.from({ length: 64 * 64 }, () => rng.next()), [64, 8, 8, 1], 'float32');
    const q = await quantize(model, { mode: 'static', calibration: x, minConvReduction: 0 });
    const server = await serve({ model: q, name: 'int8', port: 0, logLevel: 'silent' });
    try {
      const local = await q.predict(x.slice(0, 5));
      const served = await client(server.url).predict('int8', x.slice(0, 5));
      assert.deepEqual([...served.shape], [5, 10]);
      const a = local.data as Float32Array;
      const b = served.data as Float32Array;
      a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-6, `output ${i}: ${v} vs ${b[i]}`));
    } finally {
      await server.close();
    }
  });
});
