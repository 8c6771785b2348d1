import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertClose, denseBody, denseModel, fixedShapeModel, http, metricValue, randomInput, slowModel, startServer, tmpDir, writeConfig, writeVersion } from './helpers.js';

describe('dynamic batching', () => {
  test('concurrent batch-1 requests share ONNX Runtime runs and each gets its own rows back', async () => {
    const { dir, cleanup } = await tmpDir();
    const model = denseModel(4);
    await writeVersion(dir, 'm', 1, model);
    await writeConfig(dir, 'm', { maxBatchSize: 16, maxQueueDelayMs: 300 });
    const server = await startServer({ modelRepository: dir });
    try {
      const n = 12;
      const inputs = Array.from({ length: n }, (_, i) => randomInput(i % 3 === 0 ? 2 : 1, [3], 100 + i));
      const replies = await Promise.all(inputs.map((x) => http(server.url, 'POST', '/v2/models/m/infer', denseBody(x))));
      for (const [i, r] of replies.entries()) {
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.outputs[0].shape, [inputs[i]!.shape[0], 2]);
        assertClose(r.json.outputs[0].data, (await model.predict(inputs[i]!)).data);
      }
      const metrics = (await http(server.url, 'GET', '/metrics')).text;
      const labels = 'model="m",version="1"';
      const executions = metricValue(metrics, 'kiln_inference_exec_count_total', labels);
      const rows = metricValue(metrics, 'kiln_inference_count_total', labels);
      // Warm-up runs go straight to the sessions, so only the requests are counted.
      assert.equal(rows, inputs.reduce((a, x) => a + x.shape[0]!, 0));
      assert.ok(executions < n, `${n} requests took ${executions} executions`);
      assert.equal(metricValue(metrics, 'kiln_inference_request_success_total', labels), n);
    } finally {
      await server.close();
      await cleanup();
    }
  });

  test('a model whose first dimension is not a batch dimension is never batched', async () => {
    const { dir, cleanup } = await tmpDir();
    await writeVersion(dir, 'fixed', 1, fixedShapeModel());
    await writeConfig(dir, 'fixed', { maxBatchSize: 16, maxQueueDelayMs: 50 });
    const server = await startServer({ modelRepository: dir });
    try {
      const body = (k: number) => ({ inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [k, 1, 2, 3, 4, 5] }] });
      const replies = await Promise.all(Array.from({ length: 6 }, (_, k) => http(server.url, 'POST', '/v2/models/fixed/infer', body(k))));
      replies.forEach((r, k) => assert.deepEqual(r.json.outputs[0].data, [2 * k, 2, 4, 6, 8, 10]));
      const metrics = (await http(server.url, 'GET', '/metrics')).text;
      assert.equal(metricValue(metrics, 'kiln_inference_exec_count_total', 'model="fixed"'), 6);
    } finally {
      await server.close();
      await cleanup();
    }
  });

  test('a full queue answers 429 with the limit; a request past its timeout answers 503', async () => {
    const { dir, cleanup } = await tmpDir();
    await writeVersion(dir, 'm', 1, denseModel(1));
    await writeConfig(dir, 'm', { maxBatchSize: 64, maxQueueDelayMs: 1500, maxQueueSize: 2 });
    const server = await startServer({ modelRepository: dir, requestTimeoutMs: 5000 });
    try {
      const x = randomInput(1, [3]);
      const replies = await Promise.all(Array.from({ length: 5 }, () => http(server.url, 'POST', '/v2/models/m/infer', denseBody(x))));
      const statuses = replies.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 200, 429, 429, 429]);
      const full = replies.find((r) => r.status === 429)!;
      assert.match(full.json.error, /request queue is full \(2 requests waiting, maxQueueSize 2\)/);
      const metrics = (await http(server.url, 'GET', '/metrics')).text;
      assert.equal(metricValue(metrics, 'kiln_inference_request_failure_total', 'reason="queue_full"'), 3);
    } finally {
      await server.close();
      await cleanup();
    }
    const second = await tmpDir();
    await writeVersion(second.dir, 'm', 1, denseModel(1));
    await writeConfig(second.dir, 'm', { maxBatchSize: 64, maxQueueDelayMs: 2000 });
    const slow = await startServer({ modelRepository: second.dir, requestTimeoutMs: 150 });
    try {
      const r = await http(slow.url, 'POST', '/v2/models/m/infer', denseBody(randomInput(1, [3])));
      assert.equal(r.status, 503);
      assert.match(r.json.error, /timed out after 150 ms \(still queued\)/);
    } finally {
      await slow.close();
      await second.cleanup();
    }
  });

  test('health, metadata and metrics answer while ONNX Runtime computes in its worker thread', async () => {
    const { dir, cleanup } = await tmpDir();
    await writeVersion(dir, 'slow', 1, slowModel());
    const server = await startServer({ modelRepository: dir });
    try {
      const rows = 512;
      let done = false;
      const started = Date.now();
      const infer = http(server.url, 'POST', '/v2/models/slow/infer', { inputs: [{ name: 'x', shape: [rows, 512], datatype: 'FP32', data: new Array(rows * 512).fill(0.01) }] }).finally(() => {
        done = true;
      });
      await new Promise((r) => setTimeout(r, 100));
      let answeredWhileBusy = 0;
      while (!done && Date.now() - started < 20_000) {
        const t = Date.now();
        const [live, metrics, meta] = await Promise.all([http(server.url, 'GET', '/v2/health/live'), http(server.url, 'GET', '/metrics'), http(server.url, 'GET', '/v2/models/slow')]);
        assert.equal(live.status, 200);
        assert.equal(metrics.status, 200);
        assert.equal(meta.status, 200);
        if (!done) {
          answeredWhileBusy++;
          assert.ok(Date.now() - t < 1000, `probes took ${Date.now() - t} ms while the model computed`);
        }
      }
      assert.equal((await infer).status, 200);
      assert.ok(answeredWhileBusy >= 1, 'no probe answered while the model was computing');
    } finally {
      await server.close();
      await cleanup();
    }
  });
});
