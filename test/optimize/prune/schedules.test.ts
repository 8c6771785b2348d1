/**
 * Pruning schedules (src/optimize/prune/schedules.ts) against TF-MOT's definitions, written out here
 * independently: ConstantSparsity prunes at its target from beginStep every `frequency` steps;
 * PolynomialDecay's sparsity is final + (initial − final)·(1 − p)^power, p = (step − begin)/(end − begin)
 * clamped to [0, 1], and it prunes only on frequency turns inside [begin, end].
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pruning } from '../../../src/index.js';
import { kilnError } from './helpers.js';

const { constantSparsity, polynomialDecay } = pruning;

/** TF-MOT PolynomialDecay.__call__ as written in its source, step by step. */
function tfmotPolynomial(step: number, c: { initialSparsity: number; finalSparsity: number; beginStep: number; endStep: number; power: number; frequency: number }): [boolean, number] {
  const p = Math.min(1.0, Math.max(0.0, (step - c.beginStep) / (c.endStep - c.beginStep)));
  const sparsity = (c.initialSparsity - c.finalSparsity) * Math.pow(1 - p, c.power) + c.finalSparsity;
  const inRange = step >= c.beginStep && step <= c.endStep;
  return [inRange && (step - c.beginStep) % c.frequency === 0, sparsity];
}

describe('polynomialDecay', () => {
  it('has TF-MOT sparsity at every step, clamped before begin and after end', () => {
    for (const c of [
      { initialSparsity: 0.2, finalSparsity: 0.8, beginStep: 1000, endStep: 2000, power: 3, frequency: 100 },
      { initialSparsity: 0, finalSparsity: 0.5, beginStep: 0, endStep: 7, power: 1, frequency: 2 },
      { initialSparsity: 0.1, finalSparsity: 0.9, beginStep: 3, endStep: 50, power: 2.5, frequency: 5 },
    ]) {
      const s = polynomialDecay(c);
      for (let step = 0; step <= c.endStep + 3 * c.frequency; step++) {
        const [should, sparsity] = tfmotPolynomial(step, c);
        assert.equal(s.shouldPrune(step), should, `shouldPrune(${step}) for ${JSON.stringify(c)}`);
        assert.ok(Math.abs(s.sparsityAt(step) - sparsity) < 1e-12, `sparsityAt(${step}) = ${s.sparsityAt(step)}, TF-MOT ${sparsity}`);
      }
      assert.equal(s.finalSparsity, c.finalSparsity);
    }
  });

  it('gives the documented values at a few steps (begin 0, end 10, power 3, 0 → 0.8)', () => {
    const s = polynomialDecay({ finalSparsity: 0.8, endStep: 10, frequency: 5 });
    assert.equal(s.sparsityAt(0), 0);
    assert.ok(Math.abs(s.sparsityAt(5) - (0.8 - 0.8 * 0.125)) < 1e-12);
    assert.equal(s.sparsityAt(10), 0.8);
    assert.equal(s.sparsityAt(1000), 0.8);
    assert.deepEqual([0, 1, 4, 5, 10, 15].map((t) => s.shouldPrune(t)), [true, false, false, true, true, false]);
    assert.deepEqual(s.config, { initialSparsity: 0, finalSparsity: 0.8, beginStep: 0, endStep: 10, power: 3, frequency: 5 });
  });
});

describe('constantSparsity', () => {
  it('prunes at the target from beginStep on every frequency steps, forever unless endStep is given', () => {
    const s = constantSparsity({ targetSparsity: 0.6, beginStep: 4, frequency: 3 });
    for (let step = 0; step < 40; step++) {
      assert.equal(s.shouldPrune(step), step >= 4 && (step - 4) % 3 === 0, `step ${step}`);
      assert.equal(s.sparsityAt(step), 0.6);
    }
    const bounded = constantSparsity({ targetSparsity: 0.5, beginStep: 0, endStep: 6, frequency: 3 });
    assert.deepEqual([0, 3, 6, 9, 12].map((t) => bounded.shouldPrune(t)), [true, true, true, false, false]);
    assert.deepEqual(constantSparsity({ targetSparsity: 0.5 }).config, { targetSparsity: 0.5, beginStep: 0, endStep: -1, frequency: 100 });
  });
});

describe('schedules refuse bad arguments', () => {
  it('an end that precedes the beginning: INVALID_ARGUMENT naming both steps', () => {
    assert.throws(() => polynomialDecay({ finalSparsity: 0.5, beginStep: 100, endStep: 50 }), kilnError('INVALID_ARGUMENT', 'endStep (50)', 'beginStep (100)'));
    assert.throws(() => polynomialDecay({ finalSparsity: 0.5, beginStep: 10, endStep: 10 }), kilnError('INVALID_ARGUMENT', 'endStep'));
    assert.throws(() => constantSparsity({ targetSparsity: 0.5, beginStep: 10, endStep: 5 }), kilnError('INVALID_ARGUMENT', 'endStep (5) precedes beginStep (10)'));
  });

  it('sparsity outside [0, 1), bad steps and frequency: INVALID_ARGUMENT', () => {
    for (const bad of [1, 1.5, -0.1, NaN]) {
      assert.throws(() => constantSparsity({ targetSparsity: bad }), kilnError('INVALID_ARGUMENT', 'targetSparsity', '[0, 1)'));
      assert.throws(() => polynomialDecay({ finalSparsity: bad, endStep: 10 }), kilnError('INVALID_ARGUMENT', 'finalSparsity', '[0, 1)'));
    }
    assert.throws(() => polynomialDecay({ initialSparsity: 1, finalSparsity: 0.5, endStep: 10 }), kilnError('INVALID_ARGUMENT', 'initialSparsity'));
    assert.throws(() => polynomialDecay({ finalSparsity: 0.5, beginStep: -1, endStep: 10 }), kilnError('INVALID_ARGUMENT', 'beginStep'));
    assert.throws(() => constantSparsity({ targetSparsity: 0.5, frequency: 0 }), kilnError('INVALID_ARGUMENT', 'frequency'));
    assert.throws(() => polynomialDecay({ finalSparsity: 0.5, endStep: 10, power: 0 }), kilnError('INVALID_ARGUMENT', 'power'));
  });
});
