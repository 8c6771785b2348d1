import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { channelStatistics, normalize } from '../../src/data/normalize.js';
import { tensor } from '../../src/tensor.js';
import { assertRejectsWith } from './fixtures.js';

describe('normalize', () => {
  // Two 1x2 images with channels (a, b): a takes 1, 3, 5, 7, b is constant 2.
  const images = tensor(new Float32Array([1, 2, 3, 2, 5, 2, 7, 2]), [2, 1, 2, 2]);

  it('computes the mean and population standard deviation of each channel', () => {
    const { mean, std } = channelStatistics(images);
    assert.deepEqual(mean, [4, 2]);
    assert.ok(Math.abs(std[0]! - Math.sqrt(5)) < 1e-12);
    assert.equal(std[1], 0);
  });

  it('centres and scales each channel; a constant channel is only centred', () => {
    const out = normalize(images);
    assert.deepEqual(out.shape, images.shape);
    const s = Math.sqrt(5);
    const expected = [-3 / s, 0, -1 / s, 0, 1 / s, 0, 3 / s, 0];
    out.data.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-6, `element ${i}: ${v}`));
    assert.deepEqual(Array.from(images.data), [1, 2, 3, 2, 5, 2, 7, 2], 'input untouched');
  });

  it('applies given statistics, e.g. the training set\'s to the test set', () => {
    const out = normalize(images, { mean: [1, 2], std: [2, 4] });
    assert.deepEqual(Array.from(out.data), [0, 0, 1, 0, 2, 0, 3, 0]);
  });

  it('rejects statistics for another number of channels', async () => {
    await assertRejectsWith(() => normalize(images, { mean: [0, 0, 0], std: [1, 1, 1] }), 'INVALID_ARGUMENT', 'expected 2');
  });
});
