/**
 * The simulation's splits (src/federated/split.ts): the label-skewed split gives every client exactly
 * its two classes, half of class c and half of class c+1 each, covering every example once; the IID
 * split cuts a permutation into equal shards.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { federated } from '../../src/index.js';
import { KilnError } from '../../src/errors.js';

/** Labels of 10 classes, class c having 50 + 3c examples (odd counts too), interleaved. */
function labels(): Int32Array {
  const out: number[] = [];
  for (let c = 0; c < 10; c++) for (let k = 0; k < 50 + 3 * c; k++) out.push(c);
  // Deterministic interleaving so class blocks are not contiguous.
  return Int32Array.from(out.map((l, i) => ({ l, k: (i * 7919) % out.length })).sort((a, b) => a.k - b.k).map((x) => x.l));
}

describe('nonIidSplit', () => {
  it('gives client c exactly half of class c and half of class c+1, every example once', () => {
    const y = labels();
    const shards = federated.nonIidSplit(y, 10, 10, 2, 7);
    assert.equal(shards.length, 10);
    const seen = new Set<number>();
    for (let c = 0; c < 10; c++) {
      const counts = new Map<number, number>();
      for (const i of shards[c]!) {
        assert.ok(!seen.has(i), `example ${i} dealt twice`);
        seen.add(i);
        counts.set(y[i]!, (counts.get(y[i]!) ?? 0) + 1);
      }
      assert.deepEqual([...counts.keys()].sort((a, b) => a - b), [c, (c + 1) % 10].sort((a, b) => a - b), `client ${c}'s classes`);
      const size = (k: number) => 50 + 3 * k;
      // Client c takes the first half of class c (rounded down), client c−1 the rest of it.
      assert.equal(counts.get(c), Math.floor(size(c) / 2));
      assert.equal(counts.get((c + 1) % 10), size((c + 1) % 10) - Math.floor(size((c + 1) % 10) / 2));
    }
    assert.equal(seen.size, y.length);
  });

  it('rejects labels outside the classes and impossible class counts', () => {
    assert.throws(() => federated.nonIidSplit(Int32Array.of(0, 1, 12), 10, 2, 2), (e: unknown) => e instanceof KilnError && /label 2 is 12/.test(e.message));
    assert.throws(() => federated.nonIidSplit(labels(), 10, 10, 11), KilnError);
  });
});

describe('iidSplit', () => {
  it('cuts a seeded permutation into shards whose sizes differ by at most one', () => {
    const shards = federated.iidSplit(103, 10, 3);
    assert.deepEqual(shards.map((s) => s.length), [11, 11, 11, 10, 10, 10, 10, 10, 10, 10]);
    assert.deepEqual(new Set(shards.flatMap((s) => Array.from(s))).size, 103);
    assert.deepEqual(federated.iidSplit(103, 10, 3), shards);
    assert.notDeepEqual(federated.iidSplit(103, 10, 4), shards);
    assert.throws(() => federated.iidSplit(5, 6), KilnError);
  });
});
