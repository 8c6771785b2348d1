/**
 * Tensor: building from nested arrays and typed arrays, dtypes, and the row operations the data
 * pipeline and predict rely on (reshape, slice, gather, toArray).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tensor } from '../src/index.js';
import { concatRows } from '../src/tensor.js';
import { assertThrowsKiln } from './model/helpers.js';

describe('tensor() from nested arrays', () => {
  it('infers the shape and stores float32 row-major', () => {
    const t = tensor([
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
    ]);
    assert.deepEqual(t.shape, [1, 2, 3]);
    assert.equal(t.dtype, 'float32');
    assert.ok(t.data instanceof Float32Array);
    assert.deepEqual(Array.from(t.data), [1, 2, 3, 4, 5, 6]);
    assert.equal(t.size, 6);
    assert.equal(t.rank, 3);
  });

  it('handles a flat list, a scalar and an empty list', () => {
    assert.deepEqual(tensor([7, 8]).shape, [2]);
    const scalar = tensor(3.5);
    assert.deepEqual(scalar.shape, []);
    assert.equal(scalar.size, 1);
    assert.equal(scalar.data[0], 3.5);
    assert.deepEqual(tensor([]).shape, [0]);
  });

  it('rejects ragged arrays, naming the axis and the lengths', () => {
    assertThrowsKiln(() => tensor([[1, 2], [3]]), 'INVALID_SHAPE', 'ragged', 'axis 1', 'expected 2', 'got 1');
    assertThrowsKiln(() => tensor([[1, 2], 3] as never), 'INVALID_SHAPE', 'ragged', 'a scalar');
    assertThrowsKiln(() => tensor([1, [2]] as never), 'INVALID_SHAPE', 'ragged');
    assertThrowsKiln(() => tensor([[[1], [2]], [[3], [4, 5]]]), 'INVALID_SHAPE', 'ragged', 'axis 2');
  });

  it('accepts an explicit shape of the same size and rejects one of another size', () => {
    assert.deepEqual(tensor([1, 2, 3, 4, 5, 6], [2, 3]).shape, [2, 3]);
    assertThrowsKiln(() => tensor([1, 2, 3, 4, 5], [2, 3]), 'INVALID_SHAPE', '5 elements', '[2, 3]', '6');
  });

  it('converts to int64 (truncating), int32, uint8 and bool on request', () => {
    const i64 = tensor([1, -2, 3.9, -4.9], undefined, 'int64');
    assert.equal(i64.dtype, 'int64');
    assert.ok(i64.data instanceof BigInt64Array);
    assert.deepEqual(Array.from(i64.data), [1n, -2n, 3n, -4n]);
    assert.deepEqual(Array.from(tensor([5n, -6n], undefined, 'int64').data), [5n, -6n]);
    const i32 = tensor([[1, 2], [3, 4]], undefined, 'int32');
    assert.ok(i32.data instanceof Int32Array);
    assert.deepEqual(i32.shape, [2, 2]);
    const b = tensor([true, false, true], undefined, 'bool');
    assert.equal(b.dtype, 'bool');
    assert.deepEqual(Array.from(b.data), [1, 0, 1]);
    assert.deepEqual(Array.from(tensor([255, 0], undefined, 'uint8').data), [255, 0]);
  });
});

describe('tensor() from typed arrays', () => {
  it('keeps the typed array and its dtype', () => {
    const cases: [ArrayBufferView, string][] = [
      [new Float32Array([1, 2]), 'float32'],
      [new Float64Array([1, 2]), 'float64'],
      [new Int32Array([1, 2]), 'int32'],
      [new BigInt64Array([1n, 2n]), 'int64'],
      [new Int8Array([1, -2]), 'int8'],
      [new Uint8Array([1, 2]), 'uint8'],
    ];
    for (const [data, dtype] of cases) {
      const t = tensor(data as Float32Array);
      assert.equal(t.dtype, dtype);
      assert.equal(t.data, data, `${dtype} data is not copied`);
      assert.deepEqual(t.shape, [2]);
    }
  });

  it('takes a shape for the flat data', () => {
    const t = tensor(new Float32Array(12), [2, 3, 2]);
    assert.deepEqual(t.shape, [2, 3, 2]);
    assertThrowsKiln(() => tensor(new Float32Array(12), [5, 2]), 'INVALID_SHAPE', '12 elements', '[5, 2]', '10');
  });

  it('converts to another dtype on request', () => {
    const t = tensor(new Float32Array([1.5, -2.5]), undefined, 'int64');
    assert.deepEqual(Array.from(t.data), [1n, -2n]);
    const f = tensor(new BigInt64Array([3n, 4n]), undefined, 'float32');
    assert.ok(f.data instanceof Float32Array);
    assert.deepEqual(Array.from(f.data), [3, 4]);
    const b = tensor(new Uint8Array([1, 0]), undefined, 'bool');
    assert.equal(b.dtype, 'bool');
  });

  it('rejects negative or fractional dimensions', () => {
    assertThrowsKiln(() => new Tensor(new Float32Array(0), [-1], 'float32'), 'INVALID_SHAPE', '[-1]');
    assertThrowsKiln(() => new Tensor(new Float32Array(3), [1.5, 2], 'float32'), 'INVALID_SHAPE', '[1.5, 2]');
  });
});

describe('Tensor row operations', () => {
  const rows = () => tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]);

  it('reshape keeps the data and infers one -1', () => {
    const t = rows();
    const r = t.reshape([2, -1]);
    assert.deepEqual(r.shape, [2, 6]);
    assert.equal(r.data, t.data, 'no copy');
    assert.deepEqual(t.reshape([3, 2, 2]).shape, [3, 2, 2]);
    assert.deepEqual(t.reshape([-1]).shape, [12]);
    assertThrowsKiln(() => t.reshape([-1, -1]), 'INVALID_SHAPE', 'at most one -1');
    assertThrowsKiln(() => t.reshape([5, 3]), 'INVALID_SHAPE', '12 elements', '[5, 3]');
    assertThrowsKiln(() => t.reshape([5, -1]), 'INVALID_SHAPE');
  });

  it('slice takes rows [start, end), sharing memory, clamped to the tensor', () => {
    const t = rows();
    const s = t.slice(1, 3);
    assert.deepEqual(s.shape, [2, 3]);
    assert.deepEqual(s.toArray(), [[4, 5, 6], [7, 8, 9]]);
    (s.data as Float32Array)[0] = 40;
    assert.equal(t.data[3], 40, 'slice shares memory');
    assert.deepEqual(t.slice(3, 10).shape, [1, 3]);
    assert.deepEqual(t.slice(5, 10).shape, [0, 3]);
    assert.deepEqual(t.slice(2, 1).shape, [0, 3]);
  });

  it('gather copies rows by index, in the given order and with repeats', () => {
    const t = rows();
    const g = t.gather([3, 0, 3]);
    assert.deepEqual(g.toArray(), [[10, 11, 12], [1, 2, 3], [10, 11, 12]]);
    (g.data as Float32Array)[0] = -1;
    assert.equal(t.data[9], 10, 'gather copies');
    assert.deepEqual(t.gather(Int32Array.of(1)).shape, [1, 3]);
    assert.deepEqual(tensor([1n, 2n, 3n], undefined, 'int64').gather([2, 0]).toArray(), [3, 1]);
  });

  it('gather refuses indices outside the rows', () => {
    assertThrowsKiln(() => rows().gather([4]), 'INVALID_ARGUMENT');
    assertThrowsKiln(() => rows().gather([-1]), 'INVALID_ARGUMENT');
  });

  it('toArray nests by shape and gives int64 as numbers', () => {
    assert.deepEqual(tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]).toArray(), [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]);
    assert.deepEqual(tensor([[1, 2]], undefined, 'int64').toArray(), [[1, 2]]);
    assert.deepEqual(tensor(new Float32Array(0), [2, 0]).toArray(), [[], []]);
  });
});

describe('concatRows', () => {
  it('joins tensors along the first axis, of one dtype and row shape, and names a mismatch', () => {
    const a = tensor([[1, 2], [3, 4]]);
    const b = tensor([[5, 6]]);
    assert.deepEqual(concatRows([a, b]).toArray(), [[1, 2], [3, 4], [5, 6]]);
    assert.deepEqual(concatRows([tensor([[1n]], undefined, 'int64'), tensor([[2n], [3n]], undefined, 'int64')]).toArray(), [[1], [2], [3]]);
    assertThrowsKiln(() => concatRows([a, tensor([[1, 2, 3]])]), 'INVALID_SHAPE', 'float32 [2, 2] and float32 [1, 3]');
    assertThrowsKiln(() => concatRows([a, tensor([[1n, 2n]], undefined, 'int64')]), 'INVALID_SHAPE', 'int64 [1, 2]');
    assertThrowsKiln(() => concatRows([a, tensor([[[1, 2]]])]), 'INVALID_SHAPE');
    assertThrowsKiln(() => concatRows([]), 'INVALID_ARGUMENT');
  });
});

