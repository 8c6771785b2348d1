/**
 * TorchServe's APIs in TorchServe's shapes: GET /ping ({"status": "Healthy"}), the management reads
 * (GET /models, paged; GET /models/{model}[/{version}|/all] as DescribeModel lists), on the inference
 * port or on --management-port, behind the same bearer token as every other protected route.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ServerHandle } from '../../src/serve/server.js';
import { classifierModel, denseModel, http, startServer, tmpDir, writeConfig, writeVersion } from './helpers.js';

describe('TorchServe APIs', () => {
  let server: ServerHandle;
  let cleanup: () => Promise<void>;

  before(async () => {
    const tmp = await tmpDir();
    cleanup = tmp.cleanup;
    await writeVersion(tmp.dir, 'dense', 1, denseModel(1));
    await writeVersion(tmp.dir, 'dense', 2, denseModel(2));
    await writeConfig(tmp.dir, 'dense', { versionPolicy: 'all', maxBatchSize: 16, maxQueueDelayMs: 3, instances: 2 });
    await writeVersion(tmp.dir, 'classifier', 1, classifierModel());
    await writeConfig(tmp.dir, 'classifier', { labels: ['a', 'b', 'c', 'd', 'e'], topK: 2 });
    server = await startServer({ modelRepository: tmp.dir });
  });
  after(async () => {
    await server.close();
    await cleanup();
  });

  test('GET /ping answers {"status": "Healthy"} when every model serves', async () => {
    const r = await http(server.url, 'GET', '/ping');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'Healthy' });
  });

  test('GET /models lists the models, paged as TorchServe pages them', async () => {
    const all = await http(server.url, 'GET', '/models');
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.json, {
      models: [
        { modelName: 'classifier', modelUrl: 'classifier/1/model.onnx' },
        { modelName: 'dense', modelUrl: 'dense/2/model.onnx' },
      ],
    });
    const first = await http(server.url, 'GET', '/models?limit=1');
    assert.deepEqual(first.json, { nextPageToken: '1', models: [{ modelName: 'classifier', modelUrl: 'classifier/1/model.onnx' }] });
    const second = await http(server.url, 'GET', '/models?limit=1&next_page_token=1');
    assert.deepEqual(second.json, { models: [{ modelName: 'dense', modelUrl: 'dense/2/model.onnx' }] });
    assert.equal((await http(server.url, 'GET', '/models?limit=zero')).status, 400);
  });

  test("GET /models/{model}[/{version}|/all] describes versions in DescribeModel's shape", async () => {
    const latest = await http(server.url, 'GET', '/models/dense');
    assert.equal(latest.status, 200, latest.text);
    assert.equal(latest.json.length, 1);
    const d = latest.json[0];
    assert.deepEqual(Object.keys(d), ['modelName', 'modelVersion', 'modelUrl', 'runtime', 'minWorkers', 'maxWorkers', 'batchSize', 'maxBatchDelay', 'loadedAtStartup', 'workers', 'jobQueueStatus']);
    assert.deepEqual({ ...d, workers: undefined }, {
      modelName: 'dense',
      modelVersion: '2',
      modelUrl: 'dense/2/model.onnx',
      runtime: 'onnxruntime',
      minWorkers: 2,
      maxWorkers: 2,
      batchSize: 16,
      maxBatchDelay: 3,
      loadedAtStartup: true,
      workers: undefined,
      jobQueueStatus: { remainingCapacity: 1024, pendingRequests: 0 },
    });
    assert.equal(d.workers.length, 2);
    for (const w of d.workers) {
      assert.deepEqual(Object.keys(w), ['id', 'startTime', 'status', 'memoryUsage', 'pid', 'gpu', 'gpuUsage']);
      assert.equal(w.status, 'READY');
      assert.ok(!Number.isNaN(Date.parse(w.startTime)));
      assert.equal(w.pid, process.pid);
    }
    const v1 = await http(server.url, 'GET', '/models/dense/1.0');
    assert.equal(v1.json[0].modelVersion, '1');
    const all = await http(server.url, 'GET', '/models/dense/all');
    assert.deepEqual(all.json.map((x: { modelVersion: string }) => x.modelVersion), ['1', '2']);
    const missing = await http(server.url, 'GET', '/models/dense/7');
    assert.equal(missing.status, 404);
    assert.match(missing.json.error, /model 'dense' has no version 7 \(versions: 1, 2\)/);
    assert.equal((await http(server.url, 'GET', '/models/nothing')).status, 404);
  });

  test('/predictions with JSON: one example or a batch; a classifier answers its top k names (config topK)', async () => {
    const one = await http(server.url, 'POST', '/predictions/classifier', { data: [1, 2, 3] });
    assert.equal(one.status, 200, one.text);
    assert.equal(Object.keys(one.json).length, 2);
    assert.ok(Object.keys(one.json).every((k) => ['a', 'b', 'c', 'd', 'e'].includes(k)));
    const sum = Object.values(one.json as Record<string, number>).reduce((a, b) => a + b, 0);
    assert.ok(sum > 0 && sum <= 1 + 1e-6);
    const batch = await http(server.url, 'POST', '/predictions/classifier', [
      [1, 2, 3],
      [3, 2, 1],
    ]);
    assert.equal(batch.json.length, 2);
    const bad = await http(server.url, 'POST', '/predictions/classifier', { data: { x: 1 } });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /the JSON body must be a nested list of numbers/);
    const unknown = await http(server.url, 'POST', '/predictions/nothing', [1, 2, 3]);
    assert.equal(unknown.status, 404);
  });
});

describe('TorchServe management on its own port, behind the auth token', () => {
  test('--management-port serves the management reads there and not on the inference port; both need the token', async () => {
    const tmp = await tmpDir();
    await writeVersion(tmp.dir, 'dense', 1, denseModel(1));
    const server = await startServer({ modelRepository: tmp.dir, managementPort: 0, authToken: 'secret' });
    try {
      assert.ok(server.managementUrl && server.managementUrl !== server.url);
      const auth = { authorization: 'Bearer secret' };
      const models = await http(server.managementUrl, 'GET', '/models', undefined, auth);
      assert.equal(models.status, 200, models.text);
      assert.equal(models.json.models[0].modelName, 'dense');
      assert.equal((await http(server.managementUrl, 'GET', '/models')).status, 401);
      assert.equal((await http(server.url, 'GET', '/models', undefined, auth)).status, 404);
      assert.equal((await http(server.url, 'POST', '/predictions/dense', [1, 2, 3])).status, 401);
      assert.equal((await http(server.url, 'POST', '/predictions/dense', [1, 2, 3], auth)).status, 200);
      // Health needs no token, as orchestrators probe it.
      assert.deepEqual((await http(server.url, 'GET', '/ping')).json, { status: 'Healthy' });
    } finally {
      await server.close();
      await tmp.cleanup();
    }
  });

  test('/ping says "Partial Healthy" while some model has no version serving, "Unhealthy" (500) when none does', async () => {
    const tmp = await tmpDir();
    await writeVersion(tmp.dir, 'dense', 1, denseModel(1));
    await writeVersion(tmp.dir, 'broken', 1, new Uint8Array([1, 2, 3]));
    const server = await startServer({ modelRepository: tmp.dir });
    try {
      assert.deepEqual((await http(server.url, 'GET', '/ping')).json, { status: 'Partial Healthy' });
      await server.registry.unloadModel('dense');
      const r = await http(server.url, 'GET', '/ping');
      assert.equal(r.status, 500);
      assert.deepEqual(r.json, { status: 'Unhealthy' });
    } finally {
      await server.close();
      await tmp.cleanup();
    }
  });
});
