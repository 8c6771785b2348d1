import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { trainValidationSplit } from '../../src/data/split.js';
import { tensor } from '../../src/tensor.js';
import { assertRejectsWith } from './fixtures.js';

describe('trainValidationSplit', () => {
  const x = tensor(Float32Array.from({ length: 30 }, (_, i) => i), [10, 3]);
  const y = tensor(Int32Array.from({ length: 10 }, (_, i) => i), [10]);

  it('holds out the requested fraction, disjoint from training, rows kept with their labels', () => {
    const split = trainValidationSplit(x, y, { validationFraction: 0.3, seed: 3 });
    assert.deepEqual(split.train.x.shape, [7, 3]);
    assert.deepEqual(split.validation.x.shape, [3, 3]);
    const all = [...split.train.y.data, ...split.validation.y.data].sort((a, b) => a - b);
    assert.deepEqual(all, Array.from(y.data));
    for (const part of [split.train, split.validation]) {
      part.y.data.forEach((label, row) => assert.equal(part.x.data[3 * row], 3 * label));
    }
    assert.deepEqual(
      Array.from(trainValidationSplit(x, y, { validationFraction: 0.3, seed: 3 }).validation.y.data),
      Array.from(split.validation.y.data),
    );
  });

  it('without shuffling keeps the last examples for validation, as Keras does', () => {
    const split = trainValidationSplit(x, y, { validationFraction: 0.2, shuffle: false });
    assert.deepEqual(Array.from(split.validation.y.data), [8, 9]);
    assert.deepEqual(Array.from(split.train.y.data), [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('defaults to a tenth', () => {
    assert.equal(trainValidationSplit(x, y).validation.y.size, 1);
  });

  it('rejects fractions that leave a part empty', async () => {
    for (const validationFraction of [0, 1, 0.01, -0.5, Number.NaN]) {
      await assertRejectsWith(() => trainValidationSplit(x, y, { validationFraction }), 'INVALID_ARGUMENT', 'validationFraction');
    }
  });
});
