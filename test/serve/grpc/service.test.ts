import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { once } from 'node:events';
import { connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { messageType } from '../../../src/serve/grpc/messages.js';
import { GRPC_CONNECTION_WINDOW_BYTES } from '../../../src/serve/grpc/service.js';
import type { ServerHandle } from '../../../src/serve/server.js';
import {
  assertClose,
  denseModel,
  http,
  metricValue,
  randomInput,
  startServer,
  tmpDir,
  twoInputModel,
  typedModel,
  TYPED_INPUTS,
  writeConfig,
  writeVersion,
} from '../helpers.js';
import { protoClient, type ProtoClient } from './proto-client.js';

/*
 * KServe v2 gRPC against the HTTP routes of the same server: every RPC, typed and raw contents, the
 * status codes of failures, the bearer token, the limits and the metrics. The client is generated
 * from the .proto by @grpc/proto-loader (proto-client.ts), independent of Kiln's code.
 */

const f32 = (bytes: Uint8Array) => new Float32Array(new Uint8Array(bytes).buffer);
const rawF32 = (data: Float32Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

async function refused(promise: Promise<unknown>, code: status, details: RegExp): Promise<void> {
  await assert.rejects(promise, (err: { code: number; details: string }) => {
    assert.equal(err.code, code, `expected ${status[code]}, got ${status[err.code]}: ${err.details}`);
    assert.match(err.details, details);
    return true;
  });
}

describe('KServe v2 over gRPC', () => {
  let server: ServerHandle;
  let grpc: ProtoClient;
  let cleanup: () => Promise<void>;
  const dense1 = denseModel(1);
  const dense2 = denseModel(2);

  before(async () => {
    const tmp = await tmpDir();
    cleanup = tmp.cleanup;
    await writeVersion(tmp.dir, 'dense', 1, dense1);
    await writeVersion(tmp.dir, 'dense', 2, dense2);
    await writeConfig(tmp.dir, 'dense', { versionPolicy: 'all', maxBatchSize: 16, maxQueueDelayMs: 20 });
    await writeVersion(tmp.dir, 'typed', 1, typedModel());
    await writeVersion(tmp.dir, 'pair', 1, twoInputModel());
    server = await startServer({ modelRepository: tmp.dir, grpcPort: 0, maxElements: 300, bodyLimit: 64 * 1024 });
    grpc = protoClient(server.grpcAddress!);
  });
  after(async () => {
    grpc.close();
    await server.close();
    await cleanup();
  });

  test('the server listens for gRPC on its own port beside HTTP', () => {
    assert.equal(typeof server.grpcPort, 'number');
    assert.notEqual(server.grpcPort, server.port);
    assert.equal(server.grpcAddress, `127.0.0.1:${server.grpcPort}`);
  });

  test('each connection gets a 1 MiB receive window (grpc-java\'s), not Node\'s 64 KiB, so calls multiplexed on one connection reach the batching queue together', async () => {
    const session = connect(`http://${server.grpcAddress!}`);
    try {
      await once(session, 'connect');
      // The server widens the window as the session starts, before it reads the client's frames, so
      // its WINDOW_UPDATE arrives before the answer to this ping.
      await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
      assert.equal(session.state.remoteWindowSize, GRPC_CONNECTION_WINDOW_BYTES);
      assert.equal(GRPC_CONNECTION_WINDOW_BYTES, 1 << 20);
    } finally {
      session.close();
    }
  });

  test('ServerLive, ServerReady and ServerMetadata answer as the HTTP health routes and GET /v2', async () => {
    assert.deepEqual(await grpc.call('ServerLive', {}), { live: true });
    assert.deepEqual(await grpc.call('ServerReady', {}), { ready: true });
    const meta = await grpc.call('ServerMetadata', {});
    assert.deepEqual({ ...meta }, (await http(server.url, 'GET', '/v2')).json);
  });

  test('ModelReady: true for a serving version, false for an unknown model or version, INVALID_ARGUMENT for a malformed name', async () => {
    assert.equal((await grpc.call('ModelReady', { name: 'dense' })).ready, true);
    assert.equal((await grpc.call('ModelReady', { name: 'dense', version: '2' })).ready, true);
    assert.equal((await grpc.call('ModelReady', { name: 'dense', version: '3' })).ready, false);
    assert.equal((await grpc.call('ModelReady', { name: 'nope' })).ready, false);
    await refused(grpc.call('ModelReady', { name: '../etc' }), status.INVALID_ARGUMENT, /invalid model name/);
    await refused(grpc.call('ModelReady', { name: 'dense', version: 'x1' }), status.INVALID_ARGUMENT, /invalid version "x1"/);
  });

  test("ModelMetadata equals HTTP's GET /v2/models/<model>; NOT_FOUND for an unknown model", async () => {
    for (const [name, path] of [
      ['dense', '/v2/models/dense'],
      ['typed', '/v2/models/typed'],
      ['pair', '/v2/models/pair'],
    ]) {
      const meta = await grpc.call('ModelMetadata', { name });
      const plain = JSON.parse(JSON.stringify(meta));
      assert.deepEqual(plain, (await http(server.url, 'GET', path!)).json);
    }
    assert.deepEqual((await grpc.call('ModelMetadata', { name: 'dense', version: '1' })).inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 3] }]);
    await refused(grpc.call('ModelMetadata', { name: 'nope' }), status.NOT_FOUND, /unknown model 'nope'/);
  });

  test("ModelInfer with typed contents equals HTTP's JSON answer, per version; the id comes back", async () => {
    const x = randomInput(4, [3], 11);
    const data = Array.from(x.data);
    for (const version of ['1', '2']) {
      const reply = await grpc.call('ModelInfer', {
        model_name: 'dense',
        model_version: version,
        id: 'req-7',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [4, 3], contents: { fp32_contents: data } }],
      });
      const viaHttp = (await http(server.url, 'POST', `/v2/models/dense/versions/${version}/infer`, { inputs: [{ name: 'input', datatype: 'FP32', shape: [4, 3], data }] })).json;
      assert.equal(reply.model_name, 'dense');
      assert.equal(reply.model_version, version);
      assert.equal(reply.id, 'req-7');
      assert.equal(reply.raw_output_contents.length, 0);
      const [out] = reply.outputs;
      assert.equal(out.name, 'output');
      assert.equal(out.datatype, 'FP32');
      assert.deepEqual(out.shape, [4, 2]);
      assert.deepEqual(out.shape, viaHttp.outputs[0].shape);
      assertClose(out.contents.fp32_contents, viaHttp.outputs[0].data);
      assertClose(out.contents.fp32_contents, (await (version === '1' ? dense1 : dense2).predict(x)).data as Float32Array);
    }
  });

  test("ModelInfer with raw_input_contents answers raw_output_contents equal to HTTP's binary answer", async () => {
    const x = randomInput(3, [3], 12);
    const reply = await grpc.call('ModelInfer', { model_name: 'dense', inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 3] }], raw_input_contents: [rawF32(x.data)] });
    assert.equal(reply.model_version, '2');
    assert.equal(reply.outputs[0].contents, null);
    assert.deepEqual(reply.outputs[0].shape, [3, 2]);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 3], parameters: { binary_data_size: 36 } }], parameters: { binary_data_output: true } }));
    const res = await fetch(`${server.url}/v2/models/dense/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': String(header.length) },
      body: Buffer.concat([header, rawF32(x.data)]),
    });
    const body = Buffer.from(await res.arrayBuffer());
    const headerLength = Number(res.headers.get('inference-header-content-length'));
    assert.deepEqual(Buffer.from(reply.raw_output_contents[0]), body.subarray(headerLength));
    assertClose(f32(reply.raw_output_contents[0]), (await dense2.predict(x)).data as Float32Array);
    // Typed inputs with binary_data_output: raw outputs too.
    const asked = await grpc.call('ModelInfer', {
      model_name: 'dense',
      parameters: { binary_data_output: { bool_param: true } },
      inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 3], contents: { fp32_contents: Array.from(x.data) } }],
    });
    assert.deepEqual(Buffer.from(asked.raw_output_contents[0]), Buffer.from(reply.raw_output_contents[0]));
  });

  test('every element type travels in its typed field and raw, both ways, unchanged', async () => {
    const values: Record<string, { field: string; data: unknown[]; raw: Buffer }> = {
      f32: { field: 'fp32_contents', data: [1.5, -2.25, 3, 4], raw: Buffer.from(new Float32Array([1.5, -2.25, 3, 4]).buffer) },
      f64: { field: 'fp64_contents', data: [0.1, -1e300, 2, 5e-324], raw: Buffer.from(new Float64Array([0.1, -1e300, 2, 5e-324]).buffer) },
      i8: { field: 'int_contents', data: [-128, 127, 0, -1], raw: Buffer.from(new Int8Array([-128, 127, 0, -1]).buffer) },
      i32: { field: 'int_contents', data: [-2147483648, 2147483647, 7, -7], raw: Buffer.from(new Int32Array([-2147483648, 2147483647, 7, -7]).buffer) },
      i64: { field: 'int64_contents', data: [-9007199254740991, 9007199254740991, 0, -5], raw: Buffer.from(new BigInt64Array([-9007199254740991n, 9007199254740991n, 0n, -5n]).buffer) },
      u8: { field: 'uint_contents', data: [0, 255, 128, 1], raw: Buffer.from(new Uint8Array([0, 255, 128, 1]).buffer) },
      b: { field: 'bool_contents', data: [true, false, false, true], raw: Buffer.from([1, 0, 0, 1]) },
    };
    const datatype = (dtype: string) => ({ float32: 'FP32', float64: 'FP64', int8: 'INT8', int32: 'INT32', int64: 'INT64', uint8: 'UINT8', bool: 'BOOL' })[dtype]!;
    const inputs = TYPED_INPUTS.map(([name, dtype]) => ({ name, datatype: datatype(dtype), shape: [2, 2] }));
    const typed = await grpc.call('ModelInfer', { model_name: 'typed', inputs: inputs.map((i) => ({ ...i, contents: { [values[i.name]!.field]: values[i.name]!.data } })) });
    const raw = await grpc.call('ModelInfer', { model_name: 'typed', inputs, raw_input_contents: inputs.map((i) => values[i.name]!.raw) });
    for (const [name] of TYPED_INPUTS) {
      const { field, data, raw: bytes } = values[name]!;
      const t = typed.outputs.find((o: { name: string }) => o.name === `out_${name}`);
      assert.deepEqual(t.contents[field], data, name);
      const i = raw.outputs.findIndex((o: { name: string }) => o.name === `out_${name}`);
      assert.deepEqual(Buffer.from(raw.raw_output_contents[i]), bytes, name);
    }
  });

  test('asking for some outputs returns those, in the order asked', async () => {
    const x = { name: 'x', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } };
    const y = { name: 'y', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [4, 5, 6] } };
    const reply = await grpc.call('ModelInfer', { model_name: 'pair', inputs: [x, y], outputs: [{ name: 'product' }, { name: 'sum' }] });
    assert.deepEqual(
      reply.outputs.map((o: { name: string; contents: { fp32_contents: number[] } }) => [o.name, o.contents.fp32_contents]),
      [
        ['product', [4, 10, 18]],
        ['sum', [5, 7, 9]],
      ],
    );
    await refused(grpc.call('ModelInfer', { model_name: 'pair', inputs: [x, y], outputs: [{ name: 'nope' }] }), status.INVALID_ARGUMENT, /unknown output 'nope'/);
  });

  test('bad requests are INVALID_ARGUMENT, naming the problem; unknown models and versions NOT_FOUND', async () => {
    const input = { name: 'input', datatype: 'FP32', shape: [1, 3] };
    const cases: [object, status, RegExp][] = [
      [{ model_name: 'nope', inputs: [input] }, status.NOT_FOUND, /unknown model 'nope'/],
      [{ model_name: 'dense', model_version: '9', inputs: [input] }, status.NOT_FOUND, /has no version 9/],
      [{ model_name: '', inputs: [input] }, status.INVALID_ARGUMENT, /invalid model name ""/],
      [{ model_name: 'dense', inputs: [] }, status.INVALID_ARGUMENT, /no inputs/],
      [{ model_name: 'dense', inputs: [{ ...input, datatype: 'FP64', contents: { fp64_contents: [1, 2, 3] } }] }, status.INVALID_ARGUMENT, /datatype FP32 in the model, the request says "FP64"/],
      [{ model_name: 'dense', inputs: [{ ...input, contents: { fp32_contents: [1, 2] } }] }, status.INVALID_ARGUMENT, /needs 3 elements, contents.fp32_contents has 2/],
      [{ model_name: 'dense', inputs: [{ ...input, contents: { int_contents: [1, 2, 3] } }] }, status.INVALID_ARGUMENT, /takes its elements in contents.fp32_contents, found contents.int_contents/],
      [{ model_name: 'dense', inputs: [input], raw_input_contents: [Buffer.alloc(8)] }, status.INVALID_ARGUMENT, /need 12 bytes of raw_input_contents, found 8/],
      [{ model_name: 'dense', inputs: [{ ...input, contents: { fp32_contents: [1, 2, 3] } }], raw_input_contents: [Buffer.alloc(12)] }, status.INVALID_ARGUMENT, /raw_input_contents or in contents, not both/],
      [{ model_name: 'dense', inputs: [input, { ...input, name: 'x' }], raw_input_contents: [Buffer.alloc(12)] }, status.INVALID_ARGUMENT, /1 entries for 2 inputs/],
      [{ model_name: 'dense', inputs: [{ ...input, shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] }, status.INVALID_ARGUMENT, /must have shape \[-1, 3\]/],
      [{ model_name: 'dense', inputs: [{ ...input, shape: [-1, 3] }] }, status.INVALID_ARGUMENT, /must hold integers in \[0, 2147483647\], found -1/],
      [{ model_name: 'dense', inputs: [{ ...input, shape: [17, 3], raw: 1 }], raw_input_contents: [Buffer.alloc(17 * 12)] }, status.INVALID_ARGUMENT, /batch size 17 exceeds the model's maxBatchSize 16/],
      [{ model_name: 'dense', inputs: [{ ...input, shape: [101, 3] }], raw_input_contents: [Buffer.alloc(101 * 12)] }, status.INVALID_ARGUMENT, /303 elements, more than the 300 this server accepts/],
      [{ model_name: 'typed', inputs: [{ name: 'i8', datatype: 'INT8', shape: [1, 2], contents: { int_contents: [1, 300] } }] }, status.INVALID_ARGUMENT, /element 1 of contents.int_contents is 300, outside INT8's range/],
      [{ model_name: 'dense', inputs: [{ ...input, name: 'x'.repeat(300) }] }, status.INVALID_ARGUMENT, /an input name is 300 characters long, at most 256/],
    ];
    for (const [request, code, details] of cases) await refused(grpc.call('ModelInfer', request), code, details);
  });

  test('a message that is not a valid protobuf is INVALID_ARGUMENT; one over the size limit RESOURCE_EXHAUSTED', async () => {
    const bad = await grpc.callBytes('ModelInfer', Buffer.from([0x3a, 0x7f, 0x00]));
    assert.equal(bad.code, status.INVALID_ARGUMENT, bad.details);
    assert.match(bad.details, /the ModelInferRequest message is malformed/);
    // bodyLimit (64 KiB here) bounds gRPC messages as it bounds HTTP bodies.
    const big = messageType('ModelInferRequest').encode({ model_name: 'dense', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [Buffer.alloc(70_000)] }).finish();
    const tooBig = await grpc.callBytes('ModelInfer', Buffer.from(big));
    assert.equal(tooBig.code, status.RESOURCE_EXHAUSTED, tooBig.details);
    // The server still answers.
    assert.deepEqual(await grpc.call('ServerLive', {}), { live: true });
  });

  test('gRPC and HTTP requests share the batching queue and the metrics', async () => {
    const before = (await http(server.url, 'GET', '/metrics')).text;
    const labels = 'model="dense",version="2"';
    const x = randomInput(1, [3], 13);
    const expected = (await dense2.predict(x)).data as Float32Array;
    const viaGrpc = Array.from({ length: 12 }, () => grpc.call('ModelInfer', { model_name: 'dense', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [rawF32(x.data)] }));
    const viaHttp = Array.from({ length: 12 }, () => http(server.url, 'POST', '/v2/models/dense/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: Array.from(x.data) }] }));
    for (const r of await Promise.all(viaGrpc)) assertClose(f32(r.raw_output_contents[0]), expected);
    for (const r of await Promise.all(viaHttp)) assertClose(r.json.outputs[0].data, expected);
    await refused(grpc.call('ModelInfer', { model_name: 'dense', inputs: [] }), status.INVALID_ARGUMENT, /no inputs/);
    const afterText = (await http(server.url, 'GET', '/metrics')).text;
    const delta = (name: string, l = labels) => metricValue(afterText, name, l) - metricValue(before, name, l);
    assert.equal(delta('kiln_inference_request_success_total'), 24);
    assert.equal(delta('kiln_inference_count_total'), 24);
    assert.equal(delta('kiln_inference_request_failure_total', `${labels},reason="bad_request"`), 1);
    // Requests from both protocols merged into shared runs (maxQueueDelayMs 20 gathers them).
    assert.ok(delta('kiln_inference_exec_count_total') < 24, `expected merged runs, got ${delta('kiln_inference_exec_count_total')} runs for 24 requests`);
  });
});

describe('gRPC auth, queue limits and timeouts', () => {
  test('model RPCs need the bearer token in the authorization metadata; health and server metadata do not', async () => {
    const { dir, cleanup } = await tmpDir();
    await writeVersion(dir, 'm', 1, denseModel(1));
    const server = await startServer({ modelRepository: dir, grpcPort: 0, authToken: 'tok-123' });
    const grpc = protoClient(server.grpcAddress!);
    try {
      const infer = { model_name: 'm', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] };
      for (const [method, request] of [
        ['ModelInfer', infer],
        ['ModelMetadata', { name: 'm' }],
        ['ModelReady', { name: 'm' }],
      ] as const) {
        await refused(grpc.call(method, request), status.UNAUTHENTICATED, /needs an Authorization: Bearer <token>/);
        await refused(grpc.call(method, request, { authorization: 'Bearer wrong' }), status.UNAUTHENTICATED, /invalid bearer token/);
        await grpc.call(method, request, { authorization: 'Bearer tok-123' });
      }
      assert.deepEqual(await grpc.call('ServerLive', {}), { live: true });
      assert.deepEqual(await grpc.call('ServerReady', {}), { ready: true });
      assert.equal((await grpc.call('ServerMetadata', {})).name, 'kiln');
      // An unauthenticated request never reaches the model, nor its metrics.
      assert.equal(metricValue((await http(server.url, 'GET', '/metrics')).text, 'kiln_inference_request_success_total', 'model="m"'), 1);
    } finally {
      grpc.close();
      await server.close();
      await cleanup();
    }
  });

  test('a full queue is RESOURCE_EXHAUSTED; a request past its timeout DEADLINE_EXCEEDED', async () => {
    const { dir, cleanup } = await tmpDir();
    await writeVersion(dir, 'm', 1, denseModel(1));
    // Each request waits 1.5 s for company, so two fill a queue of two.
    await writeConfig(dir, 'm', { maxBatchSize: 64, maxQueueDelayMs: 1500, maxQueueSize: 2 });
    const server = await startServer({ modelRepository: dir, grpcPort: 0, requestTimeoutMs: 5000 });
    const grpc = protoClient(server.grpcAddress!);
    const infer = { model_name: 'm', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] };
    try {
      const replies = await Promise.allSettled(Array.from({ length: 5 }, () => grpc.call('ModelInfer', infer)));
      const codes = replies.map((r) => (r.status === 'fulfilled' ? 0 : (r.reason as { code: number }).code)).sort();
      assert.deepEqual(codes, [0, 0, status.RESOURCE_EXHAUSTED, status.RESOURCE_EXHAUSTED, status.RESOURCE_EXHAUSTED]);
      const full = replies.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.match(full.reason.details, /the request queue is full \(2 requests waiting, maxQueueSize 2\)/);
      assert.equal(metricValue((await http(server.url, 'GET', '/metrics')).text, 'kiln_inference_request_failure_total', 'reason="queue_full"'), 3);
    } finally {
      grpc.close();
      await server.close();
      await cleanup();
    }
    const second = await tmpDir();
    await writeVersion(second.dir, 'm', 1, denseModel(1));
    await writeConfig(second.dir, 'm', { maxBatchSize: 64, maxQueueDelayMs: 2000 });
    const slow = await startServer({ modelRepository: second.dir, grpcPort: 0, requestTimeoutMs: 150 });
    const client = protoClient(slow.grpcAddress!);
    try {
      await refused(client.call('ModelInfer', infer), status.DEADLINE_EXCEEDED, /timed out after 150 ms \(still queued\)/);
    } finally {
      client.close();
      await slow.close();
      await second.cleanup();
    }
  });
});
