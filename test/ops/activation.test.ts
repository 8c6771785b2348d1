/**
 * Gradient rules of the activations (src/ops/activation.ts) against finite differences. ReLU-type
 * inputs stay at least 0.2 from the kink at 0.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { assertGradients } from '../autodiff/gradcheck.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Softmax', 'LogSoftmax', 'Elu', 'Selu', 'Softplus', 'HardSigmoid', 'HardSwish', 'PRelu', 'Gelu', 'Celu', 'Softsign', 'ThresholdedRelu', 'Shrink', 'Mish'];

const runtime = new Runtime();
after(() => runtime.close());

describe('activation gradients', () => {
  it('Relu', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill: 'awayFromZero' } }, build: (g, v) => g.op1('Relu', [v.x!]) });
  });
  it('LeakyRelu with alpha 0.1', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 4], fill: 'awayFromZero' } },
      build: (g, v) => g.op1('LeakyRelu', [v.x!], { alpha: 0.1 }),
    });
  });
  it('LeakyRelu with the ONNX default alpha (0.01)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill: 'awayFromZero' } }, build: (g, v) => g.op1('LeakyRelu', [v.x!]) });
  });
  it('Sigmoid', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4] } }, build: (g, v) => g.op1('Sigmoid', [v.x!]) });
  });
  it('Tanh', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4] } }, build: (g, v) => g.op1('Tanh', [v.x!]) });
  });
  for (const op of ['Softmax', 'LogSoftmax']) {
    it(`${op} over the last axis (default)`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [3, 4] } }, build: (g, v) => g.op1(op, [v.x!]) });
    });
    it(`${op} over axis 1 of a rank-3 tensor (channels-first images)`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: (g, v) => g.op1(op, [v.x!], { axis: 1 }) });
    });
    it(`${op} over axis 0`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [3, 2] } }, build: (g, v) => g.op1(op, [v.x!], { axis: 0 }) });
    });
  }
});

describe('more activation gradients', () => {
  it('Elu with alpha 0.7', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill: 'awayFromZero' } }, build: (g, v) => g.op1('Elu', [v.x!], { alpha: 0.7 }) });
  });
  it('Elu with the default alpha', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 5], fill: 'awayFromZero' } }, build: (g, v) => g.op1('Elu', [v.x!]) });
  });
  it('Selu with default alpha and gamma', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill: 'awayFromZero' } }, build: (g, v) => g.op1('Selu', [v.x!]) });
  });
  it('Selu with alpha 1.5, gamma 2', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill: 'awayFromZero' } }, build: (g, v) => g.op1('Selu', [v.x!], { alpha: 1.5, gamma: 2 }) });
  });
  it('Softplus', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4] } }, build: (g, v) => g.op1('Softplus', [v.x!]) });
  });
  // Inputs on a 0.5-spaced grid offset by 0.25 keep alpha·x + beta away from the clip points 0 and 1.
  const offGrid = Float32Array.from({ length: 16 }, (_, i) => -4.25 + 0.5 * i + (i % 3) * 0.05);
  it('HardSigmoid (defaults alpha 0.2, beta 0.5): both clipped sides and the linear part', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [4, 4], fill: offGrid } }, build: (g, v) => g.op1('HardSigmoid', [v.x!]) });
  });
  it('HardSigmoid with alpha 0.5, beta 0.6', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [4, 4], fill: offGrid.map((v) => v / 2) } }, build: (g, v) => g.op1('HardSigmoid', [v.x!], { alpha: 0.5, beta: 0.6 }) });
  });
  it('HardSwish: below −3, above 3 and between', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [4, 4], fill: offGrid } }, build: (g, v) => g.op1('HardSwish', [v.x!]) });
  });
  it('PRelu with a per-channel slope [C, 1, 1] (PyTorch nn.PReLU(C) on images): x and slope', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [2, 3, 2, 2], fill: 'awayFromZero' }, slope: { shape: [3, 1, 1] } },
      build: (g, v) => g.op1('PRelu', [v.x!, v.slope!]),
    });
  });
  it('PRelu with one shared slope [1]', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 4], fill: 'awayFromZero' }, slope: { shape: [1] } },
      build: (g, v) => g.op1('PRelu', [v.x!, v.slope!]),
    });
  });
  it('PRelu with a slope over the last axis [4]', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [2, 3, 4], fill: 'awayFromZero' }, slope: { shape: [4] } },
      build: (g, v) => g.op1('PRelu', [v.x!, v.slope!]),
    });
  });
  // Gelu exists from opset 20 only: the test model declares it.
  it('Gelu (exact, opset 20)', async () => {
    await assertGradients(runtime, { opset: 20, inputs: { x: { shape: [3, 4], fill: Float32Array.from({ length: 12 }, (_, i) => -3 + 0.5 * i) } }, build: (g, v) => g.op1('Gelu', [v.x!]) });
  });
  it("Gelu approximate='tanh' (opset 20)", async () => {
    await assertGradients(runtime, { opset: 20, inputs: { x: { shape: [3, 4] } }, build: (g, v) => g.op1('Gelu', [v.x!], { approximate: 'tanh' }) });
  });
  it('PyTorch GELU as exported at opsets 13–18: x·0.5·(1 + Erf(x/√2))', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 4] } },
      build: (g, v) => {
        const erf = g.op1('Erf', [g.op1('Div', [v.x!, g.scalar(Math.SQRT2)])]);
        return g.op1('Mul', [g.op1('Mul', [v.x!, g.op1('Add', [erf, g.scalar(1)])]), g.scalar(0.5)]);
      },
    });
  });
});

describe('activation shapes', () => {
  it('PRelu keeps the input shape with a broadcast slope', () => {
    const g = new Graph('t');
    assert.deepEqual(g.op1('PRelu', [g.input('x', 'float32', ['N', 3, 4, 4]), g.input('s', 'float32', [3, 1, 1])]).shape, ['N', 3, 4, 4]);
  });
});

/* Activations PyTorch and other exporters write as single ops: CELU (opset 12), Softsign, ThresholdedRelu, Shrink (Hardshrink/Softshrink), Mish (opset 18). */
describe('CELU, Softsign, ThresholdedRelu, Shrink and Mish gradients', () => {
  it('Celu with alpha 0.5', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill: 'awayFromZero' } }, build: (g, v) => g.op1('Celu', [v.x!], { alpha: 0.5 }) });
  });
  it('Celu with the default alpha', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill: 'awayFromZero' } }, build: (g, v) => g.op1('Celu', [v.x!]) });
  });
  it('Softsign', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4] } }, build: (g, v) => g.op1('Softsign', [v.x!]) });
  });
  it('ThresholdedRelu with alpha 0.3: inputs on both sides of the threshold', async () => {
    const fill = Float32Array.from({ length: 12 }, (_, i) => -1 + i * 0.19);
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill } }, build: (g, v) => g.op1('ThresholdedRelu', [v.x!], { alpha: 0.3 }) });
  });
  for (const [name, attrs] of [['hard (bias 0)', { lambd: 0.4 }], ['soft (bias = lambd)', { lambd: 0.4, bias: 0.4 }]] as const) {
    it(`Shrink, ${name}: inputs below −lambd, inside and above lambd`, async () => {
      const fill = Float32Array.from({ length: 12 }, (_, i) => -1.05 + i * 0.19);
      await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill } }, build: (g, v) => g.op1('Shrink', [v.x!], attrs) });
    });
  }
  it('Mish (opset 18)', async () => {
    const fill = Float32Array.from({ length: 12 }, (_, i) => -3 + i * 0.5);
    await assertGradients(runtime, { opset: 18, inputs: { x: { shape: [3, 4], fill } }, build: (g, v) => g.op1('Mish', [v.x!]) });
  });
});
