import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ServerHandle } from '../../src/serve/server.js';
import { denseBody, denseModel, http, randomInput, startServer, tmpDir, writeConfig, writeVersion } from './helpers.js';

describe('limits, auth and metrics', () => {
  let server: ServerHandle;
  let cleanup: () => Promise<void>;
  const TOKEN = 's3cret-token';

  before(async () => {
    const tmp = await tmpDir();
    cleanup = tmp.cleanup;
    await writeVersion(tmp.dir, 'm', 1, denseModel(1));
    await writeConfig(tmp.dir, 'm', { maxBatchSize: 4 });
    server = await startServer({ modelRepository: tmp.dir, bodyLimit: 8192, maxElements: 10_000, authToken: TOKEN });
  });
  after(async () => {
    await server.close();
    await cleanup();
  });

  const auth = { authorization: `Bearer ${TOKEN}` };

  test('inference and management routes need the bearer token; health and metrics do not', async () => {
    const body = denseBody(randomInput(1, [3]));
    const none = await http(server.url, 'POST', '/v2/models/m/infer', body);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.match(none.json.error, /Authorization: Bearer/);
    const wrong = await http(server.url, 'POST', '/v2/models/m/infer', body, { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    assert.match(wrong.json.error, /invalid bearer token/);
    assert.equal((await http(server.url, 'POST', '/v2/models/m/infer', body, auth)).status, 200);
    for (const [method, path] of [
      ['GET', '/v2/models/m'],
      ['GET', '/v2/models/m/ready'],
      ['GET', '/v1/models/m'],
      ['GET', '/v1/models/m/metadata'],
      ['POST', '/v1/models/m:predict'],
      ['POST', '/v2/repository/index'],
      ['POST', '/v2/repository/models/m/unload'],
    ]) {
      assert.equal((await http(server.url, method!, path!, method === 'POST' ? {} : undefined)).status, 401, path);
    }
    assert.equal((await http(server.url, 'GET', '/v1/models/m', undefined, auth)).status, 200);
    for (const path of ['/v2/health/live', '/v2/health/ready', '/v2', '/metrics']) assert.equal((await http(server.url, 'GET', path)).status, 200, path);
  });

  test('bodies over the limit are 413', async () => {
    const big = await http(server.url, 'POST', '/v2/models/m/infer', { inputs: [{ name: 'input', shape: [2000, 3], datatype: 'FP32', data: new Array(6000).fill(0.123456) }] }, auth);
    assert.equal(big.status, 413);
    assert.match(big.json.error, /larger than the 8192-byte limit/);
  });

  test('batches over maxBatchSize, tensors over maxElements and huge dimensions are 400s', async () => {
    const over = await http(server.url, 'POST', '/v2/models/m/infer', denseBody(randomInput(5, [3])), auth);
    assert.equal(over.status, 400);
    assert.match(over.json.error, /batch size 5 exceeds the model's maxBatchSize 4/);
    const elements = await http(server.url, 'POST', '/v2/models/m/infer', { inputs: [{ name: 'input', shape: [5000, 3], datatype: 'FP32', data: [1] }] }, auth);
    assert.equal(elements.status, 400);
    assert.match(elements.json.error, /has 15000 elements, more than the 10000/);
    const huge = await http(server.url, 'POST', '/v2/models/m/infer', { inputs: [{ name: 'input', shape: [4294967296, 3], datatype: 'FP32', data: [1] }] }, auth);
    assert.equal(huge.status, 400);
    assert.match(huge.json.error, /must hold integers in \[0, 2147483647\], found 4294967296/);
  });

  test('model names and versions are validated', async () => {
    const bad = await http(server.url, 'GET', '/v2/models/..%2F..%2Fetc', undefined, auth);
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /invalid model name/);
    const version = await http(server.url, 'GET', '/v2/models/m/versions/-1', undefined, auth);
    assert.equal(version.status, 400);
    const label = await http(server.url, 'GET', '/v1/models/m/labels/a%20b', undefined, auth);
    assert.equal(label.status, 404);
  });

  test('metrics: per-version request, inference and execution counts, duration histograms and process metrics', async () => {
    await http(server.url, 'POST', '/v2/models/m/infer', denseBody(randomInput(2, [3])), auth);
    await http(server.url, 'POST', '/v2/models/m/infer', { inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP64', data: [1, 2, 3] }] }, auth);
    const r = await http(server.url, 'GET', '/metrics');
    assert.match(r.headers.get('content-type') ?? '', /text\/plain/);
    for (const pattern of [
      /^kiln_inference_request_success_total\{model="m",version="1"\} \d+$/m,
      /^kiln_inference_request_failure_total\{model="m",version="1",reason="bad_request"\} \d+$/m,
      /^kiln_inference_count_total\{model="m",version="1"\} \d+$/m,
      /^kiln_inference_exec_count_total\{model="m",version="1"\} \d+$/m,
      /^kiln_inference_request_duration_seconds_bucket\{le="0.005",model="m",version="1"\} \d+$/m,
      /^kiln_inference_queue_duration_seconds_count\{model="m",version="1"\} \d+$/m,
      /^kiln_inference_compute_duration_seconds_sum\{model="m",version="1"\} [\d.e-]+$/m,
      /^kiln_model_version_ready\{model="m",version="1"\} 1$/m,
      /^kiln_inference_pending_requests\{model="m",version="1"\} 0$/m,
      /^process_cpu_user_seconds_total \d/m,
      /^nodejs_eventloop_lag_seconds \d/m,
    ]) {
      assert.match(r.text, pattern);
    }
  });
});

test('KILN_AUTH_TOKEN in the environment turns auth on', async () => {
  const { dir, cleanup } = await tmpDir();
  await writeVersion(dir, 'm', 1, denseModel(1));
  const saved = process.env.KILN_AUTH_TOKEN;
  process.env.KILN_AUTH_TOKEN = 'from-env';
  const server = await startServer({ modelRepository: dir });
  try {
    assert.equal((await http(server.url, 'GET', '/v2/models/m')).status, 401);
    assert.equal((await http(server.url, 'GET', '/v2/models/m', undefined, { authorization: 'Bearer from-env' })).status, 200);
  } finally {
    if (saved === undefined) delete process.env.KILN_AUTH_TOKEN;
    else process.env.KILN_AUTH_TOKEN = saved;
    await server.close();
    await cleanup();
  }
});
