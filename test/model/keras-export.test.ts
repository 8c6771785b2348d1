/**
 * Models Keras users bring, as tf2onnx writes them (test/fixtures/exported/keras-style.ts): a model
 * with its own Rescaling layer takes raw 0–255 pixels, and Kiln recognizes that and feeds its [0, 1]
 * data ×255 everywhere a model is fed (GraphModel's graphs, plain ONNX files, image requests), unless
 * a scale is declared (`--scale`, `{ scale }`, the saved metadata); the channels-last model trains,
 * saves the scale with it, and prunes through tf2onnx's transposes and channels-last Flatten.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeModel, encodeModel, type ModelProto } from '../../src/graph/proto.js';
import { pixelsToTensor, imageInputSpec } from '../../src/images/to-tensor.js';
import { PREPROCESSING_METADATA_KEY } from '../../src/model/imported-graph.js';
import { adaptInput, declaredPreprocessing, parsePreprocessing } from '../../src/model/input-adapter.js';
import { rescalingAtInput } from '../../src/model/input-rescaling.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { analyzeGraph, measureFacts, type ChannelGroup } from '../../src/optimize/prune/graph-groups.js';
import { prune } from '../../src/optimize/prune/prune.js';
import { quantize } from '../../src/optimize/quantize/quantize.js';
import { classifierScores } from '../../src/optimize/distill/teacher.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { loadModel } from '../../src/train/load.js';
import { kerasStyleCnn, KERAS_CONV_CHANNELS, KERAS_DENSE_UNITS } from '../fixtures/exported/keras-style.js';
import { runMain } from '../cli/helpers.js';
import { images, maxAbsDiff, zeroUnits } from '../optimize/prune/graph-helpers.js';
import { assertRejectsKiln, assertThrowsKiln, makeTempDir } from './helpers.js';

const times = (x: Tensor, k: number) => new Tensor(Float32Array.from(x.data as Float32Array, (v) => v * k), [...x.shape], 'float32');

async function runFile(proto: ModelProto, x: Tensor): Promise<Float32Array> {
  const bytes = encodeModel(proto);
  const out = await new OnnxModel(bytes, decodeModel(bytes)).run({ input_1: x });
  return out.dense_1!.data as Float32Array;
}

describe('a model that rescales its own pixels (Keras Rescaling, as tf2onnx writes it)', () => {
  // The Keras-style model as a file, for the tests that load one.
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  let file: string;
  before(async () => {
    temp = await makeTempDir();
    file = join(temp.dir, 'keras_cnn.onnx');
    await writeFile(file, encodeModel(kerasStyleCnn('mul')));
  });
  after(() => temp.remove());

  it('is recognized from the node that reads its input: Mul by 1/255, Div by 255, 1/127.5 behind the transpose', () => {
    const mul = rescalingAtInput(kerasStyleCnn('mul'))!;
    assert.equal(mul.node, 'sequential/rescaling/mul');
    assert.ok(Math.abs(mul.factor - 1 / 255) < 1e-9);
    assert.equal(rescalingAtInput(kerasStyleCnn('div-constant'))!.node, 'Div_2');
    assert.ok(Math.abs(rescalingAtInput(kerasStyleCnn('div-constant'))!.factor - 1 / 255) < 1e-9);
    assert.ok(Math.abs(rescalingAtInput(kerasStyleCnn('mul-after-transpose'))!.factor - 2 / 255) < 1e-7);
    assert.equal(rescalingAtInput(kerasStyleCnn('none')), undefined);
    for (const form of ['mul', 'div-constant', 'mul-after-transpose'] as const) assert.deepEqual(declaredPreprocessing(kerasStyleCnn(form)), { scale: 1 }, form);
    assert.deepEqual(declaredPreprocessing(kerasStyleCnn('none')), {});
  });

  it('is not recognized from a Mul by another factor, an input read twice, or x·x; a declared scale wins', () => {
    const half = kerasStyleCnn('mul');
    const constant = half.graph!.initializer!.find((t) => t.name === 'sequential/rescaling/Cast/x:0')!;
    constant.rawData = new Uint8Array(Float32Array.of(0.5).buffer);
    assert.equal(rescalingAtInput(half), undefined, 'a factor of 0.5 is not a pixel rescaling');
    const twice = kerasStyleCnn('mul');
    twice.graph!.node!.push({ name: 'peek', opType: 'Identity', input: ['input_1'], output: ['peek:0'] });
    assert.equal(rescalingAtInput(twice), undefined, 'the input also goes elsewhere unscaled');
    const square = kerasStyleCnn('mul');
    square.graph!.node![0]!.input = ['input_1', 'input_1'];
    assert.equal(rescalingAtInput(square), undefined);
    const declared = kerasStyleCnn('mul');
    declared.metadataProps = [{ key: PREPROCESSING_METADATA_KEY, value: JSON.stringify({ scale: 1 / 255 }) }];
    assert.deepEqual(declaredPreprocessing(declared), { scale: 1 / 255 });
  });

  it('a file Kiln trained before the scale existed (kiln.training, no scale) is fed [0, 1] as it was trained; kiln info says nothing then, nor for a declared scale', async () => {
    const old = kerasStyleCnn('mul');
    old.metadataProps = [{ key: 'kiln.training', value: '{"loss":{"name":"sparseCategoricalCrossentropy","config":{}}}' }];
    assert.deepEqual(declaredPreprocessing(old), {});
    const bytes = encodeModel(old);
    assert.equal(imageInputSpec(new OnnxModel(bytes, decodeModel(bytes))).scale, 1 / 255);
    const declared = kerasStyleCnn('mul');
    declared.metadataProps = [{ key: PREPROCESSING_METADATA_KEY, value: JSON.stringify({ scale: 1 / 255 }) }];
    for (const [name, proto] of [['old', old], ['declared', declared]] as const) {
      const other = join(temp.dir, `${name}.onnx`);
      await writeFile(other, encodeModel(proto));
      const { code, out } = await runMain(['info', other]);
      assert.equal(code, 0);
      assert.doesNotMatch(out, /Input scale/, name);
    }
  });

  it('a quantized file declares the scale its source was fed (float16 turns the 1/255 into a Cast no longer recognized)', async () => {
    const bytes = encodeModel(kerasStyleCnn('mul'));
    const source = new OnnxModel(bytes, decodeModel(bytes));
    const x = images(16, [28, 28, 1]);
    for (const mode of ['float16', 'dynamic'] as const) {
      const q = await quantize(source, { mode });
      assert.deepEqual(q.preprocessing, { scale: 1 }, mode);
      assert.deepEqual(JSON.parse(q.proto.metadataProps!.find((m) => m.key === PREPROCESSING_METADATA_KEY)!.value!), { scale: 1 }, mode);
      // Fed alike, the quantized file answers as its source does.
      const ours = (await q.run({ input_1: adaptInput(x, q.inputs[0]!, q.preprocessing) })).dense_1!.data as Float32Array;
      const theirs = (await source.run({ input_1: adaptInput(x, source.inputs[0]!, source.preprocessing) })).dense_1!.data as Float32Array;
      assert.ok(maxAbsDiff(ours, theirs) < 0.02, `${mode}: ${maxAbsDiff(ours, theirs)}`);
    }
  });

  it("classifierScores (kiln evaluate's run of a plain file) applies a given scale over the file's", async () => {
    const bytes = encodeModel(kerasStyleCnn('mul'));
    const m = new OnnxModel(bytes, decodeModel(bytes));
    const x = images(8, [28, 28, 1]);
    const raw = (await m.run({ input_1: times(x, 255) })).dense_1!.data as Float32Array;
    const unit = (await m.run({ input_1: x })).dense_1!.data as Float32Array;
    assert.ok(maxAbsDiff((await classifierScores(m, x)).data as Float32Array, raw) < 1e-5, 'the recognized scale');
    assert.ok(maxAbsDiff((await classifierScores(m, x, { preprocessing: { scale: 1 / 255 } })).data as Float32Array, unit) < 1e-5, 'the given one');
  });

  describe('fed and trained through GraphModel', () => {
    it("gets Kiln's [0, 1] images ×255, unless the caller declares scale 1/255", async () => {
      const x = images(8, [28, 28, 1]);
      const model = await GraphModel.load(file);
      assert.deepEqual(model.preprocessing, { scale: 1 });
      const raw = await runFile(kerasStyleCnn('mul'), times(x, 255));
      const unit = await runFile(kerasStyleCnn('mul'), x);
      assert.ok(maxAbsDiff(raw, unit) > 0.01, 'the scale changes the outputs, so the comparisons below are not trivial');
      assert.ok(maxAbsDiff((await model.predict(x)).data as Float32Array, raw) < 1e-5);
      const declared = await GraphModel.load(file, { scale: 1 / 255 });
      assert.ok(maxAbsDiff((await declared.predict(x)).data as Float32Array, unit) < 1e-5);
      // The plain-file path (quantization calibration, bench, teachers) feeds the same.
      const onnx = await OnnxModel.load(file);
      assert.deepEqual(onnx.preprocessing, { scale: 1 });
      assert.ok(maxAbsDiff(adaptInput(x, onnx.inputs[0]!, onnx.preprocessing).data as Float32Array, times(x, 255).data as Float32Array) < 1e-4);
    });

    it('trains, and the saved file declares its scale and predicts as the trained model', async () => {
      const model = await GraphModel.load(file);
      const x = images(64, [28, 28, 1], 8);
      const y = new Tensor(Int32Array.from({ length: 64 }, (_, i) => i % 10), [64], 'int32');
      model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
      const history = await model.fit(x, y, { epochs: 3, batchSize: 16, verbose: 0, shuffle: false });
      const losses = history.history.loss!;
      assert.ok(losses.at(-1)! < losses[0]!, `loss falls: ${losses.join(', ')}`);
      const saved = join(temp.dir, 'trained.onnx');
      await model.save(saved);
      const proto = decodeModel(new Uint8Array(await (await import('node:fs/promises')).readFile(saved)));
      assert.deepEqual(JSON.parse(proto.metadataProps!.find((m) => m.key === PREPROCESSING_METADATA_KEY)!.value!), { scale: 1 });
      const reloaded = await loadModel(saved);
      assert.ok(maxAbsDiff((await reloaded.predict(x)).data as Float32Array, (await model.predict(x)).data as Float32Array) < 1e-5);
    });

    it('refuses a scale that is not a number above 0, and a scale for token ids', async () => {
      await assertRejectsKiln(() => GraphModel.load(file, { scale: 0 }), 'INVALID_ARGUMENT', '--scale must be a number above 0');
      await assertRejectsKiln(() => GraphModel.load(file, { scale: Number.NaN }), 'INVALID_ARGUMENT', '--scale');
      await assertRejectsKiln(() => GraphModel.load('test/fixtures/exported/textcls.onnx', { scale: 1 }), 'INVALID_ARGUMENT', 'token ids', '--scale');
      assertThrowsKiln(() => parsePreprocessing('{"scale": -1}', "'m.onnx'"), 'CORRUPT_FILE', "'m.onnx'", 'scale -1');
    });
  });

  it('an image request gets the raw pixels (a [0, 1] model the pixels ÷255)', () => {
    const pixels = Uint8Array.from({ length: 28 * 28 }, (_, i) => i % 256);
    const image = { pixels, width: 28, height: 28, channels: 1 as const };
    for (const [form, expected] of [['mul', (p: number) => p], ['none', (p: number) => Math.fround(p / 255)]] as const) {
      const bytes = encodeModel(kerasStyleCnn(form));
      const model = new OnnxModel(bytes, decodeModel(bytes));
      const spec = imageInputSpec(model);
      assert.equal(spec.layout, 'nhwc');
      const t = pixelsToTensor(image, spec);
      assert.deepEqual(t.shape, [1, 28, 28, 1]);
      assert.deepEqual(Array.from(t.data as Float32Array), Array.from(pixels, expected), form);
    }
  });

  it('prunes through the transposes and the channels-last Flatten: the pruned graph equals the original with the removed units zeroed', async () => {
    const proto = kerasStyleCnn('mul');
    const analysis = analyzeGraph(await measureFacts(proto, 'keras_cnn.onnx'));
    const chosen = analysis.groups.filter((g) => g.blockers.length === 0);
    assert.deepEqual(chosen.map((g) => [g.kind, g.units]).sort(), [['channels', KERAS_CONV_CHANNELS[0]], ['channels', KERAS_CONV_CHANNELS[1]], ['units', KERAS_DENSE_UNITS]].sort());
    const odd = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 1);
    const zero = new Map<ChannelGroup, number[]>(chosen.map((g) => [g, odd(g.units)]));
    const original = await GraphModel.fromProto(proto, 'keras_cnn.onnx');
    const zeroed = await GraphModel.fromProto(proto, 'keras_cnn.onnx');
    zeroed.setWeights(zeroUnits(analysis, zeroed.weights, zero));
    const { model: small, report } = await prune(zeroed, { structured: { ratio: 0.5 } });
    const flatten = report.groups.find((g) => g.producers.includes('sequential/conv2d_1/BiasAdd'))!;
    assert.ok(flatten.pruned);
    assert.deepEqual(flatten.units, [KERAS_CONV_CHANNELS[1], KERAS_CONV_CHANNELS[1] / 2]);
    const x = images(16, [28, 28, 1]);
    const [p, z, o] = await Promise.all([small.predict(x), zeroed.predict(x), original.predict(x)]);
    assert.ok(maxAbsDiff(p.data as Float32Array, z.data as Float32Array) < 1e-5);
    assert.ok(maxAbsDiff(z.data as Float32Array, o.data as Float32Array) > 1e-3, 'zeroing changed the outputs');
    // The dense layer's rows shrink by the removed channels' positions: 14·14 of them per channel, interleaved.
    const saved = decodeModel(small.toOnnx());
    assert.deepEqual(saved.graph!.initializer!.find((t) => t.name === 'sequential/dense/MatMul/ReadVariableOp:0')!.dims!.map(Number), [14 * 14 * (KERAS_CONV_CHANNELS[1] / 2), KERAS_DENSE_UNITS / 2]);
    assert.deepEqual(saved.graph!.input!.map((i) => i.name), ['input_1']);
    assert.deepEqual(saved.graph!.output!.map((i) => i.name), ['dense_1']);
  });

  describe('on the command line', () => {
    it('kiln info says the model takes raw pixels, and which node rescales them', async () => {
      const { code, out } = await runMain(['info', file]);
      assert.equal(code, 0);
      assert.match(out, /Input scale: raw 0–255 pixels \(node 'sequential\/rescaling\/mul' multiplies them by 1\/255 itself/);
    });

    it('kiln evaluate feeds raw pixels unless --scale says otherwise; a bad --scale is refused', async () => {
      const loss = (out: string) => Number(/^loss\s+([0-9.]+)/m.exec(out)![1]);
      const detected = await runMain(['evaluate', file, '--dataset', 'embedded']);
      const given = await runMain(['evaluate', file, '--dataset', 'embedded', '--scale', '1']);
      const unit = await runMain(['evaluate', file, '--dataset', 'embedded', '--scale', '1/255']);
      assert.equal(detected.code, 0, detected.err);
      assert.equal(loss(detected.out), loss(given.out));
      assert.notEqual(loss(detected.out), loss(unit.out));
      for (const bad of ['0', '-1', 'abc', '1/0']) {
        const r = await runMain(['evaluate', file, '--dataset', 'embedded', '--scale', bad]);
        assert.notEqual(r.code, 0, bad);
        assert.match(r.err, /--scale takes a number above 0 or a fraction/, bad);
      }
    });
  });
});
