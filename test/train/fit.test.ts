/**
 * compile / fit / evaluate (src/train/model.ts; the epoch loop in src/train/fit-loop.ts) end to end: a small model learns a learnable problem,
 * evaluate() agrees with predict() plus metrics computed here, History and validationSplit carry the
 * per-epoch values, names given as strings resolve, and one SGD run with a schedule reproduces
 * gradient descent computed by hand.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, optimizers, schedules, sequential, Tensor } from '../../src/index.js';
import { blobs, linear, weightsOf } from './helpers.js';

/** Mean cross-entropy and accuracy of softmax outputs, computed here in float64. */
function crossEntropyAndAccuracy(probs: Tensor, y: Tensor): { loss: number; accuracy: number } {
  const c = probs.shape[1]!;
  const n = probs.shape[0]!;
  let loss = 0;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const row = Array.from(probs.data as Float32Array).slice(i * c, (i + 1) * c);
    const label = Number(y.data[i]);
    loss -= Math.log(Math.min(1 - 1e-7, Math.max(1e-7, row[label]! / row.reduce((a, b) => a + b, 0))));
    if (row.indexOf(Math.max(...row)) === label) hits++;
  }
  return { loss: loss / n, accuracy: hits / n };
}

function blobClassifier() {
  return sequential({
    seed: 3,
    layers: [layers.dense({ units: 16, activation: 'relu', inputShape: [2] }), layers.dense({ units: 3, activation: 'softmax' })],
  });
}

describe('fit and evaluate on a learnable problem', () => {
  const train = blobs(240, 1);
  const test = blobs(90, 2);

  it('learns 3 Gaussian blobs: loss falls ≥ 5×, accuracy ≥ 0.95, and evaluate agrees with predict', async () => {
    const model = blobClassifier();
    model.compile({ optimizer: optimizers.adam({ learningRate: 0.03 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const before = await model.evaluate(test.x, test.y);
    const epochs = 15;
    const history = await model.fit(train.x, train.y, { epochs, batchSize: 32, verbose: 0 });
    const after = await model.evaluate(test.x, test.y);
    assert.ok(before.loss / after.loss >= 5, `loss should fall ≥ 5×: ${before.loss} → ${after.loss}`);
    assert.ok(after.accuracy! >= 0.95, `accuracy ${after.accuracy}`);

    // evaluate() = the same numbers computed from predict().
    const expected = crossEntropyAndAccuracy(await model.predict(test.x), test.y);
    assert.ok(Math.abs(after.loss - expected.loss) <= 1e-5 * Math.max(1, expected.loss), `evaluate loss ${after.loss} vs ${expected.loss} from predict`);
    assert.equal(after.accuracy, expected.accuracy);
    assert.ok(after.macroF1! > 0.9 && Array.isArray(after.confusion));
    assert.equal(after.confusion!.flat().reduce((a, b) => a + b, 0), 90);

    // History: one value per epoch, loss falling, accuracy a fraction.
    assert.deepEqual(history.epoch, [...Array(epochs).keys()]);
    assert.deepEqual(Object.keys(history.history).sort(), ['accuracy', 'loss']);
    assert.equal(history.history.loss!.length, epochs);
    assert.equal(history.history.accuracy!.length, epochs);
    assert.ok(history.history.loss!.every(Number.isFinite));
    assert.ok(history.history.accuracy!.every((a) => a >= 0 && a <= 1));
    assert.ok(history.history.loss!.at(-1)! < history.history.loss![0]! / 2, `training loss per epoch: ${history.history.loss}`);
    assert.ok(history.history.accuracy!.at(-1)! >= 0.95);
    assert.deepEqual(JSON.parse(model.metadata.get('kiln.history')!), history.history);
  });

  it('validationSplit holds out the last examples and adds val_loss / val_accuracy per epoch', async () => {
    const model = blobClassifier();
    model.compile({ optimizer: optimizers.adam({ learningRate: 0.03 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const history = await model.fit(train.x, train.y, { epochs: 4, batchSize: 32, validationSplit: 0.25, verbose: 0 });
    assert.deepEqual(Object.keys(history.history).sort(), ['accuracy', 'loss', 'val_accuracy', 'val_loss']);
    assert.equal(history.history.val_loss!.length, 4);
    assert.equal(history.history.val_accuracy!.length, 4);
    // The last epoch's validation values are the final model on the last 25% of the data.
    const held = await model.evaluate(train.x.slice(180, 240), train.y.slice(180, 240));
    assert.ok(Math.abs(history.history.val_loss!.at(-1)! - held.loss) <= 1e-5, `val_loss ${history.history.val_loss!.at(-1)} vs ${held.loss}`);
    assert.equal(history.history.val_accuracy!.at(-1), held.accuracy);
  });

  it('validationData is evaluated each epoch', async () => {
    const model = blobClassifier();
    model.compile({ optimizer: optimizers.adam({ learningRate: 0.03 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const history = await model.fit(train.x, train.y, { epochs: 2, batchSize: 64, validationData: [test.x, test.y], verbose: 0 });
    const evaluated = await model.evaluate(test.x, test.y);
    assert.ok(Math.abs(history.history.val_loss!.at(-1)! - evaluated.loss) <= 1e-5);
  });

  it("'adam' and 'sparseCategoricalCrossentropy' as strings: Adam with Keras' lr 0.001 (first step moves each weight by ≈ lr)", async () => {
    const model = blobClassifier();
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['acc'] });
    assert.deepEqual(JSON.parse(model.metadata.get('kiln.training')!).optimizer.name, 'adam');
    const before = weightsOf(model);
    // One batch, one step: Adam's first update is lr·m/(√v + ε) = lr·sign(g) wherever g ≠ 0.
    await model.fit(train.x, train.y, { epochs: 1, batchSize: 240, verbose: 0 });
    const after = weightsOf(model);
    const moves = Object.keys(before).flatMap((k) => before[k]!.map((v, i) => Math.abs(after[k]![i]! - v)));
    const moved = moves.filter((m) => m > 1e-6);
    assert.ok(moved.length > moves.length / 2, 'most weights moved');
    for (const m of moved) assert.ok(Math.abs(m - 0.001) <= 2e-5, `a first Adam step moves a weight by lr = 0.001, this one by ${m}`);
  });
});

describe('fit computes gradient descent exactly', () => {
  it('dense + MSE + SGD with a stepDecay schedule equals hand-computed gradient descent (no shuffle)', async () => {
    const { x, y } = linear(8, 5);
    const model = sequential({ seed: 11, layers: [layers.dense({ units: 1, inputShape: [3] })] });
    const schedule = schedules.stepDecay({ initialLearningRate: 0.2, stepSize: 2, factor: 0.5 });
    model.compile({ optimizer: optimizers.sgd({ learningRate: schedule }), loss: 'mse' });
    const w0 = weightsOf(model);
    let kernel = [...w0['dense/kernel']!];
    let bias = w0['dense/bias']![0]!;
    const xs = Array.from(x.data);
    const ys = Array.from(y.data);
    const expectedEpochLoss: number[] = [];
    let step = 0;
    for (let epoch = 0; epoch < 2; epoch++) {
      let lossSum = 0;
      for (let start = 0; start < 8; start += 3) {
        const rows = [...Array(Math.min(3, 8 - start)).keys()].map((k) => start + k);
        const diff = rows.map((r) => kernel.reduce((a, w, j) => a + w * xs[r * 3 + j]!, bias) - ys[r]!);
        lossSum += diff.reduce((a, d) => a + d * d, 0);
        const lr = 0.2 * 0.5 ** Math.floor(step / 2);
        const gradK = kernel.map((_, j) => rows.reduce((a, r, k) => a + (2 * diff[k]! * xs[r * 3 + j]!) / rows.length, 0));
        const gradB = diff.reduce((a, d) => a + (2 * d) / rows.length, 0);
        kernel = kernel.map((w, j) => w - lr * gradK[j]!);
        bias -= lr * gradB;
        step++;
      }
      expectedEpochLoss.push(lossSum / 8);
    }
    const history = await model.fit(x, y, { epochs: 2, batchSize: 3, shuffle: false, verbose: 0 });
    const w = weightsOf(model);
    kernel.forEach((e, j) => assert.ok(Math.abs(w['dense/kernel']![j]! - e) <= 1e-5, `kernel[${j}]: expected ${e}, got ${w['dense/kernel']![j]}`));
    assert.ok(Math.abs(w['dense/bias']![0]! - bias) <= 1e-5, `bias: expected ${bias}, got ${w['dense/bias']![0]}`);
    // History's loss is the example-weighted mean of the batch losses before each update.
    expectedEpochLoss.forEach((e, k) => assert.ok(Math.abs(history.history.loss![k]! - e) <= 1e-5 * Math.max(1, e), `epoch ${k} loss ${history.history.loss![k]} vs ${e}`));
  });

  it('a second fit() call continues training (optimizer state and step kept, as in Keras)', async () => {
    const { x, y } = linear(12, 6);
    const make = () => {
      const m = sequential({ seed: 4, layers: [layers.dense({ units: 1, inputShape: [3] })] });
      m.compile({ optimizer: optimizers.adam({ learningRate: 0.05 }), loss: 'mse' });
      return m;
    };
    const once = make();
    await once.fit(x, y, { epochs: 2, batchSize: 12, verbose: 0 });
    const twice = make();
    await twice.fit(x, y, { epochs: 1, batchSize: 12, verbose: 0 });
    await twice.fit(x, y, { epochs: 1, batchSize: 12, verbose: 0 });
    const a = weightsOf(once);
    const b = weightsOf(twice);
    for (const k of Object.keys(a)) a[k]!.forEach((v, i) => assert.ok(Math.abs(v - b[k]![i]!) <= 1e-6, `${k}[${i}]`));
  });
});
