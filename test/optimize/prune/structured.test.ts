/**
 * Structured pruning (src/optimize/prune/structured.ts): removing filters/units gives a network that
 * computes exactly what the original computes with those channels zeroed (tutorial CNN, through pooling
 * and Flatten; and a batch-norm network through BN and global pooling), with fewer parameters and
 * FLOPs; the criteria rank filters as documented; iterative mode reaches the ratio in rounds.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, modelCost, prune, pruning, sequential, Tensor, type Sequential } from '../../../src/index.js';
import { denseData, denseNet, maxAbsDiff, randomImages, tutorialCnn } from './helpers.js';

const { filterScores } = pruning;

/** A copy of the model's weights with the given filters/units of each layer zeroed (kernel slice and bias). */
function zeroUnits(model: Sequential, removed: Map<string, number[]>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of model.weights) {
    const data = Float32Array.from(t.data as Float32Array);
    const [layer, param] = name.split('/') as [string, string];
    const gone = removed.get(layer);
    if (gone && (param === 'kernel' || param === 'bias')) {
      // The units axis: Conv2D [filters, ...] and biases 0; Dense [inputs, units] and Conv2DTranspose [channels, filters, kH, kW] 1.
      const axis = param === 'bias' || model.layers.find((l) => l.name === layer)!.className === 'Conv2D' ? 0 : 1;
      const units = t.shape[axis]!;
      const inner = t.shape.slice(axis + 1).reduce((p, d) => p * d, 1);
      for (let i = 0; i < data.length; i++) if (gone.includes(Math.floor(i / inner) % units)) data[i] = 0;
    }
    out.set(name, new Tensor(data, [...t.shape], 'float32'));
  }
  return out;
}

function removedUnits(report: Awaited<ReturnType<typeof prune>>['report']): Map<string, number[]> {
  return new Map(
    report.layers
      .filter((l) => l.keptUnits)
      .map((l) => [l.name, Array.from({ length: l.units![0] }, (_, i) => i).filter((i) => !l.keptUnits!.includes(i))]),
  );
}

describe('structured pruning of the tutorial CNN', () => {
  it('before fine-tuning, gives the same logits as the original with the removed filters/units zeroed', async () => {
    const original = tutorialCnn();
    const { x } = randomImages(16, [28, 28, 1]);
    const { model: small, report } = await prune(original, { structured: { ratio: 0.5, criterion: 'l1' } });
    assert.deepEqual(report.layers.filter((l) => l.units).map((l) => [l.name, ...l.units!]), [
      ['conv2d', 32, 16],
      ['conv2d_1', 64, 32],
      ['conv2d_2', 64, 32],
      ['dense', 64, 32],
      ['dense_1', 10, 10],
    ]);
    const removed = removedUnits(report);
    assert.deepEqual([...removed.keys()], ['conv2d', 'conv2d_1', 'conv2d_2', 'dense']);
    const zeroed = tutorialCnn();
    zeroed.setWeights(zeroUnits(original, removed));
    const [a, b, plain] = await Promise.all([small.predict(x), zeroed.predict(x), original.predict(x)]);
    assert.deepEqual([...a.shape], [16, 10]);
    assert.ok(maxAbsDiff(a.data as Float32Array, b.data as Float32Array) < 1e-5, `pruned vs zeroed: ${maxAbsDiff(a.data as Float32Array, b.data as Float32Array)}`);
    // Not trivially equal: the zeroed filters did matter.
    assert.ok(maxAbsDiff(a.data as Float32Array, plain.data as Float32Array) > 1e-4);
    // Fewer parameters and FLOPs, a normal model.
    assert.equal(report.after.parameters, 160 + 4640 + 9248 + 32 * 9 * 32 + 32 + 330);
    assert.equal(report.after.parameters, small.countParams().total);
    assert.ok(report.after.flops * 3 < report.before.flops);
    assert.equal(modelCost(small).flops, report.after.flops);
  });

  it('keeps the highest-L1 filters: filters made small are the ones removed', async () => {
    const model = tutorialCnn();
    const k = Float32Array.from(model.weights.get('conv2d_1/kernel')!.data as Float32Array);
    const weak = [3, 10, 11, 40];
    for (const f of weak) for (let j = 0; j < 32 * 9; j++) k[f * 32 * 9 + j]! *= 0.01;
    model.setWeights({ 'conv2d_1/kernel': new Tensor(k, [64, 32, 3, 3], 'float32') });
    const { report } = await prune(model, { structured: { perLayer: { conv2d_1: 4 / 64 } } });
    assert.deepEqual(removedUnits(report).get('conv2d_1'), weak);
    assert.deepEqual([...removedUnits(report).keys()], ['conv2d_1']);
    const scores = filterScores(model, model.layers[2]!, 'l2');
    assert.ok(Math.abs(scores[3]! - Math.hypot(...Array.from(k.subarray(3 * 288, 4 * 288)))) < 1e-4);
  });
});

describe('structured pruning through Conv2DTranspose (a decoder)', () => {
  const decoder = () =>
    sequential({
      seed: 6,
      layers: [
        layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', inputShape: [8, 8, 2] }),
        layers.conv2dTranspose({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
        layers.conv2d({ filters: 4, kernelSize: 1, activation: 'relu' }),
        layers.globalAveragePooling2d(),
        layers.dense({ units: 3 }),
      ],
    });

  it("removes a Conv2DTranspose's filters (its kernel's axis 1) and the channels it reads (axis 0), equal to the original with those zeroed", async () => {
    const original = decoder();
    const { model: small, report } = await prune(original, { structured: { ratio: 0.5 } });
    assert.deepEqual(report.layers.filter((l) => l.units).map((l) => [l.name, ...l.units!]), [
      ['conv2d', 8, 4],
      ['conv2d_transpose', 6, 3],
      ['conv2d_1', 4, 2],
      ['dense', 3, 3],
    ]);
    assert.deepEqual(small.weights.get('conv2d_transpose/kernel')!.shape, [4, 3, 3, 3]);
    assert.deepEqual(small.weights.get('conv2d_1/kernel')!.shape, [2, 3, 1, 1]);
    const removed = removedUnits(report);
    const zeroed = decoder();
    zeroed.setWeights(zeroUnits(original, removed));
    const { x } = randomImages(8, [8, 8, 2]);
    const [a, b, plain] = await Promise.all([small.predict(x), zeroed.predict(x), original.predict(x)]);
    assert.ok(maxAbsDiff(a.data as Float32Array, b.data as Float32Array) < 1e-5, `pruned vs zeroed: ${maxAbsDiff(a.data as Float32Array, b.data as Float32Array)}`);
    assert.ok(maxAbsDiff(a.data as Float32Array, plain.data as Float32Array) > 1e-4);
    assert.equal(report.after.parameters, small.countParams().total);
  });

  it('ranks a Conv2DTranspose filter by all of its weights, along the kernel axis 1', () => {
    const model = decoder();
    const kernel = model.weights.get('conv2d_transpose/kernel')!; // [8, 6, 3, 3]
    const data = new Float32Array(kernel.size);
    // Filter f gets weight f + 1 at every one of its 8·9 entries, so its L1 score is 72 (f + 1).
    for (let i = 0; i < data.length; i++) data[i] = (Math.floor(i / 9) % 6) + 1;
    model.setWeights({ 'conv2d_transpose/kernel': new Tensor(data, [8, 6, 3, 3], 'float32') });
    const layer = model.layers.find((l) => l.name === 'conv2d_transpose')!;
    assert.deepEqual(Array.from(filterScores(model, layer, 'l1')), [72, 144, 216, 288, 360, 432]);
    assert.deepEqual(Array.from(filterScores(model, layer, 'l2')).map((v) => Math.round(v * 1e6) / 1e6), [1, 2, 3, 4, 5, 6].map((f) => Math.round(Math.sqrt(72 * f * f) * 1e6) / 1e6));
  });
});

describe('structured pruning through batch normalization and global pooling', () => {
  const bnNet = () =>
    sequential({
      seed: 4,
      layers: [
        layers.conv2d({ filters: 8, kernelSize: 3, inputShape: [10, 10, 2] }),
        layers.batchNormalization(),
        layers.activation({ activation: 'relu' }),
        layers.maxPooling2d({ poolSize: 2 }),
        layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }),
        layers.globalAveragePooling2d(),
        layers.dense({ units: 5, activation: 'sigmoid' }),
        layers.dense({ units: 3 }),
      ],
    });

  it('ranks by |gamma| (bnScale) and equals the original with the next layers reading zeros from the removed channels', async () => {
    const model = bnNet();
    const gamma = Float32Array.from([1, 0.01, 2, 0.5, -0.02, 1.5, 0.9, -3]);
    const rng = Float32Array.from([0.1, -0.2, 0.3, 0.05, -0.1, 0.2, 0, 0.4]);
    model.setWeights({
      'batch_normalization/gamma': new Tensor(gamma, [8], 'float32'),
      'batch_normalization/beta': new Tensor(rng, [8], 'float32'),
      'batch_normalization/moving_mean': new Tensor(rng.map((v) => v / 2), [8], 'float32'),
      'batch_normalization/moving_variance': new Tensor(rng.map((v) => 1 + Math.abs(v)), [8], 'float32'),
    });
    const { model: small, report } = await prune(model, { structured: { perLayer: { conv2d: 0.5 } , criterion: 'bnScale' } });
    assert.deepEqual(report.layers.find((l) => l.name === 'conv2d')!.keptUnits, [0, 2, 5, 7]);
    assert.deepEqual(Array.from(small.weights.get('batch_normalization/gamma')!.data as Float32Array), [1, 2, 1.5, -3]);
    // Zeroing a BN channel's input would not zero its output (beta, mean): zero what reads it instead.
    const removed = [1, 3, 4, 6];
    const w = new Map([...model.weights].map(([k, t]) => [k, new Tensor(Float32Array.from(t.data as Float32Array), [...t.shape], 'float32')]));
    const next = w.get('conv2d_1/kernel')!.data as Float32Array; // [6, 8, 3, 3]
    for (let o = 0; o < 6; o++) for (const c of removed) for (let j = 0; j < 9; j++) next[(o * 8 + c) * 9 + j] = 0;
    const zeroed = bnNet();
    zeroed.setWeights(w);
    const { x } = randomImages(8, [10, 10, 2]);
    const [a, b] = await Promise.all([small.predict(x), zeroed.predict(x)]);
    assert.ok(maxAbsDiff(a.data as Float32Array, b.data as Float32Array) < 1e-5);
  });

  it('removes conv filters feeding global pooling and dense units feeding dense (sigmoid: zero contributions, not zero units)', async () => {
    const model = bnNet();
    const { model: small, report } = await prune(model, { structured: { perLayer: { conv2d_1: 0.5, dense: 0.4 }, criterion: 'l2' } });
    assert.deepEqual(small.weights.get('dense/kernel')!.shape, [3, 3]);
    assert.deepEqual(small.weights.get('dense_1/kernel')!.shape, [3, 3]);
    const w = new Map([...model.weights].map(([k, t]) => [k, new Tensor(Float32Array.from(t.data as Float32Array), [...t.shape], 'float32')]));
    const removed = removedUnits(report);
    const d = w.get('dense/kernel')!.data as Float32Array; // [6, 5]: rows read conv2d_1's channels
    for (const c of removed.get('conv2d_1')!) for (let u = 0; u < 5; u++) d[c * 5 + u] = 0;
    const d1 = w.get('dense_1/kernel')!.data as Float32Array; // [5, 3]
    for (const r of removed.get('dense')!) for (let u = 0; u < 3; u++) d1[r * 3 + u] = 0;
    const zeroed = bnNet();
    zeroed.setWeights(w);
    const { x } = randomImages(8, [10, 10, 2]);
    const [a, b] = await Promise.all([small.predict(x), zeroed.predict(x)]);
    assert.ok(maxAbsDiff(a.data as Float32Array, b.data as Float32Array) < 1e-5);
  });
});

describe('iterative structured pruning with fine-tuning', () => {
  it('reaches the ratio in rounds, fine-tuning after each, and returns a trainable model', async () => {
    const { x, y } = denseData(64);
    const { model: small, report } = await prune(denseNet(), { structured: { ratio: 0.75, iterations: 3 }, fineTune: { x, y, epochs: 1, batchSize: 16, verbose: 0 } });
    assert.deepEqual(report.layers.filter((l) => l.units).map((l) => l.units![1]), [4, 4, 4, 3]);
    assert.equal(report.history!.length, 3);
    for (const l of report.layers.filter((l) => l.keptUnits)) {
      assert.equal(new Set(l.keptUnits).size, l.keptUnits!.length);
      assert.ok(l.keptUnits!.every((i) => i >= 0 && i < 16));
    }
    const h = await small.fit(x, y, { epochs: 1, batchSize: 16, verbose: 0 });
    assert.ok(Number.isFinite(h.history.loss![0]));
  });
});

describe('structured pruning to a parameter budget (structured.parameters)', () => {
  it('finds the smallest ratio that removes that fraction of the parameters', async () => {
    // 6 → 16 → 16 → 16 → 3 Dense: keeping k units in each hidden layer leaves 2k² + 12k + 3 parameters
    // (707 at k = 16). Half of 707 is 353.5: k = 10 leaves 323, k = 11 leaves 377. Math.round(16 (1 − r))
    // is 10 for r in (0.34375, 0.40625]: the middle of that step, 0.375, is the ratio reported.
    const { model: small, report } = await prune(denseNet(), { structured: { parameters: 0.5 } });
    assert.equal(report.before.parameters, 707);
    assert.equal(report.after.parameters, 323);
    assert.deepEqual(report.layers.filter((l) => l.units).map((l) => l.units![1]), [10, 10, 10, 3]);
    assert.ok(Math.abs(report.ratio! - 0.375) < 1e-9, String(report.ratio));
    assert.equal(modelCost(small).parameters, 323);
    // The ratio as printed (4 digits), given back as ratio, prunes the same units.
    const again = await prune(denseNet(), { structured: { ratio: Number(report.ratio!.toFixed(4)) } });
    assert.deepEqual(again.report.layers.map((l) => l.units), report.layers.map((l) => l.units));
    // perLayer alone already under the budget: nothing else is removed.
    const enough = await prune(denseNet(), { structured: { parameters: 0.2, perLayer: { dense_1: 0.9 } } });
    assert.equal(enough.report.ratio, 0);
    assert.deepEqual(enough.report.layers.filter((l) => l.units).map((l) => l.units![1]), [16, 2, 16, 3]);
    // perLayer ratios stay as given; the found ratio covers the other layers.
    const mixed = await prune(denseNet(), { structured: { parameters: 0.5, perLayer: { dense_1: 0 } } });
    const units = mixed.report.layers.filter((l) => l.units).map((l) => l.units![1]);
    assert.equal(units[1], 16);
    assert.ok(mixed.report.after.parameters <= 353.5 && units[0]! < 16, JSON.stringify(units));
  });

  it('bad input: both ratio and parameters, a fraction out of (0, 1), a budget the layers cannot reach', async () => {
    await assert.rejects(prune(denseNet(), { structured: { ratio: 0.5, parameters: 0.5 } }), /ratio \(0.5\) or parameters \(0.5\), not both/);
    await assert.rejects(prune(denseNet(), { structured: { parameters: 1 } }), /structured.parameters must be a number in \(0, 1\).*got 1/);
    await assert.rejects(prune(denseNet(), { structured: { parameters: 0.5, perLayer: { dense: 0.1, dense_1: 0.1, dense_2: 0.1 } } }), /every pruned layer has a perLayer ratio/);
    // Only the first hidden layer pruned: one unit there leaves 7 + 32 + 272 + 51 of 707.
    await assert.rejects(prune(denseNet(), { structured: { parameters: 0.6 }, layers: ['dense'] }), /removes only 48\.8% of the 707 parameters/);
    // The output layer named in layers: its units are the model's outputs, whatever ratio is found.
    await assert.rejects(prune(denseNet(), { structured: { parameters: 0.5 }, layers: ['dense_1', 'dense_3'] }), /cannot remove units of 'dense_3': it is the last layer with weights/);
  });
});
