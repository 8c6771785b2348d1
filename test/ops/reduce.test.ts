/**
 * Reduction gradient rules (src/ops/reduce.ts) against finite differences: ReduceSum (axes as an
 * input), ReduceMean (axes as an attribute; a run-time count when the batch dimension is symbolic)
 * and ReduceMax (gradient to the maximum; 'distinct' inputs have no ties).
 */
import { after, describe, it } from 'node:test';
import { Runtime } from '../../src/runtime/runtime.js';
import { assertGradients } from '../autodiff/gradcheck.js';

const runtime = new Runtime();
after(() => runtime.close());

describe('ReduceSum gradient', () => {
  for (const keepdims of [0, 1]) {
    it(`axes [1], keepdims ${keepdims}`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: (g, v) => g.op1('ReduceSum', [v.x!, g.int64s([1])], { keepdims }) });
    });
    it(`axes [0, 2], keepdims ${keepdims}`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: (g, v) => g.op1('ReduceSum', [v.x!, g.int64s([0, 2])], { keepdims }) });
    });
  }
  it('no axes (everything), keepdims 0', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3] } }, build: (g, v) => g.op1('ReduceSum', [v.x!], { keepdims: 0 }) });
  });
  it('negative axis -1', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3] } }, build: (g, v) => g.op1('ReduceSum', [v.x!, g.int64s([-1])], { keepdims: 0 }) });
  });
});

describe('ReduceMean gradient', () => {
  for (const keepdims of [0, 1]) {
    it(`axes [1], keepdims ${keepdims}`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: (g, v) => g.op1('ReduceMean', [v.x!], { axes: [1], keepdims }) });
    });
  }
  it('axes [0, 2, 3] (batch-norm statistics of an image batch)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 2, 2] } }, build: (g, v) => g.op1('ReduceMean', [v.x!], { axes: [0, 2, 3], keepdims: 1 }) });
  });
  it('all axes (a loss mean), keepdims 0', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4] } }, build: (g, v) => g.op1('ReduceMean', [v.x!], { keepdims: 0 }) });
  });
  it('over a symbolic batch dimension: the count is taken at run time', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [5, 3] } },
      symbolicBatch: ['x'],
      build: (g, v) => g.op1('ReduceMean', [v.x!], { axes: [0], keepdims: 0 }),
    });
    await assertGradients(runtime, {
      inputs: { x: { shape: [4, 3] } },
      symbolicBatch: ['x'],
      build: (g, v) => g.op1('ReduceMean', [v.x!], { keepdims: 0 }),
    });
  });
});

describe('ReduceMax gradient', () => {
  for (const keepdims of [0, 1]) {
    it(`axes [1], keepdims ${keepdims}`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [2, 4, 3], fill: 'distinct' } }, build: (g, v) => g.op1('ReduceMax', [v.x!], { axes: [1], keepdims }) });
    });
  }
  it('all axes', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill: 'distinct' } }, build: (g, v) => g.op1('ReduceMax', [v.x!], { keepdims: 0 }) });
  });
});
