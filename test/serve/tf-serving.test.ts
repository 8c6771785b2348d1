import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ServerHandle } from '../../src/serve/server.js';
import {
  assertClose,
  classifierModel,
  denseModel,
  halfPlusTwoModel,
  http,
  randomInput,
  signalSensorModel,
  smallCnn,
  startServer,
  tmpDir,
  writeConfig,
  writeVersion,
} from './helpers.js';

describe('TF Serving REST API v1', () => {
  let server: ServerHandle;
  let cleanup: () => Promise<void>;
  const dense1 = denseModel(1);
  const dense2 = denseModel(2);
  const cnn = smallCnn();
  const classifier = classifierModel();
  const LABELS = ['cat', 'dog', 'bird', 'fish', 'frog'];

  before(async () => {
    const tmp = await tmpDir();
    cleanup = tmp.cleanup;
    await writeVersion(tmp.dir, 'half_plus_two', 1, halfPlusTwoModel());
    await writeVersion(tmp.dir, 'dense', 1, dense1);
    await writeVersion(tmp.dir, 'dense', 2, dense2);
    await writeConfig(tmp.dir, 'dense', { versionPolicy: 'all', versionLabels: { stable: 1, canary: 2 } });
    await writeVersion(tmp.dir, 'cnn', 1, cnn);
    await writeVersion(tmp.dir, 'features', 1, signalSensorModel());
    await writeVersion(tmp.dir, 'classifier', 1, classifier);
    await writeConfig(tmp.dir, 'classifier', { labels: LABELS, topK: 3 });
    server = await startServer({ modelRepository: tmp.dir });
  });
  after(async () => {
    await server.close();
    await cleanup();
  });

  test("the documented half_plus_two example: instances [1.0, 2.0, 5.0] predict [2.5, 3.0, 4.5]", async () => {
    // tensorflow_serving/g3doc/docker.md and api_rest.md.
    const rows = await http(server.url, 'POST', '/v1/models/half_plus_two:predict', '{"instances": [1.0, 2.0, 5.0]}', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(rows.status, 200, rows.text);
    assert.deepEqual(rows.json, { predictions: [2.5, 3.0, 4.5] });
    const columns = await http(server.url, 'POST', '/v1/models/half_plus_two:predict', { inputs: [1.0, 2.0, 5.0] });
    assert.deepEqual(columns.json, { outputs: [2.5, 3.0, 4.5] });
    const signature = await http(server.url, 'POST', '/v1/models/half_plus_two/versions/1:predict', { signature_name: 'serving_default', instances: [1.0] });
    assert.deepEqual(signature.json, { predictions: [2.5] });
  });

  test('model status: every version with TF Serving states; a version or label narrows it', async () => {
    const all = await http(server.url, 'GET', '/v1/models/dense');
    assert.equal(all.status, 200);
    assert.deepEqual(all.json, {
      model_version_status: [
        { version: '2', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } },
        { version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } },
      ],
    });
    const one = await http(server.url, 'GET', '/v1/models/dense/versions/1');
    assert.deepEqual(one.json.model_version_status.map((s: { version: string }) => s.version), ['1']);
    const label = await http(server.url, 'GET', '/v1/models/dense/labels/canary');
    assert.deepEqual(label.json.model_version_status.map((s: { version: string }) => s.version), ['2']);
    assert.equal((await http(server.url, 'GET', '/v1/models/dense/labels/nightly')).status, 404);
    assert.equal((await http(server.url, 'GET', '/v1/models/missing')).status, 404);
  });

  test('metadata: model spec and the serving_default signature with DT_ types and -1 dimensions', async () => {
    const r = await http(server.url, 'GET', '/v1/models/dense/metadata');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.model_spec, { name: 'dense', signature_name: '', version: '2' });
    const sig = r.json.metadata.signature_def.signature_def.serving_default;
    assert.equal(sig.method_name, 'tensorflow/serving/predict');
    assert.deepEqual(sig.inputs.input, { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1', name: '' }, { size: '3', name: '' }], unknown_rank: false }, name: 'input:0' });
    assert.equal((await http(server.url, 'GET', '/v1/models/dense/versions/1/metadata')).json.model_spec.version, '1');
    assert.equal((await http(server.url, 'GET', '/v1/models/dense/labels/stable/metadata')).json.model_spec.version, '1');
  });

  test('row format answers model.predict per version and label; columnar format the same values', async () => {
    const x = randomInput(3, [3], 11);
    for (const [path, model] of [
      ['/v1/models/dense:predict', dense2],
      ['/v1/models/dense/versions/1:predict', dense1],
      ['/v1/models/dense/labels/stable:predict', dense1],
      ['/v1/models/dense/labels/canary:predict', dense2],
    ] as const) {
      const expected = await model.predict(x);
      const rows = await http(server.url, 'POST', path, { instances: x.toArray() });
      assert.equal(rows.status, 200, rows.text);
      assert.equal(rows.json.predictions.length, 3);
      assertClose(rows.json.predictions.flat(), expected.data);
      const columns = await http(server.url, 'POST', path, { inputs: x.toArray() });
      assert.equal(columns.status, 200, columns.text);
      assertClose(columns.json.outputs.flat(), expected.data);
    }
  });

  test('images in the row format: the CNN answers model.predict', async () => {
    const x = randomInput(2, [6, 6, 2], 12);
    const r = await http(server.url, 'POST', '/v1/models/cnn:predict', { instances: x.toArray() });
    assert.equal(r.status, 200, r.text);
    assertClose(r.json.predictions.flat(), (await cnn.predict(x)).data);
  });

  test("the documented multi-input example (numeric features): named instances and named columns", async () => {
    // api_rest.md's "signal" and "sensor" features; its string "tag" has no numeric counterpart here.
    const rows = await http(server.url, 'POST', '/v1/models/features:predict', {
      instances: [
        { signal: [1, 2, 3, 4, 5], sensor: [[1, 2], [3, 4]] },
        { signal: [3, 4, 1, 2, 5], sensor: [[4, 5], [6, 8]] },
      ],
    });
    assert.equal(rows.status, 200, rows.text);
    assert.deepEqual(rows.json, {
      predictions: [
        { doubled: [2, 4, 6, 8, 10], shifted: [[2, 3], [4, 5]] },
        { doubled: [6, 8, 2, 4, 10], shifted: [[5, 6], [7, 9]] },
      ],
    });
    const columns = await http(server.url, 'POST', '/v1/models/features:predict', {
      inputs: { signal: [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]], sensor: [[[1, 2], [3, 4]], [[4, 5], [6, 8]]] },
    });
    assert.deepEqual(columns.json, { outputs: { doubled: [[2, 4, 6, 8, 10], [6, 8, 2, 4, 10]], shifted: [[[2, 3], [4, 5]], [[5, 6], [7, 9]]] } });
    const missing = await http(server.url, 'POST', '/v1/models/features:predict', { instances: [{ signal: [1, 2, 3, 4, 5] }] });
    assert.equal(missing.status, 400);
    assert.match(missing.json.error, /"instances"\[0\] has no value for input 'sensor'/);
  });

  test(':classify returns the top classes with scores under the configured labels', async () => {
    const x = randomInput(2, [3], 13);
    const logits = await classifier.predict(x);
    // api_rest.md's classify request shape: signature_name, context shared by all examples, examples.
    const r = await http(server.url, 'POST', '/v1/models/classifier:classify', { signature_name: '', context: {}, examples: x.toArray().map((row) => ({ input: row })) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.results.length, 2);
    r.json.results.forEach((classes: [string, number][], i: number) => {
      const scores = Array.from(logits.data.subarray(i * 5, i * 5 + 5));
      const expected = scores.map((s, c) => [LABELS[c]!, s] as const).sort((a, b) => b[1] - a[1]).slice(0, 3);
      assert.deepEqual(classes.map((c) => c[0]), expected.map((c) => c[0]));
      assertClose(classes.map((c) => c[1]), expected.map((c) => c[1]));
    });
    // Features common to every example may come in the context.
    const shared = await http(server.url, 'POST', '/v1/models/classifier:classify', { context: { input: [0.1, 0.2, 0.3] }, examples: [{}, {}] });
    assert.equal(shared.status, 200, shared.text);
    assert.deepEqual(shared.json.results[0], shared.json.results[1]);
  });

  test(':regress returns one value per example', async () => {
    const r = await http(server.url, 'POST', '/v1/models/half_plus_two:regress', { examples: [{ x: 1 }, { x: 4 }] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { results: [2.5, 4] });
  });

  test('NaN and Infinity tokens are accepted in requests and written in replies', async () => {
    const r = await http(server.url, 'POST', '/v1/models/half_plus_two:predict', '{"instances": [NaN, Infinity, -Infinity, 2]}');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, '{"predictions":[NaN,Infinity,-Infinity,3]}');
  });

  test('malformed requests are 400s that say what was expected', async () => {
    const cases: [unknown, RegExp][] = [
      [{ instances: [1], inputs: [1] }, /either "instances" \(row format\) or "inputs" \(columnar format\), not both/],
      [{}, /missing "instances" \(row format\) or "inputs"/],
      [{ instances: [] }, /"instances" is empty/],
      [{ signature_name: 'predict_images', instances: [1] }, /Serving signature name: "predict_images" not found/],
      [{ instances: [[1, 2]] }, /input 'x' must have shape \[-1\]/],
      [{ instances: ['a'] }, /input 'x': element 0 is "a", expected a number/],
      [{ instances: [{ b64: 'aGVsbG8=' }] }, /cannot take images: the model's input 'x' is not an image input/],
      [{ examples: [{ x: 1 }] }, /:predict does not take "examples"/],
      [{ instances: [1], extra: true }, /must NOT have additional properties/],
    ];
    for (const [body, pattern] of cases) {
      const r = await http(server.url, 'POST', '/v1/models/half_plus_two:predict', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.text}`);
      assert.match(r.json.error, pattern, JSON.stringify(body));
    }
    const verb = await http(server.url, 'POST', '/v1/models/half_plus_two:explain', { instances: [1] });
    assert.equal(verb.status, 404);
    assert.match(verb.json.error, /unknown method ':explain'/);
    const unknown = await http(server.url, 'POST', '/v1/models/nothing:predict', { instances: [1] });
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error, /unknown model 'nothing'/);
    const classifyShape = await http(server.url, 'POST', '/v1/models/half_plus_two:classify', { examples: [{ x: 1 }] });
    assert.equal(classifyShape.status, 400);
    assert.match(classifyShape.json.error, /:classify needs a model whose output has shape \[batch, classes\]/);
  });
});
