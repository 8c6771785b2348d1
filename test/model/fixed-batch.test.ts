/**
 * Models exported at a fixed batch size (torch.onnx.export without dynamic_axes, its default; many ONNX
 * Model Zoo files, whose Flatten is often a Reshape to [1, 256]): Kiln frees the batch, keeps the freed
 * graph only where it computes what the file computes, batch for batch, and then trains, evaluates,
 * benches and distills from them as from any export; one it cannot free is refused with the way out.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tensorToProto } from '../../src/graph/onnx-io.js';
import { decodeModel, encodeModel, type ModelProto } from '../../src/graph/proto.js';
import { fixedBatchOf, freeFixedBatch } from '../../src/model/fixed-batch.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { asOnnxModel, classifierScores } from '../../src/optimize/distill/teacher.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { loadModel } from '../../src/train/load.js';
import { images, maxAbsDiff, model, node, weight } from '../optimize/prune/graph-helpers.js';
import { assertRejectsKiln, makeTempDir } from './helpers.js';

/** The proto with every data input's and output's batch axis fixed at `batch`. */
function fixBatch(proto: ModelProto, batch: number): ModelProto {
  const inits = new Set((proto.graph!.initializer ?? []).map((t) => t.name));
  for (const v of [...proto.graph!.input!.filter((i) => !inits.has(i.name)), ...proto.graph!.output!]) v.type!.tensorType!.shape!.dim![0] = { dimValue: batch };
  return proto;
}

/** The ONNX Model Zoo's MNIST CNN in miniature: Conv → Relu → MaxPool → Reshape to [batch, 4·12·12] (a constant) → MatMul + Add. */
function zooStyle(batch: number): ModelProto {
  const proto = model([1, 28, 28], 'logits', 10, [
    node('Conv', ['input', 'conv.w', 'conv.b'], ['c'], { kernel_shape: [5, 5] }),
    node('Relu', ['c'], ['r']),
    node('MaxPool', ['r'], ['p'], { kernel_shape: [2, 2], strides: [2, 2] }),
    node('Reshape', ['p', 'shape'], ['flat']),
    node('MatMul', ['flat', 'fc.w'], ['m']),
    node('Add', ['m', 'fc.b'], ['logits']),
  ], { 'conv.w': weight([4, 1, 5, 5], 1), 'conv.b': weight([4], 2, 0.1), 'fc.w': weight([4 * 12 * 12, 10], 3, 0.1), 'fc.b': weight([10], 4, 0.1) });
  proto.graph!.initializer!.push(tensorToProto('shape', new Tensor(BigInt64Array.of(BigInt(batch), 4n * 12n * 12n), [2], 'int64')));
  return fixBatch(proto, batch);
}

/** A class token expanded to a constant [1, 1, 8] and concatenated with the patches: batch 1 is in the graph's arithmetic. */
function expandedToken(): ModelProto {
  const proto = model([4, 8], 'logits', 8, [
    node('Expand', ['cls', 'cls_shape'], ['tokens']),
    node('Concat', ['tokens', 'input'], ['seq'], { axis: 1 }),
    node('ReduceMean', ['seq'], ['logits'], { axes: [1], keepdims: 0 }),
  ], { cls: weight([1, 1, 8], 5) });
  proto.graph!.initializer!.push(tensorToProto('cls_shape', new Tensor(BigInt64Array.of(1n, 1n, 8n), [3], 'int64')));
  return fixBatch(proto, 1);
}

/** Runs the file as it is, `batch` rows at a time, and joins the outputs. */
async function rowByRow(proto: ModelProto, x: Tensor, batch: number): Promise<Float32Array> {
  const bytes = encodeModel(proto);
  const file = new OnnxModel(bytes, decodeModel(bytes));
  const row = x.size / x.shape[0]!;
  const out: number[] = [];
  for (let start = 0; start < x.shape[0]!; start += batch) {
    const part = new Tensor((x.data as Float32Array).slice(start * row, (start + batch) * row), [batch, ...x.shape.slice(1)], 'float32');
    out.push(...(Object.values(await file.run({ input: part }))[0]!.data as Float32Array));
  }
  return Float32Array.from(out);
}

describe('a model exported at a fixed batch size', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  before(async () => {
    temp = await makeTempDir();
  });
  after(() => temp.remove());

  it('is told apart from a model with a free batch', () => {
    assert.equal(fixedBatchOf(zooStyle(1)), 1);
    assert.equal(fixedBatchOf(zooStyle(4)), 4);
    const free = zooStyle(1);
    free.graph!.input![0]!.type!.tensorType!.shape!.dim![0] = { dimParam: 'N' };
    assert.equal(fixedBatchOf(free), undefined);
  });

  it('the ResNet fixture at a fixed batch of 1 trains as the exported one does, and saves with a free batch', async () => {
    const file = join(temp.dir, 'resnet_b1.onnx');
    const bytes = encodeModel(fixBatch(decodeModel(await readFile('test/fixtures/exported/resnet.onnx')), 1));
    await writeFile(file, bytes);
    const fixed = await GraphModel.load(file, { layout: 'nchw' });
    const exported = await GraphModel.load('test/fixtures/exported/resnet.onnx', { layout: 'nchw' });
    const x = images(5, [28, 28, 1]);
    assert.ok(maxAbsDiff((await fixed.predict(x)).data as Float32Array, (await exported.predict(x)).data as Float32Array) < 1e-5);
    const saved = join(temp.dir, 'resnet_saved.onnx');
    await fixed.save(saved);
    const proto = decodeModel(await readFile(saved));
    assert.deepEqual(proto.graph!.input!.find((i) => i.name === 'input')!.type!.tensorType!.shape!.dim![0], { dimParam: 'batch' });
    assert.deepEqual(proto.graph!.output![0]!.type!.tensorType!.shape!.dim![0], { dimParam: 'batch' });
    assert.deepEqual(await readFile(file), Buffer.from(bytes), 'the original file is not touched');
  });

  for (const batch of [1, 4]) {
    it(`a Model Zoo-style CNN whose Reshape target holds the batch (${batch}) trains and predicts in batches of any size`, async () => {
      const file = join(temp.dir, `zoo_b${batch}.onnx`);
      await writeFile(file, encodeModel(zooStyle(batch)));
      const m = await loadModel(file);
      assert.ok(m instanceof GraphModel, 'trainable');
      const x = images(8, [28, 28, 1], 3);
      // One channel: [N, 28, 28, 1] and [N, 1, 28, 28] hold the same numbers.
      const asFile = new Tensor(x.data as Float32Array, [8, 1, 28, 28], 'float32');
      assert.ok(maxAbsDiff((await m.predict(x)).data as Float32Array, await rowByRow(zooStyle(batch), asFile, batch)) < 1e-5);
      const y = new Tensor(Int32Array.from({ length: 8 }, (_, i) => i % 10), [8], 'int32');
      m.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
      const history = await m.fit(x, y, { epochs: 4, batchSize: 3, verbose: 0, shuffle: false });
      assert.ok(history.history.loss!.at(-1)! < history.history.loss![0]!);
      // The data pipeline's runs (bench, distillation teachers) take it at any batch size too.
      const teacher = await asOnnxModel(file);
      assert.equal(teacher.inputs[0]!.shape![0], 'batch');
      const scores = await classifierScores(teacher, images(7, [1, 28, 28], 4), { batchSize: 5 });
      assert.deepEqual(scores.shape, [7, 10]);
    });
  }

  it('the freed graph drops the Reshape target it replaced', async () => {
    const runtime = new Runtime();
    const freed = await freeFixedBatch(zooStyle(1), 'zoo.onnx', runtime).finally(() => runtime.close());
    const names = freed.graph!.initializer!.map((t) => t.name);
    assert.ok(!names.includes('shape') && names.includes('shape/free_batch'), names.join(', '));
  });

  it('a file the check cannot run (a uint8 input; a graph that fails at its own sizes) goes on as it is, to be named by what follows', async () => {
    const bytes = encodeModel(zooStyle(1));
    const uint8 = decodeModel(bytes);
    uint8.graph!.input![0]!.type!.tensorType!.elemType = 2;
    uint8.graph!.node!.unshift({ name: 'cast', opType: 'Cast', input: ['input'], output: ['input_f'], attribute: [{ name: 'to', type: 2, i: 1 }] });
    uint8.graph!.node![1]!.input![0] = 'input_f';
    const tooSmall = model([1, 2, 2], 'logits', 10, [node('Conv', ['input', 'w'], ['c'], { kernel_shape: [3, 3] }), node('Flatten', ['c'], ['logits'])], { w: weight([10, 1, 3, 3], 1) });
    for (const [name, proto, why] of [['uint8', uint8, /input 'input' is uint8/], ['too-small', fixBatch(tooSmall, 1), /.+/]] as const) {
      const file = join(temp.dir, `${name}.onnx`);
      await writeFile(file, encodeModel(proto));
      const loaded = await loadModel(file);
      assert.ok(loaded instanceof OnnxModel, name);
      assert.match(loaded.notTrainable!, why, name);
      assert.ok((await asOnnxModel(file)) instanceof OnnxModel, name);
    }
  });

  it('a model whose arithmetic holds the batch is refused, with the export that fixes it', async () => {
    const file = join(temp.dir, 'token_b1.onnx');
    await writeFile(file, encodeModel(expandedToken()));
    await assertRejectsKiln(() => GraphModel.load(file), 'INVALID_SHAPE', "token_b1.onnx' was exported at a fixed batch size of 1", "input 'input' [1, 4, 8]", "dynamic_axes={'input': {0: 'batch'}}");
    // It still runs as the file it is.
    assert.ok((await loadModel(file)) instanceof OnnxModel);
  });
});
