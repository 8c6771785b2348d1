/*
 * Training packages (kiln export-trainer): a Trainer opened from one trains exactly as the model it
 * came from (same steps, same state, same loop), predicts and saves a model Node loads; a damaged
 * package, one of another Kiln version and data of the wrong shape are refused, naming the problem.
 */
import assert from 'node:assert/strict';
import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { runMain } from '../cli/helpers.js';
import * as kiln from '../../src/index.js';
import { Tensor } from '../../src/tensor.js';
import { blobs, kilnError, maxAbsDifference, tempDir, weightsOf } from './helpers.js';

function smallModel() {
  const model = kiln.sequential({ seed: 5, layers: [kiln.layers.dense({ units: 8, activation: 'relu', inputShape: [2] }), kiln.layers.dense({ units: 3 })] });
  model.compile({ optimizer: kiln.optimizers.adam({ learningRate: 0.01 }), loss: kiln.losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  return model;
}

test('a Trainer from the package trains, evaluates and predicts as the model itself, and saves a file Node loads', async () => {
  const { x, y } = blobs(96);
  const dir = await tempDir();
  try {
    const model = smallModel();
    await kiln.exportTrainer(model, dir.dir);
    const trainer = await kiln.loadTrainer(dir.dir);
    const args = { epochs: 2, batchSize: 16, verbose: 0 as const, seed: 9 };
    const fromPackage = await trainer.fit(x, y, args);
    const direct = await model.fit(x, y, { ...args, replicas: 1 });
    assert.ok(maxAbsDifference(weightsOf(trainer), weightsOf(model)) <= 1e-6, 'the package trained other weights');
    assert.deepEqual(fromPackage.history.loss!.map((l) => l.toFixed(5)), direct.history.loss!.map((l) => l.toFixed(5)));
    const [a, b] = [await trainer.evaluate(x, y), await model.evaluate(x, y)];
    assert.ok(Math.abs(a.loss - b.loss) < 1e-5 && a.accuracy === b.accuracy);
    assert.ok(a.accuracy! > 0.9, `accuracy ${a.accuracy}`);
    const predicted = await trainer.predict(x.slice(0, 5));
    const expected = await model.predict(x.slice(0, 5));
    for (let i = 0; i < expected.size; i++) assert.ok(Math.abs(predicted.data[i]! - expected.data[i]!) < 1e-5);
    await trainer.save(dir.path('trained.onnx'));
    const loaded = await kiln.loadModel(dir.path('trained.onnx'));
    assert.ok(loaded instanceof kiln.Sequential);
    assert.ok(maxAbsDifference(weightsOf(loaded), weightsOf(trainer)) === 0);
    trainer.dispose();
    model.dispose();
  } finally {
    await dir.remove();
  }
});

test('a Trainer resuming from its checkpoint continues exactly: 1 epoch + resume to 3 = 3 uninterrupted', async () => {
  const { x, y } = blobs(96);
  const dir = await tempDir();
  try {
    const model = smallModel();
    await kiln.exportTrainer(model, dir.dir);
    model.dispose();
    const args = { batchSize: 16, shuffle: true, verbose: 0 as const, seed: 9 };
    const uninterrupted = await kiln.loadTrainer(dir.dir);
    await uninterrupted.fit(x, y, { ...args, epochs: 3 });
    const first = await kiln.loadTrainer(dir.dir);
    await first.fit(x, y, { ...args, epochs: 1, checkpointPath: dir.path('one.ckpt') });
    const resumed = await kiln.loadTrainer(dir.dir);
    const history = await resumed.fit(x, y, { ...args, epochs: 3, resumeFrom: dir.path('one.ckpt') });
    assert.deepEqual(history.epoch, [1, 2], 'only the remaining epochs run');
    const diff = maxAbsDifference(weightsOf(resumed), weightsOf(uninterrupted));
    assert.ok(diff <= 1e-6, `resumed weights differ from the uninterrupted run by ${diff}`);
    // Sensitive: the checkpoint's weights without its optimizer state, step and RNG end elsewhere.
    const naive = await kiln.loadTrainer(dir.dir);
    naive.setWeights(new Map(first.getWeights()));
    await naive.fit(x, y, { ...args, epochs: 2 });
    assert.ok(maxAbsDifference(weightsOf(naive), weightsOf(uninterrupted)) > 1e-4, 'the check cannot tell a resumed run from a restarted one');
    for (const t of [uninterrupted, first, resumed, naive]) t.dispose();
  } finally {
    await dir.remove();
  }
});

test('a damaged, incomplete or other-version package is refused, naming the file and the mismatch', async () => {
  const dir = await tempDir();
  try {
    const model = smallModel();
    await kiln.exportTrainer(model, dir.dir);
    const manifest = await readFile(dir.path('manifest.json'), 'utf8');
    const step = await readFile(dir.path('train-step.onnx'));

    const flipped = Uint8Array.from(step);
    flipped[flipped.length >> 1] ^= 0xff;
    await writeFile(dir.path('train-step.onnx'), flipped);
    await assert.rejects(kiln.loadTrainer(dir.dir), kilnError('CORRUPT_FILE', 'train-step.onnx has SHA-256', 'damaged or replaced'));
    await writeFile(dir.path('train-step.onnx'), step);

    await truncate(dir.path('state.ckpt'), 100);
    await assert.rejects(kiln.loadTrainer(dir.dir), kilnError('CORRUPT_FILE', /state\.ckpt has 100 bytes, the manifest says \d+/));

    const older = JSON.parse(manifest) as { kilnVersion: string };
    older.kilnVersion = '0.0.9';
    await writeFile(dir.path('manifest.json'), JSON.stringify(older));
    await assert.rejects(kiln.loadTrainer(dir.dir), kilnError('VERSION_MISMATCH', 'written by Kiln 0.0.9', `this is Kiln ${kiln.KILN_VERSION}`));

    await writeFile(dir.path('manifest.json'), manifest.slice(0, 40));
    await assert.rejects(kiln.loadTrainer(dir.dir), kilnError('CORRUPT_FILE', 'manifest.json', 'not valid JSON'));
    await writeFile(dir.path('manifest.json'), JSON.stringify({ format: 'something-else' }));
    await assert.rejects(kiln.loadTrainer(dir.dir), kilnError('CORRUPT_FILE', 'is not a Kiln training package manifest'));
    await rm(dir.path('manifest.json'));
    await assert.rejects(kiln.loadTrainer(dir.dir), kilnError('FILE_NOT_FOUND', 'has no manifest.json'));
    model.dispose();
  } finally {
    await dir.remove();
  }
});

test('data of the wrong shape for the package is refused before any step runs', async () => {
  const dir = await tempDir();
  try {
    await kiln.exportTrainer(smallModel(), dir.dir);
    const trainer = await kiln.loadTrainer(dir.dir);
    const x = new Tensor(new Float32Array(8 * 3), [8, 3], 'float32');
    const y = new Tensor(new Int32Array(8), [8], 'int32');
    await assert.rejects(trainer.fit(x, y), kilnError('INVALID_SHAPE', 'x must have shape [null, 2]', 'got [8, 3]'));
    const { x: good } = blobs(8);
    await assert.rejects(trainer.fit(good, new Tensor(Int32Array.of(0, 1, 2, 3, 0, 1, 2, 0), [8], 'int32')), kilnError('INVALID_DATA', 'label y[3] is 3'));
    trainer.dispose();
  } finally {
    await dir.remove();
  }
});

test('kiln export-trainer writes the package of a saved model; without --out it says what is missing', async () => {
  const dir = await tempDir();
  try {
    const model = smallModel();
    await model.save(dir.path('model.onnx'));
    const r = await runMain(['export-trainer', dir.path('model.onnx'), '--out', dir.path('pkg'), '--lr', '0.005']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Training package for sequential \(51 trainable weights; adam, sparseCategoricalCrossentropy\)/);
    const trainer = await kiln.loadTrainer(dir.path('pkg'));
    assert.equal(trainer.manifest.optimizer.config.learningRate, 0.005);
    trainer.dispose();
    const missing = await runMain(['export-trainer', dir.path('model.onnx')]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /--out DIR is required/);
    model.dispose();
  } finally {
    await dir.remove();
  }
});
