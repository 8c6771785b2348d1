/**
 * Reduction gradient rules (src/ops/reduce.ts) against finite differences: ReduceSum (axes as an
 * input), ReduceMean (axes as an attribute; a run-time count when the batch dimension is symbolic),
 * ReduceMax (gradient to the maximum, shared evenly by ties), CumSum, and the rest of ONNX's
 * reductions (ReduceMin, ReduceProd with zeros, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum,
 * ReduceLogSumExp).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Graph, type Value } from '../../src/graph/graph.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { addGradients } from '../../src/autodiff/gradients.js';
import { Tensor } from '../../src/tensor.js';
import { assertGradients, runGraph, type Fill } from '../autodiff/gradcheck.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['ReduceSum', 'ReduceMean', 'ReduceMax', 'CumSum', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp'];

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

/* The rest of ONNX's reductions, in both axes forms (attribute, and input at opset 18) where they have two. */
describe('ReduceMin, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp gradients', () => {
  const FILLS: Record<string, Fill> = { 'ReduceMin': 'distinct', 'ReduceL1': 'awayFromZero', 'ReduceL2': 'uniform', 'ReduceSumSquare': 'uniform', 'ReduceLogSum': 'positive', 'ReduceLogSumExp': 'uniform' };
  for (const [op, fill] of Object.entries(FILLS)) {
    for (const keepdims of [0, 1]) {
      it(`${op} axes [1], keepdims ${keepdims}`, async () => {
        await assertGradients(runtime, { inputs: { x: { shape: [2, 4, 3], fill } }, build: (g, v) => g.op1(op, [v.x!], { axes: [1], keepdims }) });
      });
    }
    it(`${op} over every axis`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill } }, build: (g, v) => g.op1(op, [v.x!], { keepdims: 0 }) });
    });
    it(`${op} axes input [-1] (opset 18)`, async () => {
      await assertGradients(runtime, { opset: 18, inputs: { x: { shape: [2, 3, 4], fill } }, build: (g, v) => g.op1(op, [v.x!, g.int64s([-1])], { keepdims: 0 }) });
    });
  }
  it('ReduceL2 of an all-zero slice: gradient 0 there (PyTorch norm\'s), not NaN', async () => {
    const grads = await gradientsAt('ReduceL2', { axes: [1], keepdims: 0 }, Float32Array.of(0, 0, 3, 4), [2, 2]);
    assert.deepEqual(grads, [0, 0, 0.6, 0.8].map(Math.fround));
  });
});

describe('ReduceMax and ReduceMin with tied extremes', () => {
  it('k tied extremes get dy/k each, as torch.amax / amin', async () => {
    const values = Float32Array.of(1, 3, 3, 2, 0, 1, 5, 5, 5);
    assert.deepEqual(await gradientsAt('ReduceMax', { axes: [1], keepdims: 0 }, values, [3, 3]), [0, 0.5, 0.5, 1, 0, 0, 1 / 3, 1 / 3, 1 / 3].map(Math.fround));
    assert.deepEqual(await gradientsAt('ReduceMin', { axes: [1], keepdims: 1 }, values, [3, 3]), [1, 0, 0, 0, 1, 0, 1 / 3, 1 / 3, 1 / 3].map(Math.fround));
  });
});

describe('ReduceProd gradient', () => {
  it('axes [1], no zeros', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 4, 3], fill: 'awayFromZero' } }, build: (g, v) => g.op1('ReduceProd', [v.x!], { axes: [1], keepdims: 0 }) });
  });
  it('axes input [-1] (opset 18), keepdims 1', async () => {
    await assertGradients(runtime, { opset: 18, inputs: { x: { shape: [2, 3, 4], fill: 'awayFromZero' } }, build: (g, v) => g.op1('ReduceProd', [v.x!, g.int64s([-1])], { keepdims: 1 }) });
  });
  it('rows with one zero (its gradient is the product of the others) and two zeros (all 0), as PyTorch', async () => {
    // Row 0: no zero; row 1: one zero; row 2: two zeros. Finite differences hold here: the product is a polynomial.
    const fill = Float32Array.of(0.5, -1.5, 2, 0.8, 0.7, 0, -1.25, 1.5, 0, 0.9, 0, 1.1);
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill } }, build: (g, v) => g.op1('ReduceProd', [v.x!], { axes: [1], keepdims: 0 }) });
    const grads = await gradientsAt('ReduceProd', { axes: [1], keepdims: 0 }, fill, [3, 4]);
    assert.deepEqual(grads.slice(4, 8), [0, Math.fround(Math.fround(Math.fround(0.7) * -1.25) * 1.5), 0, 0]);
    assert.deepEqual(grads.slice(8), [0, 0, 0, 0]);
  });
});

/** d(sum of y)/dx at these values for y = op(x), by Kiln's gradient graph. */
async function gradientsAt(op: string, attrs: Record<string, number | number[]>, values: Float32Array, shape: number[]): Promise<number[]> {
  const g = new Graph('at');
  const x = g.input('x', 'float32', shape);
  const loss = g.op1('ReduceSum', [g.op1(op, [x], attrs)], { keepdims: 0 });
  g.output(addGradients(g, loss, [x]).get('x')!, 'dx');
  const out = await runGraph(runtime, g, { x: new Tensor(values, shape, 'float32') });
  // −0 (a negative product over a zero's slice) reads as 0.
  return Array.from(out.dx!.data as Float32Array, (v) => v + 0);
}
