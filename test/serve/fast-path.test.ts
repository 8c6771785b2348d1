import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { ServerHandle } from '../../src/serve/server.js';
import { denseModel, randomInput, startServer } from './helpers.js';

/*
 * The inference fast path (src/serve/fast-path.ts) against the Fastify routes: one server with it,
 * one without, the same table of requests — successes, failures after the body is read (answered by
 * the fast path) and refusals before it (handed to Fastify) — must get the same status, headers
 * (but Date) in the same order, and bytes; and the requests the fast path should take, it takes.
 */

interface Raw {
  status: number;
  headers: string[];
  body: Buffer;
}

function send(base: string, method: string, path: string, body: Buffer | undefined, headers: Record<string, string>): Promise<Raw> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: body ? { 'content-length': String(body.length), ...headers } : headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = res.rawHeaders;
        const kept: string[] = [];
        for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== 'date') kept.push(`${raw[i]}: ${raw[i + 1]}`);
        resolve({ status: res.statusCode!, headers: kept, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const TOKEN = 'fast-path-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const x = randomInput(2, [3]);
const data = Array.from(x.data as Float32Array);
const kserveBody = { inputs: [{ name: 'input', shape: [2, 3], datatype: 'FP32', data }] };
const raw = Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength);
const binaryHeader = json({ inputs: [{ name: 'input', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: raw.length } }], parameters: { binary_data_output: true } });
const binaryBody = Buffer.concat([binaryHeader, raw]);

interface Case {
  what: string;
  method?: string;
  path: string;
  body?: Buffer;
  headers?: Record<string, string>;
  /** Whether the fast path answers it (false: it hands the request to Fastify). */
  fast: boolean;
  status: number;
}

const JSON_TYPE = { 'content-type': 'application/json', ...auth };
const CASES: Case[] = [
  { what: 'KServe JSON', path: '/v2/models/dense/infer', body: json(kserveBody), headers: JSON_TYPE, fast: true, status: 200 },
  { what: 'KServe JSON, a version', path: '/v2/models/dense/versions/1/infer', body: json({ ...kserveBody, id: 'r1' }), headers: JSON_TYPE, fast: true, status: 200 },
  {
    what: 'KServe binary in and out',
    path: '/v2/models/dense/infer',
    body: binaryBody,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(binaryHeader.length), ...auth },
    fast: true,
    status: 200,
  },
  { what: 'schema: no inputs', path: '/v2/models/dense/infer', body: json({ inputs: [] }), headers: JSON_TYPE, fast: true, status: 400 },
  { what: 'schema: an unknown field', path: '/v2/models/dense/infer', body: json({ ...kserveBody, extra: 1 }), headers: JSON_TYPE, fast: true, status: 400 },
  { what: 'schema: an input without a name', path: '/v2/models/dense/infer', body: json({ inputs: [{ shape: [2, 3], datatype: 'FP32', data }] }), headers: JSON_TYPE, fast: true, status: 400 },
  { what: 'a blank body', path: '/v2/models/dense/infer', body: Buffer.from('   '), headers: JSON_TYPE, fast: true, status: 400 },
  { what: 'malformed JSON', path: '/v2/models/dense/infer', body: Buffer.from('{"inputs": ['), headers: JSON_TYPE, fast: true, status: 400 },
  { what: 'a datatype mismatch', path: '/v2/models/dense/infer', body: json({ inputs: [{ ...kserveBody.inputs[0], datatype: 'INT32' }] }), headers: JSON_TYPE, fast: true, status: 400 },
  { what: 'an unknown output', path: '/v2/models/dense/infer', body: json({ ...kserveBody, outputs: [{ name: 'nope' }] }), headers: JSON_TYPE, fast: true, status: 400 },
  {
    what: 'a bad header length',
    path: '/v2/models/dense/infer',
    body: binaryBody,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': 'abc', ...auth },
    fast: true,
    status: 400,
  },
  { what: 'no token', path: '/v2/models/dense/infer', body: json(kserveBody), headers: { 'content-type': 'application/json' }, fast: false, status: 401 },
  { what: 'a wrong token', path: '/v2/models/dense/infer', body: json(kserveBody), headers: { 'content-type': 'application/json', authorization: 'Bearer nope' }, fast: false, status: 401 },
  { what: 'an unknown model', path: '/v2/models/other/infer', body: json(kserveBody), headers: JSON_TYPE, fast: false, status: 404 },
  { what: 'an unknown version', path: '/v2/models/dense/versions/7/infer', body: json(kserveBody), headers: JSON_TYPE, fast: false, status: 404 },
  { what: 'a query string', path: '/v2/models/dense/infer?x=1', body: json(kserveBody), headers: JSON_TYPE, fast: false, status: 200 },
  { what: 'text/plain', path: '/v2/models/dense/infer', body: json(kserveBody), headers: { 'content-type': 'text/plain', ...auth }, fast: false, status: 200 },
  { what: 'over the body limit', path: '/v2/models/dense/infer', body: json({ ...kserveBody, id: 'x'.repeat(5000) }), headers: JSON_TYPE, fast: false, status: 413 },
  { what: 'GET on an infer route', method: 'GET', path: '/v2/models/dense/infer', headers: auth, fast: false, status: 404 },
  { what: 'TF rows', path: '/v1/models/dense:predict', body: json({ instances: [[1, 2, 3], [4, 5, 6]] }), headers: JSON_TYPE, fast: true, status: 200 },
  { what: 'TF columns, a version', path: '/v1/models/dense/versions/1:predict', body: json({ inputs: [[1, 2, 3]] }), headers: JSON_TYPE, fast: true, status: 200 },
  { what: 'TF rows and columns', path: '/v1/models/dense:predict', body: json({ instances: [[1, 2, 3]], inputs: [[1, 2, 3]] }), headers: JSON_TYPE, fast: true, status: 400 },
  { what: 'TF: a field of another verb', path: '/v1/models/dense:predict', body: json({ instances: [[1, 2, 3]], examples: [{}] }), headers: JSON_TYPE, fast: true, status: 400 },
  { what: 'TF: an unknown field', path: '/v1/models/dense:predict', body: json({ instances: [[1, 2, 3]], nope: 1 }), headers: JSON_TYPE, fast: true, status: 400 },
  { what: 'TF :regress on two outputs per row', path: '/v1/models/dense:regress', body: json({ examples: [{ input: [1, 2, 3] }] }), headers: JSON_TYPE, fast: true, status: 400 },
  { what: 'TF: an unknown verb', path: '/v1/models/dense:explain', body: json({ instances: [[1, 2, 3]] }), headers: JSON_TYPE, fast: true, status: 404 },
  {
    what: 'TF: binary data',
    path: '/v1/models/dense:predict',
    body: binaryBody,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(binaryHeader.length), ...auth },
    fast: true,
    status: 400,
  },
  { what: 'TF: an unknown model', path: '/v1/models/other:predict', body: json({ instances: [[1, 2, 3]] }), headers: JSON_TYPE, fast: false, status: 404 },
  { what: 'TF: no token', path: '/v1/models/dense:predict', body: json({ instances: [[1, 2, 3]] }), headers: { 'content-type': 'application/json' }, fast: false, status: 401 },
];

describe('the inference fast path answers as the Fastify routes do', () => {
  let fast: ServerHandle;
  let plain: ServerHandle;
  before(async () => {
    const options = { model: denseModel().toOnnx(), name: 'dense', authToken: TOKEN, bodyLimit: 4096 };
    fast = await startServer(options);
    plain = await startServer({ ...options, fastPath: false });
  });
  after(async () => {
    await fast.close();
    await plain.close();
  });

  test('the same status, headers and bytes for every request of the table; the fast path takes exactly the ones it should', async () => {
    assert.ok(fast.fastPath);
    assert.equal(plain.fastPath, undefined);
    for (const c of CASES) {
      const answeredBefore: number = fast.fastPath.answered;
      const a = await send(fast.url, c.method ?? 'POST', c.path, c.body, c.headers ?? {});
      const b = await send(plain.url, c.method ?? 'POST', c.path, c.body, c.headers ?? {});
      assert.equal(a.status, c.status, `${c.what}: status (${a.body.toString()})`);
      assert.equal(b.status, c.status, `${c.what}: status without the fast path (${b.body.toString()})`);
      assert.deepEqual(a.headers, b.headers, `${c.what}: headers`);
      assert.equal(a.body.toString('base64'), b.body.toString('base64'), `${c.what}: body ${a.body.toString()} vs ${b.body.toString()}`);
      assert.equal(fast.fastPath.answered - answeredBefore, c.fast ? 1 : 0, `${c.what}: answered by the fast path`);
    }
  });

  test('the metrics count the fast path requests as the Fastify ones', async () => {
    const counters = async (s: ServerHandle) => {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      return text.split('\n').filter((l) => /^kiln_inference_(request_success_total|request_failure_total|count_total|exec_count_total)\{/.test(l)).sort();
    };
    assert.deepEqual(await counters(fast), await counters(plain));
  });
});
