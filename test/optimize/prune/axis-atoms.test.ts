/**
 * The axis algebra under structured pruning of graphs (src/optimize/prune/axis-atoms.ts): reshape
 * factorization with a symbolic batch, and unification of sliced and reshaped axes, checked on small
 * hand-worked cases.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AxisAtoms, NotRepresentable, commonFactors, type Size } from '../../../src/optimize/prune/axis-atoms.js';
import { keptIndices, keptSize } from '../../../src/optimize/prune/graph-groups.js';

const k = (n: number): Size => ({ k: n, n: 0 });
const N = (n = 1): Size => ({ k: n, n: 1 });

describe('commonFactors (a reshape as factors)', () => {
  it('splits q [17, N, 32] into heads [17, 4N, 8]: the 32 is 4 × 8 and the 4 joins the batch', () => {
    const { factors, axesA, axesB } = commonFactors([k(17), N(), k(32)], [k(17), N(4), k(8)]);
    assert.deepEqual(factors, [k(17), N(), k(4), k(8)]);
    assert.deepEqual(axesA, [[0], [1], [2, 3]]);
    assert.deepEqual(axesB, [[0], [1, 2], [3]]);
  });

  it('merges [N, 8, 4, 4] into [N, 128] (Flatten: each channel a block of 16)', () => {
    const { factors, axesB } = commonFactors([N(), k(8), k(4), k(4)], [N(), k(128)]);
    assert.deepEqual(factors, [N(), k(8), k(4), k(4)]);
    assert.deepEqual(axesB, [[0], [1, 2, 3]]);
  });

  it('refuses a reshape that interleaves axes or changes the element count', () => {
    assert.throws(() => commonFactors([k(6), k(4)], [k(4), k(6)]), NotRepresentable);
    assert.throws(() => commonFactors([k(6)], [k(4)]), NotRepresentable);
  });
});

describe('AxisAtoms', () => {
  it('a packed in-projection: q, k, v segments reshaped into heads share one heads leaf', () => {
    const atoms = new AxisAtoms();
    const columns = atoms.create(k(96));
    const [q, kk, v] = [atoms.create(k(32)), atoms.create(k(32)), atoms.create(k(32))];
    atoms.unify(columns, atoms.concat([q, kk, v]));
    const [hq, dq, hk, dk, hv, dv] = [4, 8, 4, 8, 4, 8].map((s) => atoms.create(k(s)));
    atoms.unify(q, atoms.product([hq!, dq!]));
    atoms.unify(kk, atoms.product([hk!, dk!]));
    atoms.unify(v, atoms.product([hv!, dv!]));
    // The attention's batched MatMuls tie the heads, q·kᵀ ties q's and k's head dimensions.
    atoms.unify(hq!, hk!);
    atoms.unify(hk!, hv!);
    atoms.unify(dq!, dk!);
    const s = atoms.structure(columns);
    const h = atoms.find(hq!);
    assert.deepEqual(s, [[h, atoms.find(dq!)], [h, atoms.find(dq!)], [h, atoms.find(dv!)]]);
    // Removing head 1 removes columns 8–15, 40–47 and 72–79.
    const kept = keptIndices(atoms, s, new Map([[h, new Set([1])]]));
    const gone = Array.from({ length: 96 }, (_, i) => i).filter((i) => !kept.includes(i));
    assert.deepEqual(gone, [...[8, 9, 10, 11, 12, 13, 14, 15], ...[40, 41, 42, 43, 44, 45, 46, 47], ...[72, 73, 74, 75, 76, 77, 78, 79]]);
    assert.deepEqual(keptSize(atoms, s, new Map([[h, new Set([1])]])), k(72));
  });

  it('unifying two different cuts of one axis refines both to the common segments', () => {
    const atoms = new AxisAtoms();
    const a = atoms.concat([atoms.create(k(32)), atoms.create(k(64))]);
    const b = atoms.concat([atoms.create(k(64)), atoms.create(k(32))]);
    atoms.unify(a, b);
    assert.deepEqual(atoms.structure(a).map((seg) => seg.map((f) => atoms.size(f).k)), [[32], [32], [32]]);
    assert.deepEqual(atoms.structure(a), atoms.structure(b));
  });

  it('a product tied to a finer product splits its factor; a batch factor stays symbolic', () => {
    const atoms = new AxisAtoms();
    const coarse = atoms.product([atoms.create(N()), atoms.create(k(32))]);
    const fine = atoms.product([atoms.create(N()), atoms.create(k(4)), atoms.create(k(8))]);
    atoms.unify(coarse, fine);
    assert.deepEqual(atoms.structure(coarse).map((seg) => seg.map((f) => atoms.size(f))), [[N(), k(4), k(8)]]);
    const [, heads] = atoms.structure(coarse)[0]!;
    assert.deepEqual(keptSize(atoms, atoms.structure(coarse), new Map([[heads!, new Set([0, 3])]])), N(16));
  });

  it('refuses sizes that differ and a slice inside an inner factor', () => {
    const atoms = new AxisAtoms();
    assert.throws(() => atoms.unify(atoms.create(k(4)), atoms.create(k(8))), NotRepresentable);
    const inner = atoms.concat([atoms.create(k(2)), atoms.create(k(6))]);
    const p = atoms.product([atoms.create(k(3)), inner]);
    assert.throws(() => atoms.structure(p), NotRepresentable);
  });
});
