/*
 * A training package in the browser: the page fetches it by URL, checks it, and trains the same
 * steps Node's Trainer trains, to the same weights (within 1e-4); a package of another Kiln version is
 * refused in the page with the versions named. loadModel takes a URL or bytes in the page.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import * as kiln from '../../src/index.js';
import { blobs, maxAbsDifference, tempDir, weightsOf } from '../train/helpers.js';
import { needsChromium, openBlankPage } from './helpers.js';

test('a package trained in Chromium ends with the weights Node trains it to; another version is refused in the page', async (t) => {
  if (!needsChromium(t)) return;
  const dir = await tempDir();
  const model = kiln.sequential({ seed: 4, layers: [kiln.layers.dense({ units: 16, activation: 'relu', inputShape: [2] }), kiln.layers.dense({ units: 3 })] });
  model.compile({ optimizer: 'adam', loss: kiln.losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  await kiln.exportTrainer(model, dir.path('pkg'));
  await kiln.exportTrainer(model, dir.path('old'));
  const manifest = JSON.parse(await readFile(dir.path('old/manifest.json'), 'utf8')) as { kilnVersion: string };
  manifest.kilnVersion = '0.0.9';
  await writeFile(dir.path('old/manifest.json'), JSON.stringify(manifest));
  const { x, y } = blobs(64);
  const session = await openBlankPage({ pages: {}, folders: [{ prefix: '/packages/', dir: dir.dir }] });
  try {
    const page = await session.browser.page.evaluate(
      `(async () => {
        const kiln = await import('/kiln/kiln.js');
        const x = new kiln.Tensor(Float32Array.from(${JSON.stringify(Array.from(x.data))}), [64, 2], 'float32');
        const y = new kiln.Tensor(Int32Array.from(${JSON.stringify(Array.from(y.data))}), [64], 'int32');
        const trainer = await kiln.loadTrainer('/packages/pkg/');
        await trainer.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0, seed: 3 });
        const weights = Object.fromEntries([...trainer.getWeights()].map(([k, t]) => [k, Array.from(t.data)]));
        const refused = await kiln.loadTrainer('/packages/old/').then(() => 'opened', (e) => e.code + ': ' + e.message);
        // loadModel by URL and from bytes: the package's model file, and the trained one the trainer writes.
        const byUrl = await kiln.loadModel('/packages/pkg/model.onnx');
        const fromBytes = await kiln.loadModel(trainer.toOnnx());
        const probe = x.slice(0, 3);
        const predictions = {
          byUrl: Array.from((await byUrl.predict(probe)).data),
          fromBytes: Array.from((await fromBytes.predict(probe)).data),
          trainer: Array.from((await trainer.predict(probe)).data),
        };
        const missing = await kiln.loadModel('/packages/nothing.onnx').then(() => 'loaded', (e) => e.code + ': ' + e.message);
        return { weights, refused, kind: byUrl instanceof kiln.Sequential ? 'Sequential' : 'other', predictions, missing };
      })()`,
    ) as { weights: Record<string, number[]>; refused: string; kind: string; predictions: Record<'byUrl' | 'fromBytes' | 'trainer', number[]>; missing: string };
    const trainer = await kiln.loadTrainer(dir.path('pkg'));
    await trainer.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0, seed: 3 });
    const difference = maxAbsDifference(page.weights, weightsOf(trainer));
    console.log(`training package, browser vs Node after 8 steps: max |Δw| = ${difference.toExponential(2)}`);
    assert.ok(difference <= 1e-4, `weights differ by ${difference}`);
    assert.ok(maxAbsDifference(page.weights, weightsOf(model)) > 1e-3, 'the page did not train');
    assert.match(page.refused, /^VERSION_MISMATCH: training package '\/packages\/old\/' was written by Kiln 0\.0\.9/);
    assert.equal(page.kind, 'Sequential');
    const untrained = Array.from((await model.predict(x.slice(0, 3))).data);
    page.predictions.byUrl.forEach((v, i) => assert.ok(Math.abs(v - untrained[i]!) < 1e-5, 'loadModel(url) in the page predicts otherwise than Node'));
    page.predictions.fromBytes.forEach((v, i) => assert.ok(Math.abs(v - page.predictions.trainer[i]!) < 1e-6, 'loadModel(bytes) lost the trained weights'));
    assert.equal(page.missing, "FILE_NOT_FOUND: model file '/packages/nothing.onnx' does not exist");
    trainer.dispose();
  } finally {
    await session.close();
    await dir.remove();
    model.dispose();
  }
});
