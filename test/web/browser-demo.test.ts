/*
 * `kiln browser-demo --headless` end to end, on a short run (CI's time is counted): the page trains
 * in headless Chromium, its epochs and results reach the terminal, and the model it offers for
 * download is saved; that file loads in Node as a Sequential whose test accuracy is the one the page
 * reported (same weights, Node's runtime), and `serve` answers with Node's own predictions for it.
 * The full `--epochs 3` comparison with Node's fit is bench/browser/train.ts's (README: browser row).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runMain } from '../cli/helpers.js';
import * as kiln from '../../src/index.js';
import { tempDir } from '../train/helpers.js';
import { needsChromium } from './helpers.js';

test('kiln browser-demo --headless trains in Chromium, prints epochs, accuracy and images/s, and saves a model Node loads and serves unchanged', async (t) => {
  if (!needsChromium(t)) return;
  const dir = await tempDir();
  try {
    const file = dir.path('browser.onnx');
    const r = await runMain(['browser-demo', '--headless', '--epochs', '2', '--limit', '320', '--out', file]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /ONNX Runtime Web on 2 thread\(s\)|ONNX Runtime Web on 1 thread\(s\)/);
    assert.match(r.out, /^epoch 1\/2: loss \d+\.\d+, accuracy \d+\.\d+%, \d+ img\/s$/m);
    assert.match(r.out, /^epoch 2\/2: /m);
    const reported = /^Browser: test accuracy (\d+\.\d+)% .* training ([\d,]+) images\/s/m.exec(r.out);
    assert.ok(reported, r.out);
    assert.match(r.out, new RegExp(`Saved ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

    const model = await kiln.loadModel(file);
    assert.ok(model instanceof kiln.Sequential, 'the downloaded file is not a Kiln model');
    const { test: testSet } = await kiln.datasets.embedded();
    const inNode = 100 * kiln.metrics.accuracy(testSet.labels.data as Int32Array, await model.predict(testSet.images));
    // The same weights under onnxruntime-node: the argmax may flip only on a near-tie (0.1 point = 2 images).
    assert.ok(Math.abs(inNode - Number(reported[1])) <= 0.1, `Node evaluates the browser's model at ${inNode}%, the page reported ${reported[1]}%`);
    assert.ok(inNode > 30, `the browser's model is at ${inNode}%: it did not train`);

    const server = await kiln.serve({ model: file, name: 'browser', host: '127.0.0.1', port: 0, logLevel: 'silent' });
    try {
      const x = testSet.images.slice(0, 4);
      const served = (await kiln.client(server.url).infer('browser', { input: x })).output!;
      const expected = await model.predict(x);
      assert.deepEqual(served.shape, [4, 10]);
      for (let i = 0; i < expected.size; i++) assert.ok(Math.abs((served.data as Float32Array)[i]! - expected.data[i]!) < 1e-5);
    } finally {
      await server.close();
    }
    model.dispose();
  } finally {
    await dir.remove();
  }
});
