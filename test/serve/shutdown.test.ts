import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { assertClose, denseBody, denseModel, http, metricValue, randomInput, spawnServe, tmpDir, waitFor, writeConfig, writeVersion } from './helpers.js';

describe('the kiln serve CLI', () => {
  test('SIGTERM during an in-flight request: the request completes, new ones are refused, exit code 0', async () => {
    const { dir, cleanup } = await tmpDir();
    const model = denseModel(5);
    await writeVersion(dir, 'm', 1, model);
    // A lone request waits 1.5 s in the batching queue: long enough to be in flight at SIGTERM.
    await writeConfig(dir, 'm', { maxBatchSize: 8, maxQueueDelayMs: 1500 });
    const server = await spawnServe(['--model-repository', dir, '--log-level', 'info']);
    try {
      const x = randomInput(1, [3], 8);
      const started = Date.now();
      const inFlight = http(server.url, 'POST', '/v2/models/m/infer', denseBody(x));
      // SIGTERM once the request is waiting in the server's queue.
      await waitFor(async () => metricValue((await http(server.url, 'GET', '/metrics')).text, 'kiln_inference_pending_requests', 'model="m"') === 1, 5000, 'the request to be queued');
      server.child.kill('SIGTERM');
      const r = await inFlight;
      assert.equal(r.status, 200, r.text);
      assert.ok(Date.now() - started >= 1400, 'the request was answered before its batch ran');
      assertClose(r.json.outputs[0].data, (await model.predict(x)).data);
      const { code, signal } = await server.exit;
      assert.equal(signal, null);
      assert.equal(code, 0);
      // After exit nothing listens any more.
      await assert.rejects(http(server.url, 'GET', '/v2/health/live'));
      const messages = server.logs.map((l) => l.msg);
      assert.ok(messages.includes('signal received'));
      assert.ok(messages.includes('shutting down: finishing in-flight requests'));
      assert.ok(messages.includes('shut down'));
      // Structured logs: every line is a JSON object with a level and a time.
      assert.ok(server.logs.every((l) => typeof l.level === 'number' && typeof l.time === 'number'));
    } finally {
      server.child.kill('SIGKILL');
      await cleanup();
    }
  });

  test('one model file: kiln serve model.onnx --name NAME, and SIGINT exits 0', async () => {
    const { dir, cleanup } = await tmpDir();
    const model = denseModel(6);
    const file = path.join(dir, 'dense.onnx');
    await model.save(file);
    const server = await spawnServe([file, '--name', 'cnn']);
    try {
      const x = randomInput(2, [3]);
      const r = await http(server.url, 'POST', '/v1/models/cnn:predict', { instances: x.toArray() });
      assert.equal(r.status, 200, r.text);
      assertClose(r.json.predictions.flat(), (await model.predict(x)).data);
      assert.equal((await http(server.url, 'GET', '/v2/models/cnn/versions/1/ready')).status, 200);
      server.child.kill('SIGINT');
      assert.deepEqual(await server.exit, { code: 0, signal: null });
    } finally {
      server.child.kill('SIGKILL');
      await cleanup();
    }
  });

  test('bad arguments are reported without starting a server', async () => {
    const { dir, cleanup } = await tmpDir();
    try {
      await assert.rejects(spawnServe([]), /exited with 1.*give either a model file/s);
      await assert.rejects(spawnServe(['--model-repository', path.join(dir, 'missing')]), /exited with 1.*model repository .* is not a readable directory/s);
    } finally {
      await cleanup();
    }
  });
});
