/**
 * kiln.distill end to end (src/optimize/distill/): α = 1 reproduces plain training step for step, the
 * teacher term alone (α = 0) transfers what the teacher knows even when the labels are noise, foreign
 * teachers (probabilities out, channels-first input) are read correctly, the default student keeps
 * the teacher's family within a quarter of its parameters, and the student records how it was made.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { distill, defaultStudent, layers, losses, optimizers, OnnxModel, Random, sequential, Tensor } from '../../../src/index.js';
import { Graph } from '../../../src/graph/graph.js';
import { modelToProto } from '../../../src/graph/onnx-io.js';
import { decodeModel, encodeModel } from '../../../src/graph/proto.js';
import { DISTILLATION_METADATA_KEY, teacherLogits } from '../../../src/optimize/distill/index.js';
import { distillationLoss } from '../../../src/optimize/distill/loss.js';
import { asOnnxModel } from '../../../src/optimize/distill/teacher.js';
import { Sequential } from '../../../src/train/sequential.js';
import { assertRejectsKiln } from '../../model/helpers.js';
import { blobs, maxAbsDifference, weightsOf } from '../../train/helpers.js';
import { tinyCnn } from '../../bench/fixtures.js';

function blobNet(seed: number, hidden = 16, last: 'linear' | 'softmax' = 'linear'): Sequential {
  return sequential({ seed, layers: [layers.dense({ units: hidden, activation: 'relu', inputShape: [2] }), layers.dense({ units: 3, activation: last })] });
}

function agreement(a: Tensor, b: Tensor): number {
  const c = a.shape[1]!;
  const argmax = (d: Float32Array, r: number) => {
    let best = 0;
    for (let k = 1; k < c; k++) if (d[r * c + k]! > d[r * c + best]!) best = k;
    return best;
  };
  let same = 0;
  for (let r = 0; r < a.shape[0]!; r++) if (argmax(a.data as Float32Array, r) === argmax(b.data as Float32Array, r)) same++;
  return same / a.shape[0]!;
}

describe('distill', () => {
  const train = blobs(240, 1);
  const test = blobs(120, 2);

  it('with α = 1 reproduces plain training: same weights and the same loss history', async () => {
    const teacher = blobNet(9);
    const distilled = blobNet(3);
    const result = await distill({ teacher, student: distilled, x: train.x, y: train.y, alpha: 1, temperature: 4, epochs: 3, batchSize: 32, optimizer: optimizers.adam({ learningRate: 0.03 }), verbose: 0 });
    const plain = blobNet(3);
    plain.compile({ optimizer: optimizers.adam({ learningRate: 0.03 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    const history = await plain.fit(train.x, train.y, { epochs: 3, batchSize: 32, verbose: 0 });
    const diff = maxAbsDifference(weightsOf(distilled), weightsOf(plain));
    assert.ok(diff <= 1e-5, `weights differ by ${diff}`);
    history.history.loss!.forEach((l, i) => assert.ok(Math.abs(l - result.history.history.loss![i]!) <= 1e-5, `epoch ${i + 1} loss: plain ${l}, distilled ${result.history.history.loss![i]}`));
  });

  it('with α = 0 learns the teacher from its soft targets alone, even when the labels are noise', async () => {
    const teacher = blobNet(5);
    teacher.compile({ optimizer: optimizers.adam({ learningRate: 0.03 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    await teacher.fit(train.x, train.y, { epochs: 15, batchSize: 32, verbose: 0 });
    const rng = new Random(11);
    const noise = new Tensor(Int32Array.from({ length: 240 }, () => Math.floor(rng.uniform(0, 3))), [240], 'int32');
    const { student } = await distill({ teacher, student: blobNet(4), x: train.x, y: noise, alpha: 0, temperature: 2, epochs: 15, batchSize: 32, optimizer: optimizers.adam({ learningRate: 0.03 }), verbose: 0 });
    const agree = agreement(await student.predict(test.x), await teacher.predict(test.x));
    assert.ok(agree >= 0.95, `student agrees with the teacher on ${agree} of test points`);
    const labelsOnly = blobNet(4);
    labelsOnly.compile({ optimizer: optimizers.adam({ learningRate: 0.03 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
    await labelsOnly.fit(train.x, noise, { epochs: 15, batchSize: 32, verbose: 0 });
    assert.ok(agreement(await labelsOnly.predict(test.x), await teacher.predict(test.x)) < 0.8, 'the noisy labels alone do not teach the same function');
  });

  it('records the history and how the student was made in its metadata, and keeps the teacher\'s class names', async () => {
    const teacher = blobNet(9);
    teacher.classNames = ['red', 'green', 'blue'];
    const { student, history } = await distill({ teacher, student: blobNet(3), x: train.x, y: train.y, epochs: 2, batchSize: 64, validationSplit: 0.25, verbose: 0 });
    assert.deepEqual(student.classNames, ['red', 'green', 'blue']);
    assert.deepEqual(Object.keys(JSON.parse(student.metadata.get('kiln.history')!)).sort(), ['accuracy', 'loss', 'val_accuracy', 'val_loss']);
    assert.equal(history.epoch.length, 2);
    const made = JSON.parse(student.metadata.get(DISTILLATION_METADATA_KEY)!);
    assert.deepEqual({ temperature: made.temperature, alpha: made.alpha, teacherOutput: made.teacherOutput }, { temperature: 4, alpha: 0.1, teacherOutput: 'logits' });
    const reloaded = decodeModel(student.toOnnx()).metadataProps!.map((m) => m.key);
    assert.ok(reloaded.includes('kiln.history') && reloaded.includes(DISTILLATION_METADATA_KEY), `saved metadata: ${reloaded}`);
  });

  it('refuses a student whose classes differ from the teacher or that ends in softmax', async () => {
    const wide = sequential({ layers: [layers.dense({ units: 4, inputShape: [2] })] });
    await assertRejectsKiln(() => distill({ teacher: blobNet(9), student: wide, x: train.x, y: train.y, verbose: 0 }), 'INVALID_SHAPE', '[null, 4]', '[null, 3]');
    await assertRejectsKiln(() => distill({ teacher: blobNet(9), student: blobNet(3, 8, 'softmax'), x: train.x, y: train.y, verbose: 0 }), 'INVALID_ARGUMENT', 'logits');
    await assertRejectsKiln(() => distill({ teacher: blobNet(9), student: blobNet(3), x: train.x, y: train.y, temperature: -1, verbose: 0 }), 'INVALID_ARGUMENT', 'temperature');
  });
});

describe('distill with augment', () => {
  // A teacher identical to the student: with α = 0 and a vanishing learning rate the loss is the KL
  // between two copies of one function, 0 exactly when both saw the same (augmented) images.
  const rng = new Random(5);
  const x = new Tensor(Float32Array.from({ length: 48 * 28 * 28 }, () => rng.next()), [48, 28, 28, 1], 'float32');
  const y = new Tensor(Int32Array.from({ length: 48 }, (_, i) => i % 10), [48], 'int32');
  const augment = { cropPadding: 2, horizontalFlip: true };

  it('runs the teacher on each augmented batch: a copy of the student as teacher gives zero loss', async () => {
    const student = tinyCnn(3);
    const teacher = student.toOnnx();
    const { history } = await distill({ teacher, student, x, y, alpha: 0, temperature: 4, epochs: 2, batchSize: 16, optimizer: optimizers.sgd({ learningRate: 1e-12 }), verbose: 0, augment });
    for (const loss of history.history.loss!) assert.ok(Math.abs(loss) < 1e-5, `loss ${loss}`);
    assert.deepEqual(JSON.parse(student.metadata.get(DISTILLATION_METADATA_KEY)!).augment, augment);
  });

  it('(control) logits of the un-augmented images would not match: the check above can fail', async () => {
    const student = tinyCnn(3);
    const cached = (await teacherLogits(await asOnnxModel(student.toOnnx()), x)).logits;
    const { history } = await distill({ teacher: student.toOnnx(), student, x, y, alpha: 0, temperature: 4, epochs: 1, batchSize: 16, optimizer: optimizers.sgd({ learningRate: 1e-12 }), verbose: 0 });
    assert.ok(Math.abs(history.history.loss![0]!) < 1e-5, 'without augmentation the cache matches');
    student.compile({ optimizer: optimizers.sgd({ learningRate: 1e-12 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) }, {
      extraInputs: [{ name: 'teacher_logits', dtype: 'float32', shape: ['N', 10] }],
      buildLoss: (graph, output, labels, hardLoss) => distillationLoss(graph, output, graph.value('teacher_logits'), labels, { temperature: 4, alpha: 0, hardLoss }),
    });
    const mismatched = await student.fit(x, y, { epochs: 1, batchSize: 16, verbose: 0, augment, extraFeeds: (indices) => ({ teacher_logits: cached.gather(indices) }) });
    assert.ok(mismatched.history.loss![0]! > 1e-4, `loss ${mismatched.history.loss![0]}`);
  });
});

describe('teacher logits', () => {
  /** A hand-built "PyTorch-style" classifier: pixels [N, 2, 3, 3] → Flatten → MatMul W → Softmax (→ Reshape, which hides the Softmax). */
  function foreignSoftmaxTeacher(w: Float32Array, hidden: boolean): { teacher: OnnxModel; scores: string } {
    const g = new Graph('foreign');
    const input = g.input('pixels', 'float32', ['batch', 2, 3, 3]);
    const flat = g.op1('Flatten', [input], { axis: 1 });
    const scores = g.op1('MatMul', [flat, g.initializer('W', new Tensor(w, [18, 4], 'float32'))]);
    const probs = g.op1('Softmax', [scores], { axis: 1 });
    g.output(hidden ? g.op1('Reshape', [probs, g.int64s([-1, 4], 'shape')]) : probs, 'probs');
    const bytes = encodeModel(modelToProto(g));
    return { teacher: new OnnxModel(bytes, decodeModel(bytes)), scores: scores.name };
  }

  for (const hidden of [false, true]) {
    it(hidden
      ? 'reads a teacher whose Softmax it cannot see (a Reshape after it) as probabilities: their logarithms, log-softmax of the logits'
      : 'reads a foreign teacher with a channels-first input and a final Softmax before the Softmax: the logits themselves', async () => {
      const rng = new Random(3);
      const w = Float32Array.from({ length: 18 * 4 }, () => rng.uniform(-1, 1));
      const { teacher, scores } = foreignSoftmaxTeacher(w, hidden);
      const x = new Tensor(Float32Array.from({ length: 5 * 18 }, () => rng.uniform(0, 1)), [5, 3, 3, 2], 'float32'); // NHWC
      const { logits, outputKind, readFrom } = await teacherLogits(teacher, x, { batchSize: 2 });
      assert.deepEqual([outputKind, readFrom], hidden ? ['probabilities', 'probs'] : ['logits', scores]);
      for (let i = 0; i < 5; i++) {
        const z = [0, 1, 2, 3].map((k) => {
          let s = 0;
          for (let c = 0; c < 2; c++) for (let h = 0; h < 3; h++) for (let ww = 0; ww < 3; ww++) s += (x.data as Float32Array)[i * 18 + (h * 3 + ww) * 2 + c]! * w[(c * 9 + h * 3 + ww) * 4 + k]!;
          return s;
        });
        const lse = hidden ? Math.log(z.reduce((a, v) => a + Math.exp(v), 0)) : 0;
        z.forEach((v, k) => assert.ok(Math.abs((logits.data as Float32Array)[i * 4 + k]! - (v - lse)) < 1e-5, `row ${i} class ${k}`));
      }
    });
  }
});

describe('defaultStudent', () => {
  it("narrows a Kiln teacher's own layers to at most 25% of its parameters", () => {
    const teacher = sequential(layers.tutorialCnn([28, 28, 1], 10));
    const student = defaultStudent(teacher, { inputShape: [28, 28, 1], numClasses: 10 });
    const ratio = student.countParams().total / teacher.countParams().total;
    assert.ok(ratio <= 0.25 && ratio > 0.15, `student/teacher parameters ${ratio}`);
    assert.deepEqual(student.layers.map((l) => l.className), teacher.layers.map((l) => l.className));
    assert.deepEqual(student.outputShape, [10]);
    const filters = student.layers.filter((l) => l.className === 'Conv2D').map((l) => Number(l.getConfig().filters));
    assert.ok(filters.every((f, i) => f < [32, 64, 64][i]!), `narrower filters: ${filters}`);
  });

  it('for a foreign teacher uses convolution stages with batch normalization and a global-average-pooling head, and drops a final softmax', () => {
    const kiln = tinyCnn(1, 32);
    const bytes = kiln.toOnnx();
    const proto = decodeModel(bytes);
    proto.metadataProps = [];
    const foreignBytes = encodeModel(proto);
    const foreign = new OnnxModel(foreignBytes, decodeModel(foreignBytes));
    const student = defaultStudent(foreign, { inputShape: [28, 28, 1], numClasses: 10 });
    assert.ok(student.countParams().total <= 0.25 * kiln.countParams().total);
    const stage = ['Conv2D', 'BatchNormalization', 'Activation'];
    assert.deepEqual(student.layers.map((l) => l.className), [...stage, 'MaxPooling2D', ...stage, 'MaxPooling2D', ...stage, 'GlobalAveragePooling2D', 'Dense']);

    const softmaxTeacher = blobNet(1, 64, 'softmax');
    const s = defaultStudent(softmaxTeacher, { inputShape: [2], numClasses: 3 });
    assert.equal(s.layers.at(-1)!.getConfig().activation, 'linear');
  });
});
