/**
 * What fit / evaluate / compile refuse (src/train/model.ts, its checks in src/train/fit-args.ts), each with a KilnError whose code a
 * program can branch on and whose message names the problem; and a diverging run that stops with
 * NAN_LOSS, naming the epoch and step, keeping the last good (finite) weights.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, optimizers, sequential, Tensor } from '../../src/index.js';
import { blobs, kilnError, linear, weightsOf } from './helpers.js';

function classifier() {
  const model = sequential({ seed: 2, layers: [layers.dense({ units: 4, activation: 'relu', inputShape: [2] }), layers.dense({ units: 3, activation: 'softmax' })] });
  model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

const { x, y } = blobs(12, 5);
const quiet = { epochs: 1, verbose: 0 as const };

describe('fit and evaluate refuse bad data', () => {
  it('x and y with different numbers of examples: INVALID_DATA naming both counts', async () => {
    await assert.rejects(classifier().fit(x, y.slice(0, 10), quiet), kilnError('INVALID_DATA', '12', '10'));
    await assert.rejects(classifier().evaluate(x.slice(0, 5), y), kilnError('INVALID_DATA', '5', '12'));
  });

  it('labels outside the class range, negative or fractional: INVALID_DATA naming the label and the range', async () => {
    const bad = (values: number[]) => new Tensor(Float32Array.from(values), [values.length], 'float32');
    const xs = x.slice(0, 4);
    await assert.rejects(classifier().fit(xs, bad([0, 1, 3, 2]), quiet), kilnError('INVALID_DATA', 'y[2]', '3', '[0, 3)'));
    await assert.rejects(classifier().fit(xs, bad([0, -1, 1, 2]), quiet), kilnError('INVALID_DATA', 'y[1]', '-1'));
    await assert.rejects(classifier().fit(xs, bad([0, 1, 1.5, 2]), quiet), kilnError('INVALID_DATA', 'y[2]', '1.5'));
    await assert.rejects(classifier().evaluate(xs, bad([0, 1, 2, 7])), kilnError('INVALID_DATA', 'y[3]', '7'));
  });

  it('one-hot labels for a sparse loss: INVALID_SHAPE pointing to categoricalCrossentropy', async () => {
    const oneHot = new Tensor(new Float32Array(12 * 3), [12, 3], 'float32');
    await assert.rejects(classifier().fit(x, oneHot, quiet), kilnError('INVALID_SHAPE', '[12, 3]', 'categoricalCrossentropy'));
  });

  it('NaN or infinity in x: INVALID_DATA naming the value and its index', async () => {
    for (const bad of [NaN, Infinity]) {
      const data = Float32Array.from(x.data);
      data[5] = bad;
      await assert.rejects(classifier().fit(new Tensor(data, [12, 2], 'float32'), y, quiet), kilnError('INVALID_DATA', 'x', String(bad), 'index 5'));
      await assert.rejects(classifier().evaluate(new Tensor(data, [12, 2], 'float32'), y), kilnError('INVALID_DATA', String(bad)));
    }
  });

  it('NaN in regression targets or in validation data: INVALID_DATA, not a NaN loss later', async () => {
    const reg = linear(6);
    const model = sequential({ layers: [layers.dense({ units: 1, inputShape: [3] })] });
    model.compile({ optimizer: 'sgd', loss: 'mse' });
    const targets = Float32Array.from(reg.y.data);
    targets[3] = NaN;
    await assert.rejects(model.fit(reg.x, new Tensor(targets, [6, 1], 'float32'), quiet), kilnError('INVALID_DATA', 'y', 'NaN'));
    const vx = Float32Array.from(reg.x.data);
    vx[0] = NaN;
    await assert.rejects(
      model.fit(reg.x, reg.y, { ...quiet, validationData: [new Tensor(vx, [6, 3], 'float32'), reg.y] }),
      kilnError('INVALID_DATA', 'validationData', 'NaN'),
    );
  });

  it('x of the wrong shape or dtype: INVALID_SHAPE / INVALID_ARGUMENT naming expected and found', async () => {
    const wrong = new Tensor(new Float32Array(12 * 3), [12, 3], 'float32');
    await assert.rejects(classifier().fit(wrong, y, quiet), kilnError('INVALID_SHAPE', '[null, 2]', '[12, 3]'));
    await assert.rejects(classifier().evaluate(wrong, y), kilnError('INVALID_SHAPE', '[null, 2]', '[12, 3]'));
    const flat = new Tensor(new Float32Array(24), [24], 'float32');
    await assert.rejects(classifier().fit(flat, y, quiet), kilnError('INVALID_SHAPE', '[24]'));
    const doubles = new Tensor(Float64Array.from(x.data), [12, 2], 'float64');
    await assert.rejects(classifier().fit(doubles, y, quiet), kilnError('INVALID_ARGUMENT', 'float32', 'float64'));
  });

  it('bad fit arguments: INVALID_ARGUMENT naming the argument', async () => {
    await assert.rejects(classifier().fit(x, y, { epochs: 0, verbose: 0 }), kilnError('INVALID_ARGUMENT', 'epochs'));
    await assert.rejects(classifier().fit(x, y, { batchSize: 2.5, verbose: 0 }), kilnError('INVALID_ARGUMENT', 'batchSize'));
    await assert.rejects(classifier().fit(x, y, { ...quiet, validationSplit: 1.5 }), kilnError('INVALID_ARGUMENT', 'validationSplit'));
  });
});

describe('compile', () => {
  it('fit or evaluate before compile: NOT_COMPILED', async () => {
    const model = sequential({ layers: [layers.dense({ units: 3, inputShape: [2] })] });
    await assert.rejects(model.fit(x, y, quiet), kilnError('NOT_COMPILED', 'compile'));
    await assert.rejects(model.evaluate(x, y), kilnError('NOT_COMPILED', 'compile'));
  });

  it('adding a layer after compile needs a new compile', async () => {
    const model = classifier();
    model.add(layers.dense({ units: 3, activation: 'softmax' }));
    await assert.rejects(model.fit(x, y, quiet), kilnError('NOT_COMPILED'));
  });

  it('unknown optimizer, loss or metric names: INVALID_ARGUMENT naming them', () => {
    const model = sequential({ layers: [layers.dense({ units: 3, inputShape: [2] })] });
    assert.throws(() => model.compile({ optimizer: 'adamax', loss: 'mse' }), kilnError('INVALID_ARGUMENT', "'adamax'"));
    assert.throws(() => model.compile({ optimizer: 'adam', loss: 'hinge' }), kilnError('INVALID_ARGUMENT', "'hinge'"));
    assert.throws(() => model.compile({ optimizer: 'adam', loss: 'mse', metrics: ['auc'] }), kilnError('INVALID_ARGUMENT', "'auc'"));
    assert.throws(() => model.compile({ optimizer: 'adam', loss: 'mse', metrics: ['accuracy'] }), kilnError('INVALID_ARGUMENT', 'accuracy', 'meanSquaredError'));
  });
});

describe('a diverging run', () => {
  /*
   * One unit, w = 1, b = 0, MSE, SGD with lr 1000, batches of one example, no shuffling. Step 1 (x =
   * 0.001, y = 0) is harmless: w → 0.998, b → −2. Step 2 (x = 1e18) has a finite loss (~1e36) but a
   * gradient of ~2e36, and lr·gradient overflows float32: the update would make the weights infinite.
   */
  function diverging() {
    const model = sequential({ layers: [layers.dense({ units: 1, inputShape: [1], kernelInitializer: 'ones' })] });
    model.compile({ optimizer: optimizers.sgd({ learningRate: 1000 }), loss: 'mse' });
    const xs = new Tensor(Float32Array.of(1e-3, 1e18, 1), [3, 1], 'float32');
    const ys = new Tensor(Float32Array.of(0, 0, 0), [3, 1], 'float32');
    return { model, xs, ys };
  }

  it('stops with NAN_LOSS naming the epoch and step, keeping the last good weights (finite)', async () => {
    const { model, xs, ys } = diverging();
    await assert.rejects(model.fit(xs, ys, { epochs: 3, batchSize: 1, shuffle: false, verbose: 0 }), kilnError('NAN_LOSS', 'epoch 1', 'step 2'));
    const w = weightsOf(model);
    assert.ok(Object.values(w).flat().every(Number.isFinite), `weights are finite: ${JSON.stringify(w)}`);
    // The weights after step 1, computed by hand: w = 1 − 1000·2·(0.001)·0.001, b = 0 − 1000·2·0.001.
    assert.ok(Math.abs(w['dense/kernel']![0]! - 0.998) <= 1e-6, `kernel ${w['dense/kernel']}`);
    assert.ok(Math.abs(w['dense/bias']![0]! + 2) <= 1e-5, `bias ${w['dense/bias']}`);
    // The model is still usable.
    assert.ok(Array.from((await model.predict(new Tensor(Float32Array.of(1), [1, 1], 'float32'))).data).every(Number.isFinite));
  });

  it('a loss that overflows to infinity is NAN_LOSS as well', async () => {
    const model = sequential({ layers: [layers.dense({ units: 1, inputShape: [1], kernelInitializer: 'ones' })] });
    model.compile({ optimizer: 'sgd', loss: 'mse' });
    // (3e20)² overflows float32 on the very first step.
    const xs = new Tensor(Float32Array.of(3e20, 3e20), [2, 1], 'float32');
    await assert.rejects(model.fit(xs, new Tensor(new Float32Array(2), [2, 1], 'float32'), { epochs: 1, verbose: 0 }), kilnError('NAN_LOSS', 'epoch 1', 'step 1'));
    assert.deepEqual(weightsOf(model), { 'dense/kernel': [1], 'dense/bias': [0] });
  });
});
