/**
 * Reduction gradient rules (src/ops/reduce.ts) against finite differences: ReduceSum (axes as an
 * input), ReduceMean (axes as an attribute; a run-time count when the batch dimension is symbolic),
 * ReduceMax (gradient to the maximum; 'distinct' inputs have no ties) and CumSum.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Graph, type Value } from '../../src/graph/graph.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { assertGradients } from '../autodiff/gradcheck.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['ReduceSum', 'ReduceMean', 'ReduceMax', 'CumSum'];

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

/*
 * The forms ONNX's backend cases use: axes as an attribute (ReduceSum before opset 13,
 * test_operator_reduced_sum*), axes as a computed input (test_reduce_sum_keepdims_*: only the rank is
 * known until run time), and noop_with_empty_axes (test_reduce_sum_empty_axes_input_noop_*).
 */
describe('ReduceSum shapes', () => {
  const build = (attrs: Record<string, number | number[]>, axes?: (g: Graph) => Value) => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', [3, 2, 2]);
    return g.op1('ReduceSum', axes ? [x, axes(g)] : [x], attrs).shape;
  };
  it('axes as an attribute (opset < 13)', () => {
    assert.deepEqual(build({ axes: [1], keepdims: 1 }), [3, 1, 2]);
    assert.deepEqual(build({ axes: [-1], keepdims: 0 }), [3, 2]);
  });
  it('axes as a constant input', () => {
    assert.deepEqual(build({ keepdims: 0 }, (g) => g.int64s([1])), [3, 2]);
  });
  it('axes computed at run time: the rank is known, the sizes are not', () => {
    assert.deepEqual(build({ keepdims: 1 }, (g) => g.input('axes', 'int64', [1])), [null, null, null]);
    assert.deepEqual(build({ keepdims: 0 }, (g) => g.input('axes', 'int64', [1])), [null, null]);
    assert.equal(build({ keepdims: 0 }, (g) => g.input('axes', 'int64', ['k'])), null);
  });
  it('noop_with_empty_axes: empty axes (constant, or an input of shape [0]) leave the input as it is', () => {
    assert.deepEqual(build({ keepdims: 1, noop_with_empty_axes: 1 }, (g) => g.input('axes', 'int64', [0])), [3, 2, 2]);
    assert.deepEqual(build({ keepdims: 1, noop_with_empty_axes: 1 }, (g) => g.int64s([])), [3, 2, 2]);
    assert.deepEqual(build({ keepdims: 1, noop_with_empty_axes: 1 }), [3, 2, 2]);
    assert.deepEqual(build({ keepdims: 1, noop_with_empty_axes: 0 }, (g) => g.input('axes', 'int64', [0])), [1, 1, 1]);
  });
});

describe('ReduceSum gradient, ONNX forms', () => {
  it('noop_with_empty_axes with empty axes: the gradient passes through', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3] } }, build: (g, v) => g.op1('ReduceSum', [v.x!, g.int64s([])], { keepdims: 1, noop_with_empty_axes: 1 }) });
  });
  for (const keepdims of [0, 1]) {
    it(`axes computed at run time, keepdims ${keepdims}`, async () => {
      await assertGradients(runtime, {
        inputs: { x: { shape: [2, 3, 4] } },
        build: (g, v) => {
          const y = g.op1('ReduceSum', [v.x!, g.op1('Identity', [g.int64s([1])])], { keepdims });
          // The loss needs a static shape: give the run-time reduction its known one back.
          return g.op1('Reshape', [y, g.int64s(keepdims ? [2, 1, 4] : [2, 4])]);
        },
      });
    });
  }
});

/* Opset 18 moved ReduceMean's and ReduceMax's axes from an attribute to an input: the test models declare 18. */
describe('ReduceMean / ReduceMax gradient, opset 18 (axes as an input)', () => {
  for (const op of ['ReduceMean', 'ReduceMax']) {
    for (const keepdims of [0, 1]) {
      it(`${op} axes input [-1, 1], keepdims ${keepdims}`, async () => {
        await assertGradients(runtime, {
          opset: 18,
          inputs: { x: { shape: [2, 3, 4], fill: 'distinct' } },
          build: (g, v) => g.op1(op, [v.x!, g.int64s([-1, 1])], { keepdims }),
        });
      });
    }
    it(`${op} without axes: everything, keepdims 0`, async () => {
      await assertGradients(runtime, { opset: 18, inputs: { x: { shape: [3, 2], fill: 'distinct' } }, build: (g, v) => g.op1(op, [v.x!], { keepdims: 0 }) });
    });
    it(`${op} noop_with_empty_axes 1 with no axes: the identity`, async () => {
      await assertGradients(runtime, { opset: 18, inputs: { x: { shape: [2, 3], fill: 'distinct' } }, build: (g, v) => g.op1(op, [v.x!], { noop_with_empty_axes: 1 }) });
    });
    it(`${op} axes input with a symbolic batch`, async () => {
      await assertGradients(runtime, { opset: 18, symbolicBatch: ['x'], inputs: { x: { shape: [3, 2, 2], fill: 'distinct' } }, build: (g, v) => g.op1(op, [v.x!, g.int64s([0, 2])], { keepdims: 0 }) });
    });
  }
  it('ReduceMax with the attribute form (opset 17), axes [0, 2]', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 2], fill: 'distinct' } }, build: (g, v) => g.op1('ReduceMax', [v.x!], { axes: [0, 2], keepdims: 0 }) });
  });
});

describe('CumSum gradient (the reversed cumulative sum of the incoming gradient)', () => {
  for (const [exclusive, reverse] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
    it(`exclusive ${exclusive}, reverse ${reverse}, axis 1 of [2, 5, 3]`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [2, 5, 3] } }, build: (g, v) => g.op1('CumSum', [v.x!, g.scalar(1, 'int64')], { exclusive, reverse }) });
    });
  }
});
