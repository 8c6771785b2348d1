/**
 * Distillation with foreign models (src/optimize/distill/): a teacher ending in Softmax is read before
 * it (checked by hand on Softmax(x), where saturated probabilities would lose the logits); a
 * non-classifier teacher is refused; the default student of an exported NCHW teacher reads Kiln's
 * channels-last data at ≤ 25% of the teacher's parameters (counted as PyTorch counts them); an
 * imported graph (GraphModel) trains as the student through its own compiled step — with α = 1 exactly
 * as plain training, with the teacher's term its loss falling, from the logits before a final Softmax.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { distill, defaultStudent, layers, losses, OnnxModel, optimizers, sequential, Tensor } from '../../../src/index.js';
import { Graph } from '../../../src/graph/graph.js';
import { modelToProto } from '../../../src/graph/onnx-io.js';
import { decodeModel, encodeModel, type ModelProto } from '../../../src/graph/proto.js';
import { asOnnxModel, teacherLogits } from '../../../src/optimize/distill/teacher.js';
import { GraphModel } from '../../../src/train/graph-model.js';
import { readOnnxFile } from '../../../src/model/read-model.js';
import { assertRejectsKiln } from '../../model/helpers.js';
import { maxAbsDifference, weightsOf } from '../../train/helpers.js';
import { randomImages } from '../prune/helpers.js';

const DIR = 'test/fixtures/exported';
/** The ResNet fixture's parameters as PyTorch counts them (test/fixtures/exported/README.md): BatchNorm's running statistics are buffers. */
const RESNET_PARAMETERS = 5122;

function modelOf(g: Graph): OnnxModel {
  const bytes = encodeModel(modelToProto(g));
  return new OnnxModel(bytes, decodeModel(bytes));
}

/** x [N, 3] → Softmax (optionally behind an Identity, as exporters write it) → probs. */
function softmaxOf(identity: boolean, axis?: number): OnnxModel {
  const g = new Graph('softmax_only');
  const x = g.input('x', 'float32', ['N', 3]);
  const p = g.op1('Softmax', [x], axis === undefined ? {} : { axis });
  g.output(identity ? g.op1('Identity', [p]) : p, 'probs');
  return modelOf(g);
}

/** The mlp fixture with a Softmax after its logits, output 'probs': an exported classifier that outputs probabilities. */
async function mlpWithSoftmax(): Promise<ModelProto> {
  const { proto } = await readOnnxFile(join(DIR, 'mlp.onnx'));
  const g = proto.graph!;
  return { ...proto, graph: { ...g, node: [...g.node!, { opType: 'Softmax', input: ['logits'], output: ['probs'], name: 'softmax', attribute: [{ name: 'axis', type: 2, i: 1 }] }], output: [{ ...g.output![0]!, name: 'probs' }] } };
}

describe('a teacher ending in Softmax', () => {
  // Rows whose softmax saturates: exp(−200) underflows float32, so probabilities would lose the logits.
  const x = new Tensor(Float32Array.from([0, -100, -200, 1, 2, 3, 5, -5, 0.5, 40, -40, 0]), [4, 3], 'float32');

  it('gives its logits: for Softmax(x) the teacher logits are x itself, exactly (also behind an Identity)', async () => {
    for (const identity of [false, true]) {
      const r = await teacherLogits(softmaxOf(identity), x);
      assert.deepEqual([r.outputKind, r.readFrom], ['logits', 'x']);
      assert.deepEqual([...r.logits.data], [...x.data]);
    }
  });

  it('(control) read as probabilities instead, the saturated rows lose their logits: the check above can fail', async () => {
    const r = await teacherLogits(softmaxOf(false), x, { output: 'probs' });
    assert.equal(r.outputKind, 'probabilities');
    const d = r.logits.data as Float32Array;
    // Unsaturated, the row [1, 2, 3] reads as its log-softmax, as it should.
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    [1, 2, 3].forEach((v, k) => assert.ok(Math.abs(d[3 + k]! - (v - lse)) < 1e-5));
    // log-softmax([0, −100, −200]) is [0, −100, −200]; exp(−200) is 0 in float32, so the third logit is lost.
    assert.ok(d[2]! > -100, `third class read as ${d[2]}`);
  });

  it('over another axis than the classes is no classifier Softmax: the output is read as it is', async () => {
    const r = await teacherLogits(softmaxOf(false, 0), x);
    assert.equal(r.readFrom, 'probs');
  });

  it('distill reads the logits: the student is trained on x, and says so in its metadata', async () => {
    const data = { x: new Tensor(Float32Array.from({ length: 64 * 3 }, (_, i) => Math.sin(i) * 3), [64, 3], 'float32'), y: new Tensor(Int32Array.from({ length: 64 }, (_, i) => i % 3), [64], 'int32') };
    const student = sequential({ seed: 1, layers: [layers.dense({ units: 3, inputShape: [3] })] });
    const r = await distill({ teacher: softmaxOf(true), student, x: data.x, y: data.y, epochs: 1, batchSize: 16, verbose: 0 });
    assert.deepEqual([r.teacherOutput, r.teacherLogitsFrom], ['logits', 'x']);
    assert.equal(JSON.parse(r.student.metadata.get('kiln.distillation')!).teacherLogitsFrom, 'x');
  });
});

describe('a teacher that is no classifier', () => {
  const x = randomImages(8, [28, 28, 1]).x;
  const graph = (build: (g: Graph, input: ReturnType<Graph['input']>) => ReturnType<Graph['input']>) => {
    const g = new Graph('not_a_classifier');
    const input = g.input('input', 'float32', ['N', 1, 28, 28]);
    g.output(build(g, input), 'out');
    return modelOf(g);
  };

  it('is refused with INVALID_SHAPE or INVALID_ARGUMENT naming its output: a feature map, one score, class indices', async () => {
    const featureMap = graph((g, i) => g.op1('AveragePool', [i], { kernel_shape: [7, 7], strides: [7, 7] }));
    await assertRejectsKiln(() => distill({ teacher: featureMap, x, y: new Tensor(new Int32Array(8), [8], 'int32'), verbose: 0 }), 'INVALID_SHAPE', "'out'", '[8, 1, 4, 4]', '[N, classes]');
    const oneScore = graph((g, i) => g.op1('ReduceMean', [g.op1('Flatten', [i], { axis: 1 })], { axes: [1], keepdims: 1 }));
    await assertRejectsKiln(() => distill({ teacher: oneScore, x, y: new Tensor(new Int32Array(8), [8], 'int32'), verbose: 0 }), 'INVALID_SHAPE', '[8, 1]', 'at least 2 classes');
    const indices = graph((g, i) => g.op1('ArgMax', [g.op1('Flatten', [i], { axis: 1 })], { axis: 1, keepdims: 0 }));
    await assertRejectsKiln(() => distill({ teacher: indices, x, y: new Tensor(new Int32Array(8), [8], 'int32'), verbose: 0 }), 'INVALID_SHAPE', '[8]');
  });
});

describe('the default student of an exported teacher', () => {
  it('for the ResNet fixture (NCHW input, as an .onnx or as a GraphModel): three convolution stages with batch normalization and a global-average-pooling head reading channels-last data, ≤ 25% of its 5,122 parameters', async () => {
    const onnx = await asOnnxModel(join(DIR, 'resnet.onnx'));
    const graph = await GraphModel.load(join(DIR, 'resnet.onnx'));
    for (const teacher of [onnx, graph]) {
      const student = defaultStudent(teacher, { inputShape: [28, 28, 1], numClasses: 10 });
      assert.deepEqual(student.inputShape, [28, 28, 1]);
      const stage = (filters: number) => [`Conv2D(${filters})`, 'BatchNormalization', 'Activation(relu)'];
      const described = student.layers.map((l) => {
        const c = l.getConfig() as { filters?: number; units?: number; activation?: string; useBias?: boolean };
        if (l.className === 'Conv2D') assert.equal(c.useBias, false, 'a convolution before batch normalization has no bias');
        return l.className === 'Conv2D' ? `Conv2D(${c.filters})` : l.className === 'Dense' ? `Dense(${c.units}, ${c.activation})` : l.className === 'Activation' ? `Activation(${c.activation})` : l.className;
      });
      assert.deepEqual(described, [...stage(4), 'MaxPooling2D', ...stage(9), 'MaxPooling2D', ...stage(9), 'GlobalAveragePooling2D', 'Dense(10, linear)']);
      // Counted as Keras counts it (moving statistics included, 1,277) it fits; as PyTorch counts it
      // (running statistics are buffers) it is smaller still, 1,233.
      const { total, trainable } = student.countParams();
      assert.deepEqual([total, trainable], [1277, 1233]);
      assert.ok(total <= 0.25 * RESNET_PARAMETERS);
    }
  });

  it('for a recurrent teacher over sequences [T, F] (or image rows [H, W]): an MLP over the flattened steps, within the budget, that distills', async () => {
    const teacher = await asOnnxModel(join(DIR, 'rnn.onnx'));
    const student = defaultStudent(teacher, { inputShape: [28, 28], numClasses: 10 });
    assert.deepEqual(student.layers.map((l) => l.className), ['Flatten', 'Dense', 'Dense']);
    assert.ok(student.countParams().total <= 0.25 * 5842);
    const rows = new Tensor(Float32Array.from({ length: 16 * 784 }, (_, i) => (Math.sin(i) + 1) / 2), [16, 28, 28], 'float32');
    const r = await distill({ teacher, student, x: rows, y: new Tensor(Int32Array.from({ length: 16 }, (_, i) => i % 10), [16], 'int32'), epochs: 1, batchSize: 8, verbose: 0 });
    assert.ok(Number.isFinite(r.history.history.loss![0]));
  });

  it('trains: distilled on the teacher\'s soft targets its loss falls, and plain fitting learns labels that depend on the image', async () => {
    const teacher = await asOnnxModel(join(DIR, 'resnet.onnx'));
    const data = randomImages(128, [28, 28, 1]);
    const student = defaultStudent(teacher, { inputShape: [28, 28, 1], numClasses: 10 }, { seed: 2 });
    const before = weightsOf(student);
    const r = await distill({ teacher, student, x: data.x, y: data.y, alpha: 0, temperature: 2, epochs: 6, batchSize: 32, seed: 1, optimizer: optimizers.adam({ learningRate: 1e-2 }), verbose: 0 });
    const loss = r.history.history.loss!;
    assert.ok(loss.at(-1)! < 0.8 * loss[0]!, `loss ${loss.map((l) => l.toFixed(4)).join(' → ')}`);
    assert.ok(maxAbsDifference(weightsOf(student), before) > 1e-3);

    // Labels a function of the image: the class is which of 2 quadrants is brighter.
    const n = 128;
    const x = data.x.data.slice() as Float32Array;
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      for (let r0 = 0; r0 < 14; r0++) for (let c = 0; c < 14; c++) x[i * 784 + (y[i] === 0 ? r0 : r0 + 14) * 28 + c] += 1;
    }
    const plain = defaultStudent(teacher, { inputShape: [28, 28, 1], numClasses: 10 }, { seed: 2 });
    plain.compile({ optimizer: optimizers.adam({ learningRate: 1e-2 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    const images = new Tensor(x, [n, 28, 28, 1], 'float32');
    const labels = new Tensor(y, [n], 'int32');
    await plain.fit(images, labels, { epochs: 8, batchSize: 32, seed: 1, verbose: 0 });
    const accuracy = (await plain.evaluate(images, labels)).accuracy!;
    assert.ok(accuracy >= 0.95, `accuracy on its training images ${accuracy}`);
  });

  it('distill builds it, reads the teacher through its layout, and reports both parameter counts', async () => {
    const data = randomImages(64, [28, 28, 1]);
    const r = await distill({ teacher: join(DIR, 'resnet.onnx'), x: data.x, y: data.y, epochs: 1, batchSize: 32, verbose: 0 });
    assert.equal(r.teacherParameters, RESNET_PARAMETERS);
    assert.equal(r.studentParameters, r.student.countParams().total);
    assert.ok(r.studentParameters <= 0.25 * RESNET_PARAMETERS);
    assert.deepEqual([r.teacherOutput, r.teacherLogitsFrom], ['logits', 'logits']);
  });
});

describe('a foreign student (GraphModel)', () => {
  const data = randomImages(96, [28, 28, 1], 10, 4);

  it('with α = 1 trains exactly as plain training of the same GraphModel: same weights, same losses', async () => {
    const distilled = await GraphModel.load(join(DIR, 'mlp.onnx'));
    const r = await distill({ teacher: join(DIR, 'resnet.onnx'), student: distilled, x: data.x, y: data.y, alpha: 1, epochs: 2, batchSize: 32, seed: 3, optimizer: optimizers.adam({ learningRate: 1e-3 }), verbose: 0 });
    assert.equal(r.student, distilled);
    const plain = await GraphModel.load(join(DIR, 'mlp.onnx'));
    plain.compile({ optimizer: optimizers.adam({ learningRate: 1e-3 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    const history = await plain.fit(data.x, data.y, { epochs: 2, batchSize: 32, seed: 3, verbose: 0 });
    const diff = maxAbsDifference(weightsOf(distilled), weightsOf(plain));
    assert.ok(diff <= 1e-5, `weights differ by ${diff}`);
    history.history.loss!.forEach((l, i) => assert.ok(Math.abs(l - r.history.history.loss![i]!) <= 1e-5, `epoch ${i + 1}`));
  });

  it('ending in Softmax, trains from its logits on the teacher\'s soft targets: the loss falls, the weights move, the saved file keeps its graph', async () => {
    const student = await GraphModel.fromProto(await mlpWithSoftmax(), 'mlp+softmax');
    assert.ok(student.outputsProbabilities);
    const before = weightsOf(student);
    const r = await distill({ teacher: join(DIR, 'resnet.onnx'), student, x: data.x, y: data.y, alpha: 0, temperature: 2, epochs: 4, batchSize: 32, optimizer: optimizers.adam({ learningRate: 3e-3 }), verbose: 0 });
    const loss = r.history.history.loss!;
    assert.ok(loss[3]! < 0.8 * loss[0]!, `loss ${loss.map((l) => l.toFixed(4)).join(' → ')}`);
    assert.ok(maxAbsDifference(weightsOf(student), before) > 1e-3);
    assert.equal(r.studentParameters, 52_650);
    const saved = decodeModel(student.toOnnx());
    assert.deepEqual([saved.graph!.input!.map((i) => i.name), saved.graph!.output!.map((o) => o.name)], [['input'], ['probs']]);
    // Still a classifier of probabilities.
    const p = (await student.predict(data.x.slice(0, 4))).data as Float32Array;
    for (let r0 = 0; r0 < 4; r0++) assert.ok(Math.abs(p.slice(r0 * 10, r0 * 10 + 10).reduce((a, b) => a + b, 0) - 1) < 1e-5);
  });

  it('whose classes differ from the teacher\'s: INVALID_SHAPE', async () => {
    const student = await GraphModel.load(join(DIR, 'mlp.onnx'));
    await student.replaceHead(5);
    await assertRejectsKiln(() => distill({ teacher: join(DIR, 'resnet.onnx'), student, x: data.x, y: data.y, verbose: 0 }), 'INVALID_SHAPE', '[null, 5]', '[null, 10]');
  });
});
