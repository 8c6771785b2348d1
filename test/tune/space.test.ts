/** Search spaces: what they accept, what they refuse (empty, contradictory), and conditional parameters. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { choice, float, int, logUniform, SearchSpace } from '../../src/tune/space.js';
import { parseSearchParameter, parseSearchSpace } from '../../src/tune/search-syntax.js';
import { kilnError } from '../train/helpers.js';

describe('SearchSpace', () => {
  it('refuses an empty space', () => {
    assert.throws(() => new SearchSpace({}), kilnError('INVALID_ARGUMENT', 'search space is empty'));
    assert.throws(() => parseSearchSpace([]), kilnError('INVALID_ARGUMENT', 'search space is empty'));
  });

  it('refuses contradictory ranges and choices, naming the parameter', () => {
    assert.throws(() => new SearchSpace({ lr: float(0.1, 0.01) }), kilnError('INVALID_ARGUMENT', "'lr'", 'low bound 0.1 is above the high bound 0.01'));
    assert.throws(() => new SearchSpace({ lr: logUniform(0, 1) }), kilnError('INVALID_ARGUMENT', "'lr'", 'positive low bound'));
    assert.throws(() => new SearchSpace({ units: int(1.5, 8) }), kilnError('INVALID_ARGUMENT', "'units'", 'integer bounds'));
    assert.throws(() => new SearchSpace({ bs: choice([]) }), kilnError('INVALID_ARGUMENT', "'bs'", 'at least one value'));
    assert.throws(() => new SearchSpace({ bs: choice([32, 64, 32]) }), kilnError('INVALID_ARGUMENT', "'bs'", 'appears twice'));
    assert.throws(() => new SearchSpace({ x: float(0, Infinity) }), kilnError('INVALID_ARGUMENT', 'finite'));
  });

  it('refuses conditions that could never hold or that loop', () => {
    assert.throws(() => new SearchSpace({ momentum: float(0, 1, { when: { parent: 'optimizer', values: ['sgd'] } }) }), kilnError('INVALID_ARGUMENT', "'momentum'", "'optimizer', which is not in the search space"));
    assert.throws(
      () => new SearchSpace({ optimizer: choice(['adam']), momentum: float(0, 1, { when: { parent: 'optimizer', values: ['sgd'] } }) }),
      kilnError('INVALID_ARGUMENT', 'could never be active'),
    );
    assert.throws(() => new SearchSpace({ lr: float(0, 1), m: float(0, 1, { when: { parent: 'lr', values: [0.5] } }) }), kilnError('INVALID_ARGUMENT', 'conditions go on choice parameters'));
    assert.throws(
      () => new SearchSpace({ a: choice([1, 2], { when: { parent: 'b', values: [1] } }), b: choice([1, 2], { when: { parent: 'a', values: [1] } }) }),
      kilnError('INVALID_ARGUMENT', 'cycle'),
    );
  });

  it('orders parents before children and tells which parameters a trial has', () => {
    const space = new SearchSpace({ momentum: float(0, 0.9, { when: { parent: 'optimizer', values: ['sgd'] } }), optimizer: choice(['adam', 'sgd']) });
    assert.deepEqual(space.names, ['optimizer', 'momentum']);
    assert.equal(space.isActive('momentum', { optimizer: 'sgd' }), true);
    assert.equal(space.isActive('momentum', { optimizer: 'adam' }), false);
    space.checkParams({ optimizer: 'sgd', momentum: 0.5 });
    space.checkParams({ optimizer: 'adam' });
    assert.throws(() => space.checkParams({ optimizer: 'adam', momentum: 0.5 }), kilnError('INVALID_DATA', "'momentum' is set, but it applies only when optimizer is \"sgd\""));
    assert.throws(() => space.checkParams({ optimizer: 'sgd', momentum: 2 }), kilnError('INVALID_DATA', 'expected float 0..0.9'));
    assert.throws(() => space.checkParams({ optimizer: 'sgd' }), kilnError('INVALID_DATA', "'momentum' is missing"));
  });
});

describe('--search syntax', () => {
  it('reads ranges, log and integer ranges, choices and conditions', () => {
    assert.deepEqual(parseSearchParameter('lr=1e-4..1e-2:log'), ['lr', { kind: 'float', low: 1e-4, high: 1e-2, log: true }]);
    assert.deepEqual(parseSearchParameter('dropout=0..0.5'), ['dropout', { kind: 'float', low: 0, high: 0.5, log: false }]);
    assert.deepEqual(parseSearchParameter('units=32..256:int:log'), ['units', { kind: 'int', low: 32, high: 256, log: true }]);
    assert.deepEqual(parseSearchParameter('batchSize=32,64,128'), ['batchSize', { kind: 'choice', values: [32, 64, 128] }]);
    assert.deepEqual(parseSearchParameter('optimizer=adam,sgd'), ['optimizer', { kind: 'choice', values: ['adam', 'sgd'] }]);
    assert.deepEqual(parseSearchParameter('momentum=0..0.9@optimizer=sgd,rmsprop'), ['momentum', { kind: 'float', low: 0, high: 0.9, log: false, when: { parent: 'optimizer', values: ['sgd', 'rmsprop'] } }]);
  });

  it('names what is wrong', () => {
    assert.throws(() => parseSearchParameter('lr'), kilnError('INVALID_ARGUMENT', 'expected name=values'));
    assert.throws(() => parseSearchParameter('lr=a..1'), kilnError('INVALID_ARGUMENT', "low bound 'a' is not a number"));
    assert.throws(() => parseSearchParameter('lr=1e-3:log'), kilnError('INVALID_ARGUMENT', 'go with a range'));
    assert.throws(() => parseSearchParameter('m=0..1@optimizer'), kilnError('INVALID_ARGUMENT', '@parent=value'));
    assert.throws(() => parseSearchSpace(['lr=1e-4..1e-2', 'lr=1e-3,1e-2']), kilnError('INVALID_ARGUMENT', "'lr' twice"));
  });
});
