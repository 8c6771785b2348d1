/**
 * The quantization operators' rules (src/ops/quantization.ts): shape rules, and the straight-through
 * gradient of fake quantization DequantizeLinear(QuantizeLinear(x)) — the incoming gradient passes
 * where x is inside the representable range and is zero outside, per tensor and per axis.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { addGradients } from '../../../src/autodiff/gradients.js';
import { KilnError } from '../../../src/errors.js';
import { Graph, type Value } from '../../../src/graph/graph.js';
import { fakeQuantizeActivation, fakeQuantizeWeight } from '../../../src/optimize/quantize/qat.js';
import { Runtime } from '../../../src/runtime/runtime.js';
import { Tensor } from '../../../src/tensor.js';
import { runGraph } from '../../autodiff/gradcheck.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['QuantizeLinear', 'DequantizeLinear'];

const runtime = new Runtime();
after(() => runtime.close());

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * Math.max(1, Math.abs(expected[i]!)), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

/** loss = Σ y·R; returns y and d loss / d x for the fake quantization built by `build`. */
async function fakeQuantGradient(x: Float32Array, shape: number[], r: Float32Array, build: (g: Graph, x: Value) => Value): Promise<{ y: Float32Array; dx: Float32Array }> {
  const g = new Graph('fq');
  const input = g.input('x', 'float32', shape);
  const y = build(g, input);
  const rv = g.constant(new Tensor(r, shape, 'float32'));
  const loss = g.op1('ReduceSum', [g.op1('Mul', [y, rv])], { keepdims: 0 });
  const grads = addGradients(g, loss, [input]);
  g.output(y, 'y');
  g.output(grads.get('x')!, 'dx');
  const out = await runGraph(runtime, g, { x: new Tensor(x, shape, 'float32') });
  return { y: out.y!.data as Float32Array, dx: out.dx!.data as Float32Array };
}

describe('shape rules', () => {
  it('QuantizeLinear takes its element type from the zero point (uint8 without one)', () => {
    const g = new Graph('s');
    const x = g.input('x', 'float32', ['N', 4]);
    const s = g.scalar(0.1);
    assert.equal(g.op1('QuantizeLinear', [x, s, g.constant(new Tensor(Int8Array.of(0), [], 'int8'))]).dtype, 'int8');
    const q = g.op1('QuantizeLinear', [x, s]);
    assert.equal(q.dtype, 'uint8');
    assert.deepEqual(q.shape, ['N', 4]);
    assert.equal(g.op1('DequantizeLinear', [q, s]).dtype, 'float32');
  });
  it('per-axis scales must match the axis length', () => {
    const g = new Graph('s');
    const w = g.input('w', 'float32', [8, 3, 3, 3]);
    const scales = g.constant(new Tensor(new Float32Array(3), [3], 'float32'));
    assert.throws(() => g.op1('QuantizeLinear', [w, scales], { axis: 0 }), (e: unknown) => e instanceof KilnError && /3 per-axis scales for axis 0 of \[8, 3, 3, 3\]/.test(e.message));
    assert.doesNotThrow(() => g.op1('QuantizeLinear', [w, scales], { axis: 1 }));
  });
  it('DynamicQuantizeLinear, MatMulInteger and ConvInteger give uint8 / int32 values', () => {
    const g = new Graph('s');
    const x = g.input('x', 'float32', ['N', 1, 6, 6]);
    const [q, scale, zp] = g.op('DynamicQuantizeLinear', [x], {}, { outputs: 3 });
    assert.deepEqual([q!.dtype, scale!.dtype, zp!.dtype, scale!.shape], ['uint8', 'float32', 'uint8', []]);
    const w = g.constant(new Tensor(new Int8Array(4 * 9), [4, 1, 3, 3], 'int8'));
    const c = g.op1('ConvInteger', [q!, w, zp!]);
    assert.deepEqual([c.dtype, c.shape], ['int32', ['N', 4, 4, 4]]);
    const a = g.input('a', 'uint8', ['N', 5]);
    const m = g.op1('MatMulInteger', [a, g.constant(new Tensor(new Int8Array(10), [5, 2], 'int8'))]);
    assert.deepEqual([m.dtype, m.shape], ['int32', ['N', 2]]);
  });
});

describe('straight-through gradient of fake quantization', () => {
  it('per tensor: passes the gradient where round(x/s) + zp does not saturate, zero outside', async () => {
    // uint8, scale 0.1, zero point 10: the grid is [−1.0, 24.5]; values within half a step round onto it.
    const x = Float32Array.of(-3, -1.06, -1.04, 0, 0.333, 12, 24.54, 24.6, 40);
    const r = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9);
    const { y, dx } = await fakeQuantGradient(x, [x.length], r, (g, v) => {
      const s = g.scalar(0.1);
      const zp = g.constant(new Tensor(Uint8Array.of(10), [], 'uint8'));
      return g.op1('DequantizeLinear', [g.op1('QuantizeLinear', [v, s, zp]), s, zp]);
    });
    assertClose(dx, [0, 0, 3, 4, 5, 6, 7, 0, 0], 'dx');
    // The forward pass rounds to the grid and saturates.
    assert.ok(Math.abs(y[0]! - -1) < 1e-6 && Math.abs(y[4]! - 0.3) < 1e-6 && Math.abs(y[8]! - 24.5) < 1e-5);
  });
  it('per axis (int8, axis 1): each column has its own range', async () => {
    // Column scales 0.01 and 1 with zero point 0: grids [−1.28, 1.27] and [−128, 127].
    const x = Float32Array.of(0.5, 0.5, 2, 2, -1.3, -1.3, 100, 200);
    const r = Float32Array.of(1, 1, 1, 1, 1, 1, 1, 1);
    const { dx } = await fakeQuantGradient(x, [4, 2], r, (g, v) => {
      const s = g.constant(new Tensor(Float32Array.of(0.01, 1), [2], 'float32'));
      const zp = g.constant(new Tensor(new Int8Array(2), [2], 'int8'));
      return g.op1('DequantizeLinear', [g.op1('QuantizeLinear', [v, s, zp], { axis: 1 }), s, zp], { axis: 1 });
    });
    assertClose(dx, [1, 1, 0, 1, 0, 1, 0, 0], 'dx');
  });
  it('fake-quantized weights: per-channel scales come from the weight, gradient passes everywhere', async () => {
    const w = Float32Array.of(0.3, -0.2, 0.05, 1.5, -0.7, 0.01);
    const r = Float32Array.of(1, 2, 3, 4, 5, 6);
    const { y, dx } = await fakeQuantGradient(w, [3, 2], r, (g, v) => fakeQuantizeWeight(g, v, 1));
    // Every weight, the largest of each column included, is inside its channel's range: identity.
    assertClose(dx, r, 'dx');
    // Column 0 (max |w| 0.7) and column 1 (max 1.5) land on grids of 0.7/127 and 1.5/127.
    for (let i = 0; i < w.length; i++) {
      const step = (i % 2 === 0 ? 0.7 : 1.5) / 127;
      assert.ok(Math.abs(y[i]! - w[i]!) <= step / 2 + 1e-7, `w[${i}]`);
      assert.ok(Math.abs(y[i]! / step - Math.round(y[i]! / step)) < 1e-3, `w[${i}] on the grid`);
    }
  });
  it('fake-quantized activations: 256 levels over the batch range, identity gradient', async () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => (i - 10) * 0.37);
    const r = Float32Array.from({ length: 64 }, (_, i) => i % 5);
    const { y, dx } = await fakeQuantGradient(x, [8, 8], r, (g, v) => fakeQuantizeActivation(g, v));
    assertClose(dx, r, 'dx');
    const step = (x[63]! - x[0]!) / 255;
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(y[i]! - x[i]!) <= step / 2 + 1e-5, `x[${i}]`);
    assert.equal(new Set(Array.from(y, (v) => Math.round(v / step))).size, 64, 'distinct inputs stay distinct');
  });
});
