/**
 * Gemm's and MatMul's gradient rules (src/ops/matmul.ts) against finite differences: every
 * transA/transB combination with alpha and beta, the bias C broadcast from [N], [1, N], [M, 1] and a
 * scalar, and MatMul in 2-D, batched, and with broadcast batch dimensions.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { assertGradients } from '../autodiff/gradcheck.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['Gemm', 'MatMul', 'Einsum'];

const runtime = new Runtime();
after(() => runtime.close());

const M = 3;
const K = 4;
const N = 2;

describe('Gemm gradient', () => {
  for (const transA of [0, 1]) {
    for (const transB of [0, 1]) {
      it(`transA=${transA} transB=${transB}, alpha 0.7, beta 1.3, bias C [N] broadcast over rows`, async () => {
        await assertGradients(runtime, {
          inputs: { a: { shape: transA ? [K, M] : [M, K] }, b: { shape: transB ? [N, K] : [K, N] }, c: { shape: [N] } },
          build: (g, v) => g.op1('Gemm', [v.a!, v.b!, v.c!], { transA, transB, alpha: 0.7, beta: 1.3 }),
        });
      });
      it(`transA=${transA} transB=${transB} without C, default alpha`, async () => {
        await assertGradients(runtime, {
          inputs: { a: { shape: transA ? [K, M] : [M, K] }, b: { shape: transB ? [N, K] : [K, N] } },
          build: (g, v) => g.op1('Gemm', [v.a!, v.b!], { transA, transB }),
        });
      });
    }
  }

  for (const cShape of [[M, N], [1, N], [M, 1], []]) {
    it(`bias C of shape [${cShape.join(', ')}] with beta 0.5`, async () => {
      await assertGradients(runtime, {
        inputs: { a: { shape: [M, K] }, b: { shape: [K, N] }, c: { shape: cShape } },
        build: (g, v) => g.op1('Gemm', [v.a!, v.b!, v.c!], { beta: 0.5 }),
      });
    });
  }

  it('a symbolic batch dimension (Dense layers in training graphs)', async () => {
    await assertGradients(runtime, {
      inputs: { a: { shape: [5, K] }, b: { shape: [K, N] }, c: { shape: [N] } },
      symbolicBatch: ['a'],
      build: (g, v) => g.op1('Gemm', [v.a!, v.b!, v.c!]),
    });
  });
});

describe('MatMul gradient', () => {
  const cases: [string, number[], number[]][] = [
    ['2-D', [3, 4], [4, 2]],
    ['batched', [2, 3, 4], [2, 4, 2]],
    ['batched with a rank-2 right operand (broadcast over the batch)', [2, 3, 4], [4, 2]],
    ['batched with a rank-2 left operand', [3, 4], [2, 4, 2]],
    ['broadcast batch dimensions [2, 1] with [3]', [2, 1, 3, 4], [3, 4, 2]],
    ['PyTorch Linear on 3-D input (weight gradient as one Gemm over the flattened rows)', [2, 3, 4], [4, 5]],
    ['rank-4 input times a weight', [2, 2, 3, 4], [4, 2]],
    ['rank-1 left operand (a row)', [4], [4, 3]],
    ['rank-1 right operand (a column)', [2, 3, 4], [4]],
    ['rank-1 left operand with a batched right operand', [4], [2, 4, 3]],
    ['both rank 1 (a dot product)', [5], [5]],
  ];
  for (const [name, a, b] of cases) {
    it(`${name}: [${a}] x [${b}]`, async () => {
      await assertGradients(runtime, {
        inputs: { a: { shape: a }, b: { shape: b } },
        build: (g, v) => g.op1('MatMul', [v.a!, v.b!]),
      });
    });
  }
});

describe('MatMul gradient with a symbolic batch', () => {
  it('[N, T, D] · [D, E]', async () => {
    await assertGradients(runtime, {
      inputs: { a: { shape: [3, 2, 4] }, b: { shape: [4, 3] } },
      symbolicBatch: ['a'],
      build: (g, v) => g.op1('MatMul', [v.a!, v.b!]),
    });
  });
});

/* torch.einsum exports as Einsum: explicit and implicit outputs, letters summed by one operand only, a transpose, and a broadcast ellipsis. */
describe('Einsum gradient', () => {
  const cases: [string, number[][]][] = [
    ['ij,jk->ik', [[2, 3], [3, 4]]],
    ['bhqd,bhkd->bhqk', [[2, 2, 3, 4], [2, 2, 5, 4]]],
    ['ij->ji', [[2, 3]]],
    ['ij->', [[2, 3]]],
    ['ij->i', [[3, 4]]],
    ['i,i', [[5], [5]]],
    ['bij,bjk', [[2, 3, 4], [2, 4, 2]]],
    ['ij,j->i', [[3, 4], [4]]],
    ['...ij,...jk->...ik', [[2, 3, 4], [2, 4, 5]]],
    ['...ij,...jk->...ik', [[2, 3, 4], [1, 4, 5]]],
    ['i...,i...->i...', [[2, 3, 4], [2, 1, 4]]],
    ['bi,bj,ij->b', [[2, 3], [2, 4], [3, 4]]],
  ];
  for (const [equation, shapes] of cases) {
    it(equation, async () => {
      const names = shapes.map((_, k) => `x${k}`);
      await assertGradients(runtime, {
        inputs: Object.fromEntries(shapes.map((shape, k) => [names[k]!, { shape }])),
        build: (g, v) => g.op1('Einsum', names.map((n) => v[n]!), { equation }),
      });
    });
  }
  it('shapes: explicit, implicit (the letters used once, in alphabetical order) and a broadcast ellipsis', () => {
    const g = new Graph('e');
    const a = g.input('a', 'float32', ['N', 3, 4]);
    const b = g.input('b', 'float32', [4, 5]);
    assert.deepEqual(g.op1('Einsum', [a, b], { equation: 'nij,jk->nik' }).shape, ['N', 3, 5]);
    assert.deepEqual(g.op1('Einsum', [a, b], { equation: 'nij,jk' }).shape, [3, 5, 'N']);
    assert.deepEqual(g.op1('Einsum', [a, b], { equation: '...ij,...jk->...ik' }).shape, ['N', 3, 5]);
    assert.deepEqual(g.op1('Einsum', [a], { equation: 'nij->' }).shape, []);
  });
});
