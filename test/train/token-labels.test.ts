/**
 * A label per position: a token classifier PyTorch exported as Hugging Face's `...ForTokenClassification`
 * are (tokentag.onnx: `input_ids` and `attention_mask` [batch, sequence] → logits [batch, sequence, 3])
 * fine-tunes with sparse categorical cross-entropy over its tokens, padding labelled -100 and left out
 * (Keras' ignore_class, PyTorch's ignore_index). Loss, accuracy and the classifier metrics count the
 * labelled tokens, batches and replicas weighted by them. Its gradients against PyTorch's:
 * graph-model-gradients.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { sparseCategoricalCrossentropy } from '../../src/train/losses.js';
import { adam, sgd } from '../../src/train/optimizers.js';
import { EXPORTED_DIR } from '../fixtures/exported/reference.js';
import { countingTask, IGNORE_INDEX, SEQ, taggedTokenTask } from '../fixtures/exported/token-task.js';
import { kilnError, maxAbsDifference, tempDir, weightsOf } from './helpers.js';
import { join } from 'node:path';
import { Graph } from '../../src/graph/graph.js';
import { labelledPositions } from '../../src/train/metrics.js';
import { taylorGradients } from '../../src/optimize/prune/taylor.js';
import { distill } from '../../src/optimize/distill/distill.js';
import { teacherParameterCount } from '../../src/optimize/distill/student.js';
import { prune } from '../../src/optimize/prune/prune.js';
import { selectGraphTargets } from '../../src/optimize/prune/graph-weights.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { modelToProto, tensorFromProto } from '../../src/graph/onnx-io.js';
import { runMain } from '../cli/helpers.js';

const FILE = `${EXPORTED_DIR}/tokentag.onnx`;
const CLASSES = 3;
const tokenLoss = () => sparseCategoricalCrossentropy({ fromLogits: true, ignoreClass: IGNORE_INDEX });
const load = () => GraphModel.load(FILE, { dimensions: { sequence: SEQ } });

/** Mean cross-entropy and accuracy over the labelled tokens, from logits [N, SEQ, CLASSES], in plain arithmetic. */
function byHand(logits: Float32Array, labels: Int32Array): { loss: number; accuracy: number; counted: number } {
  let loss = 0;
  let hits = 0;
  let counted = 0;
  for (let p = 0; p < labels.length; p++) {
    if (labels[p] === IGNORE_INDEX) continue;
    const row = Array.from(logits.subarray(p * CLASSES, (p + 1) * CLASSES));
    const max = Math.max(...row);
    const logSum = max + Math.log(row.reduce((a, z) => a + Math.exp(z - max), 0));
    loss += logSum - row[labels[p]!]!;
    if (row.indexOf(max) === labels[p]) hits++;
    counted++;
  }
  return { loss: loss / counted, accuracy: hits / counted, counted };
}

describe('sparse cross-entropy over the tokens of a token classifier', () => {
  it('fine-tunes to the opposite rule; evaluate counts labelled tokens only, in any batch size', async () => {
    const model = await load();
    assert.deepEqual(model.outputShape, [SEQ, CLASSES]);
    const train = taggedTokenTask(2048, 1, true);
    const test = taggedTokenTask(500, 2, true);
    model.compile({ optimizer: adam({ learningRate: 3e-3 }), loss: tokenLoss(), metrics: ['accuracy'] });
    const before = await model.evaluate(test.x, test.y);
    const history = await model.fit(train.x, train.y, { epochs: 8, batchSize: 64, verbose: 0, seed: 3 });
    // Batches of 64 rows hold different numbers of labelled tokens: 128 rows per evaluation batch (500
    // is no multiple of it) still give the mean over every labelled token, as one batch would.
    const after = await model.evaluate(test.x, test.y, { batchSize: 128 });
    const logits = (await model.predict(test.x)).data as Float32Array;
    const expected = byHand(logits, test.y.data);
    assert.ok(Math.abs(after.loss - expected.loss) <= 1e-5 * (1 + expected.loss), `loss ${after.loss} vs ${expected.loss} by hand`);
    assert.ok(Math.abs(after.accuracy! - expected.accuracy) <= 1e-9, `accuracy ${after.accuracy} vs ${expected.accuracy} by hand`);
    assert.ok(before.accuracy! < 0.9 && after.accuracy! > 0.97, `token accuracy on the opposite rule: ${before.accuracy} before, ${after.accuracy} after fine-tuning`);
    assert.ok(history.history.loss![7]! < history.history.loss![0]!, `training loss falls: ${history.history.loss}`);
    // One row of the confusion matrix per true class, over the labelled tokens (padding is no class).
    const confusion = after.confusion!;
    assert.equal(confusion.length, CLASSES);
    assert.equal(confusion.flat().reduce((a, b) => a + b, 0), expected.counted);
    assert.equal(confusion.reduce((a, row, k) => a + row[k]!, 0) / expected.counted, after.accuracy);
  });

  it('replicas weight their losses by labelled tokens: two replicas step as one', async () => {
    // One SGD step on 64 sequences whose halves hold different numbers of tokens: weighted by rows,
    // the two halves' means would not make the batch's mean, and the weights would differ.
    const data = taggedTokenTask(64, 5, true);
    const counted = (rows: Int32Array) => rows.filter((l) => l !== IGNORE_INDEX).length;
    assert.notEqual(counted(data.y.data.subarray(0, 32 * SEQ)), counted(data.y.data.subarray(32 * SEQ)));
    const weights = [];
    for (const replicas of [1, 2]) {
      const model = await load();
      model.compile({ optimizer: sgd({ learningRate: 1 }), loss: tokenLoss(), metrics: ['accuracy'] });
      const h = await model.fit(data.x, data.y, { epochs: 1, batchSize: 64, shuffle: false, replicas, verbose: 0 });
      assert.equal(model.trainingReplicas, replicas);
      weights.push({ w: weightsOf(model), loss: h.history.loss![0]!, accuracy: h.history.accuracy![0]! });
    }
    const [one, two] = weights;
    assert.ok(maxAbsDifference(one!.w, two!.w) <= 1e-5, `weights after one step on 1 and 2 replicas differ by ${maxAbsDifference(one!.w, two!.w)}`);
    assert.ok(Math.abs(one!.loss - two!.loss) <= 1e-5, `loss ${one!.loss} vs ${two!.loss}`);
    assert.equal(one!.accuracy, two!.accuracy);
  });

  it('a token classifier ending in Softmax trains from the logits before it', async () => {
    const proto = decodeModel(readFileSync(FILE));
    const graph = proto.graph!;
    graph.node!.push({ opType: 'Softmax', input: ['logits'], output: ['probabilities'], name: 'softmax', attribute: [{ name: 'axis', type: 2, i: -1 }] });
    graph.output = [{ ...graph.output![0]!, name: 'probabilities' }];
    const withSoftmax = await GraphModel.fromProto(proto, 'tokentag+softmax.onnx', { dimensions: { sequence: SEQ } });
    assert.equal(withSoftmax.outputsProbabilities, true);
    const plain = await load();
    for (const model of [plain, withSoftmax]) model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const test = taggedTokenTask(64, 2, false);
    // Without ignoreClass the padding's −100 is no class: labelled 0 here.
    const zeroPadded = new Tensor(test.y.data.map((l) => (l === IGNORE_INDEX ? 0 : l)), test.y.shape, 'int32');
    const a = await plain.evaluate(test.x, zeroPadded);
    const b = await withSoftmax.evaluate(test.x, zeroPadded);
    assert.ok(Math.abs(a.loss - b.loss) <= 1e-5, `loss from the logits ${a.loss} vs through the cut Softmax ${b.loss}`);
    assert.equal(a.accuracy, b.accuracy);
  });

  it('replaceHead gives a token classifier a new label set: a head per token, drawn anew, trained alone', async () => {
    const model = await load();
    // nn.Linear on every token exports as MatMul (its weight transposed, under the exporter's name) and Add.
    const head = model.classifierHead();
    assert.deepEqual(head, { weight: 'onnx::MatMul_203', bias: 'head.bias', transposed: false });
    await model.replaceHead(2);
    assert.deepEqual(model.outputShape, [SEQ, 2]);
    model.trainOnly((name) => name === head.weight || name === head.bias);
    // Two labels: a token 1 or 2 (1), any other token (0); padding still -100.
    const binary = (n: number, seed: number) => {
      const d = taggedTokenTask(n, seed, false);
      return { x: d.x, y: new Tensor(d.y.data.map((l) => (l === IGNORE_INDEX ? l : l > 0 ? 1 : 0)), d.y.shape, 'int32') };
    };
    const train = binary(1024, 9);
    const test = binary(256, 10);
    model.compile({ optimizer: adam({ learningRate: 1e-2 }), loss: tokenLoss(), metrics: ['accuracy'] });
    await model.fit(train.x, train.y, { epochs: 3, batchSize: 64, verbose: 0, seed: 1 });
    const r = await model.evaluate(test.x, test.y);
    assert.ok(r.accuracy! > 0.95, `token accuracy of the new 2-label head: ${r.accuracy}`);
    assert.deepEqual(r.confusion!.length, 2);
  });

  it('a causal language model fine-tunes on next-token labels; its tied head and causal mask stay what they are', async () => {
    // causallm.onnx: GPT-2's shape in miniature. The exporter wrote the tied head (embed.weight.T) as an
    // initializer of its own and the causal mask (a buffer of −∞) as another: neither is a weight.
    const model = await GraphModel.load(`${EXPORTED_DIR}/causallm.onnx`, { dimensions: { sequence: SEQ } });
    const names = model.paramInfos().map((p) => p.name);
    assert.ok(names.includes('embed.weight') && !names.includes('causal_mask') && !names.includes('onnx::MatMul_183'), names.join(', '));
    assert.deepEqual(model.tiedWeights(), [{ name: 'onnx::MatMul_183', source: 'embed.weight', transpose: true }]);
    // PyTorch's parameter count (sum of p.numel() over model.parameters()): 2,960.
    assert.equal(model.countParams().trainable, 2960);
    const info = await runMain(['info', '--trainable', `${EXPORTED_DIR}/causallm.onnx`, '--dimension', `sequence=${SEQ}`]);
    assert.match(info.out, /Trainable: yes \(2,960 trainable parameters, 0 non-trainable\)\nTied: onnx::MatMul_183 is embed.weight transposed/);
    model.compile({ optimizer: adam({ learningRate: 1e-2 }), loss: tokenLoss(), metrics: ['accuracy'] });
    // Counting down, where it was pretrained counting up: next-token accuracy over the 11 labelled positions.
    const train = countingTask(2048, 1, [-1, -2, -3]);
    const test = countingTask(256, 2, [-1, -2, -3]);
    const before = await model.evaluate(test.x, test.y);
    await model.fit(train.x, train.y, { epochs: 6, batchSize: 64, verbose: 0, seed: 1 });
    const after = await model.evaluate(test.x, test.y);
    assert.ok(before.accuracy! < 0.1 && after.accuracy! > 0.85, `next-token accuracy counting down: ${before.accuracy} before, ${after.accuracy} after`);
    const t = await tempDir();
    try {
      await model.save(t.path('lm.onnx'));
      const saved = new Map((decodeModel(readFileSync(t.path('lm.onnx'))).graph!.initializer ?? []).map((i) => [i.name ?? '', tensorFromProto(i)]));
      const embed = saved.get('embed.weight')!;
      const head = saved.get('onnx::MatMul_183')!;
      assert.deepEqual(head.shape, [embed.shape[1], embed.shape[0]]);
      const [vocab, d] = embed.shape as [number, number];
      for (let v = 0; v < vocab; v++) for (let k = 0; k < d; k++) assert.equal(head.data[k * vocab + v], embed.data[v * d + k], `head[${k}, ${v}] is embed.weight[${v}, ${k}]`);
      const exported = (decodeModel(readFileSync(`${EXPORTED_DIR}/causallm.onnx`)).graph!.initializer ?? []).find((i) => i.name === 'embed.weight')!;
      assert.notDeepEqual(Array.from(embed.data as Float32Array), Array.from(tensorFromProto(exported).data as Float32Array), 'the embedding trained');
      const mask = saved.get('causal_mask')!.data as Float32Array;
      assert.equal(mask.filter((v) => v === -Infinity).length, (SEQ * (SEQ - 1)) / 2);
      assert.equal(mask.filter((v) => v === 0).length, (SEQ * (SEQ + 1)) / 2);
    } finally {
      await t.remove();
    }
  });

  it('distills a token classifier into another: soft targets per token, padding in neither term', async () => {
    // Teacher: tokentag fine-tuned to the swapped labels; student: tokentag as exported (the original rule).
    const train = taggedTokenTask(2048, 1, true);
    const test = taggedTokenTask(500, 2, true);
    const teacher = await load();
    teacher.compile({ optimizer: adam({ learningRate: 3e-3 }), loss: tokenLoss(), metrics: ['accuracy'] });
    await teacher.fit(train.x, train.y, { epochs: 8, batchSize: 64, verbose: 0, seed: 3 });
    const student = await load();
    student.compile({ optimizer: 'adam', loss: tokenLoss(), metrics: ['accuracy'] });
    const before = (await student.evaluate(test.x, test.y)).accuracy!;
    await assert.rejects(distill({ teacher, x: train.x, y: train.y, verbose: 0 }), kilnError('INVALID_ARGUMENT', 'give a student'));
    const result = await distill({ teacher, student, x: train.x, y: train.y, ignoreClass: IGNORE_INDEX, epochs: 8, batchSize: 64, optimizer: adam({ learningRate: 3e-3 }), verbose: 0, seed: 1 });
    const after = (await result.student.evaluate(test.x, test.y)).accuracy!;
    assert.ok(before < 0.9 && after > 0.96, `student's token accuracy on the teacher's rule: ${before} before, ${after} after distillation`);
  });

  it('refuses labels not shaped as the tokens, classes out of range, and -100 without ignoreClass', async () => {
    const model = await load();
    const data = taggedTokenTask(8, 7, false);
    model.compile({ optimizer: 'adam', loss: tokenLoss(), metrics: ['accuracy'] });
    const perSequence = new Tensor(new Int32Array(8), [8], 'int32');
    await assert.rejects(model.fit(data.x, perSequence, { verbose: 0 }), kilnError('INVALID_SHAPE', 'expects integer labels of shape [8, 12]', 'its class axis 2 removed', 'got [8]'));
    const outOfRange = new Tensor(data.y.data.slice(), data.y.shape, 'int32');
    outOfRange.data[1 * SEQ + 3] = 3;
    await assert.rejects(model.evaluate(data.x, outOfRange), kilnError('INVALID_DATA', 'label y[1, 3] is 3', 'in [0, 3) or -100 (the ignored class)'));
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const firstPadding = data.y.data.indexOf(IGNORE_INDEX);
    await assert.rejects(model.evaluate(data.x, data.y), kilnError('INVALID_DATA', `label y[${Math.floor(firstPadding / SEQ)}, ${firstPadding % SEQ}] is -100, expected an integer class in [0, 3) for`));
  });

  it('DP-SGD refuses a loss with ignoreClass, whose examples are weighted by their tokens', async () => {
    const model = await load();
    const data = taggedTokenTask(16, 8, false);
    model.compile({ optimizer: 'sgd', loss: tokenLoss() });
    await assert.rejects(model.fit(data.x, data.y, { verbose: 0, privacy: { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5 } }), kilnError('INVALID_ARGUMENT', 'DP-SGD', 'ignoreClass (-100)'));
  });
});

describe('tied weights and constants of imported graphs', () => {
  /** A graph of token ids [N, 4] → Gather(embed.weight [8, 3]) → MatMul(head [3, 8]) → logits [N, 4, 8]. */
  const lm = async (dir: string, headName: string, head: Tensor) => {
    const g = new Graph('lm');
    const ids = g.input('ids', 'int64', ['batch', 4]);
    const embed = new Tensor(Float32Array.from({ length: 24 }, (_, i) => Math.sin(i + 1)), [8, 3], 'float32');
    const h = g.op1('Gather', [g.initializer('embed.weight', embed), ids]);
    const logits = g.op1('MatMul', [h, g.initializer(headName, head)]);
    g.output(logits, 'logits');
    const file = join(dir, `${headName.replace(/\W/g, '_')}.onnx`);
    writeFileSync(file, encodeModel(modelToProto(g)));
    return { file, embed };
  };
  const transposed = (t: Tensor) => {
    const [r, c] = t.shape as [number, number];
    return new Tensor(Float32Array.from({ length: r * c }, (_, k) => t.data[(k % r) * c + Math.floor(k / r)] as number), [c, r], 'float32');
  };

  it('ties only an initializer the exporter named (onnx::…) to a named weight it copies; values alone tie nothing', async () => {
    const t = await tempDir();
    try {
      const embed = new Tensor(Float32Array.from({ length: 24 }, (_, i) => Math.sin(i + 1)), [8, 3], 'float32');
      const folded = await GraphModel.load((await lm(t.dir, 'onnx::MatMul_7', transposed(embed))).file);
      assert.deepEqual(folded.tiedWeights(), [{ name: 'onnx::MatMul_7', source: 'embed.weight', transpose: true }]);
      // A head of its own name that happens to equal embed.weight's transpose (an untied model initialized so) stays a weight.
      const named = await GraphModel.load((await lm(t.dir, 'lm_head.weight', transposed(embed))).file);
      assert.deepEqual(named.tiedWeights(), []);
      assert.deepEqual(named.paramInfos().map((p) => p.name).sort(), ['embed.weight', 'lm_head.weight']);
      // A tied head is no head to replace, and selecting the copy says what it copies.
      await assert.rejects(folded.replaceHead(5), kilnError('INVALID_ARGUMENT', "the head's weight 'onnx::MatMul_7' is tied to 'embed.weight'"));
      assert.throws(() => folded.trainOnly('onnx::MatMul_7'), kilnError('INVALID_ARGUMENT', "'onnx::MatMul_7' is a tied copy of 'embed.weight': select that weight"));
      // An op without a gradient rule reached only through the copy still stops training, by name.
      const behind = await GraphModel.load(
        (
          await (async () => {
            const g = new Graph('behind');
            const x = g.input('x', 'float32', ['batch', 3]);
            const w = g.initializer('w', new Tensor(Float32Array.from({ length: 9 }, (_, i) => Math.cos(i)), [3, 3], 'float32'));
            const copy = g.initializer('onnx::Mul_3', transposed(new Tensor(Float32Array.from({ length: 9 }, (_, i) => Math.cos(i)), [3, 3], 'float32')));
            // LpNormalization: an op Kiln has neither a shape nor a gradient rule for, written as imported nodes are.
            const [normalized] = g.importNode('LpNormalization', [copy.name], { axis: 1, p: 2 }, [{ name: 'normalized', dtype: 'float32', shape: [3, 3] }]);
            g.output(g.op1('Add', [g.op1('MatMul', [x, w]), g.op1('MatMul', [x, normalized!])]), 'y');
            const file = join(t.dir, 'behind.onnx');
            writeFileSync(file, encodeModel(modelToProto(g)));
            return file;
          })()
        ),
      );
      assert.deepEqual(behind.tiedWeights(), [{ name: 'onnx::Mul_3', source: 'w', transpose: true }]);
      assert.deepEqual(behind.untrainableOps().map((o) => o.op), ['LpNormalization']);
    } finally {
      await t.remove();
    }
  });

  it('pruning and parameter counts treat a tied copy as its weight; an identity matrix ties to nothing', async () => {
    const t = await tempDir();
    try {
      // An embedding factored through a narrower width (ALBERT's shape): the head is the embedding transposed.
      const g = new Graph('factored');
      const ids = g.input('ids', 'int64', ['batch', 4]);
      const values = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(s * 13.7 + i * 1.3));
      const embed = new Tensor(values(48, 1), [8, 6], 'float32');
      const h0 = g.op1('Gather', [g.initializer('embed.weight', embed), ids]);
      const h1 = g.op1('Relu', [g.op1('MatMul', [h0, g.initializer('onnx::MatMul_1', new Tensor(values(60, 2), [6, 10], 'float32'))])]);
      const h2 = g.op1('Relu', [g.op1('MatMul', [h1, g.initializer('onnx::MatMul_2', new Tensor(values(60, 3), [10, 6], 'float32'))])]);
      g.output(g.op1('MatMul', [h2, g.initializer('onnx::MatMul_3', transposed(embed))]), 'logits');
      writeFileSync(join(t.dir, 'factored.onnx'), encodeModel(modelToProto(g)));
      const factored = await GraphModel.load(join(t.dir, 'factored.onnx'));
      const { model: pruned, report } = await prune(factored, { structured: { ratio: 0.5 } });
      // The hidden units shrink; the width the copy holds stays whole, with the reason, and the tie holds.
      assert.ok(report.groups!.some((gr) => gr.pruned && gr.units[0] === 10 && gr.units[1] === 5));
      assert.ok(report.groups!.some((gr) => !gr.pruned && gr.leftWhole.some((b) => /'onnx::MatMul_3' is the exporter's copy of 'embed.weight' \(tied\)/.test(b.why))));
      assert.deepEqual((pruned as GraphModel).tiedWeights(), [{ name: 'onnx::MatMul_3', source: 'embed.weight', transpose: true }]);
      // Two identity-initialized layers, the second folded: equal, but an identity says nothing of a tie.
      const e = new Graph('eye');
      const x = e.input('x', 'float32', ['batch', 4]);
      const eye = () => new Tensor(Float32Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0)), [4, 4], 'float32');
      e.output(e.op1('MatMul', [e.op1('Relu', [e.op1('MatMul', [x, e.initializer('a.weight', eye())])]), e.initializer('onnx::MatMul_7', eye())]), 'y');
      writeFileSync(join(t.dir, 'eye.onnx'), encodeModel(modelToProto(e)));
      assert.deepEqual((await GraphModel.load(join(t.dir, 'eye.onnx'))).tiedWeights(), []);
    } finally {
      await t.remove();
    }
    // causallm: magnitude pruning's default targets spare no layer for the tied head; counts as PyTorch's.
    const lm = await GraphModel.load(`${EXPORTED_DIR}/causallm.onnx`, { dimensions: { sequence: SEQ } });
    assert.equal(lm.tiedHead(), 'onnx::MatMul_183');
    assert.ok(selectGraphTargets(lm).map((k) => k.name).includes('onnx::MatMul_182'), 'the last feed-forward matrix is pruned like the others');
    assert.equal(teacherParameterCount(await OnnxModel.load(`${EXPORTED_DIR}/causallm.onnx`)), 2960);
  });

  it('Taylor ranking of a token classifier reads the ignored label its saved loss recorded', async () => {
    const model = await load();
    model.compile({ optimizer: 'adam', loss: tokenLoss() });
    const data = taggedTokenTask(64, 11, false);
    const grads = await taylorGradients(model, { x: data.x, y: data.y, batches: 1, batchSize: 64 });
    assert.ok([...grads.values()].every((g) => g.every(Number.isFinite)) && grads.size === model.paramInfos().length);
  });

  it("a value of the imported graph named 'counted' (a name the step uses) does not collide with it", async () => {
    const t = await tempDir();
    try {
      const g = new Graph('named');
      const x = g.input('x', 'float32', ['batch', 3, 4]);
      const w = g.initializer('w', new Tensor(Float32Array.from({ length: 8 }, (_, i) => Math.cos(i)), [4, 2], 'float32'));
      const [counted] = g.importNode('MatMul', [x.name, w.name], {}, [{ name: 'counted', dtype: 'float32', shape: ['batch', 3, 2] }]);
      g.output(g.op1('Relu', [counted!]), 'logits');
      writeFileSync(join(t.dir, 'named.onnx'), encodeModel(modelToProto(g)));
      const model = await GraphModel.load(join(t.dir, 'named.onnx'));
      model.compile({ optimizer: 'sgd', loss: tokenLoss(), metrics: ['accuracy'] });
      const x0 = new Tensor(Float32Array.from({ length: 48 }, (_, i) => Math.sin(i)), [4, 3, 4], 'float32');
      const y0 = new Tensor(Int32Array.of(0, 1, IGNORE_INDEX, 1, 0, 0, IGNORE_INDEX, IGNORE_INDEX, 1, 0, 1, 1), [4, 3], 'int32');
      const h = await model.fit(x0, y0, { epochs: 1, batchSize: 4, verbose: 0 });
      assert.ok(Number.isFinite(h.history.loss![0]!));
    } finally {
      await t.remove();
    }
  });

  it('labelledPositions refuses labels that are not one per position', () => {
    assert.throws(() => labelledPositions(new Float32Array(12), [2, 3, 2], 2, [1, -100, 0, 1]), kilnError('INVALID_SHAPE', 'must be one per position, [2, 3]; got 4 labels for 12 scores'));
  });
});
