import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { oneHot } from '../../src/data/one-hot.js';
import { tensor } from '../../src/tensor.js';
import { assertRejectsWith } from './fixtures.js';

describe('oneHot', () => {
  it('turns class indices into indicator rows', () => {
    const out = oneHot(tensor(new Int32Array([2, 0, 1])), 3);
    assert.equal(out.dtype, 'float32');
    assert.deepEqual(out.toArray(), [
      [0, 0, 1],
      [1, 0, 0],
      [0, 1, 0],
    ]);
  });

  it('accepts int64 and uint8 labels', () => {
    assert.deepEqual(oneHot(tensor(new BigInt64Array([1n])), 2).toArray(), [[0, 1]]);
    assert.deepEqual(oneHot(tensor(new Uint8Array([0])), 2).toArray(), [[1, 0]]);
  });

  it('rejects labels outside 0..numClasses-1', async () => {
    await assertRejectsWith(() => oneHot(tensor(new Int32Array([0, 3])), 3), 'INVALID_DATA', '0..2', 'found 3', 'index 1');
    await assertRejectsWith(() => oneHot(tensor(new Int32Array([-1])), 3), 'INVALID_DATA', 'found -1');
    await assertRejectsWith(() => oneHot(tensor(new Int32Array([0])), 0), 'INVALID_ARGUMENT', 'numClasses');
  });
});
