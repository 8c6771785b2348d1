/**
 * The quantization arithmetic (src/optimize/quantize/params.ts) on hand-built tensors: scales and zero
 * points from ranges, q = saturate(round_half_even(x / scale) + zero_point), per-channel weights along
 * the right axis — checked against hand-computed values and against ONNX Runtime's QuantizeLinear.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Graph } from '../../../src/graph/graph.js';
import { computeQuantParams, dequantizeValue, quantizeBias, quantizeTensor, quantizeValue, quantizeWeight, quantRangeOf, roundHalfEven } from '../../../src/optimize/quantize/params.js';
import { Runtime } from '../../../src/runtime/runtime.js';
import { Tensor } from '../../../src/tensor.js';
import { runGraph } from '../../autodiff/gradcheck.js';

const runtime = new Runtime();
after(() => runtime.close());

describe('round half to even', () => {
  it('rounds ties to the even neighbour, both signs', () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5].map(roundHalfEven), [0, 2, 2, 4, -0, -2, -2, -4]);
  });
  it('rounds everything else to the nearest integer', () => {
    assert.deepEqual([0.49, 0.51, 2.4999, -2.51, 7, -7].map(roundHalfEven), [0, 1, 2, -3, 7, -7]);
  });
});

describe('scale and zero point from a range', () => {
  it('uint8, asymmetric: scale = (max − min)/255, zero point = round(−min/scale)', () => {
    const p = computeQuantParams({ min: -1, max: 3 }, 0, 255);
    assert.equal(p.scale, Math.fround(4 / 255));
    assert.equal(p.zeroPoint, 64); // 0 − (−1)/(4/255) = 63.75 → 64
  });
  it('the range is widened to hold 0: [2, 6] quantizes as [0, 6] with zero point 0', () => {
    const p = computeQuantParams({ min: 2, max: 6 }, 0, 255);
    assert.equal(p.scale, Math.fround(6 / 255));
    assert.equal(p.zeroPoint, 0);
  });
  it('int8, asymmetric: zero point in [−128, 127]', () => {
    const p = computeQuantParams({ min: 0, max: 5.1 }, -128, 127);
    assert.equal(p.scale, Math.fround(5.1 / 255));
    assert.equal(p.zeroPoint, -128);
  });
  it('symmetric int8 weights: scale = max|x|/127, zero point 0', () => {
    const [qmin, qmax] = quantRangeOf('int8', { symmetric: true });
    assert.deepEqual([qmin, qmax], [-127, 127]);
    const p = computeQuantParams({ min: -0.5, max: 2.54 }, qmin, qmax, true);
    assert.equal(p.scale, Math.fround(2.54 / 127));
    assert.equal(p.zeroPoint, 0);
  });
  it('reduced ranges: 7-bit symmetric weights are [−63, 63]; 4-bit [−7, 7]', () => {
    assert.deepEqual(quantRangeOf('int8', { symmetric: true, bits: 7 }), [-63, 63]);
    assert.deepEqual(quantRangeOf('int8', { symmetric: true, bits: 4 }), [-7, 7]);
    assert.deepEqual(quantRangeOf('uint8', { bits: 7 }), [0, 127]);
  });
  it('an all-zero range gets scale 1 instead of dividing by zero', () => {
    assert.deepEqual(computeQuantParams({ min: 0, max: 0 }, 0, 255), { scale: 1, zeroPoint: 0 });
  });
});

describe('q = saturate(round_half_even(x / scale) + zero_point)', () => {
  const scale = 0.5;
  // x / scale: 1.25→1 (nearest), 2.5→2 (tie to even), 3.5→4, −2.5→−2, 300→saturates, −300→saturates
  const x = Float32Array.of(0.625, 1.25, 1.75, -1.25, 150, -150, 0);
  it('by hand, uint8 with zero point 10', () => {
    const q = Array.from(x, (v) => quantizeValue(v, scale, 10, 0, 255));
    assert.deepEqual(q, [11, 12, 14, 8, 255, 0, 10]);
  });
  it('by hand, int8 with zero point −3', () => {
    const q = Array.from(x, (v) => quantizeValue(v, scale, -3, -128, 127));
    assert.deepEqual(q, [-2, -1, 1, -5, 127, -128, -3]);
  });
  it('matches ONNX Runtime QuantizeLinear exactly, uint8 and int8', async () => {
    for (const [type, zp] of [
      ['uint8', 10],
      ['int8', -3],
    ] as const) {
      const g = new Graph('q');
      const input = g.input('x', 'float32', [x.length]);
      const s = g.constant(new Tensor(Float32Array.of(scale), [], 'float32'));
      const z = g.constant(new Tensor((type === 'int8' ? Int8Array.of(zp) : Uint8Array.of(zp)) as never, [], type));
      g.output(g.op1('QuantizeLinear', [input, s, z]), 'q');
      const out = await runGraph(runtime, g, { x: new Tensor(x, [x.length], 'float32') });
      const [qmin, qmax] = quantRangeOf(type);
      assert.deepEqual(Array.from(out.q!.data as ArrayLike<number>), Array.from(x, (v) => quantizeValue(v, scale, zp, qmin, qmax)), type);
    }
  });
  it('dequantization inverts it to within half a step inside the range', () => {
    const p = computeQuantParams({ min: -2, max: 2 }, 0, 255);
    for (const v of [-2, -1.3, 0, 0.001, 1.99]) {
      const back = dequantizeValue(quantizeValue(v, p.scale, p.zeroPoint, 0, 255), p.scale, p.zeroPoint);
      assert.ok(Math.abs(back - v) <= p.scale / 2 + 1e-7, `${v} → ${back}`);
    }
    assert.equal(dequantizeValue(quantizeValue(0, p.scale, p.zeroPoint, 0, 255), p.scale, p.zeroPoint), 0, 'zero is exact');
  });
  it('quantizeTensor applies it elementwise', () => {
    const t = quantizeTensor(new Tensor(x, [x.length], 'float32'), { scale, zeroPoint: 10 }, 'uint8');
    assert.equal(t.dtype, 'uint8');
    assert.deepEqual(Array.from(t.data), [11, 12, 14, 8, 255, 0, 10]);
  });
});

const f = Math.fround;

describe('per-channel weights', () => {
  it('Conv kernels [M, C, kH, kW]: one scale per output channel (axis 0)', () => {
    // Channel 0 spans ±1.27, channel 1 spans ±0.254: scales 0.01 and 0.002.
    const w = new Tensor(Float32Array.of(1.27, -0.5, 0.01, -1.27, 0.254, 0.1, -0.254, 0.0006), [2, 1, 2, 2], 'float32');
    const q = quantizeWeight(w, { axis: 0 });
    assert.equal(q.axis, 0);
    assert.deepEqual(Array.from(q.scales), [f(f(1.27) / 127), f(f(0.254) / 127)]);
    assert.deepEqual(Array.from(q.values.data), [127, -50, 1, -127, 127, 50, -127, 0]);
  });
  it('Gemm/MatMul weights [K, N]: one scale per output column (axis 1)', () => {
    // Column 0: ±2.54 (scale 0.02); column 1: ±0.127 (scale 0.001).
    const w = new Tensor(Float32Array.of(2.54, 0.127, -1.0, -0.05, 0.02, 0.0004), [3, 2], 'float32');
    const q = quantizeWeight(w, { axis: 1 });
    assert.deepEqual(Array.from(q.scales), [f(f(2.54) / 127), f(f(0.127) / 127)]);
    assert.deepEqual(Array.from(q.values.data), [127, 127, -50, -50, 1, 0]);
  });
  it('per-tensor: one scale from the largest magnitude overall', () => {
    const w = new Tensor(Float32Array.of(2.54, 0.127, -1.0, -0.062), [2, 2], 'float32');
    const q = quantizeWeight(w, { axis: null });
    assert.deepEqual(Array.from(q.scales), [f(f(2.54) / 127)]);
    assert.deepEqual(Array.from(q.values.data), [127, 6, -50, -3]);
  });
  it('fewer bits narrow the integer range (4 bits: [−7, 7])', () => {
    const w = new Tensor(Float32Array.of(0.7, -0.36, 0.04, -0.7), [1, 4], 'float32');
    const q = quantizeWeight(w, { axis: 0, bits: 4 });
    assert.deepEqual(Array.from(q.scales), [f(f(0.7) / 7)]);
    assert.deepEqual(Array.from(q.values.data), [7, -4, 0, -7]);
  });
  it('an all-zero channel quantizes to zeros with a usable scale', () => {
    const q = quantizeWeight(new Tensor(Float32Array.of(0, 0, 1, -1), [2, 2], 'float32'), { axis: 0 });
    assert.deepEqual(Array.from(q.values.data), [0, 0, 127, -127]);
    assert.ok(q.scales[0]! > 0);
  });
  it('biases become int32 with scale input_scale · weight_scale[c]', () => {
    const b = quantizeBias(new Tensor(Float32Array.of(0.5, -0.25), [2], 'float32'), 0.1, Float32Array.of(0.01, 0.002));
    assert.deepEqual(Array.from(b.scales), [f(0.1 * f(0.01)), f(0.1 * f(0.002))]);
    assert.deepEqual(Array.from(b.values.data), [500, -1250]);
  });
});
