/**
 * A model with several outputs (a PyTorch forward returning (features, logits)): Kiln trains, evaluates
 * and predicts one of them — the one given (`{ output }`, `--model-output`), else the one its saved
 * file records, else the first — and keeps every output in the saved file, recording its choice.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeModel, type ModelProto } from '../../src/graph/proto.js';
import { OUTPUT_METADATA_KEY } from '../../src/model/trained-output.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { loadModel } from '../../src/train/load.js';
import { serve } from '../../src/serve/index.js';
import { client } from '../../src/serve/client.js';
import { sgd } from '../../src/train/optimizers.js';
import { fixtureProto, images, maxAbsDiff } from '../optimize/prune/graph-helpers.js';
import { assertRejectsKiln, makeTempDir } from './helpers.js';

const FEATURES = '/Flatten_output_0';
const LABELS = new Tensor(Int32Array.from({ length: 16 }, (_, i) => i % 10), [16], 'int32');

/** The ResNet fixture returning (features [N, 16], logits [N, 10]): the features first. */
function featuresFirst(): ModelProto {
  const proto = fixtureProto('resnet');
  const g = proto.graph!;
  const features = { name: FEATURES, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 16 }] } } } };
  return { ...proto, graph: { ...g, output: [features, ...g.output!] } };
}

describe('a model with several outputs', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  const x = images(16, [28, 28, 1]);
  before(async () => {
    temp = await makeTempDir('kiln-outputs-');
  });
  after(() => temp.remove());

  it('trains the first by default, and the one named by { output }', async () => {
    const first = await GraphModel.fromProto(featuresFirst(), 'two.onnx');
    assert.equal(first.trainedOutput, FEATURES);
    assert.deepEqual((await first.predict(x)).shape, [16, 16]);
    const logits = await GraphModel.fromProto(featuresFirst(), 'two.onnx', { output: 'logits' });
    assert.equal(logits.trainedOutput, 'logits');
    const original = await GraphModel.fromProto(fixtureProto('resnet'), 'resnet.onnx');
    assert.ok(maxAbsDiff((await logits.predict(x)).data as Float32Array, (await original.predict(x)).data as Float32Array) < 1e-6);
  });

  it("an integer output (an argmax's class) is not trained: listed first, the first float one is; the only one, the file runs and does not train, saying why", async () => {
    const withLabel = (keep: 'both' | 'label'): ModelProto => {
      const proto = fixtureProto('resnet');
      const g = proto.graph!;
      const label = { name: 'label', type: { tensorType: { elemType: 7, shape: { dim: [{ dimParam: 'batch' }] } } } };
      const argmax = { name: 'argmax', opType: 'ArgMax', input: ['logits'], output: ['label'], attribute: [{ name: 'axis', type: 2, i: 1 }, { name: 'keepdims', type: 2, i: 0 }] };
      return { ...proto, graph: { ...g, node: [...g.node!, argmax], output: keep === 'both' ? [label, ...g.output!] : [label] } } as ModelProto;
    };
    const both = await GraphModel.fromProto(withLabel('both'), 'labelled.onnx');
    assert.equal(both.trainedOutput, 'logits');
    await assertRejectsKiln(() => GraphModel.fromProto(withLabel('both'), 'labelled.onnx', { output: 'label' }), 'INVALID_ARGUMENT', "output 'label' is int64: Kiln trains a float32 output (logits or scores) (its float outputs: 'logits'");
    const file = join(temp.dir, 'label-only.onnx');
    await writeFile(file, encodeModel(withLabel('label')));
    const only = await loadModel(file);
    assert.ok(only instanceof OnnxModel);
    assert.match(only.notTrainable!, /output 'label' is int64: Kiln trains a float32 output/);
    const labels = await only.predict(x.reshape([16, 1, 28, 28]));
    assert.deepEqual([labels.dtype, labels.shape], ['int64', [16]]);
  });

  it('the chosen output trains and is recorded in the saved file, which reloads training it; every output is kept', async () => {
    const model = await GraphModel.fromProto(featuresFirst(), 'two.onnx', { output: 'logits' });
    model.compile({ optimizer: sgd({ learningRate: 0.1 }), loss: 'sparseCategoricalCrossentropy' });
    const head = model.weights.get('head.weight')!.data.slice();
    await model.fit(x, LABELS, { epochs: 1, batchSize: 16, verbose: 0, shuffle: false });
    // The head reaches only the logits: trained on the features it would not move.
    assert.ok(maxAbsDiff(model.weights.get('head.weight')!.data as Float32Array, head as Float32Array) > 1e-4, 'the logits were trained');
    const file = join(temp.dir, 'two.kiln.onnx');
    await model.save(file);
    const saved = await OnnxModel.load(file);
    assert.deepEqual(saved.proto.graph!.output!.map((o) => o.name), [FEATURES, 'logits']);
    assert.equal(saved.proto.metadataProps!.find((m) => m.key === OUTPUT_METADATA_KEY)?.value, 'logits');
    const reloaded = await loadModel(file);
    assert.ok(reloaded instanceof GraphModel);
    assert.equal(reloaded.trainedOutput, 'logits');
    // Run as a plain file, the saved model answers with the recorded output too.
    assert.deepEqual((await saved.predict(x.reshape([16, 1, 28, 28]))).shape, [16, 10]);
    assert.equal(saved.primaryOutput, 'logits');
  });

  it('is served as a classifier of its recorded output: class names checked against it, labels read from it', async () => {
    const model = await GraphModel.fromProto(featuresFirst(), 'two.onnx', { output: 'logits' });
    model.classNames = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot'];
    const file = join(temp.dir, 'named.onnx');
    await model.save(file);
    const server = await serve({ model: file, name: 'two', host: '127.0.0.1', port: 0, logLevel: 'silent' });
    try {
      const response = await fetch(`${server.url}/v2/models/two/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(x.data.slice(0, 784)) }] }),
      });
      assert.equal(response.status, 200, await response.clone().text());
      const outputs = ((await response.json()) as { outputs: { name: string; shape: number[] }[] }).outputs;
      assert.deepEqual(outputs.find((o) => o.name === 'logits')?.shape, [1, 10]);
      // TF Serving's :classify answers with the recorded output's classes, by name.
      const flat = Array.from(x.data.slice(0, 784) as Float32Array);
      const pixels = [Array.from({ length: 28 }, (_, r) => flat.slice(28 * r, 28 * r + 28))]; // [1, 28, 28]
      const classify = await fetch(`${server.url}/v1/models/two:classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ examples: [{ input: pixels }] }) });
      const text = await classify.text();
      assert.equal(classify.status, 200, text);
      const results = (JSON.parse(text) as { results: [string, number][][] }).results;
      assert.deepEqual(results[0]!.map(([label]) => label).sort(), [...model.classNames!].sort());
      // The metadata lists the recorded output first (the file keeps its order), so a client reading
      // "the first output" — kiln.client's predict, `kiln predict --topk` — reads the logits.
      const meta = await client(server.url).modelMetadata('two');
      assert.deepEqual(meta.outputs.map((o) => o.name), ['logits', FEATURES]);
      const four = new Tensor(x.data.slice(0, 4 * 784), [4, 28, 28, 1], 'float32');
      const predicted = await client(server.url).predict('two', four);
      assert.deepEqual(predicted.shape, [4, 10]);
      assert.ok(maxAbsDiff(predicted.data as Float32Array, (await model.predict(four)).data as Float32Array) < 1e-5);
      assert.deepEqual((await client(server.url).predict('two', four, { output: FEATURES })).shape, [4, 16]);
      await assertRejectsKiln(() => client(server.url).predict('two', four, { output: 'scores' }), 'INVALID_ARGUMENT', "no output 'scores'", "'logits'");
    } finally {
      await server.close();
    }
  });

  it('a new head changes the declared shape of the trained output only', async () => {
    const model = await GraphModel.fromProto(featuresFirst(), 'two.onnx', { output: 'logits' });
    await model.replaceHead(3);
    const file = join(temp.dir, 'three.onnx');
    await model.save(file);
    const dims = (await OnnxModel.load(file)).proto.graph!.output!.map((o) => o.type!.tensorType!.shape!.dim!.map((d) => d.dimValue ?? d.dimParam));
    assert.deepEqual(dims, [['batch', 16], ['batch', 3]]);
    assert.deepEqual((await model.predict(x)).shape, [16, 3]);
  });

  it('an output the file does not have is refused, naming the outputs it has', async () => {
    await assertRejectsKiln(() => GraphModel.fromProto(featuresFirst(), 'two.onnx', { output: 'scores' }), 'INVALID_ARGUMENT', "'two.onnx' has no output 'scores'", `'${FEATURES}', 'logits'`);
    const file = join(temp.dir, 'two.onnx');
    await writeFile(file, encodeModel(featuresFirst()));
    await assertRejectsKiln(() => loadModel(file, { output: 'scores' }), 'INVALID_ARGUMENT', "has no output 'scores'");
  });
});
