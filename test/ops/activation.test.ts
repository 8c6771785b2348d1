/**
 * Gradient rules of the activations (src/ops/activation.ts) against finite differences. ReLU-type
 * inputs stay at least 0.2 from the kink at 0.
 */
import { after, describe, it } from 'node:test';
import { Runtime } from '../../src/runtime/runtime.js';
import { assertGradients } from '../autodiff/gradcheck.js';

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
