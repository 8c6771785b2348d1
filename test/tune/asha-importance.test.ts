/** ASHA's rungs and promotion rule, and parameter importance (η²), against hand-worked examples. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ashaPromotes, ashaRungs } from '../../src/tune/asha.js';
import { parameterImportance } from '../../src/tune/importance.js';
import { choice, float, SearchSpace } from '../../src/tune/space.js';
import { kilnError } from '../train/helpers.js';

describe('ASHA', () => {
  it('puts rungs at minEpochs · η^k below the full budget', () => {
    assert.deepEqual(ashaRungs(9, { minEpochs: 1, reductionFactor: 3 }), [1, 3]);
    assert.deepEqual(ashaRungs(2), [1]);
    assert.deepEqual(ashaRungs(2, { minEpochs: 2 / 9, reductionFactor: 3 }), [2 / 9, 0.666667]);
    assert.deepEqual(ashaRungs(10, { minEpochs: 1, reductionFactor: 2 }), [1, 2, 4, 8]);
    assert.deepEqual(ashaRungs(2, { minEpochs: 1 / 9, reductionFactor: 3 }), [1 / 9, 0.333333, 1]);
  });

  it('refuses a budget smaller than its first rung', () => {
    assert.throws(() => ashaRungs(2, { minEpochs: 2 }), kilnError('INVALID_ARGUMENT', 'too small for early stopping', 'first rung is at 2 epochs'));
    assert.throws(() => ashaRungs(4, { reductionFactor: 1 }), kilnError('INVALID_ARGUMENT', 'at least 2'));
  });

  it('promotes the top 1/η of a rung, and the best while fewer than η have reported', () => {
    // First trial at a rung: it is the best so far and goes on.
    assert.equal(ashaPromotes(0.5, [0.5], 3, 'maximize'), true);
    // Two values: keep max(1, floor(2/3)) = 1, the best (0.7); 0.5 stops.
    assert.equal(ashaPromotes(0.5, [0.7, 0.5], 3, 'maximize'), false);
    // Six values, η = 3: the best two (0.9, 0.8) go on.
    const six = [0.1, 0.9, 0.4, 0.8, 0.3, 0.6];
    assert.equal(ashaPromotes(0.8, six, 3, 'maximize'), true);
    assert.equal(ashaPromotes(0.6, six, 3, 'maximize'), false);
    // Minimizing: the smallest go on.
    assert.equal(ashaPromotes(0.1, six, 3, 'minimize'), true);
    assert.equal(ashaPromotes(0.4, six, 3, 'minimize'), false);
  });
});

describe('parameter importance', () => {
  it('is the correlation ratio of the objective over each parameter, worked by hand', () => {
    const space = new SearchSpace({ opt: choice(['a', 'b']), lr: float(0, 1) });
    // opt: groups a = {1, 3} (mean 2), b = {5, 7} (mean 6); overall mean 4, total SS = 9+1+1+9 = 20,
    // between SS = 2·4 + 2·4 = 16 → η² = 0.8. lr: 4 trials → 2 bins by lr: {lr .1: 5, lr .2: 1} and
    // {lr .3: 7, lr .4: 3}, means 3 and 5 → between SS = 2·1 + 2·1 = 4 → η² = 0.2.
    const trials = [
      { params: { opt: 'a', lr: 0.2 }, value: 1 },
      { params: { opt: 'a', lr: 0.4 }, value: 3 },
      { params: { opt: 'b', lr: 0.1 }, value: 5 },
      { params: { opt: 'b', lr: 0.3 }, value: 7 },
    ];
    const imp = parameterImportance(space, trials);
    assert.deepEqual(imp.map((i) => i.name), ['opt', 'lr']);
    assert.ok(Math.abs(imp[0]!.importance - 0.8) < 1e-12);
    assert.ok(Math.abs(imp[1]!.importance - 0.2) < 1e-12);
  });

  it('is 0 when the objective does not vary', () => {
    const space = new SearchSpace({ opt: choice(['a', 'b']) });
    assert.equal(parameterImportance(space, [{ params: { opt: 'a' }, value: 1 }, { params: { opt: 'b' }, value: 1 }])[0]!.importance, 0);
  });
});
