/**
 * Gradient rules of the trigonometric and hyperbolic functions (src/ops/trigonometric.ts) against
 * finite differences, each on inputs inside its domain and away from its poles (|x| ≤ 0.8 for the
 * inverse sine, cosine and the inverse hyperbolic tangent, x ≥ 1.2 for the inverse hyperbolic cosine,
 * |x| ≤ 1 for the tangent).
 */
import { after, describe, it } from 'node:test';
import { Runtime } from '../../src/runtime/runtime.js';
import { assertGradients, type Fill } from '../autodiff/gradcheck.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['Sin', 'Cos', 'Tan', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh'];

const runtime = new Runtime();
after(() => runtime.close());

/** Twelve values evenly over [lo, hi]. */
const spread = (lo: number, hi: number): Fill => Float32Array.from({ length: 12 }, (_, i) => lo + ((hi - lo) * i) / 11);

const DOMAINS: Record<string, Fill> = {
  'Sin': spread(-3, 3),
  'Cos': spread(-3, 3),
  'Tan': spread(-1, 1),
  'Asin': spread(-0.8, 0.8),
  'Acos': spread(-0.8, 0.8),
  'Atan': spread(-3, 3),
  'Sinh': spread(-2, 2),
  'Cosh': spread(-2, 2),
  'Asinh': spread(-3, 3),
  'Acosh': spread(1.2, 3),
  'Atanh': spread(-0.8, 0.8),
};

describe('trigonometric gradients', () => {
  for (const [op, fill] of Object.entries(DOMAINS)) {
    it(op, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [3, 4], fill } }, build: (g, v) => g.op1(op, [v.x!]) });
    });
  }
});
