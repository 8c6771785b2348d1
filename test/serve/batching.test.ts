import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import { Random } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';
import { assertClose, denseBody, denseModel, fixedShapeModel, http, metricValue, randomInput, startServer, tmpDir, writeConfig, writeVersion, type HttpResult } from './helpers.js';

/**
 * [N, 512] → depth × (MatMul by one shared 512×512 weight, Tanh): compute grows with depth while the
 * file stays 1 MiB. The gain of 2 keeps Tanh's outputs near ±1, away from subnormal floats, which
 * would make the run's length depend on the CPU's handling of them.
 */
function deepModel(depth: number): Uint8Array {
  const rng = new Random(9);
  const w = new Float32Array(512 * 512);
  const limit = 2 * Math.sqrt(3 / 512);
  for (let k = 0; k < w.length; k++) w[k] = rng.uniform(-limit, limit);
  const g = new Graph('deep');
  const weight = g.constant(new Tensor(w, [512, 512], 'float32'), 'w');
  let x = g.input('x', 'float32', ['N', 512]);
  for (let i = 0; i < depth; i++) x = g.op1('Tanh', [g.op1('MatMul', [x, weight])]);
  g.output(x, 'y');
  return encodeModel(modelToProto(g));
}

describe('dynamic batching', () => {
  test('concurrent batch-1 requests share ONNX Runtime runs and each gets its own rows back', async () => {
    const { dir, cleanup } = await tmpDir();
    const model = denseModel(4);
    await writeVersion(dir, 'm', 1, model);
    // The 12 requests hold 16 rows, a full batch, which runs as soon as the last arrives; the long
    // delay only keeps a loaded machine's slow arrivals from running one by one.
    await writeConfig(dir, 'm', { maxBatchSize: 16, maxQueueDelayMs: 5000 });
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
    // Proved by the order of events, not by a time limit. /metrics counts a run as queued when the
    // batcher hands it to the worker thread (queue duration's _count) and as executed when its result
    // is back (exec_count). A /metrics reply showing the run queued but not executed, then health and
    // metadata answering, then another /metrics reply still showing it unexecuted: all three were
    // served while ONNX Runtime computed. An event loop blocked by the run could not place a single
    // reply inside it. A machine fast enough to finish a run before a probe lands gets a model 16×
    // deeper instead of a failure, so nothing depends on the machine's speed or load.
    const { dir, cleanup } = await tmpDir();
    const depths = [64, 1024];
    for (const depth of depths) await writeVersion(dir, `deep${depth}`, 1, deepModel(depth));
    const server = await startServer({ modelRepository: dir });
    try {
      const rows = 64;
      const body = { inputs: [{ name: 'x', shape: [rows, 512], datatype: 'FP32', data: new Array(rows * 512).fill(0.01) }] };
      let answeredDuringRun = false;
      for (const depth of depths) {
        const labels = `model="deep${depth}",version="1"`;
        const inFlight = (metrics: HttpResult) => {
          assert.equal(metrics.status, 200);
          const queued = metricValue(metrics.text, 'kiln_inference_queue_duration_seconds_count', labels);
          const executed = metricValue(metrics.text, 'kiln_inference_exec_count_total', labels);
          return { running: queued > executed, executed };
        };
        let done = false;
        const infer = http(server.url, 'POST', `/v2/models/deep${depth}/infer`, body).finally(() => {
          done = true;
        });
        while (!done && !answeredDuringRun) {
          const before = inFlight(await http(server.url, 'GET', '/metrics'));
          const [live, meta] = await Promise.all([http(server.url, 'GET', '/v2/health/live'), http(server.url, 'GET', `/v2/models/deep${depth}`)]);
          assert.equal(live.status, 200);
          assert.equal(meta.status, 200);
          const after = inFlight(await http(server.url, 'GET', '/metrics'));
          answeredDuringRun = before.running && after.running && after.executed === before.executed;
        }
        assert.equal((await infer).status, 200);
        if (answeredDuringRun) break;
      }
      assert.ok(answeredDuringRun, `no probe was answered during a run, even at depth ${depths.at(-1)}`);
    } finally {
      await server.close();
      await cleanup();
    }
  });
});
