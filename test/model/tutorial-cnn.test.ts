/**
 * The TensorFlow CNN tutorial model, line for line: its summary, its predictions, and its saved file as
 * one standard .onnx that ONNX Runtime loads on its own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { layers, loadModel, sequential, Sequential } from '../../src/index.js';
import { decodeModel } from '../../src/graph/proto.js';
import { makeTempDir, randomInput } from './helpers.js';

function tutorialCnn(): Sequential {
  const model = sequential();
  model.add(layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [32, 32, 3] }));
  model.add(layers.maxPooling2d({ poolSize: 2 }));
  model.add(layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }));
  model.add(layers.maxPooling2d({ poolSize: 2 }));
  model.add(layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }));
  model.add(layers.flatten());
  model.add(layers.dense({ units: 64, activation: 'relu' }));
  model.add(layers.dense({ units: 10 }));
  return model;
}

/** Keras' summary of the tutorial model: layer, output shape, parameters. */
const KERAS_SUMMARY: [string, string, string][] = [
  ['conv2d (Conv2D)', '[null, 30, 30, 32]', '896'],
  ['max_pooling2d (MaxPooling2D)', '[null, 15, 15, 32]', '0'],
  ['conv2d_1 (Conv2D)', '[null, 13, 13, 64]', '18,496'],
  ['max_pooling2d_1 (MaxPooling2D)', '[null, 6, 6, 64]', '0'],
  ['conv2d_2 (Conv2D)', '[null, 4, 4, 64]', '36,928'],
  ['flatten (Flatten)', '[null, 1024]', '0'],
  ['dense (Dense)', '[null, 64]', '65,600'],
  ['dense_1 (Dense)', '[null, 10]', '650'],
];

describe('the tutorial CNN', () => {
  const model = tutorialCnn();
  const x = randomInput([5, 32, 32, 3], 2024);
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  let file: string;

  before(async () => {
    temp = await makeTempDir();
    file = join(temp.dir, 'cnn.onnx');
    await model.save(file);
  });
  after(() => temp.remove());

  it('summary() reports 122,570 params and each layer with its Keras output shape', () => {
    const printed: string[] = [];
    const text = model.summary((line) => printed.push(line));
    assert.deepEqual(printed, [text]);
    const lines = text.split('\n');
    for (const [layer, shape, params] of KERAS_SUMMARY) {
      const row = lines.find((l) => l.startsWith(`${layer} `));
      assert.ok(row, `summary has a row for ${layer}:\n${text}`);
      assert.deepEqual(row.split(/\s{2,}/), [layer, shape, params], `row for ${layer}`);
    }
    assert.match(text, /^Total params: 122,570\b/m);
    assert.match(text, /^Trainable params: 122,570$/m);
    assert.match(text, /^Non-trainable params: 0$/m);
    assert.deepEqual(model.countParams(), { total: 122570, trainable: 122570 });
  });

  it('layerShapes() gives the input shape followed by every output shape', () => {
    assert.deepEqual(model.layerShapes(), [[32, 32, 3], [30, 30, 32], [15, 15, 32], [13, 13, 64], [6, 6, 64], [4, 4, 64], [1024], [64], [10]]);
  });

  it('predicts [N, 10] for [N, 32, 32, 3], the same whatever the batch size', async () => {
    const y = await model.predict(x);
    assert.deepEqual(y.shape, [5, 10]);
    assert.ok(Array.from(y.data).every(Number.isFinite));
    assert.ok(new Set(Array.from(y.data)).size > 10, 'outputs vary');
    const inTwos = await model.predict(x, { batchSize: 2 });
    assert.deepEqual(inTwos.shape, [5, 10]);
    for (let i = 0; i < y.size; i++) assert.ok(Math.abs(inTwos.data[i]! - y.data[i]!) < 1e-5, `element ${i}`);
    // Row 3 alone gives row 3's outputs.
    const row = await model.predict(x.slice(3, 4));
    for (let j = 0; j < 10; j++) assert.ok(Math.abs(row.data[j]! - y.data[30 + j]!) < 1e-5);
  });

  it('save → loadModel → predict gives bit-identical outputs', async () => {
    const loaded = await loadModel(file);
    assert.ok(loaded instanceof Sequential, 'a Kiln file loads as a Sequential');
    assert.deepEqual(loaded.layers.map((l) => `${l.name} (${l.className})`), KERAS_SUMMARY.map((r) => r[0]));
    assert.equal(loaded.summary(() => undefined), model.summary(() => undefined));
    for (const [name, t] of model.weights) {
      assert.deepEqual(Buffer.from((loaded.weights.get(name)!.data as Float32Array).buffer), Buffer.from((t.data as Float32Array).buffer), name);
    }
    const before = await model.predict(x);
    const after = await loaded.predict(x);
    assert.deepEqual(Buffer.from(after.data.buffer), Buffer.from(before.data.buffer));
  });

  it('is one standard .onnx file that onnxruntime-node runs directly', async () => {
    const session = await ort.InferenceSession.create(file);
    assert.deepEqual(session.inputNames, ['input']);
    assert.deepEqual(session.outputNames, ['output']);
    const result = await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) });
    const out = result.output!;
    assert.deepEqual(out.dims, [5, 10]);
    const y = await model.predict(x);
    const direct = out.data as Float32Array;
    for (let i = 0; i < y.size; i++) assert.ok(Math.abs(direct[i]! - y.data[i]!) < 1e-6, `element ${i}: ${direct[i]} vs ${y.data[i]}`);
    await session.release();
  });

  it('stores the weights as initializers and the layer configuration in metadata_props "kiln.model"', async () => {
    const proto = decodeModel(await readFile(file));
    const inits = new Map((proto.graph!.initializer ?? []).map((t) => [t.name, t]));
    for (const [name, t] of model.weights) {
      const stored = inits.get(name);
      assert.ok(stored, `initializer ${name}`);
      assert.deepEqual(stored.dims, [...t.shape], `dims of ${name}`);
      assert.equal(stored.dataType, 1, `${name} is FLOAT`);
    }
    const storedElements = [...inits.values()].reduce((n, t) => n + (t.dims ?? []).reduce((a, b) => a * b, 1), 0);
    assert.equal(storedElements, 122570, 'initializers hold exactly the parameters');
    assert.deepEqual((proto.graph!.input ?? []).map((i) => i.name), ['input'], 'weights are not graph inputs');
    assert.ok(proto.irVersion! >= 7 && (proto.opsetImport ?? []).some((o) => !o.domain && o.version! >= 13));
    const entry = (proto.metadataProps ?? []).find((m) => m.key === 'kiln.model');
    assert.ok(entry?.value, 'metadata_props has kiln.model');
    const config = JSON.parse(entry.value) as { format: string; layers: { className: string; config: Record<string, unknown> }[] };
    assert.equal(config.format, 'kiln.sequential');
    assert.deepEqual(config.layers.map((l) => l.className), ['Conv2D', 'MaxPooling2D', 'Conv2D', 'MaxPooling2D', 'Conv2D', 'Flatten', 'Dense', 'Dense']);
    assert.deepEqual(config.layers[0]!.config.inputShape, [32, 32, 3]);
    assert.equal(config.layers[6]!.config.units, 64);
  });
});
