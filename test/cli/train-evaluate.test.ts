/**
 * `kiln train` and `kiln evaluate`, run for real through main(argv, out, err) on a tiny MNIST-style
 * IDX directory this file writes byte by byte (20x20 images, 4 of MNIST's 10 classes, each class a
 * bright block in its own quadrant): presets, JSON layer lists, continuing a Kiln .onnx, the errors for
 * what cannot be trained, --seed, checkpoint + resume, the help text, softmax-output models, and
 * evaluate's table and JSON against the library's own model.evaluate (Kiln and foreign models).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMain } from './helpers.js';
import { mnist } from '../../src/data/mnist.js';
import type { ImageDataset } from '../../src/data/types.js';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';
import { layers, loadModel, losses, optimizers, Sequential, sequential } from '../../src/index.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { idxFile } from '../data/fixtures.js';
import { assertClose, makeTempDir } from '../model/helpers.js';

const SIDE = 20; // the smallest side tutorial-cnn's three 3x3 convolutions and two pools fit comfortably
const CLASSES = 4;
const TRAIN = 160;
const TEST = 48;

/** Image i of class `label`: a bright 7x7 block in quadrant `label` over faint deterministic noise. */
function images(count: number, offset: number): { pixels: Uint8Array; labels: Uint8Array } {
  const pixels = new Uint8Array(count * SIDE * SIDE);
  const labels = new Uint8Array(count);
  let state = 12345 + offset;
  const next = () => ((state = (state * 1103515245 + 12345) % 2147483648), state / 2147483648);
  for (let i = 0; i < count; i++) {
    const label = (i * 3 + offset) % CLASSES;
    labels[i] = label;
    const top = 2 + (label >> 1) * 10 + Math.floor(next() * 2);
    const left = 2 + (label & 1) * 10 + Math.floor(next() * 2);
    for (let r = 0; r < SIDE; r++) {
      for (let c = 0; c < SIDE; c++) {
        const inBlock = r >= top && r < top + 7 && c >= left && c < left + 7;
        pixels[i * SIDE * SIDE + r * SIDE + c] = inBlock ? 200 + Math.floor(next() * 55) : Math.floor(next() * 60);
      }
    }
  }
  return { pixels, labels };
}

async function writeIdxDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [stem, count, offset] of [['train', TRAIN, 0], ['t10k', TEST, 1]] as const) {
    const { pixels, labels } = images(count, offset);
    await writeFile(join(dir, `${stem}-images-idx3-ubyte`), idxFile(0x00000803, [count, SIDE, SIDE], pixels));
    await writeFile(join(dir, `${stem}-labels-idx1-ubyte`), idxFile(0x00000801, [count], labels));
  }
}

/** A model as `kiln evaluate` / `kiln train` compile it, evaluated by the library on the test split. */
async function libraryEvaluate(file: string, fromLogits = true): Promise<Record<string, number> & { confusion?: number[][] }> {
  const model = await loadModel(file);
  assert.ok(model instanceof Sequential);
  model.compile({ optimizer: 'adam', loss: losses.sparseCategoricalCrossentropy({ fromLogits }), metrics: ['accuracy'] });
  return model.evaluate(data.test.images, data.test.labels);
}

function weightValues(model: Sequential): Map<string, Float32Array> {
  return new Map([...model.weights].map(([k, v]) => [k, v.data as Float32Array]));
}

function assertSameWeights(a: Sequential, b: Sequential, tolerance: number): void {
  const wa = weightValues(a);
  const wb = weightValues(b);
  assert.deepEqual([...wa.keys()].sort(), [...wb.keys()].sort());
  for (const [name, values] of wa) assertClose(wb.get(name)!, values, tolerance, name);
}

function maxDifference(a: Sequential, b: Sequential): number {
  const wb = weightValues(b);
  let max = 0;
  for (const [name, values] of weightValues(a)) {
    const other = wb.get(name)!;
    for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]! - other[i]!));
  }
  return max;
}

/** formatDuration's output ('250ms', '1.2s', '12s', '1m 02s') back to milliseconds. */
function parseDuration(text: string): number {
  let m = /^(\d+)ms$/.exec(text);
  if (m) return Number(m[1]);
  m = /^(\d+(?:\.\d)?)s$/.exec(text);
  if (m) return Number(m[1]) * 1000;
  m = /^(\d+)m (\d\d)s$/.exec(text);
  if (m) return (Number(m[1]) * 60 + Number(m[2])) * 1000;
  throw new Error(`not a duration: ${text}`);
}

const RESULT_LINE = /^Test loss (\d+\.\d{4}), accuracy (\d+\.\d{2})% after (\S+(?: \d\ds)?) \((\S+(?: \d\ds)?) per epoch\)$/m;

let temp: Awaited<ReturnType<typeof makeTempDir>>;
let dataDir: string;
let dataset: string;
let data: ImageDataset;
/** The tutorial-cnn trained by the first test, reused by the later ones. */
let trained: string;
/** A Flatten-Dense(softmax) model trained from a JSON layer list. */
let softmaxModel: string | undefined;

/** A copy of a Kiln .onnx without Kiln's metadata: a foreign model with the same graph and outputs. */
async function writeForeign(kilnFile: string, file: string): Promise<string> {
  const proto = decodeModel(await readFile(kilnFile));
  proto.producerName = 'pytorch';
  proto.metadataProps = [];
  await writeFile(file, encodeModel(proto));
  const check = await loadModel(file);
  assert.ok(check instanceof GraphModel, 'loads as an imported graph, not a Sequential');
  return file;
}

before(async () => {
  temp = await makeTempDir('kiln-cli-train-test-');
  dataDir = join(temp.dir, 'tiny mnist');
  dataset = `mnist:${dataDir}`;
  await writeIdxDir(dataDir);
  data = await mnist(dataDir);
  trained = join(temp.dir, 'cnn.onnx');
});
after(() => temp.remove());

describe('kiln train', () => {
  it('--help shows the options with batch size 32 by default', async () => {
    const { code, out, err } = await runMain(['train', '--help']);
    assert.equal(code, 0);
    assert.equal(err, '');
    assert.match(out, /^Usage: kiln train --dataset /m);
    assert.match(out, /^\s+--batch-size <n>\s+examples per step \(Keras' default\) \(default: 32\)$/m);
    assert.match(out, /^\s+--epochs <n>\s+.*\(default: 2\)$/m);
    for (const option of ['--dataset', '--model', '--optimizer', '--lr', '--resume', '--checkpoint', '--seed', '--out']) assert.ok(out.includes(option), option);
  });

  it('trains tutorial-cnn on an MNIST-style directory and saves a trainable model', async () => {
    const { code, out, err } = await runMain(['train', '--dataset', dataset, '--model', 'tutorial-cnn', '--epochs', '1', '--lr', '0.003', '--seed', '7', '--out', trained]);
    assert.equal(code, 0, err);
    assert.equal(err, '');
    assert.match(out, new RegExp(`^Training tutorial-cnn on mnist:.*: ${TRAIN} images \\[${SIDE},${SIDE},1\\], 10 classes$`, 'm'));
    // Off a terminal, the epoch's progress line comes through the command's output, between its other lines.
    assert.match(out, /^Training [^\n]*\nEpoch 1\/1 \d+\/\d+ .*loss: \d/m);
    const m = RESULT_LINE.exec(out);
    assert.ok(m, out);
    assert.match(out, new RegExp(`^Saved ${trained.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    assert.ok(existsSync(trained));

    const model = await loadModel(trained);
    assert.ok(model instanceof Sequential, 'a Kiln model loads back as a trainable Sequential');
    assert.deepEqual(model.inputShape, [SIDE, SIDE, 1]);
    assert.deepEqual(model.outputShape, [10]);
    assert.deepEqual(
      model.layers.map((l) => l.className),
      ['Conv2D', 'MaxPooling2D', 'Conv2D', 'MaxPooling2D', 'Conv2D', 'Flatten', 'Dense', 'Dense'],
    );
    assert.equal(model.seed, 7, '--seed seeds the weights too');
    // The data set's class names go with the model (metadata 'kiln.labels'), for servers to answer with.
    assert.deepEqual(model.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    // The printed numbers are those of the saved model on the test split.
    const r = await libraryEvaluate(trained);
    assert.equal(m[1], r.loss.toFixed(4));
    assert.equal(m[2], (100 * r.accuracy!).toFixed(2));
    // One epoch: the per-epoch time is the total time.
    assert.equal(m[4], m[3]);
    // It learned something: one epoch on these blocks is well above chance (25%).
    assert.ok(r.accuracy! > 0.5, `accuracy ${r.accuracy}`);
    // And the model trains further in the library.
    model.compile({ optimizer: 'adam', loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
    const history = await model.fit(data.train.images.slice(0, 32), data.train.labels.slice(0, 32), { epochs: 1, verbose: 0 });
    assert.ok(Number.isFinite(history.history.loss![0]));
  });

  it('gives the same weights as the library doing the same (seeded weights and shuffling)', async () => {
    const out = join(temp.dir, 'seeded.onnx');
    const { code, err } = await runMain(['train', '--dataset', dataset, '--epochs', '1', '--seed', '11', '--batch-size', '40', '--optimizer', 'sgd', '--lr', '0.05', '--out', out]);
    assert.equal(code, 0, err);
    const cli = await loadModel(out);
    assert.ok(cli instanceof Sequential);

    const lib = sequential({ layers: layers.tutorialCnn([SIDE, SIDE, 1], 10), seed: 11 });
    lib.compile({ optimizer: optimizers.sgd({ learningRate: 0.05 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    await lib.fit(data.train.images, data.train.labels, { epochs: 1, batchSize: 40, validationSplit: 0.1, seed: 11, verbose: 0 });
    assertSameWeights(cli, lib, 1e-5);
  });

  it('--replicas splits the batches across workers and trains the same weights as one session', async () => {
    const out = join(temp.dir, 'replicas.onnx');
    const { code, out: stdout, err } = await runMain(['train', '--dataset', dataset, '--epochs', '1', '--seed', '11', '--batch-size', '40', '--optimizer', 'sgd', '--lr', '0.05', '--replicas', '2', '--out', out]);
    assert.equal(code, 0, err);
    assert.match(stdout, /per epoch, 2 replicas\)$/m);
    const lib = sequential({ layers: layers.tutorialCnn([SIDE, SIDE, 1], 10), seed: 11 });
    lib.compile({ optimizer: optimizers.sgd({ learningRate: 0.05 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    await lib.fit(data.train.images, data.train.labels, { epochs: 1, batchSize: 40, validationSplit: 0.1, seed: 11, verbose: 0, replicas: 1 });
    assertSameWeights((await loadModel(out)) as Sequential, lib, 1e-5);
    const bad = await runMain(['train', '--dataset', dataset, '--replicas', '0', '--out', out]);
    assert.equal(bad.code, 1);
    assert.equal(bad.err, "kiln train: error [INVALID_ARGUMENT]: --replicas must be an integer of at least 1, got '0'");
  });

  it('--dp-clip with --dp-noise trains with DP-SGD as fit({privacy}) does and prints ε; --dp-epsilon meets its budget', async () => {
    const out = join(temp.dir, 'dp.onnx');
    const { code, out: stdout, err } = await runMain(['train', '--dataset', dataset, '--epochs', '1', '--seed', '11', '--batch-size', '40', '--optimizer', 'sgd', '--lr', '0.05', '--dp-clip', '1e9', '--dp-noise', '0', '--out', out]);
    assert.equal(code, 0, err);
    assert.match(stdout, /^DP-SGD: epsilon Infinity at delta 0\.00001 \(noise multiplier 0\.0000, clip 1000000000, \d+ steps/m);
    // σ = 0 and a clip nothing reaches: the same weights as plain training.
    const lib = sequential({ layers: layers.tutorialCnn([SIDE, SIDE, 1], 10), seed: 11 });
    lib.compile({ optimizer: optimizers.sgd({ learningRate: 0.05 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    await lib.fit(data.train.images, data.train.labels, { epochs: 1, batchSize: 40, validationSplit: 0.1, seed: 11, verbose: 0, replicas: 1 });
    assertSameWeights((await loadModel(out)) as Sequential, lib, 1e-5);
    const budget = await runMain(['train', '--dataset', dataset, '--epochs', '1', '--batch-size', '40', '--dp-clip', '1', '--dp-epsilon', '5', '--dp-delta', '1e-3', '--out', out]);
    assert.equal(budget.code, 0, budget.err);
    const eps = Number(/^DP-SGD: epsilon ([\d.]+) at delta 0\.001 /m.exec(budget.out)?.[1]);
    assert.ok(eps <= 5 && eps > 4.9, `ε ${eps} for a budget of 5`);
    const bad = await runMain(['train', '--dataset', dataset, '--dp-noise', '1', '--out', out]);
    assert.equal(bad.code, 1);
    assert.equal(bad.err, 'kiln train: error [INVALID_ARGUMENT]: --dp-noise and --dp-epsilon need --dp-clip (the per-example clipping norm)');
    const both = await runMain(['train', '--dataset', dataset, '--dp-clip', '1', '--dp-noise', '1', '--dp-epsilon', '3', '--out', out]);
    assert.equal(both.err, 'kiln train: error [INVALID_ARGUMENT]: --dp-clip needs exactly one of --dp-noise and --dp-epsilon, got both');
  });

  it('--crop-padding, --flip and --cutout augment the batches exactly as fit({augment}) does', async () => {
    const out = join(temp.dir, 'augmented.onnx');
    const { code, err } = await runMain(['train', '--dataset', dataset, '--epochs', '1', '--seed', '11', '--batch-size', '40', '--optimizer', 'sgd', '--lr', '0.05', '--crop-padding', '2', '--flip', '--cutout', '3', '--out', out]);
    assert.equal(code, 0, err);
    const cli = await loadModel(out);
    assert.ok(cli instanceof Sequential);
    const train = (augment?: { cropPadding: number; horizontalFlip: boolean; cutout?: number }) => {
      const lib = sequential({ layers: layers.tutorialCnn([SIDE, SIDE, 1], 10), seed: 11 });
      lib.compile({ optimizer: optimizers.sgd({ learningRate: 0.05 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
      return lib.fit(data.train.images, data.train.labels, { epochs: 1, batchSize: 40, validationSplit: 0.1, seed: 11, verbose: 0, augment }).then(() => lib);
    };
    assertSameWeights(cli, await train({ cropPadding: 2, horizontalFlip: true, cutout: 3 }), 1e-5);
    assert.ok(maxDifference(cli, await train({ cropPadding: 2, horizontalFlip: true })) > 1e-4, 'cutout changed nothing');
    assert.ok(maxDifference(cli, await train()) > 1e-4, 'augmentation changed nothing');
    const bad = await runMain(['train', '--dataset', dataset, '--crop-padding', '-1', '--out', join(temp.dir, 'never.onnx')]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /--crop-padding must be an integer of at least 0, got '-1'/);
    const badCutout = await runMain(['train', '--dataset', dataset, '--cutout', '2.5', '--out', join(temp.dir, 'never.onnx')]);
    assert.equal(badCutout.code, 1);
    assert.match(badCutout.err, /--cutout must be an integer of at least 0, got '2\.5'/);
  });

  it('--model takes a JSON list of layers, or {"layers": [...]}', async () => {
    const spec = [
      { className: 'Conv2D', config: { filters: 4, kernelSize: 3, activation: 'relu', inputShape: [SIDE, SIDE, 1] } },
      { className: 'MaxPooling2D', config: { poolSize: 2 } },
      { className: 'Flatten', config: {} },
      { className: 'Dense', config: { units: 10 } },
    ];
    const params = 3 * 3 * 4 + 4 + 9 * 9 * 4 * 10 + 10;
    for (const [name, content] of [['list.json', spec], ['wrapped.json', { layers: spec }]] as const) {
      const file = join(temp.dir, name);
      await writeFile(file, JSON.stringify(content));
      const out = join(temp.dir, `${name}.onnx`);
      const r = await runMain(['train', '--dataset', dataset, '--model', file, '--epochs', '1', '--out', out]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, RESULT_LINE);
      const model = await loadModel(out);
      assert.ok(model instanceof Sequential, name);
      assert.deepEqual(model.layers.map((l) => l.className), ['Conv2D', 'MaxPooling2D', 'Flatten', 'Dense'], name);
      assert.equal([...model.weights.values()].reduce((n, w) => n + w.size, 0), params, name);
    }
  });

  it('a layer list ending in softmax trains on probabilities (from_logits=False)', async () => {
    const file = join(temp.dir, 'softmax.json');
    await writeFile(file, JSON.stringify([
      { className: 'Flatten', config: { inputShape: [SIDE, SIDE, 1] } },
      { className: 'Dense', config: { units: 10, activation: 'softmax' } },
    ]));
    softmaxModel = join(temp.dir, 'softmax.onnx');
    const r = await runMain(['train', '--dataset', dataset, '--model', file, '--epochs', '2', '--lr', '0.01', '--out', softmaxModel]);
    assert.equal(r.code, 0, r.err);
    const m = RESULT_LINE.exec(r.out);
    assert.ok(m, r.out);
    // The printed loss is the cross-entropy of the probabilities the model outputs: softmax applied
    // twice would squash them towards uniform and report about ln(10) whatever the model learned.
    const lib = await libraryEvaluate(softmaxModel, false);
    assert.equal(m[1], lib.loss.toFixed(4));
    assert.equal(m[2], (100 * lib.accuracy!).toFixed(2));
    assert.ok(lib.accuracy! > 0.5, `accuracy ${lib.accuracy}`);
    assert.ok(lib.loss < 1.5, `loss ${lib.loss}: training optimized the real cross-entropy`);
  });

  it('--model foreign.onnx fine-tunes a model another tool wrote, as its own graph', async () => {
    const foreign = await writeForeign(trained, join(temp.dir, 'exported.onnx'));
    const out = join(temp.dir, 'exported-tuned.onnx');
    const { code, err } = await runMain(['train', '--dataset', dataset, '--model', foreign, '--epochs', '1', '--lr', '0.003', '--out', out]);
    assert.equal(code, 0, err);
    const [source, tuned] = [decodeModel(await readFile(foreign)), decodeModel(await readFile(out))];
    assert.deepEqual(tuned.graph!.node!.map((n) => n.name), source.graph!.node!.map((n) => n.name), 'the same graph, node for node');
    assert.equal(tuned.producerName, 'pytorch');
    const changed = tuned.graph!.initializer!.some((t, i) => Buffer.compare(Buffer.from(t.rawData ?? []), Buffer.from(source.graph!.initializer![i]!.rawData ?? [])) !== 0);
    assert.ok(changed, 'weights changed');
    assert.ok((await loadModel(out)) instanceof GraphModel);
  });

  it('--model model.onnx continues training a Kiln model', async () => {
    const before = await loadModel(trained);
    assert.ok(before instanceof Sequential);
    const out = join(temp.dir, 'continued.onnx');
    const { code, out: text, err } = await runMain(['train', '--dataset', dataset, '--model', trained, '--epochs', '1', '--lr', '0.003', '--out', out]);
    assert.equal(code, 0, err);
    assert.ok(text.includes(`Training ${trained} on`), text);
    const after = await loadModel(out);
    assert.ok(after instanceof Sequential);
    assert.deepEqual(after.layers.map((l) => l.serialize()), before.layers.map((l) => l.serialize()));
    assert.ok(maxDifference(before, after) > 0, 'weights changed');
    // Exactly what the library does continuing from the saved weights (not from fresh ones).
    before.compile({ optimizer: optimizers.adam({ learningRate: 0.003 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    await before.fit(data.train.images, data.train.labels, { epochs: 1, batchSize: 32, validationSplit: 0.1, seed: 42, verbose: 0 });
    assertSameWeights(after, before, 1e-5);
  });

  describe('errors', () => {
    async function fails(argv: string[], code: string, ...fragments: string[]): Promise<void> {
      const out = join(temp.dir, 'never.onnx');
      const r = await runMain(['train', '--dataset', dataset, '--epochs', '1', '--out', out, ...argv]);
      assert.equal(r.code, 1, `exit code; err: ${r.err}`);
      assert.match(r.err, new RegExp(`^kiln train: error \\[${code}\\]: `));
      for (const f of fragments) assert.ok(r.err.includes(f), `"${r.err}" should mention "${f}"`);
      assert.ok(!existsSync(out), 'nothing saved');
    }

    it('an unknown preset or a missing file', async () => {
      await fails(['--model', 'resnet-9000'], 'FILE_NOT_FOUND', "'resnet-9000'", 'neither a preset (tutorial-cnn, small-vgg) nor an existing file');
      const missing = join(temp.dir, 'missing.onnx');
      await fails(['--model', missing], 'FILE_NOT_FOUND', missing);
    });

    it('a layer list that is not valid JSON, not a list, or names an unknown layer', async () => {
      const bad = join(temp.dir, 'bad.json');
      await writeFile(bad, '[{"className": "Dense", ');
      await fails(['--model', bad], 'INVALID_DATA', bad, 'is not valid JSON');
      const notList = join(temp.dir, 'not-a-list.json');
      await writeFile(notList, '{"units": 10}');
      await fails(['--model', notList], 'INVALID_DATA', notList, 'must be a list of layers or {"layers": [...]}');
      const nullJson = join(temp.dir, 'null.json');
      await writeFile(nullJson, 'null');
      await fails(['--model', nullJson], 'INVALID_DATA', nullJson, 'must be a list of layers');
      const unknown = join(temp.dir, 'unknown.json');
      await writeFile(unknown, JSON.stringify([{ className: 'Conv3D', config: {} }]));
      await fails(['--model', unknown], 'UNKNOWN_LAYER', `${unknown} layer 0`, '"Conv3D"');
    });

    it('a foreign model of token ids (integer input) fed an image data set is refused with the reason', async () => {
      const kiln = join(temp.dir, 'small.onnx');
      await sequential({ layers: [layers.flatten({ inputShape: [SIDE, SIDE, 1] }), layers.dense({ units: 10 })] }).save(kiln);
      const proto = decodeModel(await readFile(kiln));
      proto.metadataProps = [];
      proto.graph!.input![0]!.type!.tensorType!.elemType = 7;
      proto.graph!.node!.unshift({ name: 'ids_to_float', opType: 'Cast', input: ['input'], output: ['input_float'], attribute: [{ name: 'to', type: 2, i: 1 }] });
      for (const n of proto.graph!.node!.slice(1)) n.input = n.input!.map((i) => (i === 'input' ? 'input_float' : i));
      const tokens = join(temp.dir, 'tokens.onnx');
      await writeFile(tokens, encodeModel(proto));
      await fails(['--model', tokens], 'INVALID_ARGUMENT', 'must be int64 token ids', 'image or vector data cannot feed a model of token ids');
    });

    it('an unknown data set', async () => {
      const nowhere = join(temp.dir, 'nowhere');
      await fails(['--dataset', nowhere], 'FILE_NOT_FOUND', nowhere);
    });
  });

  it('--checkpoint then --resume continues exactly where training stopped', async () => {
    const common = ['train', '--dataset', dataset, '--seed', '3', '--batch-size', '40'];
    const straight = join(temp.dir, 'straight.onnx');
    const full = await runMain([...common, '--epochs', '2', '--out', straight]);
    assert.equal(full.code, 0, full.err);
    const fm = RESULT_LINE.exec(full.out)!;
    // Two epochs: per epoch is half the total (up to formatDuration's rounding).
    const [total, perEpoch] = [parseDuration(fm[3]!), parseDuration(fm[4]!)];
    assert.ok(Math.abs(perEpoch - total / 2) <= 0.06 * total + 50, `${fm[3]} total, ${fm[4]} per epoch`);

    const ckpt = join(temp.dir, 'train.ckpt');
    const first = await runMain([...common, '--epochs', '1', '--checkpoint', ckpt, '--out', join(temp.dir, 'half.onnx')]);
    assert.equal(first.code, 0, first.err);
    assert.ok(existsSync(ckpt), 'checkpoint written');
    const resumedFile = join(temp.dir, 'resumed.onnx');
    const second = await runMain([...common, '--epochs', '2', '--resume', ckpt, '--out', resumedFile]);
    assert.equal(second.code, 0, second.err);
    const sm = RESULT_LINE.exec(second.out);
    assert.ok(sm, second.out);
    // The resumed run trained one epoch (the second): its per-epoch time is its whole time.
    assert.equal(sm[4], sm[3], second.out);

    const [a, b] = [await loadModel(straight), await loadModel(resumedFile)];
    assert.ok(a instanceof Sequential && b instanceof Sequential);
    assertSameWeights(b, a, 1e-5);
    assert.equal(sm[2], fm[2], 'same test accuracy as the uninterrupted run');
  });
});

describe('kiln evaluate', () => {
  before(async () => {
    if (!existsSync(trained)) {
      // Only when run on its own (--test-name-pattern): the first train test writes it otherwise.
      const r = await runMain(['train', '--dataset', dataset, '--epochs', '1', '--lr', '0.003', '--seed', '7', '--out', trained]);
      assert.equal(r.code, 0, r.err);
    }
  });

  it('prints loss, accuracy, macro F1, AUC-ROC and the confusion matrix', async () => {
    const { code, out, err } = await runMain(['evaluate', trained, '--dataset', dataset]);
    assert.equal(code, 0, err);
    assert.equal(err, '');
    const r = await libraryEvaluate(trained);
    assert.match(out, /^Metric\s+Value$/m);
    assert.match(out, new RegExp(`^loss\\s+${r.loss.toFixed(4)}$`, 'm'));
    assert.match(out, new RegExp(`^accuracy\\s+${r.accuracy!.toFixed(4)}$`, 'm'));
    assert.match(out, new RegExp(`^macroF1\\s+${r.macroF1!.toFixed(4)}$`, 'm'));
    assert.match(out, new RegExp(`^aucRoc\\s+${r.aucRoc!.toFixed(4)}$`, 'm'));
    assert.match(out, /^Confusion matrix \(rows: true class, columns: predicted\)$/m);
    const table = out.slice(out.indexOf('Confusion matrix'));
    const rows = table.split('\n').slice(3);
    assert.equal(rows.length, 10, table);
    rows.forEach((line, i) => {
      const cells = line.trim().split(/\s+/);
      assert.equal(cells[0], String(i), `row ${i} is MNIST class '${i}'`);
      assert.deepEqual(cells.slice(1).map(Number), r.confusion![i], `row ${i}`);
    });
    // Classes 4..9 never occur: their rows are empty; the four used ones hold the 48 test images.
    assert.equal(r.confusion!.flat().reduce((a, b) => a + b, 0), TEST);
    assert.equal(r.confusion!.slice(0, CLASSES).map((row) => row.reduce((a, b) => a + b, 0)).join(), '12,12,12,12');
  });

  it('--json prints the same numbers as JSON, consistent with model.evaluate', async () => {
    const { code, out, err } = await runMain(['evaluate', trained, '--dataset', dataset, '--json']);
    assert.equal(code, 0, err);
    const j = JSON.parse(out) as { loss: number; accuracy: number; macroF1: number; aucRoc: number; confusion: number[][] };
    const r = await libraryEvaluate(trained);
    assert.equal(j.accuracy, r.accuracy);
    assertClose([j.loss, j.macroF1, j.aucRoc], [r.loss, r.macroF1!, r.aucRoc!], 1e-6, 'loss, macroF1, aucRoc');
    assert.deepEqual(j.confusion, r.confusion);
    const diagonal = j.confusion.reduce((n, row, i) => n + row[i]!, 0);
    assert.equal(j.accuracy, diagonal / TEST, 'accuracy is the confusion matrix diagonal');
    assert.ok(j.aucRoc > 0.5 && j.aucRoc <= 1, `aucRoc ${j.aucRoc}`);
    assert.ok(j.macroF1 > 0 && j.macroF1 <= 1, `macroF1 ${j.macroF1}`);
  });

  it('evaluates a foreign model like the Kiln model it was exported from: loss from its logits, same accuracy', async () => {
    const foreign = await writeForeign(trained, join(temp.dir, 'foreign cnn.onnx'));
    const { code, out, err } = await runMain(['evaluate', foreign, '--dataset', dataset, '--json']);
    assert.equal(code, 0, err);
    const j = JSON.parse(out) as Record<string, number>;
    assert.deepEqual(Object.keys(j).sort(), ['accuracy', 'aucRoc', 'confusion', 'loss', 'macroF1']);
    const r = await libraryEvaluate(trained);
    assert.equal(j.accuracy, r.accuracy);
    assert.deepEqual(j.confusion, r.confusion);
    assertClose([j.loss!], [r.loss], 1e-5, 'loss');
  });

  it('scores a Kiln model ending in softmax as probabilities', async () => {
    let file = softmaxModel;
    if (!file || !existsSync(file)) {
      file = join(temp.dir, 'untrained-softmax.onnx');
      await sequential({ layers: [layers.flatten({ inputShape: [SIDE, SIDE, 1] }), layers.dense({ units: 10, activation: 'softmax' })] }).save(file);
    }
    const { code, out, err } = await runMain(['evaluate', file, '--dataset', dataset, '--json']);
    assert.equal(code, 0, err);
    const j = JSON.parse(out) as { loss: number; accuracy: number };
    const r = await libraryEvaluate(file, false);
    assert.equal(j.accuracy, r.accuracy);
    assertClose([j.loss], [r.loss], 1e-6, 'loss');
  });

  it('without a model, or with a missing one, exits 1 saying so', async () => {
    const none = await runMain(['evaluate', '--dataset', dataset]);
    assert.equal(none.code, 1);
    assert.match(none.err, /give a model file/);
    const missing = join(temp.dir, 'gone.onnx');
    const gone = await runMain(['evaluate', missing, '--dataset', dataset]);
    assert.equal(gone.code, 1);
    assert.match(gone.err, /FILE_NOT_FOUND/);
    assert.ok(gone.err.includes(missing), gone.err);
  });
});
