/**
 * Recurrent layers PyTorch exports (ONNX LSTM, GRU and RNN nodes) train unrolled over their steps
 * (src/model/recurrent-unrolled.ts) and predict with the node itself. The `rnn` fixture's gradients
 * against PyTorch's are checked in test/train/graph-model-gradients.test.ts; here: inference equals
 * PyTorch's eval-mode logits, the unrolled forward equals the node's, the model learns, and a form
 * Kiln cannot unroll is named before any training.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import { embedded } from '../../src/data/embedded.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { adam, sgd } from '../../src/train/optimizers.js';
import { EXPORTED_DIR, decodeTensor, readReference, referenceInputs } from '../fixtures/exported/reference.js';
import { maxAbsDiff } from '../optimize/prune/graph-helpers.js';
import { runMain } from '../cli/helpers.js';
import { adaptInput } from '../../src/model/input-adapter.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { saveNpy } from '../../src/data/npy.js';
import { recurrentModel } from '../optimize/prune/graph-helpers.js';
import { assertRejectsKiln, makeTempDir } from './helpers.js';

const RNN = `${EXPORTED_DIR}/rnn.onnx`;

describe("PyTorch's bidirectional LSTM, GRU and ReLU RNN (the rnn fixture)", () => {
  it("predicts PyTorch's eval-mode logits, with nothing in the way of training", async () => {
    const model = await GraphModel.load(RNN);
    assert.deepEqual(model.untrainableOps(), []);
    const ref = readReference('rnn');
    const nchw = referenceInputs(ref.batch) as Tensor;
    // Kiln's images are channels-last; one channel: the same order.
    const logits = (await model.predict(nchw.reshape([nchw.shape[0]!, 28, 28, 1]))).data as Float32Array;
    assert.ok(maxAbsDiff(logits, decodeTensor(ref.evalLogits).data) < 1e-5);
  });

  it('the unrolled training forward equals the nodes ONNX Runtime runs, and training lowers the loss', async () => {
    const model = await GraphModel.load(RNN);
    const data = await embedded();
    const [x, y] = [data.train.images.slice(0, 256), data.train.labels.slice(0, 256)];
    model.compile({ optimizer: sgd({ learningRate: 1e-30 }), loss: 'sparseCategoricalCrossentropy' });
    const evaluated = (await model.evaluate(x.slice(0, 64), y.slice(0, 64))).loss;
    const trained = (await model.fit(x.slice(0, 64), y.slice(0, 64), { epochs: 1, batchSize: 64, verbose: 0, shuffle: false })).history.loss![0]!;
    assert.ok(Math.abs(evaluated - trained) < 1e-5, `${evaluated} (the recurrent nodes) against ${trained} (unrolled)`);
    model.compile({ optimizer: adam({ learningRate: 3e-3 }), loss: 'sparseCategoricalCrossentropy' });
    const before = (await model.evaluate(x, y)).loss;
    await model.fit(x, y, { epochs: 3, batchSize: 32, verbose: 0, shuffle: false });
    const after = (await model.evaluate(x, y)).loss;
    assert.ok(after < before - 0.05, `loss ${before} before, ${after} after`);
  });
});

describe('a recurrent layer Kiln cannot unroll', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  before(async () => {
    temp = await makeTempDir('kiln-recurrent-');
  });
  after(() => temp.remove());

  it('an LSTM with peepholes is listed as untrainable and refused by name at compile', async () => {
    const g = new Graph('peephole');
    const x = g.input('x', 'float32', ['batch', 3, 4]);
    const w = (shape: number[], seed: number) => g.initializer(`w${seed}`, new Tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + seed) * 0.3), shape, 'float32'));
    const steps = g.op1('Transpose', [x], { perm: [1, 0, 2] });
    const [, yh] = g.importNode('LSTM', [steps.name, w([1, 8, 4], 1).name, w([1, 8, 2], 2).name, '', '', '', '', w([1, 6], 3).name], { hidden_size: 2 }, [
      { name: 'y', dtype: 'float32', shape: [3, 1, 'batch', 2] },
      { name: 'yh', dtype: 'float32', shape: [1, 'batch', 2] },
    ], { name: 'the_lstm' });
    g.output(g.op1('MatMul', [g.op1('Reshape', [yh!, g.int64s([-1, 2])]), w([2, 3], 4)]), 'logits');
    const file = join(temp.dir, 'peephole.onnx');
    await writeFile(file, encodeModel(modelToProto(g)));
    const model = await GraphModel.load(file);
    const why = 'Kiln trains it unrolled over its steps, and cannot unroll one with peepholes (input P)';
    assert.deepEqual(model.untrainableOps(), [{ op: 'LSTM', node: 'the_lstm', why }]);
    await assertRejectsKiln(async () => model.compile({ optimizer: 'adam', loss: 'meanSquaredError' }), 'NO_GRADIENT', `the_lstm (LSTM: ${why})`);
    // `kiln info --trainable` says why too.
    const info = await runMain(['info', '--trainable', file]);
    assert.match(info.out, /LSTM\s+\|?\s*the_lstm\s+\|?\s*Kiln trains it unrolled over its steps, and cannot unroll one with peepholes/);
    // Frozen, it runs as written (ONNX Runtime's node) while the head after it trains.
    model.trainOnly('w4');
    assert.deepEqual(model.untrainableOps(), []);
    model.compile({ optimizer: sgd({ learningRate: 0.1 }), loss: 'meanSquaredError' });
    const data = new Tensor(Float32Array.from({ length: 8 * 12 }, (_, i) => Math.cos(i)), [8, 3, 4], 'float32');
    const targets = new Tensor(new Float32Array(8 * 3).fill(0.5), [8, 3], 'float32');
    const history = await model.fit(data, targets, { epochs: 2, batchSize: 8, verbose: 0, shuffle: false });
    assert.ok(history.history.loss![1]! < history.history.loss![0]!);
  });
});

describe("an initial state given as an input in PyTorch's layout [layers·directions, batch, hidden]", () => {
  it('is refused by name, saying how to export it batch first', async () => {
    const proto = recurrentModel(['y', 'yh']);
    const g = proto.graph!;
    const rnn = g.node!.find((n) => n.name === 'rnn')!;
    rnn.input = [...rnn.input!, '', 'h0'];
    g.input!.push({ name: 'h0', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimParam: 'batch' }, { dimValue: 6 }] } } } });
    await assertRejectsKiln(() => GraphModel.fromProto(proto, 'h0.onnx'), 'INVALID_SHAPE', "input 'h0' has shape [1, batch, 6]: its batch ('batch', the batch of 'input') is axis 1", 'h0.transpose(0, 1)');

    // Run as a plain file, by the library and by `kiln evaluate` with arrays in torch's layout, it is
    // refused the same way (not by a count of examples that do not match).
    const file = new OnnxModel(encodeModel(proto), proto);
    const h0 = new Tensor(new Float32Array(8 * 6), [1, 8, 6], 'float32');
    const input = new Tensor(new Float32Array(8 * 20), [8, 5, 4], 'float32');
    await assertRejectsKiln(() => file.predict({ input, h0 }), 'INVALID_SHAPE', "input 'h0' has shape [1, batch, 6]: its batch ('batch', the batch of 'input') is axis 1");
    const { dir, remove } = await makeTempDir();
    try {
      await writeFile(join(dir, 'h0.onnx'), encodeModel(proto));
      await saveNpy(join(dir, 'x_test.input.npy'), input);
      await saveNpy(join(dir, 'x_test.h0.npy'), h0);
      await saveNpy(join(dir, 'y_test.npy'), new Tensor(new Int32Array(8), [8], 'int32'));
      const run = await runMain(['evaluate', join(dir, 'h0.onnx'), '--dataset', dir]);
      assert.equal(run.code, 1);
      assert.match(run.err, /input 'h0' has shape \[1, batch, 6\]: its batch \('batch', the batch of 'input'\) is axis 1/);
    } finally {
      await remove();
    }
  });
});

describe('a model reading an image as rows [N, H, W] (the MNIST-LSTM tutorials) fed Kiln images [N, H, W, 1]', () => {
  const x = new Tensor(Float32Array.from({ length: 8 * 20 }, (_, i) => Math.sin(i * 0.3)), [8, 5, 4], 'float32');
  const images = x.reshape([8, 5, 4, 1]);

  it('predicts, trains and saves with the channel axis dropped in its graph, as from the rows themselves', async () => {
    const model = await GraphModel.fromProto(recurrentModel(['y', 'yh']), 'rows.onnx');
    const fromRows = (await model.predict(x)).data as Float32Array;
    const rowsModel = await GraphModel.fromProto(recurrentModel(['y', 'yh']), 'rows.onnx');
    assert.ok(maxAbsDiff((await rowsModel.predict(images)).data as Float32Array, fromRows) < 1e-6);
    assert.equal(rowsModel.preprocessing.layout, 'nchw');
    rowsModel.compile({ optimizer: sgd({ learningRate: 0.1 }), loss: 'sparseCategoricalCrossentropy' });
    const labels = new Tensor(Int32Array.from({ length: 8 }, (_, i) => i % 3), [8], 'int32');
    const history = await rowsModel.fit(images, labels, { epochs: 2, batchSize: 8, verbose: 0, shuffle: false });
    assert.ok(history.history.loss![1]! < history.history.loss![0]!);
    const temp = await makeTempDir('kiln-rows-');
    try {
      const file = join(temp.dir, 'rows.onnx');
      await rowsModel.save(file);
      const reloaded = await GraphModel.load(file);
      assert.ok(maxAbsDiff((await reloaded.predict(images)).data as Float32Array, (await rowsModel.predict(images)).data as Float32Array) < 1e-6);
    } finally {
      await temp.remove();
    }
  });

  it('a plain ONNX file fed through adaptInput drops the axis too (evaluate, quantize calibration, the client)', () => {
    const fed = adaptInput(images, { name: 'input', dtype: 'float32', shape: [null, 5, 4] });
    assert.deepEqual(fed.shape, [8, 5, 4]);
    assert.deepEqual(Array.from(fed.data as Float32Array), Array.from(x.data as Float32Array));
    // And rows to a single-channel model.
    assert.deepEqual(adaptInput(x, { name: 'input', dtype: 'float32', shape: [null, 1, 5, 4] }).shape, [8, 1, 5, 4]);
  });
});
