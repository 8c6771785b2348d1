import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkShape, decodeElements, ElementBudget, flatValues, nest, nestedShape } from '../../src/serve/datatypes.js';
import { Tensor } from '../../src/tensor.js';

test('decodeElements takes flat or nested data and refuses ragged or mis-sized data with the position', () => {
  assert.deepEqual(Array.from(decodeElements([1, 2, 3, 4, 5, 6], [2, 3], 'float32', 'x') as ArrayLike<number | bigint>), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(decodeElements([[1, 2, 3], [4, 5, 6]], [2, 3], 'int32', 'x') as ArrayLike<number | bigint>), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(decodeElements([[true], [false]], [2, 1], 'bool', 'x') as ArrayLike<number | bigint>), [1, 0]);
  assert.deepEqual(Array.from(decodeElements([2 ** 40], [1], 'int64', 'x') as ArrayLike<number | bigint>), [2n ** 40n]);
  assert.throws(() => decodeElements([[1, 2, 3], [4, 5]], [2, 3], 'float32', 'x'), /x: data at \[1\] should be a list of 3/);
  assert.throws(() => decodeElements([1, 2, 3, 4, 5], [2, 3], 'float32', 'x'), /should be a list of 2 .* \(a flat list needs 6\)/);
  assert.throws(() => decodeElements([[1, 2, 3], [4, 5, [6]]], [2, 3], 'float32', 'x'), /element \[1, 2\] is an array of 1, expected a number/);
  assert.throws(() => decodeElements([1, 2, 3, 4, 5, 6], [2, 3], 'float32', 'x', true), /should be a list of 2/);
  assert.throws(() => decodeElements('1,2', [2], 'float32', 'x'), /data must be an array for shape \[2\], found "1,2"/);
});

test('checkShape bounds rank, dimensions and element count; nestedShape bounds depth', () => {
  assert.equal(checkShape([2, 3], 'x', new ElementBudget(100)), 6);
  assert.throws(() => checkShape([2, -1], 'x', new ElementBudget(100)), /integers in \[0, 2147483647\], found -1/);
  assert.throws(() => checkShape([1000, 1000], 'x', new ElementBudget(100)), /has 1000000 elements, more than the 100/);
  assert.throws(() => checkShape(new Array(17).fill(1), 'x', new ElementBudget(100)), /rank 17, at most 16/);
  // The budget is per request: tensors that fit one by one may not fit together.
  const budget = new ElementBudget(100);
  assert.equal(checkShape([10, 6], 'a', budget), 60);
  assert.throws(() => checkShape([10, 5], 'b', budget), /b: shape \[10, 5\] has 50 elements \(110 with the request's other tensors\), more than the 100 this server accepts in one request/);
  assert.deepEqual(nestedShape([[1, 2], [3, 4], [5, 6]], 'x'), [3, 2]);
  let deep: unknown = 1;
  for (let i = 0; i < 40; i++) deep = [deep];
  assert.throws(() => nestedShape(deep, 'x'), /nested deeper than 16/);
});

test('flatValues and nest turn tensors back into JSON values', () => {
  const t = new Tensor(Float32Array.of(1, NaN, 3, 4), [2, 2], 'float32');
  const { values, nonFinite } = flatValues(t);
  assert.ok(nonFinite);
  assert.deepEqual(nest([1, 2, 3, 4, 5, 6], [2, 3]), [[1, 2, 3], [4, 5, 6]]);
  assert.equal(nest([7], []), 7);
  assert.equal(values.length, 4);
  assert.deepEqual(flatValues(new Tensor(Uint8Array.of(1, 0), [2], 'bool')).values, [true, false]);
  assert.deepEqual(flatValues(new Tensor(BigInt64Array.of(-5n), [1], 'int64')).values, [-5]);
});
