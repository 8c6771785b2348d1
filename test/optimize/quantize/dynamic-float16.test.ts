/**
 * Dynamic int8 quantization and float16 conversion of a trained small CNN, and the weight axis of
 * Gemm (both transB settings) and MatMul in ONNX graphs Kiln did not build.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Graph } from '../../../src/graph/graph.js';
import { modelToProto, tensorFromProto } from '../../../src/graph/onnx-io.js';
import { decodeModel, encodeModel } from '../../../src/graph/proto.js';
import { float16Bits, float16Value } from '../../../src/optimize/quantize/float16.js';
import { quantize, type QuantizedModel } from '../../../src/optimize/quantize/quantize.js';
import { Random } from '../../../src/random.js';
import { Tensor } from '../../../src/tensor.js';
import { measureFlops } from '../../../src/bench/cost.js';
import { modelCost } from '../../../src/model/cost.js';
import { OnnxModel } from '../../../src/model/onnx-model.js';
import { Runtime } from '../../../src/runtime/runtime.js';
import type { Sequential } from '../../../src/train/sequential.js';
import { fashion, opCounts, optimizedOps, runOrt, smallCnn, tmpDir, trained } from './helpers.js';

let model: Sequential;
let tmp: { dir: string; cleanup: () => Promise<void> };

before(async () => {
  tmp = await tmpDir();
  model = await trained(smallCnn(), 3000);
});
after(() => tmp.cleanup());

function withinTolerance(q: QuantizedModel, accuracyPoints = 0.01, agreement = 0.98, outputFraction = 0.05): void {
  const e = q.report.evaluation!;
  assert.ok(Math.abs(e.after.accuracy! - e.before.accuracy!) <= accuracyPoints, `accuracy ${e.before.accuracy} → ${e.after.accuracy}`);
  assert.ok(e.agreement >= agreement, `agreement ${e.agreement}`);
  assert.ok(e.maxAbsDiff <= outputFraction * e.maxAbsFloat, `max |Δ| ${e.maxAbsDiff} of ${e.maxAbsFloat}`);
}

describe('dynamic int8 quantization', () => {
  let q: QuantizedModel;
  before(async () => {
    const d = await fashion();
    // minConvReduction 0: every convolution, the 1-channel first one too, in ConvInteger.
    q = await quantize(model, { mode: 'dynamic', minConvReduction: 0, evaluate: { x: d.test.images, y: d.test.labels, latencyRuns: 2 } });
  });
  it('quantizes weights to int8 and activations at run time', () => {
    const ops = opCounts(q.bytes);
    assert.equal(ops.ConvInteger, 2);
    assert.equal(ops.MatMulInteger, 2);
    assert.ok(ops.DynamicQuantizeLinear! >= 3);
    assert.equal(ops.Conv ?? 0, 0);
    assert.equal(ops.Gemm ?? 0, 0);
    const proto = decodeModel(q.bytes);
    const init = (name: string) => tensorFromProto(proto.graph!.initializer!.find((t) => t.name === name)!);
    assert.equal(init('dense/kernel/int8').dtype, 'int8');
    assert.deepEqual([...init('dense/kernel/int8').shape], [400, 32]);
    assert.deepEqual([...init('dense/kernel/scale').shape], [32], 'one scale per output column');
    assert.deepEqual([...init('conv2d_1/kernel/scale').shape], [1, 16, 1, 1], 'one scale per output channel, broadcast over the conv output');
  });
  it('stays within tolerance of the float model', () => withinTolerance(q));
  it('is the pattern ONNX Runtime fuses into DynamicQuantizeMatMul', async () => {
    const ops = await optimizedOps(q.bytes, tmp.dir);
    assert.equal(ops['com.microsoft.DynamicQuantizeMatMul'], 2, JSON.stringify(ops));
  });
});

describe('float16', () => {
  it('converts to the nearest float16, ties to even', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [65504, 0x7bff],
      [65520, 0x7c00], // rounds up past the largest finite value: infinity
      [2049, 0x6800], // tie between 2048 and 2050: even mantissa (2048)
      [2051, 0x6802], // tie between 2050 and 2052: 2052
      [5.960464477539063e-8, 0x0001], // smallest subnormal
      [1e-9, 0x0000],
      [-0, 0x8000],
      [Infinity, 0x7c00],
    ];
    for (const [v, bits] of cases) assert.equal(float16Bits(v), bits, `${v}`);
    assert.ok(Number.isNaN(float16Value(float16Bits(NaN))));
    for (const v of [0.1, -3.14159, 1234.5, 6.1e-5]) assert.ok(Math.abs(float16Value(float16Bits(v)) - v) <= Math.abs(v) * 2 ** -11, `${v}`);
  });

  it('halves the file, keeps float32 inputs and outputs, and stays within float16 rounding', async () => {
    const d = await fashion();
    const q = await quantize(model, { mode: 'float16', evaluate: { x: d.test.images.slice(0, 500), y: d.test.labels.slice(0, 500), latencyRuns: 2 } });
    // Half the weight bytes; a 58 KB model's fixed structure keeps the file ratio a little under 2.
    assert.ok(q.report.compression > 1.8, `compression ${q.report.compression}`);
    const proto = decodeModel(q.bytes);
    const types = new Set(proto.graph!.initializer!.filter((t) => t.name!.includes('/kernel')).map((t) => t.dataType));
    assert.deepEqual([...types], [10], 'weights are float16');
    assert.equal(q.inputs[0]!.dtype, 'float32');
    withinTolerance(q, 0.005, 0.995, 0.01);
  });

  it('can compute in float16 too', async () => {
    const d = await fashion();
    const q = await quantize(model, { mode: 'float16', float16Compute: true, evaluate: { x: d.test.images.slice(0, 500), y: d.test.labels.slice(0, 500), latencyRuns: 1 } });
    const proto = decodeModel(q.bytes);
    assert.ok(!proto.graph!.initializer!.some((t) => t.dataType === 1), 'no float32 constants left');
    assert.equal(q.outputs[0]!.dtype, 'float32');
    withinTolerance(q, 0.01, 0.99, 0.02);
    // Its values inside are float16, read as float32: a FLOPs count fetches every one of them, and the
    // same graph with its output left float16 (no Cast back) answers in float32 (it crashed: no float16 tensor).
    const runtime = new Runtime();
    try {
      assert.equal(await measureFlops(new OnnxModel(q.bytes, proto), d.test.images.slice(0, 1), runtime), modelCost(model).flops);
      const out = proto.graph!.output![0]!;
      const cast = proto.graph!.node!.find((n) => n.output![0] === out.name)!;
      const halfOut = { ...proto, graph: { ...proto.graph!, node: proto.graph!.node!.map((n) => (n === cast ? { ...n, opType: 'Identity', attribute: [] } : n)), output: [{ ...out, type: { tensorType: { ...out.type!.tensorType!, elemType: 10 } } }] } };
      const bytes = encodeModel(halfOut);
      const x = d.test.images.slice(0, 8);
      const [half, full] = [(await new OnnxModel(bytes, decodeModel(bytes)).predict(x)), await new OnnxModel(q.bytes, proto).predict(x)];
      assert.equal(half.dtype, 'float32');
      // (float16 logits against the same rounded to float16 ones made float32 by the Cast)
      (half.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - (full.data as Float32Array)[i]!) <= 0.01 * Math.max(1, Math.abs(v)), `${i}: ${v}`));
    } finally {
      await runtime.close();
    }
  });
});

describe('weight axes of graphs from elsewhere', () => {
  /** x [N, 6] → Gemm (weight [4, 6] with transB = 1, or [6, 4]) → MatMul [4, 5] → y. */
  function foreignModel(transB: boolean): Uint8Array {
    const rng = new Random(transB ? 1 : 2);
    const t = (shape: number[], scale = 1) => new Tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * rng.uniform(-1, 1)), shape, 'float32');
    const g = new Graph('foreign');
    const x = g.input('x', 'float32', ['N', 6]);
    // Columns of very different magnitude: per-channel scales matter.
    const w = t(transB ? [4, 6] : [6, 4]);
    (w.data as Float32Array).forEach((v, i, a) => (a[i] = v * (transB ? [1, 0.01, 5, 0.2][Math.floor(i / 6)]! : [1, 0.01, 5, 0.2][i % 4]!)));
    const h = g.op1('Gemm', [x, g.initializer('fc/weight', w), g.initializer('fc/bias', t([4], 0.1))], transB ? { transB: 1 } : {}, 'fc');
    const y = g.op1('MatMul', [g.op1('Relu', [h]), g.initializer('proj/weight', t([4, 5]))], {}, 'proj');
    g.output(y, 'y');
    return encodeModel(modelToProto(g));
  }

  for (const transB of [true, false]) {
    it(`Gemm ${transB ? 'with' : 'without'} transB: scales along axis ${transB ? 0 : 1}; MatMul along axis 1`, async () => {
      const bytes = foreignModel(transB);
      const rng = new Random(3);
      const x = new Tensor(Float32Array.from({ length: 256 * 6 }, () => rng.uniform(-2, 2)), [256, 6], 'float32');
      const q = await quantize(bytes, { mode: 'static', calibration: x });
      const proto = decodeModel(q.bytes);
      const dq = (input: string) => proto.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.input![0] === input)!;
      const axisOf = (input: string) => dq(input).attribute!.find((a) => a.name === 'axis')!.i;
      assert.equal(axisOf('fc/weight/int8'), transB ? 0 : 1);
      assert.equal(axisOf('proj/weight/int8'), 1);
      const scale = tensorFromProto(proto.graph!.initializer!.find((t) => t.name === dq('fc/weight/int8').input![1])!);
      assert.deepEqual([...scale.shape], [4]);
      const s = scale.data as Float32Array;
      assert.ok(s[1]! < s[0]! / 20 && s[2]! > s[0]! * 2, `scales follow each output's magnitude: ${Array.from(s)}`);
      const float = await runOrt(bytes, x);
      const int8 = await runOrt(q.bytes, x);
      let maxF = 0;
      let maxD = 0;
      for (let i = 0; i < float.length; i++) {
        maxF = Math.max(maxF, Math.abs(float[i]!));
        maxD = Math.max(maxD, Math.abs(float[i]! - int8[i]!));
      }
      assert.ok(maxD <= 0.05 * maxF, `max |Δ| ${maxD} of ${maxF}`);
      const dynamic = await quantize(bytes, { mode: 'dynamic' });
      const dyn = await runOrt(dynamic.bytes, x);
      for (let i = 0; i < float.length; i++) assert.ok(Math.abs(dyn[i]! - float[i]!) <= 0.05 * maxF, `dynamic output ${i}`);
    });
  }
});

describe('a model whose only output is an integer (an argmax class)', () => {
  it('quantizes and compares the two models on it, as numbers', async () => {
    const rng = new Random(4);
    const g = new Graph('argmax');
    const x = g.input('x', 'float32', ['N', 6]);
    const w = new Tensor(Float32Array.from({ length: 24 }, () => rng.uniform(-1, 1)), [4, 6], 'float32');
    g.output(g.op1('ArgMax', [g.op1('Gemm', [x, g.initializer('fc.weight', w)], { transB: 1 })], { axis: 1, keepdims: 0 }), 'label');
    const data = new Tensor(Float32Array.from({ length: 32 * 6 }, () => rng.uniform(-1, 1)), [32, 6], 'float32');
    const q = await quantize(encodeModel(modelToProto(g)), { mode: 'dynamic', evaluate: { x: data, latencyRuns: 1 } });
    assert.equal(q.outputs[0]!.dtype, 'int64');
    assert.ok(q.report.evaluation !== undefined && Number.isFinite(q.report.evaluation.maxAbsDiff), JSON.stringify(q.report.evaluation));
  });
});

describe('an embedding table two lookups share (an encoder and a decoder embedding)', () => {
  it('is stored in 8 bits once', async () => {
    const rng = new Random(5);
    const g = new Graph('shared');
    const a = g.input('a', 'int64', ['N', 4]);
    const b = g.input('b', 'int64', ['N', 4]);
    const table = g.initializer('shared.weight', new Tensor(Float32Array.from({ length: 64 * 16 }, () => rng.uniform(-1, 1)), [64, 16], 'float32'));
    g.output(g.op1('Add', [g.op1('Gather', [table, a], { axis: 0 }, 'encoder'), g.op1('Gather', [table, b], { axis: 0 }, 'decoder')]), 'y');
    const q = await quantize(encodeModel(modelToProto(g)), { mode: 'dynamic' });
    assert.deepEqual(decodeModel(q.bytes).graph!.initializer!.filter((t) => t.name!.endsWith('/int8')).map((t) => t.name), ['shared.weight/int8']);
  });
});
