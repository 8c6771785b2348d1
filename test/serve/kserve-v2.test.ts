import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { client } from '../../src/serve/client.js';
import { parseJson } from '../../src/serve/json.js';
import type { ServerHandle } from '../../src/serve/server.js';
import { Tensor } from '../../src/tensor.js';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import {
  assertClose,
  denseModel,
  fixedShapeModel,
  http,
  kserveExampleModel,
  randomInput,
  smallCnn,
  startServer,
  tmpDir,
  twoInputModel,
  typedModel,
  TYPED_INPUTS,
  writeConfig,
  writeVersion,
} from './helpers.js';

describe('KServe v2 protocol', () => {
  let server: ServerHandle;
  let cleanup: () => Promise<void>;
  const dense1 = denseModel(1);
  const dense2 = denseModel(2);
  const cnn = smallCnn();

  before(async () => {
    const tmp = await tmpDir();
    cleanup = tmp.cleanup;
    await writeVersion(tmp.dir, 'dense', 1, dense1);
    await writeVersion(tmp.dir, 'dense', 2, dense2);
    await writeConfig(tmp.dir, 'dense', { versionPolicy: 'all' });
    await writeVersion(tmp.dir, 'cnn', 1, cnn);
    await writeVersion(tmp.dir, 'typed', 1, typedModel());
    await writeVersion(tmp.dir, 'pair', 1, twoInputModel());
    await writeVersion(tmp.dir, 'fixed', 1, fixedShapeModel());
    await writeVersion(tmp.dir, 'mymodel', 1, kserveExampleModel());
    // x [N, 3] → its argmax [N] (int64) and its sum [N] (float): one value per example, no class scores.
    const perExample = new Graph('per-example');
    const x = perExample.input('x', 'float32', ['N', 3]);
    perExample.output(perExample.op1('ArgMax', [x], { axis: 1, keepdims: 0 }), 'label');
    perExample.output(perExample.op1('ReduceSum', [x, perExample.int64s([1])], { keepdims: 0 }), 'total');
    await writeVersion(tmp.dir, 'perexample', 1, encodeModel(modelToProto(perExample)));
    server = await startServer({ modelRepository: tmp.dir });
  });
  after(async () => {
    await server.close();
    await cleanup();
  });

  test('health: live and ready answer 200 with empty bodies; GET /v2 describes the server', async () => {
    for (const path of ['/v2/health/live', '/v2/health/ready']) {
      const r = await http(server.url, 'GET', path);
      assert.equal(r.status, 200);
      assert.equal(r.text, '');
    }
    const meta = await http(server.url, 'GET', '/v2');
    assert.equal(meta.status, 200);
    assert.equal(meta.json.name, 'kiln');
    assert.equal(typeof meta.json.version, 'string');
    assert.ok(Array.isArray(meta.json.extensions));
  });

  test('model metadata lists ready versions, platform, inputs and outputs with -1 for variable dimensions', async () => {
    const r = await http(server.url, 'GET', '/v2/models/dense');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {
      name: 'dense',
      versions: ['1', '2'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 2] }],
    });
    const v1 = await http(server.url, 'GET', '/v2/models/dense/versions/1');
    assert.equal(v1.status, 200);
    assert.equal(v1.json.name, 'dense');
    const typed = await http(server.url, 'GET', '/v2/models/typed');
    assert.deepEqual(
      typed.json.inputs.map((i: { datatype: string }) => i.datatype),
      ['FP32', 'FP64', 'INT8', 'INT32', 'INT64', 'UINT8', 'BOOL'],
    );
  });

  test('unknown models and versions are 404, malformed versions 400, all as {"error": ...}', async () => {
    const unknown = await http(server.url, 'GET', '/v2/models/nope');
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error, /unknown model 'nope'/);
    const version = await http(server.url, 'GET', '/v2/models/dense/versions/9');
    assert.equal(version.status, 404);
    assert.match(version.json.error, /no version 9/);
    const bad = await http(server.url, 'POST', '/v2/models/dense/versions/x1/infer', { inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /invalid version/);
    const route = await http(server.url, 'GET', '/v2/nothing/here');
    assert.equal(route.status, 404);
    assert.ok(route.json.error);
  });

  test('the classification extension answers 400 for an output that holds no class scores: an integer class, one value per example', async () => {
    const body = (output: string) => ({ inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 5, 2, 7, 0, 1] }], outputs: [{ name: output, parameters: { classification: 2 } }] });
    const label = await http(server.url, 'POST', '/v2/models/perexample/infer', body('label'));
    assert.equal(label.status, 400);
    assert.match(label.json.error, /output 'label' is int64; classification needs float class scores/);
    const total = await http(server.url, 'POST', '/v2/models/perexample/infer', body('total'));
    assert.equal(total.status, 400);
    assert.match(total.json.error, /output 'total' has shape \[batch\] \(one value per example\)/);
    // The float output is listed first (the one a model trains), the file's int64 class after it.
    assert.deepEqual((await http(server.url, 'GET', '/v2/models/perexample')).json.outputs.map((o: { name: string }) => o.name), ['total', 'label']);
    const plain = await http(server.url, 'POST', '/v2/models/perexample/infer', { inputs: body('label').inputs });
    assert.equal(plain.status, 200);
    assert.deepEqual(plain.json.outputs.find((o: { name: string }) => o.name === 'label').data, [1, 0]);
  });

  test('model and version readiness: 200 ready, 404 unknown', async () => {
    assert.equal((await http(server.url, 'GET', '/v2/models/dense/ready')).status, 200);
    assert.equal((await http(server.url, 'GET', '/v2/models/dense/versions/1/ready')).status, 200);
    assert.equal((await http(server.url, 'GET', '/v2/models/nope/ready')).status, 404);
    assert.equal((await http(server.url, 'GET', '/v2/models/dense/versions/7/ready')).status, 404);
  });

  test('infer answers what model.predict computes, per version, and the latest version by default', async () => {
    const x = randomInput(4, [3]);
    const body = { inputs: [{ name: 'input', shape: [4, 3], datatype: 'FP32', data: Array.from(x.data) }] };
    for (const [path, model, version] of [
      ['/v2/models/dense/versions/1/infer', dense1, '1'],
      ['/v2/models/dense/versions/2/infer', dense2, '2'],
      ['/v2/models/dense/infer', dense2, '2'],
    ] as const) {
      const r = await http(server.url, 'POST', path, body);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.model_name, 'dense');
      assert.equal(r.json.model_version, version);
      const [out] = r.json.outputs;
      assert.equal(out.name, 'output');
      assert.equal(out.datatype, 'FP32');
      assert.deepEqual(out.shape, [4, 2]);
      assertClose(out.data, (await model.predict(x)).data);
    }
  });

  test('nested data is accepted as well as flat data', async () => {
    const x = randomInput(2, [6, 6, 2], 9);
    const flat = await http(server.url, 'POST', '/v2/models/cnn/infer', { inputs: [{ name: 'input', shape: [2, 6, 6, 2], datatype: 'FP32', data: Array.from(x.data) }] });
    const nested = await http(server.url, 'POST', '/v2/models/cnn/infer', { inputs: [{ name: 'input', shape: [2, 6, 6, 2], datatype: 'FP32', data: x.toArray() }] });
    assert.equal(flat.status, 200, flat.text);
    assert.equal(nested.status, 200, nested.text);
    assert.deepEqual(nested.json.outputs, flat.json.outputs);
    assertClose(flat.json.outputs[0].data, (await cnn.predict(x)).data);
  });

  test('every servable datatype goes in and comes back unchanged', async () => {
    const values: Record<string, unknown[]> = {
      f32: [0.5, -1.25, 3, 1e-3],
      f64: [0.1, -2.000000000000001, 1e300, 5e-324],
      i8: [-128, 127, 0, -1],
      i32: [-2147483648, 2147483647, 7, -7],
      i64: [-9007199254740991, 9007199254740991, 0, 42],
      u8: [0, 255, 128, 1],
      b: [true, false, false, true],
    };
    const datatype: Record<string, string> = { f32: 'FP32', f64: 'FP64', i8: 'INT8', i32: 'INT32', i64: 'INT64', u8: 'UINT8', b: 'BOOL' };
    const r = await http(server.url, 'POST', '/v2/models/typed/infer', {
      inputs: TYPED_INPUTS.map(([name]) => ({ name, shape: [2, 2], datatype: datatype[name], data: values[name] })),
    });
    assert.equal(r.status, 200, r.text);
    for (const [name] of TYPED_INPUTS) {
      const out = r.json.outputs.find((o: { name: string }) => o.name === `out_${name}`);
      assert.equal(out.datatype, datatype[name]);
      assert.deepEqual(out.shape, [2, 2]);
      if (name === 'f32') assertClose(out.data, values.f32 as number[]);
      else assert.deepEqual(out.data, values[name], name);
    }
  });

  test('integers out of range, fractions for integer types and numbers for BOOL are 400s naming the element', async () => {
    const base = TYPED_INPUTS.map(([name]) => ({ name, shape: [1, 2], datatype: { f32: 'FP32', f64: 'FP64', i8: 'INT8', i32: 'INT32', i64: 'INT64', u8: 'UINT8', b: 'BOOL' }[name]!, data: name === 'b' ? [true, false] : [1, 2] as unknown[] }));
    for (const [name, data, pattern] of [
      ['i8', [1, 128], /element 1 is 128, expected an integer in \[-128, 127\]/],
      ['u8', [-1, 0], /element 0 is -1/],
      ['i32', [1.5, 0], /element 0 is 1.5/],
      ['b', [1, 0], /element 0 is 1, expected true or false/],
      ['f32', ['1', 0], /element 0 is "1", expected a number/],
    ] as const) {
      const inputs = base.map((i) => (i.name === name ? { ...i, data: [...data] } : i));
      const r = await http(server.url, 'POST', '/v2/models/typed/infer', { inputs });
      assert.equal(r.status, 400, `${name}: ${r.text}`);
      assert.match(r.json.error, pattern);
    }
  });

  test('outputs selects what comes back; unknown outputs are 400; the id is echoed', async () => {
    const x = [1, 2, 3, 4, 5, 6];
    const inputs = [
      { name: 'x', shape: [2, 3], datatype: 'FP32', data: x },
      { name: 'y', shape: [2, 3], datatype: 'FP32', data: x },
    ];
    const r = await http(server.url, 'POST', '/v2/models/pair/infer', { id: 'req-7', inputs, outputs: [{ name: 'product' }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.id, 'req-7');
    assert.deepEqual(r.json.outputs, [{ name: 'product', datatype: 'FP32', shape: [2, 3], data: [1, 4, 9, 16, 25, 36] }]);
    const all = await http(server.url, 'POST', '/v2/models/pair/infer', { inputs });
    assert.deepEqual(all.json.outputs.map((o: { name: string }) => o.name), ['sum', 'product']);
    const unknown = await http(server.url, 'POST', '/v2/models/pair/infer', { inputs, outputs: [{ name: 'ratio' }] });
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.error, /unknown output 'ratio'.*'sum', 'product'/);
  });

  test("the protocol's documented example: verbatim it names the datatype mismatch; with Kiln's types it runs", async () => {
    // kserve docs/predict-api/v2/required_api.md, "Inference Request Examples".
    const documented = {
      id: '42',
      inputs: [
        { name: 'input0', shape: [2, 2], datatype: 'UINT32', data: [1, 2, 3, 4] },
        { name: 'input1', shape: [3], datatype: 'BOOL', data: [true] },
      ],
      outputs: [{ name: 'output0' }],
    };
    const verbatim = await http(server.url, 'POST', '/v2/models/mymodel/infer', documented);
    assert.equal(verbatim.status, 400);
    assert.match(verbatim.json.error, /input 'input0' has datatype INT32 in the model, the request says UINT32/);
    const servable = { ...documented, inputs: [{ ...documented.inputs[0]!, datatype: 'INT32' }, { ...documented.inputs[1]!, data: [true, false, true] }] };
    const r = await http(server.url, 'POST', '/v2/models/mymodel/infer', servable);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { model_name: 'mymodel', model_version: '1', id: '42', outputs: [{ name: 'output0', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] }] });
    // The same example's BOOL input as written (one value for shape [3]) is refused with the counts.
    const short = await http(server.url, 'POST', '/v2/models/mymodel/infer', { ...servable, inputs: [servable.inputs[0], documented.inputs[1]] });
    assert.equal(short.status, 400);
    assert.match(short.json.error, /input 'input1': shape \[3\] needs 3 elements, data has 1/);
  });

  test('models without a batch dimension take exactly their shape', async () => {
    const ok = await http(server.url, 'POST', '/v2/models/fixed/infer', { inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }] });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json.outputs[0].data, [2, 4, 6, 8, 10, 12]);
    const wrong = await http(server.url, 'POST', '/v2/models/fixed/infer', { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] });
    assert.equal(wrong.status, 400);
    assert.match(wrong.json.error, /input 'x' must have shape \[2, 3\].*found \[1, 3\]/);
  });

  test('NaN and Infinity travel as tokens in FP32 data and come back as tokens', async () => {
    const text = '{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[NaN,1,2,Infinity,-Infinity,3]}]}';
    const r = await http(server.url, 'POST', '/v2/models/fixed/infer', text);
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /\[NaN,2,4,Infinity,-Infinity,6\]/);
    const parsed = parseJson(r.text) as { outputs: { data: number[] }[] };
    assert.ok(Number.isNaN(parsed.outputs[0]!.data[0]));
  });

  test("Triton's binary tensor extension: binary inputs and outputs match JSON ones", async () => {
    const kiln = client(server.url);
    const x = randomInput(3, [6, 6, 2], 4);
    const viaJson = await kiln.infer('cnn', { input: x });
    const viaBinary = await kiln.infer('cnn', { input: x }, { binary: true });
    assert.deepEqual(Array.from(viaBinary.output!.data as Float32Array), Array.from(viaJson.output!.data as Float32Array));
    assertClose(viaBinary.output!.data as Float32Array, (await cnn.predict(x)).data);
    const typed = await kiln.infer('typed', Object.fromEntries(TYPED_INPUTS.map(([name, dtype]) => [name, new Tensor(dtype === 'int64' ? BigInt64Array.of(1n, -2n) : dtype === 'bool' ? Uint8Array.of(1, 0) : dtype === 'float64' ? Float64Array.of(0.1, 2) : dtype === 'float32' ? Float32Array.of(0.5, 1) : dtype === 'int32' ? Int32Array.of(-5, 5) : dtype === 'int8' ? Int8Array.of(-3, 3) : Uint8Array.of(200, 1) as never, [1, 2], dtype)])), { binary: true });
    assert.deepEqual(Array.from(typed.out_i64!.data as BigInt64Array), [1n, -2n]);
    assert.deepEqual(Array.from(typed.out_b!.data as Uint8Array), [1, 0]);
    assert.deepEqual(Array.from(typed.out_f64!.data as Float64Array), [0.1, 2]);
    const mismatch = await http(server.url, 'POST', '/v2/models/cnn/infer', '{"inputs":[{"name":"input","shape":[1,6,6,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}', {
      'inference-header-content-length': '94',
    });
    assert.equal(mismatch.status, 400);
  });
});
