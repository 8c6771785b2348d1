/**
 * Gradient rules of the data-movement ops (src/ops/shape.ts) against finite differences: each must
 * move the gradient back to the element it came from.
 */
import { after, describe, it } from 'node:test';
import { Runtime } from '../../src/runtime/runtime.js';
import assert from 'node:assert/strict';
import { addGradients } from '../../src/autodiff/gradients.js';
import { Graph } from '../../src/graph/graph.js';
import '../../src/ops/index.js';
import { assertGradients } from '../autodiff/gradcheck.js';

const runtime = new Runtime();
after(() => runtime.close());

describe('Flatten / Reshape gradient', () => {
  it('Flatten axis 1', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 2, 2] } }, build: (g, v) => g.op1('Flatten', [v.x!], { axis: 1 }) });
  });
  it('Flatten axis 2', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 2, 2] } }, build: (g, v) => g.op1('Flatten', [v.x!], { axis: 2 }) });
  });
  it('Reshape [2, 3, 4] → [4, 6]', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: (g, v) => g.op1('Reshape', [v.x!, g.int64s([4, 6])]) });
  });
  it('Reshape with 0 (copy) and -1 (infer)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: (g, v) => g.op1('Reshape', [v.x!, g.int64s([0, -1, 2])]) });
  });
});

describe('Transpose gradient', () => {
  it('perm [0, 2, 3, 1] (channels-first to channels-last)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 2, 4] } }, build: (g, v) => g.op1('Transpose', [v.x!], { perm: [0, 2, 3, 1] }) });
  });
  it('perm [2, 0, 1] (not its own inverse)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: (g, v) => g.op1('Transpose', [v.x!], { perm: [2, 0, 1] }) });
  });
  it('default perm (reversed axes)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: (g, v) => g.op1('Transpose', [v.x!]) });
  });
});

describe('Concat / Split gradient', () => {
  it('Concat of three inputs of different sizes on axis 1', async () => {
    await assertGradients(runtime, {
      inputs: { a: { shape: [2, 1, 3] }, b: { shape: [2, 3, 3] }, c: { shape: [2, 2, 3] } },
      build: (g, v) => g.op1('Concat', [v.a!, v.b!, v.c!], { axis: 1 }),
    });
  });
  it('Concat on axis -1, the same input twice (gradients meet and are summed)', async () => {
    await assertGradients(runtime, {
      inputs: { a: { shape: [2, 2] }, b: { shape: [2, 3] } },
      build: (g, v) => g.op1('Concat', [v.a!, v.b!, v.a!], { axis: -1 }),
    });
  });
  it('Split into uneven parts, only the first and last used (the unused part gets zeros)', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [2, 6] } },
      build: (g, v) => {
        const [p0, , p2] = g.op('Split', [v.x!, g.int64s([1, 3, 2])], { axis: 1 }, { outputs: 3 });
        return [p0!, p2!];
      },
    });
  });
});

describe('Unsqueeze / Squeeze gradient', () => {
  it('Unsqueeze axes [0, 2]', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3] } }, build: (g, v) => g.op1('Unsqueeze', [v.x!, g.int64s([0, 2])]) });
  });
  it('Squeeze axes [1]', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 1, 3] } }, build: (g, v) => g.op1('Squeeze', [v.x!, g.int64s([1])]) });
  });
  it('Squeeze without axes (all size-1 axes)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [1, 3, 1, 2] } }, build: (g, v) => g.op1('Squeeze', [v.x!]) });
  });
});

describe('Slice gradient', () => {
  it('trailing rows and columns cut off (axes 2, 3)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 2, 5, 4] } }, build: (g, v) => g.op1('Slice', [v.x!, g.int64s([0, 0]), g.int64s([4, 3]), g.int64s([2, 3])]) });
  });
  it('both ends, a negative end and default axes', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 6, 3] } }, build: (g, v) => g.op1('Slice', [v.x!, g.int64s([0, 1, 1]), g.int64s([2, -2, 3])]) });
  });
  it('a symbolic batch left unsliced', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 2, 5, 5] } },
      symbolicBatch: ['x'],
      build: (g, v) => g.op1('Slice', [v.x!, g.int64s([1, 0]), g.int64s([5, 4]), g.int64s([2, 3])]),
    });
  });
});

describe('Slice gradient limits', () => {
  it('a strided slice is refused with NO_GRADIENT', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 6]);
    const y = g.op1('Slice', [x, g.int64s([0]), g.int64s([6]), g.int64s([1]), g.int64s([2])]);
    assert.throws(() => addGradients(g, g.op1('ReduceSum', [y], { keepdims: 0 }), [x]), (e: { code?: string; message?: string }) => e.code === 'NO_GRADIENT' && /steps of 1/.test(e.message ?? ''));
  });
});

/* Shape's start/end (opset 15; ONNX's test_shape_start_1, test_shape_end_negative_1, ...). */
describe('Shape start / end', () => {
  const shapeOf = (attrs: Record<string, number>) => {
    const g = new Graph('t');
    return g.op1('Shape', [g.input('x', 'float32', [3, 4, 5])], attrs).shape;
  };
  it('slices the dims like Python: negative from the end, clamped to the rank', () => {
    assert.deepEqual(shapeOf({}), [3]);
    assert.deepEqual(shapeOf({ start: 1 }), [2]);
    assert.deepEqual(shapeOf({ end: 1 }), [1]);
    assert.deepEqual(shapeOf({ start: -1 }), [1]);
    assert.deepEqual(shapeOf({ end: -1 }), [2]);
    assert.deepEqual(shapeOf({ start: 1, end: -1 }), [1]);
    assert.deepEqual(shapeOf({ start: -10, end: 10 }), [3]);
    assert.deepEqual(shapeOf({ start: 2, end: 1 }), [0]);
  });
  it('a Reshape to part of a shape is not taken for a Reshape to the whole shape', () => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', [2, 3, 4]);
    const y = g.input('y', 'float32', [2, 12]);
    assert.equal(g.op1('Reshape', [y, g.op1('Shape', [x], { end: 2 })]).shape, null);
    assert.deepEqual(g.op1('Reshape', [y, g.op1('Shape', [x])]).shape, [2, 3, 4]);
  });
});
