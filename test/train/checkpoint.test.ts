/**
 * Training checkpoints (src/train/checkpoint.ts, fit's checkpointPath / resumeFrom): 2 epochs, then a
 * new model instance resuming to 4, ends with exactly the weights of 4 uninterrupted epochs — weights,
 * optimizer slots, step count, moving statistics and the shuffling RNG all carried over.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { layers, optimizers, sequential } from '../../src/index.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { blobs, kilnError, maxAbsDifference, tempDir, weightsOf } from './helpers.js';

/** Dense → batch norm → softmax, Adam: trainable weights, two optimizer slots and moving statistics. */
function makeModel(optimizer: 'adam' | 'sgd' = 'adam') {
  const model = sequential({
    seed: 21,
    layers: [
      layers.dense({ units: 6, activation: 'tanh', inputShape: [2] }),
      layers.batchNormalization({ momentum: 0.8 }),
      layers.dense({ units: 3, activation: 'softmax' }),
    ],
  });
  model.compile({ optimizer: optimizer === 'adam' ? optimizers.adam({ learningRate: 0.02 }) : optimizers.sgd({ learningRate: 0.1, momentum: 0.9 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

const data = blobs(48, 8);
const fitArgs = { batchSize: 10, shuffle: true, verbose: 0 as const };

let temp: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  temp = await tempDir();
});
after(() => temp.remove());

describe('resuming from a training checkpoint', () => {
  it('2 epochs + resume to 4 in a new model instance = 4 uninterrupted epochs', async () => {
    const uninterrupted = makeModel();
    await uninterrupted.fit(data.x, data.y, { ...fitArgs, epochs: 4, checkpointPath: temp.path('full.ckpt') });

    const firstHalf = makeModel();
    await firstHalf.fit(data.x, data.y, { ...fitArgs, epochs: 2, checkpointPath: temp.path('half.ckpt') });
    const ckpt = await loadCheckpoint(temp.path('half.ckpt'));
    assert.equal(ckpt.epoch, 2);
    assert.equal(ckpt.step, 2 * 5); // 48 examples in batches of 10
    assert.deepEqual([...ckpt.slots.keys()].sort(), ['m', 'v']);
    assert.ok(ckpt.weights.has('batch_normalization/moving_mean'), 'moving statistics are saved');

    const resumed = makeModel();
    const history = await resumed.fit(data.x, data.y, { ...fitArgs, epochs: 4, resumeFrom: temp.path('half.ckpt') });
    assert.deepEqual(history.epoch, [2, 3], 'only the remaining epochs run');
    const diff = maxAbsDifference(weightsOf(resumed), weightsOf(uninterrupted));
    assert.ok(diff <= 1e-6, `resumed weights differ from the uninterrupted run by ${diff}`);
    const full = await loadCheckpoint(temp.path('full.ckpt'));
    assert.equal(full.epoch, 4);
    assert.equal(full.step, 20);

    // The check is sensitive: continuing from the same weights without the checkpoint's optimizer
    // state and RNG (a fresh compile, shuffles restarting from the seed) ends elsewhere.
    const naive = makeModel();
    naive.setWeights(firstHalf.getWeights());
    await naive.fit(data.x, data.y, { ...fitArgs, epochs: 2 });
    assert.ok(maxAbsDifference(weightsOf(naive), weightsOf(uninterrupted)) > 1e-4);
  });

  it('also with SGD momentum (one slot)', async () => {
    const uninterrupted = makeModel('sgd');
    await uninterrupted.fit(data.x, data.y, { ...fitArgs, epochs: 3 });
    await makeModel('sgd').fit(data.x, data.y, { ...fitArgs, epochs: 1, checkpointPath: temp.path('sgd.ckpt') });
    const resumed = makeModel('sgd');
    await resumed.fit(data.x, data.y, { ...fitArgs, epochs: 3, resumeFrom: temp.path('sgd.ckpt') });
    assert.ok(maxAbsDifference(weightsOf(resumed), weightsOf(uninterrupted)) <= 1e-6);
  });

  it('refuses a checkpoint written with another optimizer, naming both', async () => {
    await makeModel('sgd').fit(data.x, data.y, { ...fitArgs, epochs: 1, checkpointPath: temp.path('other.ckpt') });
    await assert.rejects(makeModel('adam').fit(data.x, data.y, { ...fitArgs, epochs: 2, resumeFrom: temp.path('other.ckpt') }), kilnError('INVALID_ARGUMENT', 'sgd', 'adam'));
  });

  it('a missing or foreign checkpoint file is FILE_NOT_FOUND / CORRUPT_FILE', async () => {
    await assert.rejects(makeModel().fit(data.x, data.y, { ...fitArgs, epochs: 2, resumeFrom: temp.path('nope.ckpt') }), kilnError('FILE_NOT_FOUND', 'nope.ckpt'));
    await writeFile(temp.path('foreign.ckpt'), 'not a checkpoint at all');
    await assert.rejects(loadCheckpoint(temp.path('foreign.ckpt')), kilnError('CORRUPT_FILE', 'KILNCKP1'));
  });
});
