import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shuffle } from '../../src/data/shuffle.js';
import { Random } from '../../src/random.js';
import { tensor } from '../../src/tensor.js';
import { assertRejectsWith } from './fixtures.js';

describe('shuffle', () => {
  const x = tensor(Float32Array.from({ length: 20 }, (_, i) => i), [10, 2]);
  const y = tensor(Int32Array.from({ length: 10 }, (_, i) => i), [10]);

  it('applies one permutation to x and y, leaving the inputs untouched', () => {
    const { x: xs, y: ys } = shuffle(x, y, 7);
    const labels = Array.from(ys.data);
    assert.notDeepEqual(labels, Array.from(y.data));
    assert.deepEqual([...labels].sort((a, b) => a - b), Array.from(y.data));
    labels.forEach((label, row) => assert.deepEqual([xs.data[2 * row], xs.data[2 * row + 1]], [2 * label, 2 * label + 1]));
    assert.deepEqual(Array.from(y.data), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('is reproducible from the seed, and continues a generator', () => {
    assert.deepEqual(Array.from(shuffle(x, y, 7).y.data), Array.from(shuffle(x, y, 7).y.data));
    assert.notDeepEqual(Array.from(shuffle(x, y, 7).y.data), Array.from(shuffle(x, y, 8).y.data));
    const random = new Random(7);
    const first = Array.from(shuffle(x, y, random).y.data);
    assert.deepEqual(first, Array.from(shuffle(x, y, 7).y.data));
    assert.notDeepEqual(Array.from(shuffle(x, y, random).y.data), first);
  });

  it('rejects x and y of different lengths', async () => {
    await assertRejectsWith(() => shuffle(x, y.slice(0, 9)), 'INVALID_SHAPE', 'shuffle', '[10, 2]', '[9]');
  });
});
