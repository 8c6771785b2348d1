/**
 * Segmentation models as PyTorch exports them: logits [N, classes, H, W] (classes on axis 1) and a
 * label per pixel [N, H, W]. The `segnet` fixture (test/fixtures/exported), whose decoder upsamples
 * with ConvTranspose, fine-tunes on a label per pixel; the class axis comes from the loss, the labels,
 * a final Softmax or the output's grid when not given; a final Softmax over the classes is cut off as
 * a classifier's is; Taylor-ranked structured pruning reads the same axis; distillation's soft targets
 * are per pixel, over the classes of that axis.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decodeModel } from '../../src/graph/proto.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { sparseCategoricalCrossentropy } from '../../src/train/losses.js';
import { adam } from '../../src/train/optimizers.js';
import { prune } from '../../src/optimize/prune/prune.js';
import { distill } from '../../src/optimize/distill/distill.js';
import { EXPORTED_DIR } from '../fixtures/exported/reference.js';
import { kilnError } from './helpers.js';

const FILE = `${EXPORTED_DIR}/segnet.onnx`;

/** Images [n, 28, 28, 1] of a seeded pattern; pixels above 0.5 are class 3, the others 0. */
function pixelTask(n: number, seed: number): { x: Tensor<'float32'>; y: Tensor<'int64'> } {
  const x = Float32Array.from({ length: n * 784 }, (_, i) => ((i * 7919 + seed * 104729) % 1009) / 1009);
  return { x: new Tensor(x, [n, 28, 28, 1], 'float32'), y: new Tensor(BigInt64Array.from(x, (v) => (v > 0.5 ? 3n : 0n)), [n, 28, 28], 'int64') };
}

/** segnet with Softmax(axis) appended: it outputs probabilities over that axis. */
async function withSoftmax(axis: number): Promise<GraphModel> {
  const proto = decodeModel(readFileSync(FILE));
  const graph = proto.graph!;
  graph.node!.push({ opType: 'Softmax', input: ['logits'], output: ['probabilities'], name: 'softmax', attribute: [{ name: 'axis', type: 2, i: axis }] });
  graph.output = [{ ...graph.output![0]!, name: 'probabilities' }];
  return GraphModel.fromProto(proto, 'segnet+softmax.onnx');
}

describe('segmentation: a label per pixel, classes on axis 1', () => {
  it('fine-tunes on a label per pixel; evaluate counts every pixel', async () => {
    const model = await GraphModel.load(FILE, { layout: 'nchw' });
    model.compile({ optimizer: adam({ learningRate: 3e-3 }), loss: sparseCategoricalCrossentropy({ fromLogits: true, axis: 1 }), metrics: ['accuracy'] });
    const train = pixelTask(256, 1);
    const test = pixelTask(32, 2);
    const before = await model.evaluate(test.x, test.y);
    await model.fit(train.x, train.y, { epochs: 6, batchSize: 32, verbose: 0, seed: 1 });
    const after = await model.evaluate(test.x, test.y);
    assert.ok(after.loss < before.loss / 2, `loss ${before.loss} → ${after.loss}`);
    assert.ok(after.accuracy! > 0.95, `pixel accuracy ${before.accuracy} → ${after.accuracy}`);
    assert.equal(after.confusion!.flat().reduce((a, b) => a + b, 0), 32 * 784);
  });

  it('the class axis when none is given: the saved loss, else the labels, else a final Softmax or the output grid', async () => {
    const exported = await GraphModel.load(FILE);
    // Its output [11, 28, 28] has the input's 28 × 28 grid on its last two axes.
    assert.equal(exported.defaultClassAxis(), 1);
    assert.equal(exported.defaultClassAxis(pixelTask(2, 1).y), 1);
    // Labels the last axis fits say so, whatever the output looks like.
    assert.equal(exported.defaultClassAxis(new Tensor(new BigInt64Array(2 * 11 * 28), [2, 11, 28], 'int64')), undefined);
    assert.equal((await withSoftmax(1)).defaultClassAxis(), 1);
    assert.equal((await withSoftmax(-1)).defaultClassAxis(), undefined);
    // A channels-last graph whose output [28, 28, 3] repeats its input's last two axes is no channels-first grid.
    const { layers, sequential } = await import('../../src/index.js');
    const channelsLast = sequential({ layers: [layers.conv2d({ filters: 3, kernelSize: 1, inputShape: [28, 28, 3] })] });
    const imported = await GraphModel.fromProto(decodeModel(channelsLast.toOnnx()), 'channels-last.onnx');
    assert.deepEqual([imported.modelInput.shape, imported.outputShape], [[28, 28, 3], [28, 28, 3]]);
    assert.equal(imported.defaultClassAxis(), undefined);
  });

  it('a Softmax over the classes at the end is cut off: the loss is the one from the logits; a loss over another axis is refused', async () => {
    const plain = await GraphModel.load(FILE, { layout: 'nchw' });
    const probabilities = await withSoftmax(1);
    assert.equal(probabilities.outputsProbabilities, true);
    const loss = () => sparseCategoricalCrossentropy({ fromLogits: true, axis: 1 });
    for (const model of [plain, probabilities]) model.compile({ optimizer: 'adam', loss: loss(), metrics: ['accuracy'] });
    const test = pixelTask(16, 3);
    const a = await plain.evaluate(test.x, test.y);
    const b = await probabilities.evaluate(test.x, test.y);
    assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * a.loss, `loss from the logits ${a.loss} vs through the cut Softmax ${b.loss}`);
    assert.equal(a.accuracy, b.accuracy);
    assert.throws(
      () => probabilities.compile({ optimizer: 'adam', loss: sparseCategoricalCrossentropy({ fromLogits: true }) }),
      kilnError('INVALID_ARGUMENT', /ends in a Softmax over axis 1, and the loss's class axis is 3: they must be the same/),
    );
  });

  it('structured pruning ranked by Taylor scores reads the class axis from the labels', async () => {
    const model = await GraphModel.load(FILE, { layout: 'nchw' });
    const data = pixelTask(64, 4);
    const { report } = await prune(model, { structured: { ratio: 0.25, criterion: 'taylor', data: { x: data.x, y: data.y, batches: 2, batchSize: 32 } } });
    const pruned = report.groups.filter((g) => g.pruned);
    assert.ok(pruned.length > 0 && pruned.some((g) => g.producers.some((p) => p.includes('ConvTranspose'))), JSON.stringify(report.groups.map((g) => [g.producers, g.pruned])));
  });

  it("distills per pixel: a teacher ending in Softmax over axis 1 is read before it, the soft targets over the classes' axis", async () => {
    const teacher = await withSoftmax(1);
    const student = await GraphModel.load(FILE, { layout: 'nchw' });
    const data = pixelTask(64, 5);
    const r = await distill({ teacher, student, x: data.x, y: data.y, epochs: 2, batchSize: 32, temperature: 2, alpha: 0.5, verbose: 0, seed: 1 });
    assert.deepEqual([r.teacherOutput, r.teacherLogitsFrom], ['logits', 'logits']);
    const losses = r.history.history.loss!;
    assert.ok(losses.every(Number.isFinite) && losses[1]! < losses[0]!, `distillation loss per epoch: ${losses}`);
    // A teacher whose output has more axes than its labels say how to read is refused, naming it.
    await assert.rejects(
      distill({ teacher, student, x: data.x, y: new Tensor(new Int32Array(64), [64], 'int32'), epochs: 1, verbose: 0 }),
      kilnError('INVALID_SHAPE', "'probabilities' has shape [64, 11, 28, 28]"),
    );
  });

  it('augmentation with a label per pixel: crops and flips move the labels with the image, in fit and in distillation batch by batch', async () => {
    const teacher = await withSoftmax(1);
    const data = pixelTask(64, 6);
    const r = await distill({ teacher, student: await GraphModel.load(FILE, { layout: 'nchw' }), x: data.x, y: data.y, epochs: 1, batchSize: 32, augment: { cutout: 4, cropPadding: 2, horizontalFlip: true }, verbose: 0, seed: 1 });
    assert.ok(Number.isFinite(r.history.history.loss![0]!));
    // Each pixel's label is its own brightness: learnable only where the labels move with the pixels
    // (labels left in place would disagree with the shifted image on about half of them).
    const model = await GraphModel.load(FILE, { layout: 'nchw' });
    model.compile({ optimizer: adam({ learningRate: 3e-3 }), loss: sparseCategoricalCrossentropy({ fromLogits: true, axis: 1 }), metrics: ['accuracy'] });
    const train = pixelTask(256, 1);
    const test = pixelTask(32, 2);
    const history = await model.fit(train.x, train.y, { epochs: 6, batchSize: 32, augment: { cropPadding: 3, horizontalFlip: true }, verbose: 0, seed: 1 });
    assert.ok(history.history.accuracy!.at(-1)! > 0.9, `training accuracy on augmented batches ${history.history.accuracy}`);
    const after = await model.evaluate(test.x, test.y);
    assert.ok(after.accuracy! > 0.9, `pixel accuracy ${after.accuracy}`);
  });

  it('crops and flips refuse labels on another grid than the images (a model whose output is smaller than its input)', async () => {
    const { layers, sequential } = await import('../../src/index.js');
    const strided = sequential({ layers: [layers.conv2d({ filters: 4, kernelSize: 2, strides: 2, inputShape: [28, 28, 1] })] });
    strided.compile({ optimizer: 'adam', loss: sparseCategoricalCrossentropy({ fromLogits: true }) });
    const x = pixelTask(8, 3).x;
    const y = new Tensor(new BigInt64Array(8 * 14 * 14), [8, 14, 14], 'int64');
    await assert.rejects(
      strided.fit(x, y, { epochs: 1, augment: { horizontalFlip: true }, verbose: 0 }),
      kilnError('INVALID_ARGUMENT', "labels [8, 14, 14] are not one per pixel of the images [8, 28, 28, 1] (channels last), so they cannot move with them"),
    );
    await strided.fit(x, y, { epochs: 1, augment: { cutout: 4 }, verbose: 0 });
    // Pixel masks a loss flattens to its output [N, H·W]: they would stay put under the moved image.
    const flat = sequential({ layers: [layers.flatten({ inputShape: [28, 28, 1] }), layers.dense({ units: 784, activation: 'sigmoid' })] });
    flat.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
    const masks = new Tensor(new Float32Array(8 * 784), [8, 28, 28], 'float32');
    await assert.rejects(flat.fit(x, masks, { epochs: 1, augment: { cropPadding: 2 }, verbose: 0 }), kilnError('INVALID_ARGUMENT', 'labels [8, 28, 28] (the loss reads them as [8, 784]) are not one per pixel'));
  });

  it('a channels-last segmentation teacher (classes last, as Kiln models have them) distills into a channels-last student', async () => {
    const { layers, sequential } = await import('../../src/index.js');
    const net = (filters: number, seed: number) =>
      sequential({ seed, layers: [layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [28, 28, 1] }), layers.conv2d({ filters: 4, kernelSize: 1 })] });
    const data = pixelTask(64, 7);
    const r = await distill({ teacher: net(8, 1).toOnnx(), student: net(4, 2), x: data.x, y: data.y, epochs: 1, batchSize: 32, verbose: 0, seed: 1 });
    assert.ok(Number.isFinite(r.history.history.loss![0]!));
  });
});
