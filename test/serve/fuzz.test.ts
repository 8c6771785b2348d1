import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random } from '../../src/random.js';
import { assertClose, denseBody, denseModel, halfPlusTwoModel, http, randomInput, startServer, tmpDir, typedModel, TYPED_INPUTS, writeVersion } from './helpers.js';

/*
 * Seeded fuzzing: well over a thousand malformed requests of every kind the protocols invite (bad
 * JSON, wrong datatypes and shapes, huge dimensions, NaN where no number may be NaN, missing fields,
 * one protocol's body sent to the other) must each get a 4xx with a message, and the server must
 * answer valid requests correctly afterwards.
 */

interface Case {
  kind: string;
  method: string;
  path: string;
  body: string;
  headers?: Record<string, string>;
}

const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP64', 'BF16', 'BYTES'];
const TYPED_DATATYPES: Record<string, string> = { f32: 'FP32', f64: 'FP64', i8: 'INT8', i32: 'INT32', i64: 'INT64', u8: 'UINT8', b: 'BOOL' };

function pick<T>(rng: Random, items: readonly T[]): T {
  return items[rng.int(items.length)]!;
}

function validDense(rng: Random): { inputs: Record<string, unknown>[] } {
  const rows = 1 + rng.int(3);
  return { inputs: [{ name: 'input', shape: [rows, 3], datatype: 'FP32', data: Array.from({ length: rows * 3 }, () => rng.uniform(-1, 1)) }] };
}

function validTyped(rng: Random): { inputs: Record<string, unknown>[] } {
  return {
    inputs: TYPED_INPUTS.map(([name]) => ({ name, shape: [1, 2], datatype: TYPED_DATATYPES[name], data: name === 'b' ? [true, false] : [1, rng.int(100)] })),
  };
}

function generate(rng: Random): Case {
  const v2 = (body: unknown, path = '/v2/models/dense/infer'): Case => ({ kind: '', method: 'POST', path, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const tf = (body: unknown, path = '/v1/models/half:predict'): Case => v2(body, path);
  const kinds: [string, () => Case][] = [
    ['bad JSON: truncated', () => {
      const text = JSON.stringify(rng.next() < 0.5 ? validDense(rng) : { instances: [1, 2, 3] });
      return v2(text.slice(0, 1 + rng.int(text.length - 1)), rng.next() < 0.5 ? '/v2/models/dense/infer' : '/v1/models/half:predict');
    }],
    ['bad JSON: garbage', () => v2(Array.from({ length: 1 + rng.int(60) }, () => String.fromCharCode(33 + rng.int(90))).join('').replace(/^[[{"0-9-tfn]/, '@'))],
    ['bad JSON: syntax', () => v2(pick(rng, ["{'inputs': []}", '{"inputs": [1,]}', '{"inputs": [}', '{inputs: []}', '{"inputs": [NaN', '{"a":1}}', '[1 2]', '{"inputs": tru}', '\u0000', '{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]', '']))],
    ['wrong datatype', () => {
      const body = validDense(rng);
      body.inputs[0]!.datatype = pick(rng, [...DATATYPES, 'FLOAT', 'fp32', 7, null, '', ['FP32']]);
      return v2(body);
    }],
    ['wrong datatype for a typed input', () => {
      const body = validTyped(rng);
      const input = pick(rng, body.inputs);
      input.datatype = pick(rng, Object.values(TYPED_DATATYPES).filter((d) => d !== input.datatype));
      return v2(body, '/v2/models/typed/infer');
    }],
    ['wrong shape', () => {
      const body = validDense(rng);
      const rows = (body.inputs[0]!.shape as number[])[0]!;
      body.inputs[0]!.shape = pick(rng, [[rows, 4], [rows], [rows, 3, 1], [3, rows + 5], [], [rows, -3], [rows, 1.5], [rows, '3'], 'rows', [[rows], [3]], [0, 3], [rows, null]]);
      return v2(body);
    }],
    ['huge dimensions', () => {
      const body = validDense(rng);
      body.inputs[0]!.shape = pick(rng, [[1e9, 3], [2147483647, 2147483647], [4294967296, 3], [1e300, 3], Array(100).fill(2), [1e6, 1e6, 1e6], [2 ** 53, 3]]);
      return v2(body);
    }],
    ['data does not fit the shape', () => {
      const body = validDense(rng);
      const data = body.inputs[0]!.data as number[];
      body.inputs[0]!.data = pick(rng, [data.slice(1), [...data, 1], [data, data], 'data', { values: data }, 12, null, [[1, 2, 3], [1, 2]], data.map(String), [[[[[[[[[[data]]]]]]]]]], [true, false, true]]);
      return v2(body);
    }],
    ['deep nesting', () => {
      const depth = 1000 + rng.int(20000);
      return v2(`{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":${'['.repeat(depth)}1${']'.repeat(depth)}}]}`);
    }],
    ['NaN where not allowed', () => {
      const which = rng.int(5);
      if (which === 0) return v2('{"inputs":[{"name":"input","shape":[NaN,3],"datatype":"FP32","data":[1,2,3]}]}');
      if (which === 1) return v2('{"inputs":[{"name":"input","shape":[1,3],"datatype":NaN,"data":[1,2,3]}]}');
      if (which === 2) return tf('{"instances": [NaN], "signature_name": NaN}');
      const body = validTyped(rng);
      const name = which === 3 ? pick(rng, ['i8', 'i32', 'i64', 'u8']) : 'b';
      const text = JSON.stringify(body).replace(new RegExp(`("name":"${name}","shape":\\[1,2\\],"datatype":"[A-Z0-9]+","data":\\[)[^\\]]*`), `$1NaN,${pick(rng, ['Infinity', '-Infinity', 'NaN'])}`);
      return v2(text, '/v2/models/typed/infer');
    }],
    ['missing fields', () => {
      const body = validDense(rng);
      const field = pick(rng, ['name', 'shape', 'datatype', 'data', 'inputs', 'all']);
      if (field === 'inputs') return v2({ outputs: [{ name: 'output' }] });
      if (field === 'all') return v2({});
      delete body.inputs[0]![field];
      return v2(body);
    }],
    ['unknown names', () => {
      const body = validDense(rng) as { inputs: Record<string, unknown>[]; outputs?: unknown };
      if (rng.next() < 0.5) body.inputs[0]!.name = pick(rng, ['x', 'INPUT', '', 'input ', 'output']);
      else body.outputs = [{ name: pick(rng, ['y', 'input', '']) }];
      return v2(body);
    }],
    ['extra or duplicated inputs', () => {
      const body = validDense(rng);
      body.inputs.push(rng.next() < 0.5 ? { ...body.inputs[0]! } : { name: 'extra', shape: [1], datatype: 'FP32', data: [1] });
      return v2(body);
    }],
    ['protocol mix: TF body at a v2 route', () => v2(pick(rng, [{ instances: [[1, 2, 3]] }, { inputs: [[1, 2, 3]] }, { signature_name: 'serving_default', inputs: { input: [[1, 2, 3]] } }, { examples: [{ input: [1, 2, 3] }] }]))],
    ['protocol mix: v2 body at a TF route', () => tf(pick(rng, [validDense(rng), { inputs: validDense(rng).inputs, instances: [1] }, { id: '1', inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }]))],
    ['TF: both or neither format', () => tf(pick(rng, [{ instances: [1], inputs: [1] }, {}, { signature_name: 'serving_default' }, { instances: [] }, { instances: 'abc' }, { instances: [[1, 2]] }, { instances: [{ y: 1 }] }, { instances: [{ b64: 'AAAA' }] }, { instances: [true] }, { inputs: { y: [1] } }]))],
    ['TF: wrong verb body', () =>
      rng.next() < 0.5 ? tf({ examples: [{ x: 1 }] }) : tf(pick(rng, [{ context: {}, instances: [1] }, { instances: [1] }, { examples: [] }]), pick(rng, ['/v1/models/half:classify', '/v1/models/half:regress']))],
    ['TF: bad signature', () => tf({ signature_name: pick(rng, ['predict', 'serving', 'classify_x', ' ']), instances: [1] })],
    ['bad paths', () => {
      const path = pick(rng, [
        '/v2/models/dense/versions/0/infer',
        '/v2/models/dense/versions/abc/infer',
        '/v2/models/dense/versions/99/infer',
        '/v2/models/nope/infer',
        '/v2/models/..%2F..%2Fetc%2Fpasswd/infer',
        '/v2/models/dense/infer/extra',
        '/v1/models/half:explain',
        '/v1/models/half/versions/x:predict',
        '/v1/models/half/labels/nope:predict',
        '/v1/models/:predict',
        '/v3/models/dense/infer',
        '/v2/models/de%ZZnse/infer',
        '/v1/models/ha%lf:predict',
      ]);
      return v2(validDense(rng), path);
    }],
    ['placeholder smuggling', () => {
      const forged = pick(rng, ['\\u0000kiln-number-list:0', '\\u0000\\u006biln-number-list:0', '\\u0000kiln-number-list:1', '\\u0000kiln:NaN']);
      const where = rng.int(3);
      if (where === 0) return v2(`{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":"${forged}"}],"parameters":{"data":[0.5,0.25,0.125]}}`);
      if (where === 1) return tf(`{"instances":"${forged}","signature_name":"x","inputs":[1]}`);
      return v2(`{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":["${forged}",1,2]}],"outputs":[{"name":"output","parameters":{"data":[1,2,3]}}]}`);
    }],
    ['built-in property names', () => {
      const name = pick(rng, ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', '__defineGetter__']);
      const which = rng.int(4);
      if (which === 0) return v2({ inputs: [{ name, shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] });
      if (which === 1) return tf({ instances: [1] }, `/v1/models/half:${name.replace(/_/g, '')}`);
      if (which === 2) return tf({ instances: [1] }, `/v1/models/half/labels/${name}:predict`);
      return tf(`{"inputs":{"${name}":[1]}}`);
    }],
    ['NaN flood', () => v2(`{"${pick(rng, ['a', 'data', 'inputs', 'instances'])}":[${new Array(1000 + rng.int(50_000)).fill(pick(rng, ['NaN', 'Infinity', '-Infinity'])).join(',')}]}`, rng.next() < 0.5 ? '/v2/models/dense/infer' : '/v1/models/half:predict')],
    ['binary header mismatch', () => ({
      kind: '',
      method: 'POST',
      path: '/v2/models/dense/infer',
      body: '{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}]}abc',
      headers: { 'inference-header-content-length': pick(rng, ['0', '-5', 'abc', '99999', '10', String(97)]) },
    })],
  ];
  const [kind, make] = pick(rng, kinds);
  return { ...make(), kind };
}

test('1,200 seeded malformed requests each get a 4xx with a message; valid requests still work afterwards', async () => {
  const { dir, cleanup } = await tmpDir();
  const dense = denseModel(12);
  await writeVersion(dir, 'dense', 1, dense);
  await writeVersion(dir, 'typed', 1, typedModel());
  await writeVersion(dir, 'half', 1, halfPlusTwoModel());
  const server = await startServer({ modelRepository: dir });
  const started = Date.now();
  try {
    const rng = new Random(20240601);
    const cases = Array.from({ length: 1200 }, () => generate(rng));
    const problems: string[] = [];
    const kinds = new Map<string, number>();
    const times = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
        const t = Date.now();
        const r = await http(server.url, c.method, c.path, c.body, c.headers).catch((err: Error) => ({ status: 0, text: err.message, json: undefined }));
        times.set(c.kind, (times.get(c.kind) ?? 0) + Date.now() - t);
        const message = (r.json as { error?: unknown } | undefined)?.error;
        if (r.status < 400 || r.status >= 500 || typeof message !== 'string' || message.length < 5) {
          problems.push(`${c.kind}: ${c.method} ${c.path} ${c.body.slice(0, 160)} → ${r.status} ${r.text.slice(0, 200)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    if (process.env.KILN_FUZZ_TIMES) console.log([...times].sort((a, b) => b[1] - a[1]));
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} requests were not answered with a 4xx and a message`);
    assert.ok(kinds.size >= 18, `only ${kinds.size} kinds of malformed request were generated`);

    // Still serving, and correctly.
    assert.equal((await http(server.url, 'GET', '/v2/health/ready')).status, 200);
    const x = randomInput(3, [3], 77);
    const v2 = await http(server.url, 'POST', '/v2/models/dense/infer', denseBody(x));
    assert.equal(v2.status, 200);
    assertClose(v2.json.outputs[0].data, (await dense.predict(x)).data);
    const tf = await http(server.url, 'POST', '/v1/models/half:predict', { instances: [2, 4] });
    assert.deepEqual(tf.json, { predictions: [3, 4] });
    assert.ok(Date.now() - started < 60_000);
  } finally {
    await server.close();
    await cleanup();
  }
});
