/**
 * GraphModel: models other tools exported, trained as they are (test/fixtures/exported, made by
 * PyTorch). Fine-tuning from channels-last data without a flag, the drop-in saved file, transfer
 * learning (trainOnly, replaceHead), and the errors that come before any training.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { embedded } from '../../src/data/embedded.js';
import { KilnError } from '../../src/errors.js';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto, tensorToProto } from '../../src/graph/onnx-io.js';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { loadModel } from '../../src/train/load.js';
import { quantize } from '../../src/optimize/quantize/quantize.js';
import { resolveOptimizer } from '../../src/train/optimizers.js';
import { promises as fs } from 'node:fs';
import { writeWrapPadModel } from './helpers.js';

const DIR = 'test/fixtures/exported';
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function subset(n: number, nTest: number) {
  const data = await embedded();
  return { x: data.train.images.slice(0, n), y: data.train.labels.slice(0, n), xTest: data.test.images.slice(0, nTest), yTest: data.test.labels.slice(0, nTest) };
}

/** A small foreign model written here: input [N, 4] → MatMul(W) → ops → output. */
async function writeModel(dir: string, name: string, build: (g: Graph) => void): Promise<string> {
  const g = new Graph(name);
  build(g);
  const file = join(dir, `${name}.onnx`);
  await fs.writeFile(file, encodeModel(modelToProto(g)));
  return file;
}

describe('GraphModel on PyTorch exports', () => {
  it('fine-tunes a channels-first ResNet from channels-last images without a flag, and saves a drop-in file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-graph-'));
    const source = `${DIR}/resnet.onnx`;
    const before = sha(source);
    const { x, y, xTest, yTest } = await subset(3000, 1000);
    const model = await GraphModel.load(source);
    assert.deepEqual(model.modelInput.shape, [1, 28, 28]);
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const start = await model.evaluate(xTest, yTest);
    assert.deepEqual(model.inputShape, [28, 28, 1], 'the NHWC data switched the model to a channels-first adapter');
    await model.fit(x, y, { epochs: 2, batchSize: 64, verbose: 0, seed: 1 });
    const end = await model.evaluate(xTest, yTest);
    assert.ok(end.accuracy! > start.accuracy! + 0.1, `accuracy ${start.accuracy} → ${end.accuracy}`);

    const out = join(dir, 'tuned.onnx');
    await model.save(out);
    assert.equal(sha(source), before, 'the original file is never modified');
    const original = decodeModel(readFileSync(source));
    const saved = decodeModel(readFileSync(out));
    assert.deepEqual(saved.graph!.input!.map((i) => i.name), ['input']);
    assert.deepEqual(saved.graph!.output!.map((o) => o.name), ['logits']);
    assert.deepEqual(saved.graph!.input![0]!.type, original.graph!.input![0]!.type, 'input type and shape kept');
    assert.deepEqual(saved.opsetImport, original.opsetImport);
    assert.deepEqual(saved.graph!.node!.map((n) => [n.name, n.opType]), original.graph!.node!.map((n) => [n.name, n.opType]));
    assert.deepEqual(saved.graph!.initializer!.map((t) => t.name), original.graph!.initializer!.map((t) => t.name));
    const meta = new Map(saved.metadataProps!.map((m) => [m.key, m.value]));
    assert.ok(meta.has('kiln.training') && meta.has('kiln.history'), 'training metadata added');
    assert.equal(JSON.parse(meta.get('kiln.preprocessing')!).layout, 'nchw');

    // The saved file runs unchanged in ONNX Runtime (NCHW, as exported) and gives the trained model's outputs.
    const plain = await OnnxModel.load(out);
    const nchw = new Tensor(new Float32Array(8 * 784), [8, 1, 28, 28], 'float32');
    const nhwc = xTest.slice(0, 8);
    for (let i = 0; i < 8 * 784; i++) nchw.data[i] = (nhwc.data as Float32Array)[i]!; // one channel: same order
    const direct = (await plain.run({ input: nchw })).logits!.data as Float32Array;
    const viaKiln = (await model.predict(nhwc)).data;
    for (let i = 0; i < direct.length; i++) assert.ok(Math.abs(direct[i]! - viaKiln[i]!) < 1e-4);
    const reloaded = await loadModel(out);
    assert.ok(reloaded instanceof GraphModel);
    assert.deepEqual(reloaded.preprocessing, { layout: 'nchw' }, 'the layout travels in the metadata');
  });

  it('transfer learning: a new 5-class head on a frozen backbone trains only the head, and BatchNorm keeps its statistics', async () => {
    const data = await subset(3000, 1000);
    const pick = (x: Tensor, y: Tensor) => {
      const idx: number[] = [];
      for (let i = 0; i < y.size; i++) if (Number(y.data[i]) >= 5) idx.push(i);
      const labels = new Tensor(Float32Array.from(idx, (i) => Number(y.data[i]) - 5), [idx.length], 'float32');
      return [x.gather(idx), labels] as const;
    };
    const [x, y] = pick(data.x, data.y);
    const [xTest, yTest] = pick(data.xTest, data.yTest);
    const model = await GraphModel.load(`${DIR}/resnet.onnx`);
    model.classNames = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
    await model.replaceHead(5);
    assert.deepEqual(model.outputShape, [5]);
    assert.equal(model.classNames, undefined, "the old head's class names go with it");
    model.trainOnly('head.*');
    const frozenBefore = new Map([...model.weights].filter(([n]) => !n.startsWith('head.')).map(([n, t]) => [n, Float32Array.from(t.data as Float32Array)]));
    assert.ok(frozenBefore.has('block1.conv1.1.running_mean'));
    const headBefore = Float32Array.from(model.weights.get('head.weight')!.data as Float32Array);
    model.compile({ optimizer: resolveOptimizer({ name: 'adam', config: { learningRate: 0.01 } }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    assert.deepEqual(model.countParams().trainable, model.weights.get('head.weight')!.size + 5, 'only the head trains');
    await model.fit(x, y, { epochs: 2, batchSize: 32, verbose: 0 });
    for (const [n, t] of frozenBefore) assert.deepEqual(model.weights.get(n)!.data, t, `${n} kept its values`);
    assert.notDeepEqual(model.weights.get('head.weight')!.data, headBefore);
    const r = await model.evaluate(xTest, yTest);
    assert.ok(r.accuracy! > 0.6, `5-class accuracy ${r.accuracy}`);
    const saved = decodeModel(model.toOnnx());
    assert.equal(saved.graph!.output![0]!.type!.tensorType!.shape!.dim![1]!.dimValue, 5, 'the saved output declares 5 classes');
  });

  it('a graph ending in Softmax trains from the logits before it and reports its outputs as probabilities', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-graph-'));
    // Value names Kiln's own step uses ('labels', 'loss', 'output', and an initializer 'step'): the import renames them.
    const file = await writeModel(dir, 'softmax', (g) => {
      const x = g.input('features', 'float32', ['batch', 4]);
      const w = g.initializer('dense.weight', new Tensor(Float32Array.from({ length: 12 }, (_, i) => (i % 5) / 10 - 0.2), [4, 3], 'float32'));
      const bias = g.initializer('step', new Tensor(new Float32Array(3), [3], 'float32'));
      const h = g.op('MatMul', [x, w], {}, { outputs: ['labels'] })[0]!;
      const l = g.op('Add', [h, bias], {}, { outputs: ['loss'] })[0]!;
      g.output(g.op1('Softmax', [l], { axis: -1 }), 'output');
    });
    const model = await GraphModel.load(file);
    assert.equal(model.outputsProbabilities, true);
    const x = new Tensor(Float32Array.from({ length: 400 }, (_, i) => ((i * 7919) % 97) / 97 - 0.5), [100, 4], 'float32');
    const y = new Tensor(Float32Array.from({ length: 100 }, (_, i) => Number((x.data[i * 4]! > 0 ? 1 : 0) + (x.data[i * 4 + 1]! > 0 ? 1 : 0))), [100], 'float32');
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const h = await model.fit(x, y, { epochs: 30, batchSize: 20, verbose: 0 });
    assert.ok(h.history.loss!.at(-1)! < h.history.loss![0]!);
    const p = (await model.predict(x)).data;
    for (let r = 0; r < 100; r++) assert.ok(Math.abs(p[r * 3]! + p[r * 3 + 1]! + p[r * 3 + 2]! - 1) < 1e-5, 'predict gives the probabilities');
  });
});

describe('GraphModel on files of opsets before 13', () => {
  it('upgrades a ViT of opset 9 as it loads: the same predictions, fine-tuned, saved as an opset-13 file ONNX Runtime runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-graph-old-'));
    const source = `${DIR}/vit9.onnx`;
    const before = sha(source);
    const { x, y, xTest } = await subset(640, 64);
    const model = await GraphModel.load(source);
    const original = await OnnxModel.load(source);
    assert.equal(model.graphOpset, 17, 'the step is written at 17, as for a model of 13');
    const nchw = (t: Tensor) => {
      const [n, h, w] = t.shape as number[];
      return new Tensor(Float32Array.from(t.data as Float32Array), [n!, 1, h!, w!], 'float32');
    };
    const [upgraded, theirs] = [await model.predict(xTest), await original.predict(nchw(xTest))];
    const gap = Math.max(...Array.from(upgraded.data as Float32Array, (v, i) => Math.abs(v - (theirs.data as Float32Array)[i]!)));
    assert.ok(gap < 1e-5, `predictions of the upgraded graph differ by ${gap}`);

    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    await model.fit(x, y, { epochs: 1, batchSize: 64, verbose: 0, seed: 1 });
    const out = join(dir, 'tuned.onnx');
    await model.save(out);
    assert.equal(sha(source), before, 'the original file is never modified');
    const saved = decodeModel(readFileSync(out));
    assert.deepEqual(saved.opsetImport, [{ domain: '', version: 13 }]);
    assert.ok(saved.irVersion! >= 7);
    assert.deepEqual(saved.graph!.input!.map((i) => i.name), ['input']);
    assert.deepEqual(saved.graph!.output!.map((o) => o.name), ['logits']);
    const reloaded = await OnnxModel.load(out);
    const [ours, again] = [await model.predict(xTest), await reloaded.predict(nchw(xTest))];
    const drift = Math.max(...Array.from(ours.data as Float32Array, (v, i) => Math.abs(v - (again.data as Float32Array)[i]!)));
    assert.ok(drift < 1e-5, `the saved file predicts ${drift} away from the model`);
  });
});

describe('GraphModel on an open-ended Slice (ends = INT64_MAX in int64_data, as onnx.helper writes it)', () => {
  it('keeps the Slice open: predicts, trains and quantizes at the full width', async () => {
    const w = tensorToProto('w', new Tensor(Float32Array.from({ length: 24 }, (_, i) => i / 24 - 0.5), [4, 6], 'float32'));
    const bounds = [
      { name: 'starts', dataType: 7, dims: [1], int64Data: [1] },
      { name: 'ends', dataType: 7, dims: [1], int64Data: ['9223372036854775807' as never] },
      { name: 'axes', dataType: 7, dims: [1], int64Data: [1] },
    ];
    const dims = (...d: (number | string)[]) => ({ dim: d.map((x) => (typeof x === 'number' ? { dimValue: x } : { dimParam: x })) });
    const bytes = encodeModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'open',
        node: [
          { opType: 'MatMul', input: ['x', 'w'], output: ['h'] },
          { opType: 'Slice', input: ['h', 'starts', 'ends', 'axes'], output: ['y'] },
        ],
        initializer: [w, ...bounds],
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: dims('N', 4) } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: dims('N', 5) } } }],
      },
    });
    const model = await loadModel(bytes);
    assert.ok(model instanceof GraphModel, 'trainable');
    const x = new Tensor(Float32Array.from({ length: 8 }, (_, i) => i / 8), [2, 4], 'float32');
    assert.deepEqual((await model.predict(x)).shape, [2, 5]);
    const q = await quantize(bytes, { mode: 'dynamic' });
    assert.deepEqual((await q.predict(x)).shape, [2, 5]);
  });
});

describe('GraphModel on a file of opset 6 (which ONNX Runtime cannot run as it is)', () => {
  it('upgrades it by Kiln\'s shape rules and the declared shapes: Add with the legacy axis broadcast trains', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-graph-six-'));
    const b = tensorToProto('b', new Tensor(Float32Array.from([1, -1, 0.5]), [3], 'float32'));
    const w = tensorToProto('w', new Tensor(Float32Array.from({ length: 24 }, (_, i) => ((i * 7) % 11) / 11 - 0.5), [12, 2], 'float32'));
    const dims = (...d: (number | string)[]) => ({ dim: d.map((x) => (typeof x === 'number' ? { dimValue: x } : { dimParam: x })) });
    const file = join(dir, 'six.onnx');
    await fs.writeFile(
      file,
      encodeModel({
        irVersion: 3,
        opsetImport: [{ domain: '', version: 6 }],
        graph: {
          name: 'six',
          node: [
            { opType: 'Add', input: ['x', 'b'], output: ['shifted'], attribute: [{ name: 'broadcast', type: 2, i: 1 }, { name: 'axis', type: 2, i: 1 }] },
            { opType: 'Flatten', input: ['shifted'], output: ['flat'] },
            { opType: 'MatMul', input: ['flat', 'w'], output: ['y'] },
          ],
          initializer: [b, w],
          input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: dims('N', 3, 4) } } }, { name: 'b', type: { tensorType: { elemType: 1, shape: dims(3) } } }, { name: 'w', type: { tensorType: { elemType: 1, shape: dims(12, 2) } } }],
          output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: dims('N', 2) } } }],
        },
      }),
    );
    await assert.rejects(OnnxModel.load(file).then((m) => m.run({ x: new Tensor(new Float32Array(12), [1, 3, 4], 'float32') })), /Add\(6\)/, 'ONNX Runtime has no kernel for it');
    const model = await GraphModel.load(file);
    const x = new Tensor(Float32Array.from({ length: 48 }, (_, i) => Math.sin(i)), [4, 3, 4], 'float32');
    const got = (await model.predict(x)).data as Float32Array;
    // By hand: x + b along axis 1, flattened, times w.
    const want = Array.from({ length: 8 }, (_, k) => {
      const [n, j] = [Math.floor(k / 2), k % 2];
      let sum = 0;
      for (let f = 0; f < 12; f++) sum += (x.data[n * 12 + f]! + [1, -1, 0.5][Math.floor(f / 4)]!) * (w.rawData ? new Float32Array(w.rawData.slice().buffer)[f * 2 + j]! : 0);
      return sum;
    });
    assert.ok(want.every((v, i) => Math.abs(v - got[i]!) < 1e-5), `${Array.from(got)} vs ${want}`);
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    const y = new Tensor(Int32Array.from([0, 1, 0, 1]), [4], 'int32');
    const h = await model.fit(x, y, { epochs: 3, batchSize: 4, verbose: 0 });
    assert.ok(h.history.loss![2]! < h.history.loss![0]!, `loss ${h.history.loss}`);
  });
});

describe('GraphModel: opsets, preprocessing, selectors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-graph-more-'));
  const vectors = () => {
    const x = new Tensor(Float32Array.from({ length: 400 }, (_, i) => ((i * 7919) % 97) / 97), [100, 4], 'float32');
    const y = new Tensor(Float32Array.from({ length: 100 }, (_, i) => (x.data[i * 4]! > 0.5 ? 1 : 0)), [100], 'float32');
    return { x, y };
  };
  const dense = (g: Graph) => {
    const x = g.input('x', 'float32', ['batch', 4]);
    const w = g.initializer('fc.weight', new Tensor(Float32Array.from({ length: 8 }, (_, i) => i / 10 - 0.3), [4, 2], 'float32'));
    return g.op1('MatMul', [x, w]);
  };

  it('trains an opset-18 graph (ReduceMean with axes as an input) and an opset-20 one (the Gelu op), and refuses opset 22 naming the range', async () => {
    const write = async (name: string, opset: number) => {
      const g = new Graph(name);
      const h = dense(g);
      const centered = g.op1('Sub', [h, g.op1('ReduceMean', [h, g.int64s([1])], { keepdims: 1 })]);
      g.output(opset >= 20 ? g.op1('Gelu', [centered]) : centered, 'y');
      const file = join(dir, `${name}.onnx`);
      await fs.writeFile(file, encodeModel(modelToProto(g, {}, opset)));
      return file;
    };
    const model = await GraphModel.load(await write('opset18', 18));
    assert.equal(model.graphOpset, 18);
    const { x, y } = vectors();
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    const h = await model.fit(x, y, { epochs: 2, batchSize: 25, verbose: 0 });
    assert.ok(Number.isFinite(h.history.loss![1]!));
    const gelu = await GraphModel.load(await write('opset20', 20));
    assert.equal(gelu.graphOpset, 20);
    gelu.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    const g = await gelu.fit(x, y, { epochs: 2, batchSize: 25, verbose: 0 });
    assert.ok(g.history.loss![1]! < g.history.loss![0]!, `loss ${g.history.loss}`);
    await assert.rejects(GraphModel.load(await write('opset22', 22)), (e: unknown) => e instanceof KilnError && e.code === 'UNSUPPORTED_OP' && /opsets 6 to 21/.test(e.message));
  });

  it('applies --mean/--std in the graph, keeps them across save and load, and refuses bad values as the caller\'s error', async () => {
    const file = join(dir, 'dense.onnx');
    const g = new Graph('dense');
    g.output(dense(g), 'y');
    await fs.writeFile(file, encodeModel(modelToProto(g)));
    const mean = [0.5, 0.25, 0, -0.5];
    const std = [2, 4, 1, 0.5];
    const model = await GraphModel.load(file, { mean, std });
    const x = new Tensor(Float32Array.of(1, 2, 3, 4), [1, 4], 'float32');
    const normalized = new Tensor(Float32Array.from(x.data as Float32Array, (v, i) => (v - mean[i]!) / std[i]!), [1, 4], 'float32');
    const expected = (await (await OnnxModel.load(file)).predict(normalized)).data as Float32Array;
    const got = (await model.predict(x)).data;
    expected.forEach((v, i) => assert.ok(Math.abs(v - got[i]!) < 1e-6, `${v} vs ${got[i]}`));
    const saved = join(dir, 'dense-normalized.onnx');
    await model.save(saved);
    const again = await loadModel(saved);
    assert.ok(again instanceof GraphModel);
    assert.deepEqual(again.preprocessing, { mean, std });
    again.setPreprocessing({ mean: [0] });
    assert.deepEqual(again.preprocessing, { mean: [0], std }, 'setPreprocessing changes what it is given, keeps the rest');
    await assert.rejects(loadModel(file, { mean: [1, 2, 3] }), (e: unknown) => e instanceof KilnError && e.code === 'INVALID_ARGUMENT' && /--mean has 3 values/.test(e.message));
    await assert.rejects(loadModel(file, { std: [1, 0, 1, 1] }), /--std values must be > 0/);
    await assert.rejects(GraphModel.load(`${DIR}/resnet.onnx`, { layout: 'NCHW' as 'nchw' }), /layout must be 'nchw' or 'nhwc'/);
  });

  it('replaceHead finds the head whatever trainOnly froze; a global RegExp selects every match', async () => {
    const model = await GraphModel.load(`${DIR}/mlp.onnx`);
    model.trainOnly(/weight/g);
    assert.deepEqual(model.paramInfos().filter((p) => p.spec.trainable).map((p) => p.name), ['1.weight', '3.weight', '5.weight']);
    model.trainOnly('1.*');
    await model.replaceHead(4);
    assert.deepEqual(model.outputShape, [4]);
    assert.deepEqual(model.weights.get('5.weight')!.shape, [4, 32]);
  });

  it('the first data settles the layout; data in the other layout later is an error, not a silent recompile', async () => {
    const model = await GraphModel.load(`${DIR}/dwsep.onnx`);
    const nhwc = new Tensor(new Float32Array(2 * 784), [2, 28, 28, 1], 'float32');
    assert.deepEqual((await model.predict(nhwc)).shape, [2, 10]);
    await assert.rejects(model.predict(new Tensor(new Float32Array(2 * 784), [2, 1, 28, 28], 'float32')), (e: unknown) => e instanceof KilnError && e.code === 'INVALID_SHAPE' && /--layout/.test(e.message));
  });
});

describe('GraphModel: bad input is refused before any training, naming the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-graph-bad-'));
  const expectError = async (f: () => unknown, code: string, ...parts: (string | RegExp)[]) => {
    await assert.rejects(async () => f(), (err: unknown) => {
      assert.ok(err instanceof KilnError, String(err));
      assert.equal(err.code, code, err.message);
      for (const p of parts) assert.match(err.message, typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
      return true;
    });
  };

  it('every op without a gradient rule, with its node, at once', async () => {
    const file = await writeModel(dir, 'trig', (g) => {
      const x = g.input('x', 'float32', ['batch', 4]);
      const w = g.initializer('w', new Tensor(new Float32Array(8).fill(0.1), [4, 2], 'float32'));
      // Two ops Kiln has no rules for, written as imported nodes are.
      const h = g.importNode('LpNormalization', [g.op1('MatMul', [x, w]).name], { axis: 1, p: 2 }, [{ name: 'lp', dtype: 'float32', shape: ['batch', 2] }], { name: 'the_norm' })[0]!;
      const c = g.importNode('MeanVarianceNormalization', [h.name], { axes: [0, 1] }, [{ name: 'mvn', dtype: 'float32', shape: ['batch', 2] }], { name: 'the_mvn' })[0]!;
      g.output(c, 'y');
    });
    const model = await GraphModel.load(file);
    assert.deepEqual(model.untrainableOps().map((m) => m.op), ['LpNormalization', 'MeanVarianceNormalization']);
    await expectError(() => model.compile({ optimizer: 'adam', loss: 'meanSquaredError' }), 'NO_GRADIENT', 'LpNormalization, MeanVarianceNormalization', 'the_norm (LpNormalization)', 'the_mvn (MeanVarianceNormalization)');
  });

  it('a rule that covers only part of its op: compile names the node and why', async () => {
    // Pad's gradient takes constant, reflect and edge; 'wrap' (opset 19) has no rule.
    const model = await GraphModel.load(await writeWrapPadModel(dir));
    assert.deepEqual(model.untrainableOps(), [], 'Pad has a rule');
    await expectError(() => model.compile({ optimizer: 'adam', loss: 'meanSquaredError' }), 'NO_GRADIENT', "node 'the_wrap' (Pad)", "mode 'wrap' is not supported");
  });

  it('a model with no trainable float weights', async () => {
    const file = await writeModel(dir, 'noweights', (g) => g.output(g.op1('Relu', [g.input('x', 'float32', ['batch', 4])]), 'y'));
    const model = await GraphModel.load(file);
    await expectError(() => model.compile({ optimizer: 'adam', loss: 'meanSquaredError' }), 'NOT_TRAINABLE', 'no trainable float weights');
  });

  it('data whose shape fits the input in no layout: both shapes and the --layout flag', async () => {
    const model = await GraphModel.load(`${DIR}/resnet.onnx`);
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    const x = new Tensor(new Float32Array(2 * 30 * 30), [2, 30, 30, 1], 'float32');
    await expectError(() => model.fit(x, new Tensor(Float32Array.of(0, 1), [2], 'float32')), 'INVALID_SHAPE', '[2, 30, 30, 1]', '[null, 1, 28, 28]', '--layout');
    const fixed = await GraphModel.load(`${DIR}/resnet.onnx`, { layout: 'nhwc' });
    await expectError(() => fixed.predict(new Tensor(new Float32Array(784), [1, 28, 28, 1], 'float32')), 'INVALID_SHAPE', '--layout nchw');
  });

  it('trainOnly matching no weight lists the weights', async () => {
    const model = await GraphModel.load(`${DIR}/mlp.onnx`);
    await expectError(() => model.trainOnly('classifier.*'), 'INVALID_ARGUMENT', 'matches no weight', '1.weight, 1.bias');
  });

  it('replaceHead on a model whose output is not a class vector', async () => {
    const file = await writeModel(dir, 'image_out', (g) => {
      const x = g.input('x', 'float32', ['batch', 1, 4, 4]);
      const w = g.initializer('conv.weight', new Tensor(new Float32Array(9).fill(0.1), [1, 1, 3, 3], 'float32'));
      g.output(g.op1('Conv', [x, w], { pads: [1, 1, 1, 1] }), 'y');
    });
    const model = await GraphModel.load(file);
    await expectError(() => model.replaceHead(3), 'INVALID_ARGUMENT', 'not a class vector [N, classes] or one per token [N, T, classes]', '[N, 1, 4, 4]');
  });

  it('a model of int64 token ids loads as a GraphModel; an input Kiln cannot feed (bool) is inference-only, with the reason', async () => {
    const tokens = await writeModel(dir, 'tokens', (g) => {
      const ids = g.input('ids', 'int64', ['batch', 8]);
      const w = g.initializer('w', new Tensor(new Float32Array(16).fill(0.1), [8, 2], 'float32'));
      g.output(g.op1('MatMul', [g.op1('Cast', [ids], { to: 1 }), w]), 'y');
    });
    const model = await loadModel(tokens);
    assert.ok(model instanceof GraphModel);
    assert.equal(model.inputDtype, 'int64');
    const flags = await writeModel(dir, 'flags', (g) => {
      const b = g.input('flags', 'bool', ['batch', 8]);
      g.output(g.op1('Cast', [b], { to: 1 }), 'y');
    });
    const inference = await loadModel(flags);
    assert.ok(inference instanceof OnnxModel);
    assert.match(inference.notTrainable!, /input 'flags' is bool: Kiln feeds float32 data \(images, vectors\) or int64 \/ int32 token ids/);
  });

  it('a model exported with a fixed batch size of 1 that its batch cannot be freed from says how to export it again', async () => {
    // Its rows meet a constant of one row: at any other batch size the Concat fails (a model whose
    // fixed batch is only declared, or in a Reshape target, is freed: test/model/fixed-batch.test.ts).
    const file = await writeModel(dir, 'batch1', (g) => {
      const x = g.input('x', 'float32', [1, 4]);
      const w = g.initializer('w', new Tensor(new Float32Array(16).fill(0.1), [8, 2], 'float32'));
      const row = g.initializer('row', new Tensor(new Float32Array(4).fill(1), [1, 4], 'float32'));
      g.output(g.op1('MatMul', [g.op1('Concat', [x, row], { axis: 1 }), w]), 'y');
    });
    await expectError(() => GraphModel.load(file), 'INVALID_SHAPE', 'exported at a fixed batch size of 1', 'dynamic_axes');
    assert.ok(existsSync(file));
  });
});
