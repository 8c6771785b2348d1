/**
 * Gradient rules of the data-movement ops (src/ops/shape.ts) against finite differences: each must
 * move the gradient back to the element it came from.
 */
import { after, describe, it } from 'node:test';
import { Runtime } from '../../src/runtime/runtime.js';
import assert from 'node:assert/strict';
import { addGradients } from '../../src/autodiff/gradients.js';
import { Graph } from '../../src/graph/graph.js';
import { Tensor } from '../../src/tensor.js';
import { assertGradients, runGraph } from '../autodiff/gradcheck.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['Flatten', 'Reshape', 'Transpose', 'Concat', 'Split', 'Unsqueeze', 'Squeeze', 'Slice', 'Pad', 'Gather', 'Expand', 'Tile', 'Resize', 'SpaceToDepth', 'DepthToSpace', 'GatherElements', 'ScatterElements', 'GatherND', 'ScatterND', 'TopK', 'Trilu'];

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

describe('Slice gradient, general forms', () => {
  const slice = (starts: number[], ends: number[], axes?: number[], steps?: number[]) => (g: Graph, v: Record<string, import('../../src/graph/graph.js').Value>) =>
    g.op1('Slice', [v.x!, g.int64s(starts), g.int64s(ends), ...(axes ? [g.int64s(axes)] : steps ? [''] : []), ...(steps ? [g.int64s(steps)] : [])]);
  it('step 2 on one axis, unit step on another', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 7, 4] } }, build: slice([1, 1], [7, 3], [1, 2], [2, 1]) });
  });
  it('steps 2 and 3 on two axes (YOLO-style x[..., ::2, ::3])', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [1, 2, 6, 7] } }, build: slice([0, 0], [TO_END, TO_END], [2, 3], [2, 3]) });
  });
  it('negative step −1 (reversal, x[::-1]) with ends past the beginning', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [5, 3] } }, build: slice([-1], [-TO_END], [0], [-1]) });
  });
  it('negative step −2 from a negative start, negative axes', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 8] } }, build: slice([-2], [0], [-1], [-2]) });
  });
  it('negative starts and ends past the end', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [4, 5] } }, build: slice([-3, 1], [100, TO_END], [0, 1]) });
  });
  it('a strided slice with a symbolic batch', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 2, 6] } }, symbolicBatch: ['x'], build: slice([5], [0], [2], [-2]) });
  });
});

const TO_END = Number.MAX_SAFE_INTEGER;

describe('Split forms', () => {
  it('equal parts without split sizes (opset 13), only the middle output used', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [2, 6] } },
      build: (g, v) => g.op('Split', [v.x!], { axis: 1 }, { outputs: 3 })[1]!,
    });
  });
  it('num_outputs 3 on a dim of 7 (opset 18: parts of 3, 3, 1)', async () => {
    await assertGradients(runtime, {
      opset: 18,
      inputs: { x: { shape: [7, 2] } },
      build: (g, v) => {
        const parts = g.op('Split', [v.x!], { num_outputs: 3 }, { outputs: 3 });
        assert.deepEqual(parts.map((p) => p.shape), [[3, 2], [3, 2], [1, 2]]);
        return [parts[0]!, parts[2]!];
      },
    });
  });
  it('split sizes computed at run time: outputs keep the other dims', () => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', ['N', 6]);
    const sizes = g.input('sizes', 'int64', [2]);
    const parts = g.op('Split', [x, sizes], { axis: 1 }, { outputs: 2 });
    assert.deepEqual(parts.map((p) => p.shape), [['N', null], ['N', null]]);
  });
});

describe('Reshape allowzero', () => {
  it('allowzero 1 makes a 0 a zero-sized dim, as ONNX Runtime does', async () => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', [0, 3]);
    const y = g.op1('Reshape', [x, g.int64s([3, 0])], { allowzero: 1 });
    assert.deepEqual(y.shape, [3, 0]);
    g.output(y, 'y');
    const out = await runGraph(runtime, g, { x: new Tensor(new Float32Array(0), [0, 3], 'float32') });
    assert.deepEqual([...out.y!.shape], [3, 0]);
  });
  it('allowzero 0 copies the input dim', () => {
    const g = new Graph('t');
    assert.deepEqual(g.op1('Reshape', [g.input('x', 'float32', [2, 3, 4]), g.int64s([0, 0, -1])]).shape, [2, 3, 4]);
  });
});

describe('Pad gradient', () => {
  it('constant mode, pads on two axes', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: (g, v) => g.op1('Pad', [v.x!, g.int64s([0, 1, 2, 0, 2, 1])]) });
  });
  it('constant mode with a value and negative pads (a crop)', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 5] } },
      build: (g, v) => g.op1('Pad', [v.x!, g.int64s([1, -1, -1, 2]), g.scalar(0.5)]),
    });
  });
  it('reflect mode (PyTorch ReflectionPad2d), begin and end pads', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [1, 2, 4, 5] } }, build: (g, v) => g.op1('Pad', [v.x!, g.int64s([0, 0, 2, 1, 0, 0, 1, 3])], { mode: 'reflect' }) });
  });
  it('edge mode (ReplicationPad2d)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [1, 2, 3, 4] } }, build: (g, v) => g.op1('Pad', [v.x!, g.int64s([0, 0, 2, 1, 0, 0, 1, 3])], { mode: 'edge' }) });
  });
  it('axes input (opset 18): pads only the last axis, reflect', async () => {
    await assertGradients(runtime, {
      opset: 18,
      inputs: { x: { shape: [2, 3, 5] } },
      build: (g, v) => g.op1('Pad', [v.x!, g.int64s([2, 3]), '', g.int64s([-1])], { mode: 'reflect' }),
    });
  });
  it('a symbolic batch, constant mode', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3] } }, symbolicBatch: ['x'], build: (g, v) => g.op1('Pad', [v.x!, g.int64s([0, 1, 0, 2])]) });
  });
});

describe('Gather gradient', () => {
  const gather = (indices: number[], shape: number[], axis: number) => (g: Graph, v: Record<string, import('../../src/graph/graph.js').Value>) =>
    g.op1('Gather', [v.x!, g.constant(new Tensor(BigInt64Array.from(indices, BigInt), shape, 'int64'), 'indices')], { axis });
  it('axis 0 (an embedding lookup) with repeated and negative indices', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [5, 3] } }, build: gather([0, 4, -1, 2, 0, 1], [2, 3], 0) });
  });
  it('axis 1 with a scalar index (PyTorch x[:, 0], the class token)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 4, 3] } }, build: gather([0], [], 1) });
  });
  it('axis −1 with 2-D indices', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: gather([3, 1, -4, 1], [2, 2], -1) });
  });
  it('int32 indices on axis 1 with a symbolic batch', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 5, 2] } },
      symbolicBatch: ['x'],
      build: (g, v) => g.op1('Gather', [v.x!, g.constant(new Tensor(Int32Array.of(4, 0, 4), [3], 'int32'), 'indices')], { axis: 1 }),
    });
  });
});

describe('Expand gradient', () => {
  it('[3, 1] to [2, 3, 4]', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 1] } }, build: (g, v) => g.op1('Expand', [v.x!, g.int64s([2, 3, 4])]) });
  });
  it('a 1 in the target keeps the input dim (bidirectional broadcast): [3, 1] with [1, 4]', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 1] } }, build: (g, v) => g.op1('Expand', [v.x!, g.int64s([1, 4])]) });
  });
  it('to the shape of another value (Expand(x, Shape(y))) with a symbolic batch', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [1, 4] }, y: { shape: [3, 4] } },
      symbolicBatch: ['y'],
      wrt: ['x'],
      build: (g, v) => g.op1('Mul', [g.op1('Expand', [v.x!, g.op1('Shape', [v.y!])]), v.y!]),
    });
  });
});

describe('Tile gradient', () => {
  it('repeats [2, 1]', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3] } }, build: (g, v) => g.op1('Tile', [v.x!, g.int64s([2, 1])]) });
  });
  it('repeats [1, 3, 2] on [2, 1, 3]', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 1, 3] } }, build: (g, v) => g.op1('Tile', [v.x!, g.int64s([1, 3, 2])]) });
  });
  it('a symbolic batch tiled along another axis', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3] } }, symbolicBatch: ['x'], build: (g, v) => g.op1('Tile', [v.x!, g.int64s([1, 2])]) });
  });
});

describe('Resize gradient with respect to X', () => {
  const resize = (attrs: Record<string, string | number | number[]>, scales?: number[], sizes?: number[]) => (g: Graph, v: Record<string, import('../../src/graph/graph.js').Value>) =>
    g.op1('Resize', [v.x!, '', scales ? g.constant(new Tensor(Float32Array.from(scales), [scales.length], 'float32'), 'scales') : '', ...(sizes ? [g.int64s(sizes)] : [])], attrs);
  it('nearest ×2 (asymmetric, floor): PyTorch Upsample(scale_factor=2)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [1, 2, 3, 3] } }, build: resize({ mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, [1, 1, 2, 2]) });
  });
  it('nearest with the defaults (half_pixel, round_prefer_floor) to sizes 5×7', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [1, 1, 3, 4] } }, build: resize({ mode: 'nearest' }, undefined, [1, 1, 5, 7]) });
  });
  it('linear ×2 (half_pixel, bilinear)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 1, 3, 4] } }, build: resize({ mode: 'linear' }, [1, 1, 2, 2]) });
  });
  it('linear align_corners to sizes 5×3 (one axis down)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [1, 2, 3, 4] } }, build: resize({ mode: 'linear', coordinate_transformation_mode: 'align_corners' }, undefined, [1, 2, 5, 3]) });
  });
  it('linear pytorch_half_pixel ×1.5 with a symbolic batch', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 1, 4, 4] } }, symbolicBatch: ['x'], build: resize({ mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' }, [1, 1, 1.5, 1.5]) });
  });
  it('cubic ×2', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [1, 1, 4, 4] } }, build: resize({ mode: 'cubic' }, [1, 1, 2, 2]) });
  });
  it('rank 3, resizing the middle axis (a transpose around the MatMul)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 2] } }, build: resize({ mode: 'linear' }, [1, 2, 1]) });
  });
  it('axes attribute (opset 18): scales for the spatial axes only', async () => {
    await assertGradients(runtime, { opset: 18, inputs: { x: { shape: [1, 2, 3, 3] } }, build: resize({ mode: 'nearest', axes: [2, 3] }, [2, 2]) });
  });
});

describe('shape rules with run-time shapes (exporters\' Shape→Gather→Unsqueeze→Concat chains)', () => {
  it('Reshape to a computed shape: no error, unknown shape, and the gradient flows', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 2, 4] } },
      symbolicBatch: ['x'],
      build: (g, v) => {
        const n = g.op1('Gather', [g.op1('Shape', [v.x!]), g.constant(new Tensor(BigInt64Array.of(0n), [], 'int64'), 'zero')]);
        const target = g.op1('Concat', [g.op1('Unsqueeze', [n, g.int64s([0])]), g.int64s([-1])], { axis: 0 });
        const flat = g.op1('Reshape', [v.x!, target]);
        assert.equal(flat.shape, null);
        return g.op1('Reshape', [g.op1('Mul', [flat, flat]), g.op1('Shape', [v.x!])]);
      },
    });
  });
  it('Slice, Pad, Expand, Tile, Resize, Gather with computed inputs give partial shapes without throwing', () => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', ['N', 3, 4, 4]);
    const ints = g.input('ints', 'int64', [4]);
    const sc = g.input('sc', 'float32', [4]);
    assert.deepEqual(g.op1('Slice', [x, ints, ints]).shape, [null, null, null, null]);
    assert.deepEqual(g.op1('Slice', [x, g.input('s1', 'int64', [1]), g.input('e1', 'int64', [1]), g.int64s([1])]).shape, ['N', null, 4, 4]);
    assert.deepEqual(g.op1('Pad', [x, g.input('p', 'int64', [8])]).shape, [null, null, null, null]);
    assert.deepEqual(g.op1('Expand', [g.input('b', 'float32', [3, 1, 1]), ints]).shape, [null, 3, null, null]);
    assert.deepEqual(g.op1('Tile', [x, ints]).shape, [null, null, null, null]);
    assert.deepEqual(g.op1('Resize', [x, '', sc]).shape, [null, null, null, null]);
    assert.deepEqual(g.op1('Gather', [x, g.input('i', 'int64', ['K'])], { axis: 1 }).shape, ['N', 'K', 4, 4]);
  });
});

describe('Flatten, Squeeze, Unsqueeze: remaining forms', () => {
  for (const axis of [0, 3, -1]) {
    it(`Flatten axis ${axis} of a rank-3 tensor`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 2] } }, build: (g, v) => g.op1('Flatten', [v.x!], { axis }) });
    });
  }
  it('Unsqueeze negative axes [-1, 0]', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3] } }, build: (g, v) => g.op1('Unsqueeze', [v.x!, g.int64s([-1, 0])]) });
  });
  it('Squeeze negative axes [-1] with a symbolic batch', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 2, 1] } }, symbolicBatch: ['x'], build: (g, v) => g.op1('Squeeze', [v.x!, g.int64s([-1])]) });
  });
});

describe('SpaceToDepth / DepthToSpace', () => {
  it('SpaceToDepth blocksize 2 gradient', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4, 6] } }, build: (g, v) => g.op1('SpaceToDepth', [v.x!], { blocksize: 2 }) });
  });
  it('DepthToSpace DCR blocksize 2 gradient, symbolic batch', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 8, 2, 3] } }, build: (g, v) => g.op1('DepthToSpace', [v.x!], { blocksize: 2, mode: 'DCR' }), symbolicBatch: ['x'] });
  });
  it('shapes, and DCR undoes SpaceToDepth', async () => {
    const g = new Graph('s2d');
    const x = g.input('x', 'float32', ['N', 2, 4, 6]);
    const depth = g.op1('SpaceToDepth', [x], { blocksize: 2 });
    assert.deepEqual(depth.shape, ['N', 8, 2, 3]);
    const back = g.op1('DepthToSpace', [depth], { blocksize: 2, mode: 'DCR' });
    assert.deepEqual(back.shape, ['N', 2, 4, 6]);
    g.output(back, 'y');
    const values = new Tensor(Float32Array.from({ length: 96 }, (_, i) => i), [2, 2, 4, 6], 'float32');
    const out = await runGraph(runtime, g, { x: values });
    assert.deepEqual([...(out.y!.data as Float32Array)], [...values.data]);
  });
  it('rejects sizes the block does not divide', () => {
    const g = new Graph('bad');
    assert.throws(() => g.op1('SpaceToDepth', [g.input('x', 'float32', [1, 1, 5, 4])], { blocksize: 2 }), /not a multiple of blocksize 2/);
    assert.throws(() => g.op1('DepthToSpace', [g.input('z', 'float32', [1, 6, 2, 2])], { blocksize: 2 }), /6 channels are not a multiple of blocksize² 4/);
  });
  it('DepthToSpace CRD gradient (PyTorch PixelShuffle), blocksize 2 and 3, symbolic batch', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 8, 2, 3] } }, build: (g, v) => g.op1('DepthToSpace', [v.x!], { blocksize: 2, mode: 'CRD' }), symbolicBatch: ['x'] });
    await assertGradients(runtime, { inputs: { x: { shape: [1, 18, 2, 2] } }, build: (g, v) => g.op1('DepthToSpace', [v.x!], { blocksize: 3, mode: 'CRD' }) });
  });
});

/* Indexing ops PyTorch exports: torch.gather (GatherElements), scatter / index_put (ScatterElements, ScatterND), x[idx] with index tensors (GatherND), torch.topk (TopK), triu / tril (Trilu). */
describe('GatherElements, ScatterElements, GatherND, ScatterND, TopK and Trilu gradients', () => {
  const ints = (g: Graph, values: number[], shape: number[]) => g.constant(new Tensor(BigInt64Array.from(values, BigInt), shape, 'int64'), 'indices');
  it('GatherElements on axis 1 with repeated indices (their gradients add up)', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 4] } }, build: (g, v) => g.op1('GatherElements', [v.x!, ints(g, [3, 0, 3, 1, 1, 2], [2, 3])], { axis: 1 }) });
  });
  it('GatherElements on axis 0 with a negative index', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 2] } }, build: (g, v) => g.op1('GatherElements', [v.x!, ints(g, [2, -3, 0, 1], [2, 2])], { axis: 0 }) });
  });
  for (const reduction of ['none', 'add']) {
    it(`ScatterElements, reduction ${reduction}: data and updates`, async () => {
      await assertGradients(runtime, {
        inputs: { x: { shape: [3, 4] }, u: { shape: [3, 2] } },
        build: (g, v) => g.op1('ScatterElements', [v.x!, ints(g, [1, 3, 0, 2, 3, 0], [3, 2]), v.u!], { axis: 1, reduction }),
      });
    });
    it(`ScatterND, reduction ${reduction}: rows of data replaced by (or added to) updates`, async () => {
      await assertGradients(runtime, {
        inputs: { x: { shape: [4, 3] }, u: { shape: [2, 3] } },
        build: (g, v) => g.op1('ScatterND', [v.x!, ints(g, [2, 0], [2, 1]), v.u!], { reduction }),
      });
    });
  }
  it('GatherND of elements and of rows, a position taken twice', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4] } }, build: (g, v) => g.op1('GatherND', [v.x!, ints(g, [0, 1, 2, 3, 0, 1], [3, 2])]) });
    await assertGradients(runtime, { inputs: { x: { shape: [3, 4] } }, build: (g, v) => g.op1('GatherND', [v.x!, ints(g, [2, 0, 2], [3, 1])]) });
  });
  for (const largest of [1, 0]) {
    it(`TopK k = 2 on the last axis, largest ${largest} (distinct values: no ties under ±h)`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [3, 5], fill: 'distinct' } }, build: (g, v) => g.op('TopK', [v.x!, g.int64s([2])], { axis: -1, largest }, { outputs: 2 })[0]! });
    });
  }
  it('TopK on axis 0', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [4, 3], fill: 'distinct' } }, build: (g, v) => g.op('TopK', [v.x!, g.int64s([3])], { axis: 0 }, { outputs: 2 })[0]! });
  });
  for (const upper of [0, 1]) {
    it(`Trilu upper ${upper}, k = 1 and k absent, over a batch of matrices`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 4] } }, build: (g, v) => g.op1('Trilu', [v.x!, g.constant(new Tensor(BigInt64Array.of(1n), [], 'int64'), 'k')], { upper }) });
      await assertGradients(runtime, { inputs: { x: { shape: [3, 3] } }, build: (g, v) => g.op1('Trilu', [v.x!], { upper }) });
    });
  }
  it('TopK shape: k from a constant, else unknown on the axis', () => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', ['N', 6]);
    const [values, indices] = g.op('TopK', [x, g.int64s([2])], { axis: 1 }, { outputs: 2 });
    assert.deepEqual([values!.shape, indices!.shape, indices!.dtype], [['N', 2], ['N', 2], 'int64']);
    assert.deepEqual(g.op('TopK', [x, g.input('k', 'int64', [1])], {}, { outputs: 2 })[0]!.shape, ['N', null]);
  });
});

describe('Range (torch.arange: a text model position ids)', () => {
  it('has the length its constant scalars give, ONNX Runtime agreeing; a length measured at run time otherwise', async () => {
    const g = new Graph('range');
    const x = g.input('x', 'float32', ['N', 'T']);
    const constant = g.op1('Range', [g.scalar(2, 'int64'), g.scalar(11, 'int64'), g.scalar(3, 'int64')]);
    assert.deepEqual([constant.shape, constant.dtype], [[3], 'int64']);
    const length = g.op1('Squeeze', [g.op1('Slice', [g.op1('Shape', [x]), g.int64s([1]), g.int64s([2])])]);
    const measured = g.op1('Range', [g.scalar(0, 'int64'), length, g.scalar(1, 'int64')]);
    assert.deepEqual(measured.shape, [null]);
    g.output(constant, 'constant');
    g.output(measured, 'measured');
    const out = await runGraph(runtime, g, { x: new Tensor(new Float32Array(2 * 5), [2, 5], 'float32') });
    assert.deepEqual(Array.from(out.constant!.data as BigInt64Array, Number), [2, 5, 8]);
    assert.deepEqual(Array.from(out.measured!.data as BigInt64Array, Number), [0, 1, 2, 3, 4]);
  });
});
