/** Learning-rate schedules (src/train/schedules.ts) against their formulas, step by step. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KilnError } from '../../src/errors.js';
import { cosineDecay, exponentialDecay, scheduleFromConfig, stepDecay } from '../../src/train/schedules.js';

function assertNear(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `${what}: expected ${expected}, got ${actual}`);
}

const STEPS = [0, 1, 2, 3, 5, 9, 10, 11, 25, 100];

describe('learning-rate schedules', () => {
  it('exponentialDecay: lr · rate^(step / decaySteps)', () => {
    const s = exponentialDecay({ initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5 });
    for (const t of STEPS) assertNear(s.at(t), 0.1 * 0.5 ** (t / 10), `step ${t}`);
    assertNear(s.at(5), 0.1 / Math.SQRT2, 'halfway through the first period');
  });

  it('exponentialDecay staircase: the exponent is floored', () => {
    const s = exponentialDecay({ initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5, staircase: true });
    for (const t of STEPS) assertNear(s.at(t), 0.1 * 0.5 ** Math.floor(t / 10), `step ${t}`);
    assert.equal(s.at(9), 0.1);
    assertNear(s.at(10), 0.05, 'step 10');
  });

  it('stepDecay: lr · factor^floor(step / stepSize), factor 0.1 by default', () => {
    const s = stepDecay({ initialLearningRate: 1, stepSize: 3 });
    for (const t of STEPS) assertNear(s.at(t), 0.1 ** Math.floor(t / 3), `step ${t}`);
    const half = stepDecay({ initialLearningRate: 0.4, stepSize: 2, factor: 0.5 });
    assert.deepEqual([0, 1, 2, 3, 4].map((t) => half.at(t)), [0.4, 0.4, 0.2, 0.2, 0.1]);
  });

  it("cosineDecay: Keras' formula, constant at alpha·lr after decaySteps", () => {
    for (const alpha of [0, 0.1]) {
      const s = cosineDecay({ initialLearningRate: 0.2, decaySteps: 10, alpha });
      for (const t of STEPS) {
        const p = Math.min(t, 10) / 10;
        assertNear(s.at(t), 0.2 * ((1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * p)) + alpha), `alpha ${alpha}, step ${t}`);
      }
      assertNear(s.at(0), 0.2, 'start');
      assertNear(s.at(5), 0.2 * ((1 - alpha) * 0.5 + alpha), 'halfway');
      assertNear(s.at(50), 0.2 * alpha, 'after decaySteps');
    }
  });

  it('a schedule rebuilt from its config gives the same rates', () => {
    for (const s of [
      exponentialDecay({ initialLearningRate: 0.1, decaySteps: 4, decayRate: 0.7, staircase: true }),
      stepDecay({ initialLearningRate: 0.1, stepSize: 4, factor: 0.3 }),
      cosineDecay({ initialLearningRate: 0.1, decaySteps: 7, alpha: 0.05 }),
    ]) {
      const rebuilt = scheduleFromConfig(JSON.parse(JSON.stringify({ name: s.name, config: s.config })));
      for (const t of STEPS) assert.equal(rebuilt.at(t), s.at(t), `${s.name} step ${t}`);
    }
  });

  it('refuses non-positive arguments and unknown schedule names with INVALID_ARGUMENT', () => {
    const bad: [string, () => unknown][] = [
      ['initialLearningRate', () => exponentialDecay({ initialLearningRate: 0, decaySteps: 1, decayRate: 0.5 })],
      ['decaySteps', () => cosineDecay({ initialLearningRate: 0.1, decaySteps: -3 })],
      ['stepSize', () => stepDecay({ initialLearningRate: 0.1, stepSize: 0 })],
      ["'warmupCosine'", () => scheduleFromConfig({ name: 'warmupCosine', config: {} })],
    ];
    for (const [what, make] of bad) assert.throws(make, (e: unknown) => e instanceof KilnError && e.code === 'INVALID_ARGUMENT' && e.message.includes(what), what);
  });
});
