/**
 * Gradient rules of the elementwise ops (src/ops/elementwise.ts) against finite differences,
 * including broadcasting, where each input's gradient must be summed back to its own shape.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';
import { Random } from '../../src/random.js';
import { Graph as GraphClass, type Graph } from '../../src/graph/graph.js';
import { assertGradients, type Fill } from '../autodiff/gradcheck.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Neg', 'Identity', 'Exp', 'Log', 'Sqrt', 'Abs', 'Reciprocal', 'Clip', 'Cast', 'Where', 'Erf', 'Sum', 'Mean', 'Mod', 'CastLike'];

const runtime = new Runtime();
after(() => runtime.close());

const BROADCASTS: [string, number[], number[]][] = [
  ['same shapes', [2, 3], [2, 3]],
  ['[2, 3] with [3]', [2, 3], [3]],
  ['[2, 3] with [2, 1]', [2, 3], [2, 1]],
  ['[3] with [2, 3] (left operand broadcast)', [3], [2, 3]],
  ['[2, 1, 3] with [4, 1] (both broadcast)', [2, 1, 3], [4, 1]],
  ['[2, 3] with a scalar', [2, 3], []],
];

describe('binary arithmetic gradients with broadcasting', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    for (const [name, a, b] of BROADCASTS) {
      it(`${op}: ${name}`, async () => {
        await assertGradients(runtime, {
          // Divisors stay in [0.5, 1.5]: far from the pole at 0.
          inputs: { a: { shape: a }, b: { shape: b, fill: op === 'Div' ? 'positive' : 'uniform' } },
          build: (g, v) => g.op1(op, [v.a!, v.b!]),
        });
      });
    }
  }
});

/** b = a ± (0.1..0.5): the two never tie, so Max/Min pick the same side under ±h. */
function apart(size: number, seed: number): [Float32Array, Float32Array] {
  const rng = new Random(seed);
  const a = Float32Array.from({ length: size }, () => rng.uniform(-1, 1));
  const b = Float32Array.from(a, (v) => v + (rng.next() < 0.5 ? -1 : 1) * rng.uniform(0.1, 0.5));
  return [a, b];
}

describe('Max / Min gradients', () => {
  for (const op of ['Max', 'Min']) {
    it(`${op}: the gradient goes to the winning input`, async () => {
      const [a, b] = apart(6, 3);
      await assertGradients(runtime, {
        inputs: { a: { shape: [2, 3], fill: a }, b: { shape: [2, 3], fill: b } },
        build: (g, v) => g.op1(op, [v.a!, v.b!]),
      });
    });
    it(`${op}: broadcasting a [3] operand`, async () => {
      // Column values of b sit between well-separated a values.
      const a = Float32Array.of(-0.9, 0.1, 0.8, 0.5, -0.6, -0.2);
      const b = Float32Array.of(0.3, -0.4, 0.2);
      await assertGradients(runtime, {
        inputs: { a: { shape: [2, 3], fill: a }, b: { shape: [3], fill: b } },
        build: (g, v) => g.op1(op, [v.a!, v.b!]),
      });
    });
  }
});

describe('Pow gradient (with respect to the base)', () => {
  it('scalar constant exponent 3', async () => {
    await assertGradients(runtime, {
      inputs: { a: { shape: [2, 3], fill: 'positive' } },
      build: (g, v) => g.op1('Pow', [v.a!, g.scalar(3)]),
    });
  });
  it('fractional exponents broadcast from [3]', async () => {
    await assertGradients(runtime, {
      inputs: { a: { shape: [2, 3], fill: 'positive' } },
      build: (g, v) => g.op1('Pow', [v.a!, g.constant(new Tensor(Float32Array.of(2, 0.5, -1.5), [3], 'float32'))]),
    });
  });
  it('with respect to the exponent as well (aᵇ·ln a), broadcasting a [3] exponent', async () => {
    await assertGradients(runtime, {
      inputs: { a: { shape: [2, 3], fill: 'positive' }, e: { shape: [3] } },
      build: (g, v) => g.op1('Pow', [v.a!, v.e!]),
    });
  });
  it('an int64 exponent (PyTorch x ** 2): the base only', async () => {
    await assertGradients(runtime, {
      inputs: { a: { shape: [2, 3] } },
      build: (g, v) => g.op1('Pow', [v.a!, g.scalar(2, 'int64')]),
    });
  });
  it('an exponent that is a graph input (not differentiated)', async () => {
    await assertGradients(runtime, {
      inputs: { a: { shape: [4], fill: 'positive' }, e: { shape: [4], fill: Float32Array.of(2, 3, 0.5, 1.2) } },
      wrt: ['a'],
      build: (g, v) => g.op1('Pow', [v.a!, v.e!]),
    });
  });
});

describe('unary op gradients', () => {
  const unary: [string, Fill][] = [
    ['Neg', 'uniform'],
    ['Identity', 'uniform'],
    ['Exp', 'uniform'],
    ['Log', 'positive'],
    ['Sqrt', 'positive'],
    ['Abs', 'awayFromZero'],
    ['Reciprocal', 'positive'],
    ['Erf', 'uniform'],
  ];
  for (const [op, fill] of unary) {
    it(op, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [2, 3, 2], fill } }, build: (g, v) => g.op1(op, [v.x!]) });
    });
  }
});

describe('Clip gradient', () => {
  // Values at least 0.05 from the bounds ±0.5, some inside and some outside.
  const x = Float32Array.of(-0.9, -0.55, -0.3, 0, 0.2, 0.44, 0.56, 1.1, -0.1, 0.35, -0.7, 0.8);
  it('min and max: the gradient passes only inside [min, max]', async () => {
    const r = await assertGradients(runtime, {
      inputs: { x: { shape: [3, 4], fill: x } },
      build: (g, v) => g.op1('Clip', [v.x!, g.scalar(-0.5), g.scalar(0.5)]),
    });
    x.forEach((xi, i) => {
      if (Math.abs(xi) > 0.5) assert.equal(Math.abs(r.analytic.x![i]!), 0, `clipped element ${i} gets no gradient`);
    });
  });
  it('min only', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 4], fill: x } },
      build: (g, v) => g.op1('Clip', [v.x!, g.scalar(-0.5)]),
    });
  });
});

describe('Cast and Where gradients', () => {
  it('Cast float32 → float64 passes the gradient back as float32', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [2, 3] } },
      build: (g, v) => g.op1('Cast', [v.x!], { to: 11 }),
    });
  });
  it('Where routes the gradient by the condition, broadcasting the else branch', async () => {
    const cond = (g: Graph) => g.constant(new Tensor(Uint8Array.of(1, 0, 1, 0, 0, 1), [2, 3], 'bool'), 'cond');
    await assertGradients(runtime, {
      inputs: { a: { shape: [2, 3] }, b: { shape: [3] } },
      build: (g, v) => g.op1('Where', [cond(g), v.a!, v.b!]),
    });
  });
});

/* ONNX's Max and Min take 1..N inputs (test_max_one_input, test_min_one_input, test_max_example's three). */
describe('Max / Min with one or three inputs', () => {
  for (const op of ['Max', 'Min']) {
    it(`${op} of one input is that input, and of three broadcasts them all`, () => {
      const g = new GraphClass('t');
      const a = g.input('a', 'float32', [2, 3]);
      assert.deepEqual(g.op1(op, [a]).shape, [2, 3]);
      assert.deepEqual(g.op1(op, [a, g.input('b', 'float32', [3]), g.input('c', 'float32', [4, 1, 1])]).shape, [4, 2, 3]);
    });
    it(`${op} gradient with one input passes dy through`, async () => {
      await assertGradients(runtime, { inputs: { a: { shape: [2, 3] } }, build: (g, v) => g.op1(op, [v.a!]) });
    });
    it(`${op} gradient with three inputs goes to each position's winner`, async () => {
      const rng = new Random(11);
      // Three well-separated values per position, their order shuffled per position.
      const [a, b, c] = [new Float32Array(6), new Float32Array(6), new Float32Array(6)];
      for (let i = 0; i < 6; i++) {
        const base = rng.uniform(-1, 1);
        const order = rng.permutation(3);
        [a, b, c].forEach((t, k) => (t[i] = base + 0.3 * order[k]!));
      }
      await assertGradients(runtime, {
        inputs: { a: { shape: [2, 3], fill: a }, b: { shape: [2, 3], fill: b }, c: { shape: [2, 3], fill: c } },
        build: (g, v) => g.op1(op, [v.a!, v.b!, v.c!]),
      });
    });
  }
  it('ties go to the first input only (the gradient is not doubled)', async () => {
    const same = Float32Array.of(0.5, -0.5);
    const { gradientCheck } = await import('../autodiff/gradcheck.js');
    const r = await gradientCheck(runtime, { inputs: { a: { shape: [2], fill: same }, b: { shape: [2], fill: same } }, build: (g, v) => g.op1('Max', [v.a!, v.b!]), h: 1e-6 });
    assert.ok(r.analytic.b!.every((d) => d === 0), 'the second of two tied inputs gets no gradient');
    assert.ok(r.analytic.a!.every((d) => d !== 0));
  });
});

/* Variadic Sum and Mean (1..N inputs broadcast together), float Mod (C's fmod) and CastLike (opset 15). */
describe('Sum, Mean, Mod and CastLike gradients', () => {
  for (const op of ['Sum', 'Mean']) {
    it(`${op} of three inputs, broadcast [2, 3] + [3] + [2, 1]`, async () => {
      await assertGradients(runtime, {
        inputs: { a: { shape: [2, 3] }, b: { shape: [3] }, c: { shape: [2, 1] } },
        build: (g, v) => g.op1(op, [v.a!, v.b!, v.c!]),
      });
    });
    it(`${op} of one input`, async () => {
      await assertGradients(runtime, { inputs: { a: { shape: [2, 3] } }, build: (g, v) => g.op1(op, [v.a!]) });
    });
  }
  it('Mod with fmod = 1, both signs of the dividend, away from the jumps at multiples of the divisor', async () => {
    // a/b = ±(k + 0.3..0.7): never within h of an integer, where fmod jumps.
    const b = Float32Array.of(0.7, 1.3, 0.9, 1.1, 0.6, 1.7);
    const a = Float32Array.from(b, (d, i) => (i % 2 ? -1 : 1) * d * (1 + (i % 3) + 0.3 + 0.08 * i));
    await assertGradients(runtime, { inputs: { a: { shape: [2, 3], fill: a }, b: { shape: [2, 3], fill: b } }, build: (g, v) => g.op1('Mod', [v.a!, v.b!], { fmod: 1 }) });
  });
  it('CastLike to float64 and back', async () => {
    await assertGradients(runtime, {
      opset: 15,
      inputs: { x: { shape: [2, 3] } },
      build: (g, v) => {
        const wide = g.op1('CastLike', [v.x!, g.constant(new Tensor(Float64Array.of(0), [], 'float64'))]);
        return g.op1('CastLike', [g.op1('Mul', [wide, wide]), v.x!]);
      },
    });
  });
});
