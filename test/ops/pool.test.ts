/**
 * Pooling gradient rules (src/ops/pool.ts) against finite differences. MaxPool has two formulations
 * (tiling windows: upsample-and-compare; overlapping or padded windows: Indices + ScatterElements),
 * AveragePool spreads through a ConvTranspose whose window counts exclude padding unless
 * count_include_pad. MaxPool inputs are 'distinct' (no ties; ±h never changes a window's maximum).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { isTilingPool } from '../../src/graph/pool-window.js';
import { Runtime } from '../../src/runtime/runtime.js';
import type { Attrs } from '../../src/graph/graph.js';
import { assertGradients, runGraph } from '../autodiff/gradcheck.js';
import { addGradients } from '../../src/autodiff/gradients.js';
import { Tensor } from '../../src/tensor.js';
import { Random } from '../../src/random.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool'];

const runtime = new Runtime();
after(() => runtime.close());

function pool(op: string, shape: number[], attrs: Attrs) {
  return {
    inputs: { x: { shape, fill: 'distinct' as const } },
    build: (g: import('../../src/graph/graph.js').Graph, v: Record<string, import('../../src/graph/graph.js').Value>) => g.op(op, [v.x!], attrs)[0]!,
  };
}

describe('MaxPool gradient', () => {
  it('2x2 stride 2 (tiling windows)', async () => {
    await assertGradients(runtime, pool('MaxPool', [2, 2, 4, 4], { kernel_shape: [2, 2], strides: [2, 2] }));
  });
  it('2x2 stride 2 on an odd 5x5 input (the last row and column are never read)', async () => {
    await assertGradients(runtime, pool('MaxPool', [1, 2, 5, 5], { kernel_shape: [2, 2], strides: [2, 2] }));
  });
  it('3x3 stride 3 on 7x7, and a 2x3 window with strides [2, 3]', async () => {
    await assertGradients(runtime, pool('MaxPool', [1, 1, 7, 7], { kernel_shape: [3, 3], strides: [3, 3] }));
    await assertGradients(runtime, pool('MaxPool', [1, 2, 4, 6], { kernel_shape: [2, 3], strides: [2, 3] }));
  });
  it('storage_order 1 (column-major Indices): the gradient still reaches each window\'s maximum', async () => {
    // ONNX's test_maxpool_with_argmax_2d_precomputed_strides found the rule scattering to transposed positions.
    await assertGradients(runtime, pool('MaxPool', [1, 2, 5, 5], { kernel_shape: [2, 2], strides: [2, 2], storage_order: 1 }));
  });
  it('overlapping 3x3 window, stride 1', async () => {
    await assertGradients(runtime, pool('MaxPool', [2, 2, 5, 5], { kernel_shape: [3, 3], strides: [1, 1] }));
  });
  it('overlapping 3x3 window, stride 2, pads 1 (Keras "same")', async () => {
    await assertGradients(runtime, pool('MaxPool', [2, 2, 5, 5], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }));
  });
  it('2x2 stride 2 with asymmetric padding [0, 0, 1, 1]', async () => {
    await assertGradients(runtime, pool('MaxPool', [1, 2, 5, 5], { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1] }));
  });
});

describe('AveragePool gradient', () => {
  it('2x2 stride 2 without padding', async () => {
    await assertGradients(runtime, pool('AveragePool', [2, 2, 4, 4], { kernel_shape: [2, 2], strides: [2, 2] }));
  });
  it('2x2 stride 2 on an odd 5x5 input', async () => {
    await assertGradients(runtime, pool('AveragePool', [1, 2, 5, 5], { kernel_shape: [2, 2], strides: [2, 2] }));
  });
  it('3x3 stride 1 with pads 1, padding not counted (count_include_pad 0)', async () => {
    await assertGradients(runtime, pool('AveragePool', [1, 2, 4, 4], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] }));
  });
  it('3x3 stride 1 with pads 1, padding counted (count_include_pad 1)', async () => {
    await assertGradients(runtime, pool('AveragePool', [1, 2, 4, 4], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 }));
  });
  it('3x3 stride 2 with asymmetric pads [0, 0, 1, 1]', async () => {
    await assertGradients(runtime, pool('AveragePool', [1, 1, 6, 6], { kernel_shape: [3, 3], strides: [2, 2], pads: [0, 0, 1, 1] }));
  });
  it('1-D, kernel 3 stride 2, pads not counted', async () => {
    await assertGradients(runtime, pool('AveragePool', [2, 3, 7], { kernel_shape: [3], strides: [2], pads: [1, 1] }));
  });
  it('3-D, unequal kernel, strides and pads, padding counted on one and not on the other', async () => {
    await assertGradients(runtime, pool('AveragePool', [1, 2, 5, 4, 3], { kernel_shape: [3, 2, 2], strides: [2, 1, 2], pads: [1, 0, 1, 1, 1, 0] }));
    await assertGradients(runtime, pool('AveragePool', [1, 2, 5, 4, 3], { kernel_shape: [3, 2, 2], strides: [2, 1, 2], pads: [1, 0, 1, 1, 1, 0], count_include_pad: 1 }));
  });
  it('3-D with ceil_mode (the last window reaching past the input)', async () => {
    await assertGradients(runtime, pool('AveragePool', [1, 1, 5, 5, 4], { kernel_shape: [2, 2, 2], strides: [2, 2, 2], ceil_mode: 1 }));
  });
});

describe('GlobalAveragePool gradient', () => {
  it('spreads each channel gradient evenly over H x W', async () => {
    await assertGradients(runtime, pool('GlobalAveragePool', [2, 3, 4, 3], {}));
  });
});

/* auto_pad SAME_* (ONNX's backend cases test_maxpool_2d_same_upper, _same_lower, test_averagepool_2d_*). */
describe('pool auto_pad shapes', () => {
  const shapeOf = (op: string, x: number[], attrs: Attrs) => {
    const g = new Graph('t');
    return g.op1(op, [g.input('x', 'float32', x)], attrs).shape;
  };
  for (const op of ['MaxPool', 'AveragePool']) {
    it(`${op} SAME_UPPER / SAME_LOWER give ceil(in/stride)`, () => {
      assert.deepEqual(shapeOf(op, [1, 3, 32, 32], { auto_pad: 'SAME_UPPER', kernel_shape: [2, 2] }), [1, 3, 32, 32]);
      assert.deepEqual(shapeOf(op, [1, 3, 32, 32], { auto_pad: 'SAME_LOWER', kernel_shape: [2, 2] }), [1, 3, 32, 32]);
      assert.deepEqual(shapeOf(op, [1, 1, 5, 5], { auto_pad: 'SAME_UPPER', kernel_shape: [3, 3], strides: [2, 2] }), [1, 1, 3, 3]);
    });
  }
  it('a 2x2 stride-2 MaxPool with SAME_UPPER on an odd input is not a tiling pool (its last window is padded)', () => {
    assert.equal(isTilingPool({ auto_pad: 'SAME_UPPER', kernel_shape: [2, 2], strides: [2, 2] }), false);
    assert.equal(isTilingPool({ auto_pad: 'VALID', kernel_shape: [2, 2], strides: [2, 2] }), true);
  });
});

describe('pool gradients with auto_pad', () => {
  it('MaxPool 2x2 stride 2 SAME_UPPER on 5x5 (padded last window)', async () => {
    await assertGradients(runtime, pool('MaxPool', [1, 2, 5, 5], { auto_pad: 'SAME_UPPER', kernel_shape: [2, 2], strides: [2, 2] }));
  });
  it('AveragePool 3x3 stride 2 SAME_LOWER on 6x6 (window counts exclude the padding)', async () => {
    await assertGradients(runtime, pool('AveragePool', [1, 2, 6, 6], { auto_pad: 'SAME_LOWER', kernel_shape: [3, 3], strides: [2, 2] }));
  });
  it('AveragePool 2x2 SAME_UPPER stride 1', async () => {
    await assertGradients(runtime, pool('AveragePool', [1, 1, 4, 5], { auto_pad: 'SAME_UPPER', kernel_shape: [2, 2] }));
  });
});

describe('pool gradients: ceil_mode, dilations, GlobalMaxPool', () => {
  it('MaxPool 3x3 stride 2 ceil_mode 1 on 6x6 (a partial last window)', async () => {
    await assertGradients(runtime, pool('MaxPool', [1, 2, 6, 6], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }));
  });
  it('MaxPool 2x2 stride 2 ceil_mode 1 on 5x5 (PyTorch ceil_mode=True)', async () => {
    await assertGradients(runtime, pool('MaxPool', [1, 2, 5, 5], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }));
  });
  it('MaxPool 2x2 dilations 2, pads 1', async () => {
    await assertGradients(runtime, pool('MaxPool', [1, 2, 6, 6], { kernel_shape: [2, 2], dilations: [2, 2], pads: [1, 1, 1, 1] }));
  });
  it('MaxPool 1-D, kernel 3 stride 2', async () => {
    await assertGradients(runtime, pool('MaxPool', [2, 2, 9], { kernel_shape: [3], strides: [2] }));
  });
  for (const includePad of [0, 1]) {
    it(`AveragePool 3x3 stride 2 pads 1 ceil_mode 1, count_include_pad ${includePad}`, async () => {
      await assertGradients(runtime, pool('AveragePool', [1, 2, 6, 6], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: includePad }));
    });
  }
  it('AveragePool 2x2 stride 2 ceil_mode 1 on 5x5', async () => {
    await assertGradients(runtime, pool('AveragePool', [2, 1, 5, 5], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }));
  });
  it('GlobalMaxPool', async () => {
    await assertGradients(runtime, pool('GlobalMaxPool', [2, 3, 3, 4], {}));
  });
  it('GlobalMaxPool with a symbolic batch', async () => {
    await assertGradients(runtime, { ...pool('GlobalMaxPool', [2, 2, 3, 3], {}), symbolicBatch: ['x'] });
  });
});

describe('MaxPool gradient with ties', () => {
  it("sends a window's gradient to its first maximum in row-major order, as PyTorch does", async () => {
    // One 2×4 image, two 2×2 windows: the left one all equal (a blank background through a
    // convolution's bias), the right one tied between its 2nd and 4th positions.
    const g = new Graph('ties');
    const x = g.input('x', 'float32', [1, 1, 2, 4]);
    const y = g.op1('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
    const dy = g.input('dy', 'float32', [1, 1, 1, 2]);
    const loss = g.op1('ReduceSum', [g.op1('Mul', [y, dy])], { keepdims: 0 });
    const grads = addGradients(g, loss, [x]);
    g.output(grads.get('x')!, 'dx');
    const out = await runGraph(runtime, g, {
      x: new Tensor(Float32Array.of(0.5, 0.5, 1, 3, 0.5, 0.5, 2, 3), [1, 1, 2, 4], 'float32'),
      dy: new Tensor(Float32Array.of(10, 20), [1, 1, 1, 2], 'float32'),
    });
    assert.deepEqual([...(out.dx!.data as Float32Array)], [10, 0, 0, 20, 0, 0, 0, 0]);
  });

  for (const channels of [2, 20]) {
    it(`ties on a tiling 2×2 pool with cropped rows, ${channels} channels and a symbolic batch: the first maximum (${channels <= 16 ? 'SpaceToDepth form' : 'Indices form'})`, async () => {
      // 2 images of 5×5 pooled to 2×2 (row and column 4 unread); most windows tied somewhere.
      // Expected: each window's gradient at its first maximum in row-major order.
      const g = new Graph('ties_tiling');
      const x = g.input('x', 'float32', ['N', channels, 5, 5]);
      const y = g.op1('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
      const dy = g.input('dy', 'float32', ['N', channels, 2, 2]);
      const grads = addGradients(g, g.op1('ReduceSum', [g.op1('Mul', [y, dy])], { keepdims: 0 }), [x]);
      assert.equal(g.nodes.some((n) => n.opType === 'ScatterElements'), channels > 16, 'up to 16 channels the SpaceToDepth form, above MaxPool Indices + ScatterElements');
      g.output(grads.get('x')!, 'dx');
      const rng = new Random(3);
      // Values from {0, 1, 2}: ties in most windows.
      const xs = Float32Array.from({ length: 2 * channels * 25 }, () => rng.int(3));
      const dys = Float32Array.from({ length: 2 * channels * 4 }, (_, i) => i + 1);
      const out = await runGraph(runtime, g, { x: new Tensor(xs, [2, channels, 5, 5], 'float32'), dy: new Tensor(dys, [2, channels, 2, 2], 'float32') });
      const expected = new Float32Array(xs.length);
      for (let plane = 0; plane < 2 * channels; plane++) {
        for (let r = 0; r < 2; r++) {
          for (let c = 0; c < 2; c++) {
            let best = -1;
            for (const [i, j] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) {
              const at = plane * 25 + (2 * r + i) * 5 + (2 * c + j);
              if (best < 0 || xs[at]! > xs[best]!) best = at;
            }
            expected[best] = dys[plane * 4 + r * 2 + c]!;
          }
        }
      }
      assert.deepEqual([...(out.dx!.data as Float32Array)], [...expected]);
    });
  }

  it("with maxPoolTies 'all' (Kiln's layer models), sends it to every tied position", async () => {
    const g = new Graph('ties_all');
    const x = g.input('x', 'float32', [1, 1, 2, 4]);
    const y = g.op1('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
    const dy = g.input('dy', 'float32', [1, 1, 1, 2]);
    const grads = addGradients(g, g.op1('ReduceSum', [g.op1('Mul', [y, dy])], { keepdims: 0 }), [x], { maxPoolTies: 'all' });
    g.output(grads.get('x')!, 'dx');
    const out = await runGraph(runtime, g, {
      x: new Tensor(Float32Array.of(0.5, 0.5, 1, 3, 0.5, 0.5, 2, 3), [1, 1, 2, 4], 'float32'),
      dy: new Tensor(Float32Array.of(10, 20), [1, 1, 1, 2], 'float32'),
    });
    assert.deepEqual([...(out.dx!.data as Float32Array)], [10, 10, 0, 20, 10, 10, 0, 20]);
  });
});
