/**
 * Static quantization end to end on a small CNN trained briefly on the shipped Fashion-MNIST subset:
 * the QDQ graph's structure (per-channel axes, int32 biases, what stays float and why), its outputs
 * against the float model's within a stated tolerance, ONNX Runtime fusing it into integer kernels,
 * batch-norm folding, calibration methods, exclusion, and saving.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeModel, type ModelProto } from '../../../src/graph/proto.js';
import { tensorFromProto } from '../../../src/graph/onnx-io.js';
import { OnnxModel } from '../../../src/model/onnx-model.js';
import { calibrateActivations } from '../../../src/optimize/quantize/calibrate.js';
import { foldBatchNormalization } from '../../../src/optimize/quantize/fold-batchnorm.js';
import { quantize, type QuantizedModel } from '../../../src/optimize/quantize/quantize.js';
import { sourceGraph } from '../../../src/optimize/quantize/source-graph.js';
import { modelToProto } from '../../../src/graph/onnx-io.js';
import { encodeModel } from '../../../src/graph/proto.js';
import { Random } from '../../../src/random.js';
import { Tensor } from '../../../src/tensor.js';
import { loadModel } from '../../../src/train/load.js';
import type { Sequential } from '../../../src/train/sequential.js';
import { batchNormCnn, fashion, opCounts, optimizedOps, runOrt, smallCnn, tmpDir, trained } from './helpers.js';

/*
 * The stated tolerance of a statically quantized classifier against its float original, on held-out
 * data: top-1 accuracy within 1 point, the same class for ≥ 98% of examples, and no output (logit) more
 * than 5% of the largest float logit away.
 */
const ACCURACY_POINTS = 0.01;
const AGREEMENT = 0.98;
const OUTPUT_FRACTION = 0.05;

let model: Sequential;
let quantized: QuantizedModel;
let allInt8: QuantizedModel;
let tmp: { dir: string; cleanup: () => Promise<void> };

function initializer(proto: ModelProto, name: string): Tensor {
  const t = proto.graph!.initializer!.find((i) => i.name === name);
  assert.ok(t, `initializer '${name}'`);
  return tensorFromProto(t);
}

function dequantizeNode(proto: ModelProto, input: string) {
  const n = proto.graph!.node!.find((m) => m.opType === 'DequantizeLinear' && m.input![0] === input);
  assert.ok(n, `a DequantizeLinear reading '${input}'`);
  return { node: n, axis: n.attribute?.find((a) => a.name === 'axis')?.i, scale: initializer(proto, n.input![1]!) };
}

before(async () => {
  tmp = await tmpDir();
  const d = await fashion();
  model = await trained(smallCnn());
  const evaluate = { x: d.test.images, y: d.test.labels, latencyRuns: 3 };
  quantized = await quantize(model, { mode: 'static', calibration: d.train.images, evaluate });
  allInt8 = await quantize(model, { mode: 'static', calibration: d.train.images, minConvReduction: 0, evaluate });
});
after(() => tmp.cleanup());

describe('static int8 quantization', () => {
  it('stays within the stated tolerance of the float model', () => {
    for (const q of [quantized, allInt8]) {
      const e = q.report.evaluation!;
      assert.ok(Math.abs(e.after.accuracy! - e.before.accuracy!) <= ACCURACY_POINTS, `accuracy ${e.before.accuracy} → ${e.after.accuracy}`);
      assert.ok(e.agreement >= AGREEMENT, `agreement ${e.agreement}`);
      assert.ok(e.maxAbsDiff <= OUTPUT_FRACTION * e.maxAbsFloat, `max |Δ| ${e.maxAbsDiff} of ${e.maxAbsFloat}`);
    }
  });

  it('quantizes Conv weights per output channel (axis 0) and Dense weights per output column (axis 1)', () => {
    const proto = decodeModel(allInt8.bytes);
    for (const [layer, axis, channels] of [
      ['conv2d', 0, 8],
      ['conv2d_1', 0, 16],
      ['dense', 1, 32],
      ['dense_1', 1, 10],
    ] as const) {
      const w = dequantizeNode(proto, `${layer}/kernel/int8`);
      assert.equal(w.axis, axis, `${layer} axis`);
      assert.deepEqual([...w.scale.shape], [channels], `${layer}: one scale per output channel`);
      const q = initializer(proto, `${layer}/kernel/int8`);
      assert.equal(q.dtype, 'int8');
      // Every weight dequantizes to within half a step of the float weight of its own channel.
      const float = model.weights.get(`${layer}/kernel`)!.data as Float32Array;
      const shape = model.weights.get(`${layer}/kernel`)!.shape;
      const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      const scales = w.scale.data as Float32Array;
      for (let i = 0; i < float.length; i++) {
        const s = scales[Math.floor(i / inner) % channels]!;
        assert.ok(Math.abs((q.data as Int8Array)[i]! * s - float[i]!) <= s / 2 + 1e-7, `${layer}[${i}]`);
      }
      // Each channel's largest weight uses the full symmetric range.
      const maxQ = new Array(channels).fill(0);
      for (let i = 0; i < float.length; i++) {
        const c = Math.floor(i / inner) % channels;
        maxQ[c] = Math.max(maxQ[c], Math.abs((q.data as Int8Array)[i]!));
      }
      const top = allInt8.report.settings.weightBits === 7 ? 63 : 127;
      assert.ok(maxQ.every((m) => m === top), `${layer}: channel maxima ${maxQ}`);
    }
  });

  it('stores biases as int32 with scale input_scale · weight_scale', () => {
    const proto = decodeModel(allInt8.bytes);
    const b = dequantizeNode(proto, 'conv2d_1/bias/int32');
    const w = dequantizeNode(proto, 'conv2d_1/kernel/int8');
    const conv = proto.graph!.node!.find((n) => n.opType === 'Conv' && n.output![0] === 'conv2d_1')!;
    const x = proto.graph!.node!.find((n) => n.output![0] === conv.input![0])!;
    const inputScale = (initializer(proto, x.input![1]!).data as Float32Array)[0]!;
    assert.equal(initializer(proto, 'conv2d_1/bias/int32').dtype, 'int32');
    const ws = w.scale.data as Float32Array;
    (b.scale.data as Float32Array).forEach((s, c) => assert.equal(s, Math.fround(inputScale * ws[c]!)));
  });

  it('runs in onnxruntime-node directly, and ONNX Runtime fuses it into integer kernels', async () => {
    const d = await fashion();
    const x = d.test.images.slice(0, 16);
    const viaKiln = (await quantized.predict(x)).data as Float32Array;
    const direct = await runOrt(quantized.bytes, x);
    assert.deepEqual(Array.from(direct), Array.from(viaKiln));
    const ops = await optimizedOps(allInt8.bytes, tmp.dir);
    assert.equal(ops['com.microsoft.QLinearConv'], 2, JSON.stringify(ops));
    assert.equal(ops['com.microsoft.QGemm'], 2, JSON.stringify(ops));
    assert.equal(ops.Conv ?? 0, 0, 'no float convolution left');
    assert.equal(ops.DequantizeLinear ?? 0, 0, 'no dequantization left');
  });

  it('keeps tiny-reduction convolutions in float by default and says why, their kernels stored in 8 bits', async () => {
    const float = quantized.report.floatLayers.map((l) => l.layer);
    assert.deepEqual(float.filter((l) => l.startsWith('conv')), ['conv2d', 'conv2d_1']);
    assert.match(quantized.report.floatLayers[0]!.reason, /sums only 9 products \(1 input channel × 3×3 kernel\)/);
    assert.match(quantized.report.floatLayers[0]!.reason, /its kernel is stored in 8 bits \(ONNX Runtime turns it back into the float kernel as the model loads\)/);
    // One byte per kernel weight, Cast to float and scaled per channel into the float Conv's kernel.
    const proto = decodeModel(quantized.bytes);
    const producer = (value: string) => proto.graph!.node!.find((n) => n.output!.includes(value))!;
    for (const layer of ['conv2d', 'conv2d_1']) {
      const q = initializer(proto, `${layer}/kernel/int8`);
      assert.equal(q.dtype, 'int8');
      assert.equal(q.size, model.weights.get(`${layer}/kernel`)!.size, `${layer}: one byte per weight`);
      const conv = proto.graph!.node!.find((n) => n.opType === 'Conv' && producer(n.input![1]!)?.opType === 'Mul' && producer(producer(n.input![1]!).input![0]!)?.input![0] === `${layer}/kernel/int8`);
      assert.ok(conv, `${layer}: a Conv reads Mul(Cast(${layer}/kernel/int8), scales)`);
      const scale = initializer(proto, producer(conv.input![1]!).input![1]!);
      assert.deepEqual(scale.shape, [q.shape[0], 1, 1, 1], 'one scale per output channel');
    }
    // ONNX Runtime folds Cast and Mul of constants: the float convolutions read a constant kernel again
    // (what lets it use its blocked NCHWc convolution), and no DequantizeLinear is left for them.
    const ops = await optimizedOps(quantized.bytes, tmp.dir);
    assert.equal((ops.Cast ?? 0) + (ops.Mul ?? 0), 0, JSON.stringify(ops));
    assert.ok((ops.Conv ?? 0) + (ops['com.microsoft.nchwc.Conv'] ?? 0) >= 2, JSON.stringify(ops));
    // Always 8 bits per channel: fewer weight bits (or per-tensor weights) are for the integer kernels.
    const calibration = (await fashion()).train.images.slice(0, 64);
    const four = decodeModel((await quantize(model, { mode: 'static', calibration, weightBits: 4, perChannel: false })).bytes);
    const largest = (name: string) => Math.max(...Array.from(initializer(four, name).data as Int8Array, Math.abs));
    assert.equal(largest('conv2d/kernel/int8'), 127);
    assert.deepEqual(initializer(four, 'conv2d/kernel/scale').shape, [8, 1, 1, 1], 'per output channel');
    assert.ok(largest('dense/kernel/int8') <= 7, `the Dense kernel takes the 4 bits asked for: ${largest('dense/kernel/int8')}`);
    assert.ok(quantized.report.layers.find((l) => l.layer === 'dense')!.precision === 'int8');
    assert.deepEqual(allInt8.report.floatLayers, [], 'minConvReduction 0 quantizes every layer');
  });

  it('reports the size: weights take a quarter of the bytes', () => {
    const r = allInt8.report;
    assert.equal(r.sizeBefore, model.toOnnx().length);
    assert.equal(r.sizeAfter, allInt8.bytes.length);
    const proto = decodeModel(allInt8.bytes);
    for (const layer of ['conv2d', 'conv2d_1', 'dense', 'dense_1']) {
      const q = proto.graph!.initializer!.find((t) => t.name === `${layer}/kernel/int8`)!;
      assert.equal(q.rawData!.length, model.weights.get(`${layer}/kernel`)!.size, `${layer}: one byte per weight`);
    }
    // A 58 KB model carries ~8 KB of graph structure and metadata; the benchmark checks ≥ 3.5× on real models.
    assert.ok(r.compression >= 2.5, `compression ${r.compression}`);
  });

  it('keeps excluded layers in float', async () => {
    const d = await fashion();
    const q = await quantize(model, { mode: 'static', calibration: d.train.images.slice(0, 128), exclude: ['dense'] });
    const entry = q.report.floatLayers.find((l) => l.layer === 'dense');
    assert.deepEqual(entry, { layer: 'dense', reason: 'excluded by request' });
    const proto = decodeModel(q.bytes);
    assert.equal(initializer(proto, 'dense/kernel').dtype, 'float32');
    assert.ok(proto.graph!.initializer!.some((t) => t.name === 'dense_1/kernel/int8'));
  });

  it('saves atomically a standard ONNX file that loads as a plain ONNX model', async () => {
    const file = join(tmp.dir, 'model.int8.onnx');
    await quantized.save(file);
    assert.ok(Buffer.from(quantized.bytes).equals(await readFile(file)), 'the file holds the model bytes');
    const loaded = await loadModel(file);
    assert.ok(loaded instanceof OnnxModel && !('compile' in loaded), 'not a Kiln Sequential any more');
    const meta = loaded.description.metadata;
    const info = JSON.parse(meta['kiln.quantization']!);
    assert.equal(info.mode, 'static');
    assert.equal(info.model, model.name);
    assert.equal(info.settings.method, 'minmax');
    assert.equal(meta['kiln.model'], undefined, "Kiln's layer configuration no longer describes the graph");
    assert.ok(meta['kiln.training'], 'other metadata is kept');
  });
});

describe('batch normalization folding', () => {
  it('folds BatchNormalization into the Conv before it without changing outputs', async () => {
    const m = batchNormCnn();
    // Non-trivial statistics, so that folding has something to get wrong.
    const rng = new Random(9);
    const vec = (lo: number, hi: number) => new Tensor(Float32Array.from({ length: 8 }, () => rng.uniform(lo, hi)), [8], 'float32');
    m.setWeights({ 'batch_normalization/gamma': vec(0.5, 2), 'batch_normalization/beta': vec(-1, 1), 'batch_normalization/moving_mean': vec(-0.5, 0.5), 'batch_normalization/moving_variance': vec(0.2, 3) });
    const src = sourceGraph(m);
    const { graph, folded } = foldBatchNormalization(src.graph);
    assert.equal(folded.length, 1);
    assert.ok(!graph.nodes.some((n) => n.opType === 'BatchNormalization'));
    const x = (await fashion()).test.images.slice(0, 8);
    const before = (await m.predict(x)).data as Float32Array;
    const after = await runOrt(encodeModel(modelToProto(graph)), x);
    for (let i = 0; i < before.length; i++) assert.ok(Math.abs(before[i]! - after[i]!) <= 1e-4 * Math.max(1, Math.abs(before[i]!)), `output ${i}: ${before[i]} vs ${after[i]}`);
    const d = await fashion();
    const q = await quantize(m, { mode: 'static', calibration: d.train.images.slice(0, 64), minConvReduction: 0 });
    assert.deepEqual(q.report.foldedBatchNorm, ['batch_normalization']);
    assert.equal(opCounts(q.bytes).BatchNormalization ?? 0, 0);
    assert.ok(!q.report.floatLayers.some((l) => l.layer === 'batch_normalization'));
  });
});

describe('calibration methods', () => {
  it('percentile and entropy clip ranges inside the min-max range', async () => {
    const d = await fashion();
    const { graph } = foldBatchNormalization(sourceGraph(model).graph);
    const x = d.train.images.slice(0, 256);
    const minmax = await calibrateActivations(graph, x, { method: 'minmax' });
    let clipped = 0;
    for (const method of ['percentile', 'entropy'] as const) {
      const ranges = await calibrateActivations(graph, x, { method, percentile: 99.9 });
      for (const [name, r] of ranges) {
        const full = minmax.get(name)!;
        assert.ok(r.min >= full.min - 1e-6 && r.max <= full.max + 1e-6, `${method} ${name}: [${r.min}, ${r.max}] within [${full.min}, ${full.max}]`);
        assert.ok(r.max > 0 && r.max >= r.min);
        if (r.max < full.max - 1e-6) clipped++;
      }
    }
    assert.ok(clipped > 0, 'some tails were clipped');
  });
  it('each method gives a model within tolerance', async () => {
    const d = await fashion();
    const evaluate = { x: d.test.images.slice(0, 1000), y: d.test.labels.slice(0, 1000), latencyRuns: 1 };
    for (const method of ['percentile', 'entropy'] as const) {
      const q = await quantize(model, { mode: 'static', calibration: d.train.images, calibrationSamples: 256, method, evaluate });
      const e = q.report.evaluation!;
      assert.equal(q.report.calibration?.method, method);
      assert.ok(Math.abs(e.after.accuracy! - e.before.accuracy!) <= 0.02, `${method}: ${e.before.accuracy} → ${e.after.accuracy}`);
    }
  });
});

describe('variants', () => {
  it('int8 activations, per-tensor weights and explicit 8-bit weights all run and stay close', async () => {
    const d = await fashion();
    const evaluate = { x: d.test.images.slice(0, 1000), y: d.test.labels.slice(0, 1000), latencyRuns: 1 };
    for (const options of [{ activationType: 'int8' as const }, { perChannel: false }, { reduceRange: false }]) {
      const q = await quantize(model, { mode: 'static', calibration: d.train.images, calibrationSamples: 256, minConvReduction: 0, evaluate, ...options });
      const e = q.report.evaluation!;
      assert.ok(Math.abs(e.after.accuracy! - e.before.accuracy!) <= 0.02, `${JSON.stringify(options)}: ${e.before.accuracy} → ${e.after.accuracy}`);
      if (options.activationType) {
        const zp = decodeModel(q.bytes).graph!.initializer!.find((t) => t.name === 'input/zp')!;
        assert.equal(zp.dataType, 3, 'int8 zero points');
      }
    }
  });
});
