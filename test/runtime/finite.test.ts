import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allFinite } from '../../src/runtime/finite.js';

describe('allFinite', () => {
  it('finds one NaN or infinity at any position, including the tail past the last group of four', () => {
    for (const length of [1, 4, 7, 1001]) {
      const data = Float32Array.from({ length }, (_, i) => Math.sin(i));
      assert.equal(allFinite(data), true, `length ${length}`);
      for (const position of [0, length - 1, Math.floor(length / 2)]) {
        for (const bad of [NaN, Infinity, -Infinity]) {
          const copy = data.slice();
          copy[position] = bad;
          assert.equal(allFinite(copy), false, `${bad} at ${position} of ${length}`);
        }
      }
    }
  });

  it('is not fooled by infinities of both signs, nor by the largest floats adding up', () => {
    assert.equal(allFinite(Float32Array.of(Infinity, -Infinity, 1, 1)), false, '+inf and -inf in different accumulators');
    assert.equal(allFinite(Float32Array.of(Infinity, 0, 0, 0, -Infinity)), false, 'in the same accumulator');
    assert.equal(allFinite(new Float32Array(100_000).fill(3.4e38)), true, 'a float32 overflow is no double overflow');
    assert.equal(allFinite(new Float32Array(0)), true);
  });
});
