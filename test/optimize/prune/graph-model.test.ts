/**
 * Magnitude pruning of imported graphs (GraphModel over test/fixtures/exported, PyTorch exports):
 * which weights are pruned by default (weight matrices and conv kernels, not the stem, the head,
 * biases or BatchNorm), each reaching its sparsity; masks held inside the compiled step while
 * fine-tuning; the m:n pattern along each op's input axis, checked against the ONNX layouts by hand;
 * the saved file is the original graph (same input and output names) with zeros in its initializers,
 * predicting as the in-memory model does; selections by weight name, node name, pattern and RegExp.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { prune, pruning } from '../../../src/index.js';
import { GraphModel } from '../../../src/train/graph-model.js';
import { Tensor } from '../../../src/tensor.js';
import { decodeModel } from '../../../src/graph/proto.js';
import { tensorFromProto } from '../../../src/graph/onnx-io.js';
import { readFile } from 'node:fs/promises';
import { kilnError, makeTempDir, maxAbsDiff, randomImages, zerosOf } from './helpers.js';

const { constantSparsity, prunedCount } = pruning;
const DIR = 'test/fixtures/exported';
const load = (name: string) => GraphModel.load(join(DIR, `${name}.onnx`), { layout: 'nchw' });
const images = randomImages(48, [28, 28, 1]);

/** The kernels of the ResNet fixture the default selection prunes: every Conv but the stem; not the Gemm head. */
const RESNET_TARGETS = ['block1.conv1.0.weight', 'block1.conv2.0.weight', 'block2.conv1.0.weight', 'block2.conv2.0.weight', 'block2.shortcut.0.weight'];

function values(t: Tensor): Float32Array {
  return t.data as Float32Array;
}

/**
 * Zeros in every block of n consecutive weights along `axis` of a row-major tensor, by index arithmetic
 * on the ONNX shape (independent of the pruner's own view of the weight).
 */
function blockZeros(t: Tensor, axis: number, n: number): number[] {
  const shape = t.shape;
  const stride = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const d = values(t);
  const counts: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < stride; r++) {
      for (let start = 0; start < shape[axis]!; start += n) {
        let z = 0;
        for (let i = start; i < start + n; i++) if (d[(o * shape[axis]! + i) * stride + r] === 0) z++;
        counts.push(z);
      }
    }
  }
  return counts;
}

describe('magnitude pruning of an imported graph', () => {
  it('prunes every conv kernel but the stem to the sparsity; the stem, the Gemm head, biases and BatchNorm stay dense; the original is untouched', async () => {
    const model = await load('resnet');
    const original = new Map([...model.weights].map(([k, t]) => [k, Float32Array.from(values(t))]));
    const { model: pruned, report } = await prune(model, { sparsity: 0.6 });
    assert.ok(pruned instanceof GraphModel);
    assert.notEqual(pruned, model);
    assert.deepEqual(report.layers.filter((l) => l.pruned).map((l) => l.name), RESNET_TARGETS);
    for (const [name, t] of pruned.weights) {
      const expected = RESNET_TARGETS.includes(name) ? prunedCount(t.size, 0.6) : 0;
      assert.equal(zerosOf(t), expected, name);
    }
    // The zeros are the smallest magnitudes of each kernel.
    for (const name of RESNET_TARGETS) {
      const before = original.get(name)!;
      const after = values(pruned.weights.get(name)!);
      const largestPruned = Math.max(...[...before].filter((_, i) => after[i] === 0).map(Math.abs));
      const smallestKept = Math.min(...[...before].filter((_, i) => after[i] !== 0).map(Math.abs));
      assert.ok(largestPruned <= smallestKept, name);
    }
    for (const [name, t] of model.weights) assert.deepEqual(values(t), original.get(name), `${name} of the original changed`);
    const row = report.layers.find((l) => l.name === 'block2.conv2.0.weight')!;
    assert.equal(row.className, 'Conv');
    assert.equal(row.nonZeroAfter, 2304 - prunedCount(2304, 0.6));
    assert.equal(report.layers.find((l) => l.name === 'head.weight')!.className, 'Gemm');
    const targeted = RESNET_TARGETS.reduce((n, k) => n + model.weights.get(k)!.size, 0);
    assert.equal(report.targetSparsity, RESNET_TARGETS.reduce((n, k) => n + prunedCount(model.weights.get(k)!.size, 0.6), 0) / targeted);
  });

  it('global scope: one threshold over the chosen kernels, the total count exact', async () => {
    const model = await load('resnet');
    const { model: pruned } = await prune(model, { sparsity: 0.5, scope: 'global' });
    const sizes = RESNET_TARGETS.map((k) => pruned.weights.get(k)!.size);
    const zeros = RESNET_TARGETS.map((k) => zerosOf(pruned.weights.get(k)!));
    const total = sizes.reduce((a, b) => a + b, 0);
    assert.equal(zeros.reduce((a, b) => a + b, 0), prunedCount(total, 0.5));
    assert.ok(zeros.some((z, i) => z !== prunedCount(sizes[i]!, 0.5)), 'a global threshold prunes kernels unevenly');
  });

  it('keeps pruned weights exactly zero at every step of an Adam fine-tune (BatchNorm in train mode), while the other weights train', async () => {
    const model = await load('resnet');
    let firstZeros: Map<string, number[]> | undefined;
    let checks = 0;
    const watcher = {
      async onBatchEnd(_step: number, _logs: unknown, m: unknown) {
        const w = await (m as GraphModel).currentWeights();
        const zeros = new Map(RESNET_TARGETS.map((name) => [name, [...values(w.get(name)!)].flatMap((v, i) => (v === 0 ? [i] : []))]));
        firstZeros ??= zeros;
        for (const name of RESNET_TARGETS) assert.deepEqual(zeros.get(name), firstZeros.get(name), `${name}: the zero set changed at a step`);
        checks++;
      },
    };
    const { model: pruned, report } = await prune(model, {
      schedule: constantSparsity({ targetSparsity: 0.5, beginStep: 0, frequency: 1000 }),
      fineTune: { x: images.x, y: images.y, epochs: 2, batchSize: 16, verbose: 0, callbacks: [watcher] },
    });
    assert.equal(checks, 6);
    assert.deepEqual(report.maskUpdates, [{ step: 0, sparsity: 0.5 }]);
    for (const name of RESNET_TARGETS) {
      const t = pruned.weights.get(name)!;
      assert.equal(zerosOf(t), prunedCount(t.size, 0.5), name);
      assert.deepEqual(firstZeros!.get(name)!.length, prunedCount(t.size, 0.5));
      for (const v of values(t)) if (v === 0) assert.ok(Object.is(v, 0), `${name}: −0 in the export`);
    }
    // The kept weights, the stem, the head and the BatchNorm running statistics moved.
    for (const name of ['block1.conv1.0.weight', 'stem.0.0.weight', 'head.weight', 'block1.conv1.1.running_mean']) {
      assert.ok(maxAbsDiff(values(pruned.weights.get(name)!), values(model.weights.get(name)!)) > 1e-5, `${name} did not train`);
    }
    assert.equal(zerosOf(pruned.weights.get('stem.0.0.weight')!), 0);
    assert.deepEqual(report.history![0]!.loss!.length, 2);
  });

  it('2:4 sparsity: two zeros in every four weights along each op\'s input axis — Conv [M, C, kh, kw] along C, Gemm transB [out, in] along in, MatMul B [in, out] along in', async () => {
    const resnet = await prune(await load('resnet'), { sparsityMByN: [2, 4] });
    for (const name of RESNET_TARGETS) {
      const counts = blockZeros(resnet.model.weights.get(name)!, 1, 4);
      assert.ok(counts.every((z) => z === 2), `${name}: zeros per block ${[...new Set(counts)]}`);
    }
    const mlp = await prune(await GraphModel.load(join(DIR, 'mlp.onnx')), { sparsityMByN: [2, 4] });
    const gemm = mlp.model.weights.get('3.weight')!;
    assert.deepEqual(gemm.shape, [32, 64]);
    assert.ok(blockZeros(gemm, 1, 4).every((z) => z === 2));
    assert.ok(!blockZeros(gemm, 0, 4).every((z) => z === 2), 'the blocks run along the input axis, not the output axis');

    const vit = await load('vit17');
    const matmul = vit.parameterUses().find((u) => u.op === 'MatMul' && u.input === 1)!.parameter;
    const r = await prune(vit, { sparsityMByN: [1, 4], layers: [matmul] });
    const w = r.model.weights.get(matmul)!;
    assert.deepEqual(w.shape, [32, 96]);
    assert.ok(blockZeros(w, 0, 4).every((z) => z === 1), `${matmul}: MatMul's B is [in, out]`);
    assert.equal(r.report.targetSparsity, 0.25);
  });

  it('m:n while fine-tuning: the pattern holds after training with masks recomputed on the schedule', async () => {
    const { model: pruned, report } = await prune(await load('resnet'), { sparsityMByN: [2, 4], fineTune: { x: images.x, y: images.y, epochs: 1, batchSize: 16, verbose: 0 } });
    assert.ok(report.maskUpdates!.length >= 1);
    for (const name of RESNET_TARGETS) assert.ok(blockZeros(pruned.weights.get(name)!, 1, 4).every((z) => z >= 2), name);
  });

  it('saves the original graph (same input and output names, opset, nodes) with the zeros in its initializers; the file reloads and predicts as the in-memory model', async () => {
    const temp = await makeTempDir('kiln-prune-graph-');
    try {
      const model = await load('resnet');
      const { model: pruned } = await prune(model, { sparsity: 0.5, fineTune: { x: images.x, y: images.y, epochs: 1, batchSize: 16, verbose: 0 } });
      const file = join(temp.dir, 'pruned.onnx');
      await pruned.save(file);
      const saved = decodeModel(await readFile(file));
      const source = decodeModel(await readFile(join(DIR, 'resnet.onnx')));
      assert.deepEqual(saved.graph!.input!.map((i) => i.name), source.graph!.input!.map((i) => i.name));
      assert.deepEqual(saved.graph!.output!.map((o) => o.name), ['logits']);
      assert.deepEqual(saved.graph!.node!.map((n) => n.opType), source.graph!.node!.map((n) => n.opType));
      assert.deepEqual(saved.opsetImport, source.opsetImport);
      for (const init of saved.graph!.initializer!) {
        const t = tensorFromProto(init);
        if (RESNET_TARGETS.includes(init.name!)) assert.equal(zerosOf(t), prunedCount(t.size, 0.5), init.name);
      }

      const expected = await pruned.predict(images.x);
      const reloaded = await GraphModel.load(file);
      assert.deepEqual(reloaded.preprocessing, { layout: 'nchw' });
      assert.ok(maxAbsDiff(values(await reloaded.predict(images.x)), values(expected)) < 1e-5);
      // ONNX Runtime on the file itself, fed channels-first as PyTorch's model is.
      const session = await ort.InferenceSession.create(file);
      const [n, h, w] = images.x.shape as [number, number, number, number];
      const nchw = new Float32Array(n * h * w);
      nchw.set(values(images.x)); // one channel: NHWC and NCHW hold the same bytes
      const out = await session.run({ input: new ort.Tensor('float32', nchw, [n, 1, h, w]) });
      assert.ok(maxAbsDiff(out.logits!.data as Float32Array, values(expected)) < 1e-5);
      await session.release();
    } finally {
      await temp.remove();
    }
  });

  it('selects weights by initializer name (a bias too), by node name, by pattern and by RegExp', async () => {
    const model = await load('resnet');
    const byName = await prune(model, { sparsity: 0.5, layers: ['head.weight', 'head.bias'] });
    assert.deepEqual(byName.report.layers.filter((l) => l.pruned).map((l) => l.name), ['head.weight', 'head.bias']);
    assert.equal(zerosOf(byName.model.weights.get('head.bias')!), 5);

    const conv = model.parameterUses().find((u) => u.parameter === 'block2.shortcut.0.weight')!.node;
    const byNode = await prune(model, { sparsity: 0.5, layers: [conv] });
    assert.deepEqual(byNode.report.layers.filter((l) => l.pruned).map((l) => l.name), ['block2.shortcut.0.weight']);

    // A pattern picks the weight matrices and kernels it matches, never the BatchNorm parameters beside them.
    const byGlob = await prune(model, { sparsity: 0.5, layers: ['block1.*'] });
    assert.deepEqual(byGlob.report.layers.filter((l) => l.pruned).map((l) => l.name), ['block1.conv1.0.weight', 'block1.conv2.0.weight']);
    const byRegExp = await prune(model, { sparsity: 0.5, layers: /^(stem|head)\./ });
    assert.deepEqual(byRegExp.report.layers.filter((l) => l.pruned).map((l) => l.name), ['stem.0.0.weight', 'head.weight']);
  });

  it('the ViT: its attention and feed-forward matrices by default, not the patch Conv, the head, embeddings or LayerNorm', async () => {
    const vit = await load('vit17');
    const { report } = await prune(vit, { sparsity: 0.5 });
    const pruned = report.layers.filter((l) => l.pruned);
    assert.equal(pruned.length, 8);
    assert.deepEqual([...new Set(pruned.map((l) => l.className))].sort(), ['Gemm', 'MatMul']);
    for (const name of ['patch.weight', 'head.weight', 'cls_token', 'pos_embed', 'norm.weight']) assert.ok(!pruned.some((l) => l.name === name), name);
    assert.ok(pruned.every((l) => l.sparsity === 0.5));
  });
});

describe('magnitude pruning of an imported graph refuses bad input, changing nothing', () => {
  it('a selection that matches nothing, an unknown name, a running statistic, a node without a kernel: INVALID_ARGUMENT naming it', async () => {
    const model = await load('resnet');
    await assert.rejects(prune(model, { sparsity: 0.5, layers: ['nope*'] }), kilnError('INVALID_ARGUMENT', "'nope*'", 'matches no weight matrix or kernel', 'block1.conv1.0.weight'));
    await assert.rejects(prune(model, { sparsity: 0.5, layers: /^attention/ }), kilnError('INVALID_ARGUMENT', '/^attention/', 'matches no weight'));
    // Matching only BatchNorm parameters: named, with the way to prune them anyway.
    await assert.rejects(prune(model, { sparsity: 0.5, layers: ['*.1.bias'] }), kilnError('INVALID_ARGUMENT', 'block1.conv1.1.bias', 'name a weight exactly'));
    await assert.rejects(prune(model, { sparsity: 0.5, layers: ['fc.weight'] }), kilnError('INVALID_ARGUMENT', "no weight or node named 'fc.weight'"));
    await assert.rejects(prune(model, { sparsity: 0.5, layers: ['block1.conv1.1.running_mean'] }), kilnError('INVALID_ARGUMENT', 'running statistic', 'BatchNormalization'));
    const norm = (await load('resnet')).parameterUses().find((u) => u.op === 'BatchNormalization')!.node;
    await assert.rejects(prune(model, { sparsity: 0.5, layers: [norm] }), kilnError('INVALID_ARGUMENT', `node '${norm}' (BatchNormalization)`, 'no weight matrix or kernel'));
    await assert.rejects(prune(model, { sparsity: 0.5, layers: [] }), kilnError('INVALID_ARGUMENT', 'non-empty list'));
  });

  it('a frozen weight (trainOnly) cannot be held pruned by the training step', async () => {
    const model = await load('resnet');
    model.trainOnly('head.*');
    await assert.rejects(prune(model, { sparsity: 0.5, layers: ['block1.conv1.0.weight'] }), kilnError('INVALID_ARGUMENT', "'block1.conv1.0.weight' is frozen"));
  });

  it('a sparsity outside [0, 1), structured and magnitude options together, options that do not go together', async () => {
    const model = await load('resnet');
    for (const bad of [1, 1.5, -0.1, NaN]) await assert.rejects(prune(model, { sparsity: bad }), kilnError('INVALID_ARGUMENT', 'sparsity', '[0, 1)'));
    await assert.rejects(prune(model, { structured: { ratio: 0.5 }, sparsity: 0.5 } as never), kilnError('INVALID_ARGUMENT', 'sparsity belong to magnitude pruning'));
    await assert.rejects(prune(model, { sparsityMByN: [2, 4], sparsity: 0.5 }), kilnError('INVALID_ARGUMENT', 'sparsityMByN'));
    await assert.rejects(prune(model, { sparsityMByN: [4, 2] }), kilnError('INVALID_ARGUMENT', '0 < m < n'));
  });

  it("m:n on a weight whose input axis is no multiple of n: INVALID_ARGUMENT naming the weight, its node and the axis (the depthwise Conv's one input channel)", async () => {
    const dwsep = await load('dwsep');
    const before = new Map([...dwsep.weights].map(([k, t]) => [k, Float32Array.from(values(t))]));
    await assert.rejects(
      prune(dwsep, { sparsityMByN: [2, 4], fineTune: { x: images.x, y: images.y, epochs: 1, verbose: 0 } }),
      kilnError('INVALID_ARGUMENT', "'features.2.0.weight' [16, 1, 3, 3]", 'Conv', 'axis 1', 'not a multiple of 4'),
    );
    for (const [k, t] of dwsep.weights) assert.deepEqual(values(t), before.get(k), k);
    // Leaving the depthwise kernel out, the pointwise one takes the pattern.
    const { model } = await prune(dwsep, { sparsityMByN: [2, 4], layers: ['features.4.0.weight'] });
    assert.ok(blockZeros(model.weights.get('features.4.0.weight')!, 1, 4).every((z) => z === 2));
  });

  it('a model whose only kernels are the first and the head: says to name the weights', async () => {
    const resnetHeadOnly = await load('resnet');
    resnetHeadOnly.trainOnly(/^(stem\.0\.0|head)\./);
    await assert.rejects(prune(resnetHeadOnly, { sparsity: 0.5 }), kilnError('INVALID_ARGUMENT', 'the first and the classifier head stay dense by default', 'layers'));
  });
});

describe("magnitude pruning of a recurrent model (PyTorch's LSTM, GRU and RNN exports)", () => {
  // W then R of each layer ([directions, gates·hidden, input or hidden]); the LSTM's W is the stem.
  const RNN_TARGETS = ['onnx::LSTM_324', 'onnx::GRU_344', 'onnx::GRU_345', 'onnx::RNN_350', 'onnx::RNN_351'];

  it('prunes the layers\' W and R (what TF-MOT prunes in an RNN) but the first, keeping them zero while the unrolled layers fine-tune; 2:4 runs along the rows\' input', async () => {
    const model = await load('rnn');
    const { model: pruned, report } = await prune(model, { sparsity: 0.5, fineTune: { x: images.x, y: images.y, epochs: 1, batchSize: 16, verbose: 0 } });
    assert.deepEqual(report.layers.filter((l) => l.pruned).map((l) => l.name), RNN_TARGETS);
    assert.deepEqual(RNN_TARGETS.map((k) => report.layers.find((l) => l.name === k)!.className), ['LSTM', 'GRU', 'GRU', 'RNN', 'RNN']);
    for (const name of RNN_TARGETS) assert.equal(zerosOf(pruned.weights.get(name)!), prunedCount(pruned.weights.get(name)!.size, 0.5), name);
    // The kept weights trained through the unrolled steps.
    assert.ok(maxAbsDiff(values(pruned.weights.get('onnx::GRU_345')!), values(model.weights.get('onnx::GRU_345')!)) > 1e-5);
    // The FLOPs count the recurrent layers: per step and direction, W [gates·H, I] and R [gates·H, H]
    // multiply the input and the state — LSTM 2·28·2·48·(28 + 12), GRU 2·28·36·(24 + 12), RNN 2·28·12·(12 + 12) — plus the head's 2·12·10.
    assert.equal(report.before.flops, 215_040 + 72_576 + 16_128 + 240);
    const blocks = await prune(model, { sparsityMByN: [2, 4] });
    for (const name of RNN_TARGETS) assert.ok(blockZeros(blocks.model.weights.get(name)!, 2, 4).every((z) => z === 2), name);
  });
});
