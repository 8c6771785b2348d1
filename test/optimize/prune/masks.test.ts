/**
 * Magnitude masks (src/optimize/prune/masks.ts) and one-shot pruning: exact counts per layer or with one
 * global threshold, ties, m-by-n blocks along the input axis, and which weights are targets (kernels
 * only; first and last layers dense unless named).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { prune, pruning } from '../../../src/index.js';
import { denseNet, tutorialCnn, zerosOf } from './helpers.js';

const { magnitudeMasks, mByNMask, prunedCount, selectTargets } = pruning;

describe('magnitude masks', () => {
  it('zero exactly round-to-TF-MOT counts of the smallest magnitudes, per layer', () => {
    const a = Float32Array.from([0.5, -0.1, 0.3, -0.9, 0.05, 0.2, -0.7, 0.01, 0.6, -0.4]);
    const [m] = magnitudeMasks([a], 0.5, 'layer');
    assert.deepEqual(Array.from(m!), [1, 0, 0, 1, 0, 0, 1, 0, 1, 1]);
    assert.equal(prunedCount(10, 0.5), 5);
    assert.equal(prunedCount(7, 0.8), 7 - Math.round(7 * 0.2));
  });

  it('break ties in index order so the count stays exact (e.g. weights already zero)', () => {
    const a = new Float32Array(8); // all zero
    const [m] = magnitudeMasks([a], 0.25, 'layer');
    assert.deepEqual(Array.from(m!), [0, 0, 1, 1, 1, 1, 1, 1]);
  });

  it("global scope uses one threshold across kernels; 'layer' prunes each to the sparsity", () => {
    const small = Float32Array.from([0.01, 0.02, 0.03, 0.04]);
    const large = Float32Array.from([1, 2, 3, 4]);
    const global = magnitudeMasks([small, large], 0.5, 'global');
    assert.deepEqual(global.map((m) => Array.from(m)), [[0, 0, 0, 0], [1, 1, 1, 1]]);
    const perLayer = magnitudeMasks([small, large], 0.5, 'layer');
    assert.deepEqual(perLayer.map((m) => Array.from(m)), [[0, 0, 1, 1], [0, 0, 1, 1]]);
  });

  it('m-by-n: m zeros in every n consecutive weights along the input axis (Dense [in, units] and Conv [out, in, kh, kw])', () => {
    // Dense kernel [8 inputs, 2 units]: blocks of 4 run down each column.
    const dense = Float32Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? i + 1 : -(16 - i)));
    const m = mByNMask(dense, [1, 8, 2], 2, 4);
    for (let u = 0; u < 2; u++) {
      for (let b = 0; b < 2; b++) {
        const block = [0, 1, 2, 3].map((j) => (b * 4 + j) * 2 + u);
        assert.equal(block.filter((i) => m[i] === 0).length, 2, `unit ${u} block ${b}`);
        const kept = block.filter((i) => m[i] === 1).map((i) => Math.abs(dense[i]!));
        const dropped = block.filter((i) => m[i] === 0).map((i) => Math.abs(dense[i]!));
        assert.ok(Math.min(...kept) >= Math.max(...dropped));
      }
    }
    // Conv kernel [2 out, 4 in, 1, 3]: for each (out, position), 1 zero among the 4 input channels.
    const conv = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i + 1));
    const c = mByNMask(conv, [2, 4, 3], 1, 4);
    for (let o = 0; o < 2; o++) {
      for (let r = 0; r < 3; r++) {
        const block = [0, 1, 2, 3].map((i) => (o * 4 + i) * 3 + r);
        const zeroed = block.filter((i) => c[i] === 0);
        assert.equal(zeroed.length, 1);
        assert.equal(Math.abs(conv[zeroed[0]!]!), Math.min(...block.map((i) => Math.abs(conv[i]!))));
      }
    }
  });
});

describe('which weights are pruned', () => {
  it('by default every kernel but the first and last layer; biases never', () => {
    const targets = selectTargets(tutorialCnn());
    assert.deepEqual(targets.map((t) => t.name), ['conv2d_1/kernel', 'conv2d_2/kernel', 'dense/kernel']);
    assert.deepEqual(targets[0]!.view, [64, 32, 9]);
    assert.deepEqual(targets[2]!.view, [1, 576, 64]);
    assert.deepEqual(selectTargets(tutorialCnn(), ['conv2d', 'dense_1']).map((t) => t.name), ['conv2d/kernel', 'dense_1/kernel']);
  });

  it('one-shot prune (no fine-tune) zeroes the targets to the sparsity and leaves the rest untouched', async () => {
    const model = denseNet();
    const before = new Map([...model.weights].map(([k, t]) => [k, Float32Array.from(t.data as Float32Array)]));
    const { model: pruned, report } = await prune(model, { sparsity: 0.75, layers: ['dense_1', 'dense_2'] });
    assert.equal(zerosOf(pruned.weights.get('dense_1/kernel')!), 192);
    assert.equal(zerosOf(pruned.weights.get('dense_2/kernel')!), 192);
    for (const name of ['dense/kernel', 'dense_3/kernel', 'dense_1/bias']) {
      assert.deepEqual(Array.from(pruned.weights.get(name)!.data as Float32Array), Array.from(before.get(name)!), name);
    }
    // The original model is not modified.
    for (const [k, t] of model.weights) assert.deepEqual(Array.from(t.data as Float32Array), Array.from(before.get(k)!), k);
    assert.equal(report.targetSparsity, 0.75);
    assert.equal(report.layers.find((l) => l.name === 'dense_1')!.kernelSparsity, 0.75);
    assert.equal(report.layers.find((l) => l.name === 'dense')!.pruned, false);
    assert.equal(report.before.parameters, report.after.parameters);
    assert.equal(report.after.nonZeroParameters, report.before.nonZeroParameters - 384);
  });

  it("m-by-n one-shot through prune({sparsityMByN: [2, 4]})", async () => {
    const { model: pruned, report } = await prune(denseNet(), { sparsityMByN: [2, 4] });
    assert.equal(report.targetSparsity, 0.5);
    const k = pruned.weights.get('dense_1/kernel')!.data as Float32Array; // [16, 16]
    for (let u = 0; u < 16; u++) for (let b = 0; b < 4; b++) assert.equal([0, 1, 2, 3].filter((j) => k[(b * 4 + j) * 16 + u] === 0).length, 2);
  });
});
