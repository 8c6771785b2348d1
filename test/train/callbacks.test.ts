/**
 * Callbacks (src/train/callbacks.ts) as fit() drives them: hook order and logs, earlyStopping with
 * patience and restoreBestWeights, modelCheckpoint files that load and predict like the model.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { callbacks, layers, loadModel, optimizers, sequential, Sequential, type Tensor } from '../../src/index.js';
import { blobs, kilnError, linear, maxAbsDifference, tempDir, weightsOf } from './helpers.js';

/** Full-batch SGD with a small rate on linear regression: the loss falls every epoch. */
function regression(): Sequential {
  const model = sequential({ seed: 9, layers: [layers.dense({ units: 1, inputShape: [3] })] });
  model.compile({ optimizer: optimizers.sgd({ learningRate: 0.05 }), loss: 'mse' });
  return model;
}

/** Records the weights at the end of each epoch (put it before the callback under test). */
function weightRecorder() {
  const snapshots: Record<string, number[]>[] = [];
  return {
    snapshots,
    onEpochEnd(_e: number, _l: unknown, model: { getWeights(): Map<string, Tensor> }) {
      snapshots.push(weightsOf(model));
    },
  };
}

let temp: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  temp = await tempDir();
});
after(() => temp.remove());

describe('custom callbacks', () => {
  it('hooks run in order with the logs of the batch and the epoch', async () => {
    const { x, y } = blobs(20, 3);
    const model = sequential({ seed: 1, layers: [layers.dense({ units: 3, activation: 'softmax', inputShape: [2] })] });
    model.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const events: string[] = [];
    const epochLogs: Record<string, number>[] = [];
    let endLogs: Record<string, number> | undefined;
    const history = await model.fit(x, y, {
      epochs: 2,
      batchSize: 6,
      validationSplit: 0.25, // 15 training examples: batches of 6, 6, 3
      verbose: 0,
      callbacks: [
        {
          onTrainBegin: (m) => void events.push(`trainBegin ${m === model}`),
          onEpochBegin: (e) => void events.push(`epochBegin ${e}`),
          onBatchEnd: (s, logs) => {
            assert.deepEqual(Object.keys(logs).sort(), ['accuracy', 'loss']);
            events.push(`batchEnd ${s}`);
          },
          onEpochEnd: (e, logs) => {
            epochLogs.push({ ...logs });
            events.push(`epochEnd ${e}`);
          },
          onTrainEnd: (logs) => {
            endLogs = { ...logs };
            events.push('trainEnd');
          },
        },
      ],
    });
    assert.deepEqual(events, [
      'trainBegin true',
      'epochBegin 0', 'batchEnd 0', 'batchEnd 1', 'batchEnd 2', 'epochEnd 0',
      'epochBegin 1', 'batchEnd 3', 'batchEnd 4', 'batchEnd 5', 'epochEnd 1',
      'trainEnd',
    ]);
    assert.deepEqual(Object.keys(epochLogs[0]!).sort(), ['accuracy', 'loss', 'val_accuracy', 'val_loss']);
    epochLogs.forEach((l, e) => assert.deepEqual(l, Object.fromEntries(Object.entries(history.history).map(([k, v]) => [k, v[e]!]))));
    assert.deepEqual(endLogs, epochLogs[1]);
  });

  it('a callback can stop training by setting stopTraining', async () => {
    const { x, y } = linear(8);
    const model = regression();
    const history = await model.fit(x, y, { epochs: 10, batchSize: 8, verbose: 0, callbacks: [{ onEpochEnd: (e, _l, m) => void (m.stopTraining = e === 2) }] });
    assert.deepEqual(history.epoch, [0, 1, 2]);
  });
});

describe('earlyStopping', () => {
  it('stops after `patience` epochs without improvement', async () => {
    const { x, y } = linear(16);
    const model = regression();
    // minDelta larger than any possible change: nothing after the first epoch counts as improvement.
    const stop = callbacks.earlyStopping({ monitor: 'loss', patience: 2, minDelta: 1e9 });
    const history = await model.fit(x, y, { epochs: 10, batchSize: 16, verbose: 0, callbacks: [stop] });
    assert.deepEqual(history.epoch, [0, 1, 2]);
    assert.equal(stop.stoppedEpoch, 2);
  });

  it('runs every epoch while the monitored value keeps improving', async () => {
    const { x, y } = linear(16);
    const stop = callbacks.earlyStopping({ monitor: 'loss', patience: 1 });
    const history = await regression().fit(x, y, { epochs: 6, batchSize: 16, verbose: 0, callbacks: [stop] });
    assert.equal(history.epoch.length, 6);
    assert.equal(stop.stoppedEpoch, null);
  });

  it('restoreBestWeights puts back the best epoch’s weights, and later training starts from them', async () => {
    const { x, y } = linear(16);
    const model = regression();
    const recorder = weightRecorder();
    // mode 'max' on a falling loss: epoch 0 is the best, and the weights go back to it at the stop.
    const stop = callbacks.earlyStopping({ monitor: 'loss', mode: 'max', patience: 2, restoreBestWeights: true });
    await model.fit(x, y, { epochs: 10, batchSize: 16, verbose: 0, callbacks: [recorder, stop] });
    assert.equal(recorder.snapshots.length, 3);
    assert.ok(maxAbsDifference(recorder.snapshots[2]!, recorder.snapshots[0]!) > 1e-4, 'the weights did change after epoch 0');
    assert.deepEqual(weightsOf(model), recorder.snapshots[0]);
    // predict() and evaluate() see the restored weights.
    const fresh = regression();
    fresh.setWeights(model.getWeights());
    assert.deepEqual(Array.from((await model.predict(x)).data), Array.from((await fresh.predict(x)).data));
    assert.equal((await model.evaluate(x, y)).loss, (await fresh.evaluate(x, y)).loss);
  });

  it('monitoring a value that is not logged fails naming it', async () => {
    const { x, y } = linear(8);
    await assert.rejects(
      regression().fit(x, y, { epochs: 2, verbose: 0, callbacks: [callbacks.earlyStopping({ monitor: 'val_loss' })] }),
      kilnError('INVALID_ARGUMENT', "'val_loss'"),
    );
  });
});

describe('modelCheckpoint', () => {
  it('writes an .onnx per epoch that kiln.loadModel reads back and that predicts like the model did', async () => {
    const { x, y } = blobs(30, 4);
    const model = sequential({ seed: 5, layers: [layers.dense({ units: 8, activation: 'tanh', inputShape: [2] }), layers.dense({ units: 3, activation: 'softmax' })] });
    model.compile({ optimizer: optimizers.adam({ learningRate: 0.05 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const recorder = weightRecorder();
    const pattern = temp.path('model-{epoch}.onnx');
    await model.fit(x, y, { epochs: 2, batchSize: 10, verbose: 0, callbacks: [recorder, callbacks.modelCheckpoint({ filepath: pattern })] });
    for (const epoch of [1, 2]) assert.ok(existsSync(temp.path(`model-${epoch}.onnx`)), `epoch ${epoch} saved`);
    const first = (await loadModel(temp.path('model-1.onnx'))) as Sequential;
    assert.ok(first instanceof Sequential);
    assert.deepEqual(weightsOf(first), recorder.snapshots[0]);
    const last = (await loadModel(temp.path('model-2.onnx'))) as Sequential;
    assert.deepEqual(Array.from((await last.predict(x)).data), Array.from((await model.predict(x)).data));
  });

  it('saveBestOnly writes only when the monitored value improves', async () => {
    const { x, y } = linear(16);
    const model = regression();
    const recorder = weightRecorder();
    const file = temp.path('best.onnx');
    // The loss falls every epoch, so in mode 'max' only epoch 0 is ever "best".
    await model.fit(x, y, { epochs: 3, batchSize: 16, verbose: 0, callbacks: [recorder, callbacks.modelCheckpoint({ filepath: file, monitor: 'loss', mode: 'max', saveBestOnly: true })] });
    assert.deepEqual(weightsOf((await loadModel(file)) as Sequential), recorder.snapshots[0]);
    const best = temp.path('best-min.onnx');
    await regression().fit(x, y, { epochs: 3, batchSize: 16, verbose: 0, callbacks: [callbacks.modelCheckpoint({ filepath: best, monitor: 'loss', saveBestOnly: true })] });
    const trained = regression();
    await trained.fit(x, y, { epochs: 3, batchSize: 16, verbose: 0 });
    assert.deepEqual(weightsOf((await loadModel(best)) as Sequential), weightsOf(trained));
  });
});
