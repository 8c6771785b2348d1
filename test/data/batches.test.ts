import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batches } from '../../src/data/batches.js';
import { Random } from '../../src/random.js';
import { tensor } from '../../src/tensor.js';
import { assertRejectsWith } from './fixtures.js';

describe('batches', () => {
  const n = 10;
  const x = tensor(Float32Array.from({ length: n * 4 }, (_, i) => Math.floor(i / 4) + 1), [n, 2, 2, 1]);
  const y = tensor(Int32Array.from({ length: n }, (_, i) => i + 1), [n]);

  it('yields every example once, in order without shuffling, with a smaller last batch', () => {
    const list = [...batches(x, y, { batchSize: 4, shuffle: false })];
    assert.deepEqual(list.map((b) => b.x.shape), [[4, 2, 2, 1], [4, 2, 2, 1], [2, 2, 2, 1]]);
    assert.deepEqual(list.flatMap((b) => Array.from(b.y.data)), Array.from(y.data));
  });

  it('drops the remainder when asked', () => {
    assert.deepEqual([...batches(x, y, { batchSize: 4, shuffle: false, dropRemainder: true })].map((b) => b.y.size), [4, 4]);
  });

  it('shuffles reproducibly, keeping x and y together', () => {
    const order = (seed: number) => [...batches(x, y, { batchSize: 3, seed })].flatMap((b) => Array.from(b.y.data));
    assert.deepEqual(order(1), order(1));
    assert.notDeepEqual(order(1), order(2));
    assert.deepEqual([...order(1)].sort((a, b) => a - b), Array.from(y.data));
    for (const batch of batches(x, y, { batchSize: 3, seed: 1 })) {
      batch.y.data.forEach((label, row) => assert.equal(batch.x.data[row * 4], label));
    }
  });

  it('differs from epoch to epoch when given one generator', () => {
    const random = new Random(9);
    const epoch = () => [...batches(x, y, { batchSize: 5, random })].flatMap((b) => Array.from(b.y.data));
    assert.notDeepEqual(epoch(), epoch());
  });

  it('augments x only, with the built-in options or a function', () => {
    const flipped = [...batches(x, y, { batchSize: 10, shuffle: false, augment: { cropPadding: 1 } })][0]!;
    assert.ok(flipped.x.data.some((v) => v === 0), 'cropping shifted zeros in');
    assert.deepEqual(Array.from(flipped.y.data), Array.from(y.data));
    const doubled = [...batches(x, y, { batchSize: 5, shuffle: false, augment: (b) => tensor(b.data.map((v) => 2 * v), b.shape) })];
    assert.equal(doubled[1]!.x.data[0], 12);
  });

  it('rejects a bad batch size and mismatched lengths', async () => {
    await assertRejectsWith(() => [...batches(x, y, { batchSize: 0 })], 'INVALID_ARGUMENT', 'batchSize');
    await assertRejectsWith(() => [...batches(x, y.slice(0, 3), { batchSize: 2 })], 'INVALID_SHAPE', 'batches');
  });
});
