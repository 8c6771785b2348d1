/**
 * An exported model of token ids (textcls.onnx: int64 `input_ids` [batch, 12] → embedding Gather →
 * transformer encoder → mean → Linear, PyTorch opset 17) trains as a GraphModel on integer data: it
 * learns a rule opposite to the one it was exported with, predicts, and saves a file with its int64
 * input; pruning, dynamic/float16 quantization and distillation into a student of token ids take it;
 * image data, image preprocessing and the default (image) student are refused
 * by name. Its gradients against PyTorch's: graph-model-gradients.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tensorFromProto } from '../../src/graph/onnx-io.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { parseOnnx } from '../../src/model/read-model.js';
import { distill } from '../../src/optimize/distill/distill.js';
import { prune } from '../../src/optimize/prune/prune.js';
import { optimizeModel } from '../../src/automl/optimize.js';
import { exportTrainer } from '../../src/train/export-trainer.js';
import { bench } from '../../src/bench/bench.js';
import { quantize } from '../../src/optimize/quantize/quantize.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { loadModel } from '../../src/train/load.js';
import { adam } from '../../src/train/optimizers.js';
import { EXPORTED_DIR } from '../fixtures/exported/reference.js';
import { paddedTokenTask, SEQ, tokenTask } from '../fixtures/exported/token-task.js';
import { runMain } from '../cli/helpers.js';
import { kilnError, tempDir } from './helpers.js';

const FILE = `${EXPORTED_DIR}/textcls.onnx`;

describe('GraphModel of token ids', () => {
  it('loads as a trainable model of int64 token ids', async () => {
    const model = await GraphModel.load(FILE);
    assert.equal(model.inputDtype, 'int64');
    assert.deepEqual(model.inputShape, [SEQ]);
    assert.deepEqual(model.modelInput, { name: 'input_ids', shape: [SEQ] });
    assert.deepEqual(model.untrainableOps(), []);
  });

  it("trainOnly by module name takes the module's matrices that constant folding renamed (onnx::MatMul_135 is encoder.layers.0.linear1's weight, transposed)", async () => {
    const model = await GraphModel.load(FILE);
    model.trainOnly('encoder.layers.0.linear1.*');
    // linear1: its bias [32] and its weight [16, 32], stored as onnx::MatMul_135; only the bias before.
    assert.equal(model.countParams().trainable, 32 + 16 * 32);
  });

  it('fine-tunes on token ids to the opposite rule, predicts, and saves a file with its int64 input', async () => {
    const model = await GraphModel.load(FILE);
    const train = tokenTask(2048, 1, true);
    const test = tokenTask(512, 2, true);
    model.compile({ optimizer: adam({ learningRate: 3e-3 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const before = await model.evaluate(test.x, test.y);
    assert.ok(before.accuracy! < 0.3, `as exported it follows the original rule: ${before.accuracy} on the opposite one`);
    await model.fit(train.x, train.y, { epochs: 4, batchSize: 64, verbose: 0, seed: 3 });
    const after = await model.evaluate(test.x, test.y);
    assert.ok(after.accuracy! > 0.85, `accuracy on the opposite rule after fine-tuning: ${after.accuracy}`);

    const predicted = await model.predict(test.x);
    assert.deepEqual(predicted.shape, [512, 2]);
    const t = await tempDir();
    try {
      await model.save(t.path('textcls-tuned.onnx'));
      const saved = await OnnxModel.load(t.path('textcls-tuned.onnx'));
      assert.deepEqual(saved.inputs.map((i) => [i.name, i.dtype]), [['input_ids', 'int64']]);
      const logits = (await saved.predict(test.x)).data as Float32Array;
      const expected = predicted.data as Float32Array;
      for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(logits[i]! - expected[i]!) <= 1e-4 * (1 + Math.abs(expected[i]!)), `logit ${i}: ${logits[i]} vs ${expected[i]}`);
    } finally {
      await t.remove();
    }
  });

  it('refuses image data, ids of another integer type, and image preprocessing, by name', async () => {
    const model = await GraphModel.load(FILE);
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    const labels = new Tensor(new Int32Array(4), [4], 'int32');
    await assert.rejects(model.fit(new Tensor(new Float32Array(4 * SEQ), [4, SEQ], 'float32'), labels, { verbose: 0 }), kilnError('INVALID_ARGUMENT', 'must be int64 token ids, as the model\'s input is; got float32 (image or vector data cannot feed a model of token ids)'));
    await assert.rejects(model.predict(new Tensor(new Int32Array(4 * SEQ), [4, SEQ], 'int32')), kilnError('INVALID_ARGUMENT', 'must be int64 token ids, as the model\'s input is; got int32'));
    await assert.rejects(GraphModel.load(FILE, { layout: 'nchw' }), kilnError('INVALID_ARGUMENT', "input 'input_ids' takes int64 token ids: a layout, --scale or --mean/--std applies to image and vector inputs only"));
    await assert.rejects(GraphModel.load(FILE, { mean: [0.5] }), kilnError('INVALID_ARGUMENT', 'token ids'));
  });

  it('prunes (magnitude; heads and MLP units), quantizes (dynamic, float16) and distills into a student of token ids', async () => {
    const model = await GraphModel.load(FILE);
    const data = tokenTask(256, 5, false);
    const fineTune = { x: data.x, y: data.y, epochs: 1, batchSize: 64 };
    const sparse = await prune(model, { sparsity: 0.5, fineTune });
    assert.ok(sparse.report.after.nonZeroParameters < sparse.report.before.nonZeroParameters);
    const narrow = await prune(model, { structured: { heads: 0.5, mlp: 0.5 }, fineTune });
    assert.deepEqual(narrow.report.groups.filter((g) => g.pruned).map((g) => [g.kind, g.units]).sort(), [['heads', [2, 1]], ['units', [32, 16]]]);
    assert.equal(narrow.model.inputDtype, 'int64');
    for (const mode of ['dynamic', 'float16'] as const) {
      const { bytes } = await quantize(model, { mode });
      const q = new OnnxModel(bytes, parseOnnx(bytes));
      assert.deepEqual((await q.predict(data.x)).shape, [256, 2], mode);
    }
    const student = narrow.model;
    const before = new Map([...student.weights].map(([k, t]) => [k, (t.data as Float32Array).slice()]));
    const distilled = await distill({ teacher: model, student, x: data.x, y: data.y, epochs: 1, verbose: 0 });
    assert.equal(distilled.student.inputDtype, 'int64');
    const after = await distilled.student.currentWeights();
    assert.ok([...before].some(([k, w]) => (after.get(k)!.data as Float32Array).some((v, i) => v !== w[i])), 'distillation trained the student');
    assert.ok(Number.isFinite(distilled.history.history.loss!.at(-1)!));
  });

  it('static int8 calibrates on token ids (the activations after the embedding), and kiln optimize tries it', async () => {
    const model = await GraphModel.load(FILE);
    const calibration = tokenTask(512, 9, false);
    const heldOut = tokenTask(1000, 10, false);
    const q = await quantize(model, { mode: 'static', calibration: calibration.x, evaluate: { x: heldOut.x, y: heldOut.y } });
    const e = q.report.evaluation!;
    assert.ok(Math.abs(e.after.accuracy! - e.before.accuracy!) <= 0.01, `accuracy ${e.before.accuracy} → ${e.after.accuracy}`);
    assert.ok(e.agreement > 0.97, `agreement ${e.agreement}`);
    assert.ok((e.runtimeOps.after.QuantizeLinear ?? 0) > 0, JSON.stringify(e.runtimeOps.after));
    await assert.rejects(quantize(model, { mode: 'static', calibration: new Tensor(new Float32Array(4 * SEQ), [4, SEQ], 'float32') }), kilnError('INVALID_ARGUMENT', "calibration data must be int64, as the model's input is; got float32"));

    const train = tokenTask(256, 7, true);
    const test = tokenTask(128, 8, true);
    const r = await optimizeModel(model, { train, evaluation: test, objective: 'size', maxAccuracyDrop: 100, pruneRatios: [0.5], sparsities: [], measurement: { repetitions: 1, latencyRuns: 3, throughputBatches: 1 } });
    assert.deepEqual(r.candidates.map((c) => c.name).sort(), ['float-fp16', 'float-int8', 'pruned50', 'pruned50-fp16', 'pruned50-int8']);
    assert.deepEqual(r.skipped, []);
  });

  it('names what cannot take token ids: the default student, an image data set, a training package', async () => {
    const model = await GraphModel.load(FILE);
    const data = tokenTask(64, 6, false);
    await assert.rejects(distill({ teacher: model, x: data.x, y: data.y, epochs: 1, verbose: 0 }), kilnError('INVALID_ARGUMENT', 'the data is int64 (token ids): give a student'));
    const r = await runMain(['evaluate', FILE, '--dataset', 'embedded']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /INVALID_ARGUMENT.*must be int64 token ids.*image or vector data cannot feed a model of token ids/);
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    const t = await tempDir();
    try {
      await assert.rejects(exportTrainer(model, t.path('package')), kilnError('INVALID_ARGUMENT', 'a training package trains a model of one float32 input', 'takes int64 token ids'));
    } finally {
      await t.remove();
    }
  });
});

describe('GraphModel with two inputs (token ids and an attention mask)', () => {
  const MASKED = `${EXPORTED_DIR}/textmask.onnx`;

  it('loads with its second input, and fine-tunes, evaluates, predicts and saves on both', async () => {
    const model = await GraphModel.load(MASKED);
    assert.deepEqual(model.modelInput, { name: 'input_ids', shape: [SEQ] });
    assert.deepEqual(model.otherInputs, [{ name: 'attention_mask', stepName: 'input/attention_mask', shape: [SEQ], dtype: 'int64' }]);
    const train = paddedTokenTask(2048, 11, true);
    const test = paddedTokenTask(512, 12, true);
    model.compile({ optimizer: adam({ learningRate: 3e-3 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const before = await model.evaluate(test.x, test.y);
    assert.ok(before.accuracy! < 0.35, `as exported it follows the original rule: ${before.accuracy} on the opposite one`);
    const history = await model.fit(train.x, train.y, { epochs: 4, batchSize: 64, verbose: 0, seed: 3, validationData: [test.x, test.y] });
    assert.equal(history.history.val_accuracy!.length, 4);
    const after = await model.evaluate(test.x, test.y);
    assert.ok(after.accuracy! > 0.85, `accuracy on the opposite rule after fine-tuning: ${after.accuracy}`);
    assert.equal(history.history.val_accuracy!.at(-1), after.accuracy);

    const predicted = await model.predict(test.x, { batchSize: 100 });
    const t = await tempDir();
    try {
      await model.save(t.path('textmask-tuned.onnx'));
      const saved = await OnnxModel.load(t.path('textmask-tuned.onnx'));
      assert.deepEqual(saved.inputs.map((i) => [i.name, i.dtype]), [['input_ids', 'int64'], ['attention_mask', 'int64']]);
      const logits = (await saved.run(test.x)).logits!.data as Float32Array;
      const expected = predicted.data as Float32Array;
      for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(logits[i]! - expected[i]!) <= 1e-4 * (1 + Math.abs(expected[i]!)), `logit ${i}: ${logits[i]} vs ${expected[i]}`);
    } finally {
      await t.remove();
    }
  });

  it('the mask is read: padding changed under it leaves the predictions as they were', async () => {
    const model = await GraphModel.load(MASKED);
    const { x } = paddedTokenTask(64, 13, false);
    const noisy = new BigInt64Array(x.input_ids.data);
    const mask = x.attention_mask.data;
    for (let i = 0; i < noisy.length; i++) if (mask[i] === 0n) noisy[i] = BigInt(1 + (i % 31));
    const a = (await model.predict(x)).data as Float32Array;
    const b = (await model.predict({ ...x, input_ids: new Tensor(noisy, [64, SEQ], 'int64') })).data as Float32Array;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-5, `logit ${i}: ${a[i]} vs ${b[i]}`);
  });

  it('names what is wrong with the inputs given', async () => {
    const model = await GraphModel.load(MASKED);
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    const { x, y } = paddedTokenTask(8, 14, false);
    await assert.rejects(model.fit(x.input_ids, y, { verbose: 0 }), kilnError('INVALID_ARGUMENT', 'the model has 2 inputs (input_ids, attention_mask): give x as an object of tensors by those names'));
    await assert.rejects(model.fit({ input_ids: x.input_ids }, y, { verbose: 0 }), kilnError('INVALID_ARGUMENT', 'missing attention_mask'));
    // A key the model has no input for is left unread (as Hugging Face's Trainer drops such columns);
    // next to a missing input it names the likely misspelling.
    assert.deepEqual(Array.from((await model.predict({ ...x, token_type_ids: x.input_ids })).data as Float32Array), Array.from((await model.predict(x)).data as Float32Array));
    await assert.rejects(model.predict({ input_ids: x.input_ids, attention_masks: x.attention_mask }), kilnError('INVALID_ARGUMENT', 'missing attention_mask; the model has no input attention_masks'));
    await assert.rejects(model.predict({ ...x, attention_mask: x.attention_mask.slice(0, 4) }), kilnError('INVALID_SHAPE', 'x.attention_mask must have shape [8, 12] (as many rows as x.input_ids), got [4, 12]'));
    await assert.rejects(model.predict({ ...x, attention_mask: new Tensor(new Float32Array(8 * SEQ), [8, SEQ], 'float32') }), kilnError('INVALID_ARGUMENT', "x.attention_mask must be int64, as the model's input 'attention_mask' is; got float32"));
    await assert.rejects(model.evaluate({ ...x, input_ids: new Tensor(new Float32Array(8 * SEQ), [8, SEQ], 'float32') }, y), kilnError('INVALID_ARGUMENT', 'x.input_ids must be int64 token ids'));
  });

  it('prunes it (magnitude, and heads and MLP units ranked by Taylor) on both inputs, with latency and accuracy before and after', async () => {
    const model = await GraphModel.load(MASKED);
    const data = paddedTokenTask(256, 15, false);
    const fineTune = { x: data.x, y: data.y, epochs: 1, batchSize: 64 };
    const common = { fineTune, evaluation: { x: data.x, y: data.y }, latency: { batchSize: 8, runs: 3 } };
    const sparse = await prune(model, { ...common, sparsity: 0.5 });
    assert.ok(sparse.report.after.nonZeroParameters < sparse.report.before.nonZeroParameters);
    assert.ok(sparse.report.after.accuracy! > 0.5 && sparse.report.after.latencyMs! > 0, JSON.stringify(sparse.report.after));
    const narrow = await prune(model, { ...common, structured: { heads: 0.5, mlp: 0.5, criterion: 'taylor' } });
    assert.deepEqual(narrow.report.groups.filter((g) => g.pruned).map((g) => [g.kind, g.units]).sort(), [['heads', [2, 1]], ['units', [32, 16]]]);
    assert.deepEqual(narrow.model.otherInputs.map((o) => o.name), ['attention_mask']);
    assert.deepEqual((await narrow.model.predict(data.x)).shape, [256, 2]);
  });

  it('quantize (dynamic, with evaluate), bench, optimizeModel and distill take its inputs by name', async () => {
    const model = await GraphModel.load(MASKED);
    const train = paddedTokenTask(256, 16, true);
    const test = paddedTokenTask(128, 17, true);
    const reference = (await model.predict(test.x)).data as Float32Array;
    const labels = test.y.data as Int32Array;
    let right = 0;
    for (let i = 0; i < labels.length; i++) if ((reference[2 * i + 1]! > reference[2 * i]! ? 1 : 0) === labels[i]) right++;

    const q = await quantize(model, { mode: 'dynamic', evaluate: { x: test.x, y: test.y } });
    assert.equal(q.report.evaluation!.before.accuracy, right / labels.length);
    assert.ok(q.report.evaluation!.agreement > 0.9, `agreement ${q.report.evaluation!.agreement}`);

    const benched = await bench([{ name: 'textmask', model }], { x: test.x, y: test.y }, { repetitions: 1, latencyRuns: 3, throughputBatches: 1 });
    assert.equal(benched.models[0]!.accuracy, right / labels.length);
    assert.ok(benched.models[0]!.flops > 0 && benched.models[0]!.throughput > 0);

    const optimized = await optimizeModel(model, { train, evaluation: test, objective: 'size', maxAccuracyDrop: 100, pruneRatios: [0.5], sparsities: [], measurement: { repetitions: 1, latencyRuns: 3, throughputBatches: 1 } });
    assert.deepEqual(optimized.candidates.map((c) => c.name).sort(), ['float-fp16', 'float-int8', 'pruned50', 'pruned50-fp16', 'pruned50-int8']);
    assert.deepEqual(optimized.skipped, []);
    assert.equal(optimized.original.accuracy, right / labels.length);

    const student = (await prune(model, { structured: { mlp: 0.5 } })).model;
    const distilled = await distill({ teacher: model, student, x: train.x, y: train.y, epochs: 1, batchSize: 64, verbose: 0 });
    assert.ok(Number.isFinite(distilled.history.history.loss!.at(-1)!));
  });

  it('static int8 calibrates on both inputs; the mask\'s −∞ before Softmax stays float', async () => {
    const model = await GraphModel.load(MASKED);
    const calibration = paddedTokenTask(512, 19, false);
    const heldOut = paddedTokenTask(1000, 20, false);
    for (const method of ['minmax', 'percentile'] as const) {
      const q = await quantize(model, { mode: 'static', method, calibration: calibration.x, evaluate: { x: heldOut.x, y: heldOut.y } });
      const e = q.report.evaluation!;
      assert.ok(Math.abs(e.after.accuracy! - e.before.accuracy!) <= 0.01, `${method}: accuracy ${e.before.accuracy} → ${e.after.accuracy}`);
      assert.ok(e.agreement > 0.97, `${method}: agreement ${e.agreement}`);
      assert.ok((e.runtimeOps.after.QuantizeLinear ?? 0) > 0 && (q.report.ops.MatMul ?? 0) > 0, JSON.stringify(e.runtimeOps.after));
      // Every scale written is finite and positive: no 8-bit range was made of the mask's −∞.
      const file = parseOnnx(q.bytes).graph!;
      const constants = new Map([...(file.initializer ?? []).map((t) => [t.name, t] as const), ...(file.node ?? []).filter((n) => n.opType === 'Constant').map((n) => [n.output![0], n.attribute![0]!.t!] as const)]);
      const scales = (file.node ?? []).filter((n) => n.opType === 'QuantizeLinear').map((n) => Array.from(tensorFromProto(constants.get(n.input![1]!)!).data as Float32Array));
      assert.ok(scales.length > 0 && scales.every((s) => s.every((v) => Number.isFinite(v) && v > 0)), JSON.stringify(scales));
      const masked = q.report.layers.find((l) => l.layer.endsWith('self_attn/Softmax'));
      assert.equal(masked?.precision, 'float32');
    }
    // The mask changes nothing under it once quantized either: padding rewritten where the mask is 0.
    const q = await quantize(model, { mode: 'static', calibration: calibration.x });
    const ids = heldOut.x.input_ids.data as BigInt64Array;
    const mask = heldOut.x.attention_mask.data as BigInt64Array;
    const other = new Tensor(ids.map((v, i) => (mask[i] === 0n ? 5n : v)), heldOut.x.input_ids.shape, 'int64');
    const [a, b] = [await q.predict(heldOut.x), await q.predict({ input_ids: other, attention_mask: heldOut.x.attention_mask })];
    assert.deepEqual(Array.from(b.data as Float32Array), Array.from(a.data as Float32Array));
    const batched = await q.predict(heldOut.x, { batchSize: 128 });
    assert.deepEqual(Array.from(batched.data as Float32Array), Array.from(a.data as Float32Array), 'predict in batches joins the same rows');
    await assert.rejects(q.predict(heldOut.x.input_ids), kilnError('INVALID_ARGUMENT', 'the model has 2 inputs (input_ids, attention_mask): give x as an object'));
    // Calibration data is checked as evaluate's x is, each input by name.
    await assert.rejects(quantize(model, { mode: 'static', calibration: { input_ids: calibration.x.input_ids } }), kilnError('INVALID_ARGUMENT', 'missing attention_mask'));
    await assert.rejects(quantize(model, { mode: 'static', calibration: calibration.x.input_ids }), kilnError('INVALID_ARGUMENT', 'the model has 2 inputs (input_ids, attention_mask): give calibration as an object'));
    const wide = new Tensor(BigInt64Array.from({ length: 4 * 13 }, () => 1n), [4, 13], 'int64');
    const four = calibration.x.input_ids.slice(0, 4);
    await assert.rejects(quantize(model, { mode: 'static', calibration: { input_ids: four, attention_mask: wide } }), kilnError('INVALID_SHAPE', "calibration.attention_mask must have the model's input shape [null, 12] (batch first), got [4, 13]"));
    await assert.rejects(quantize(model, { mode: 'static', calibration: { input_ids: wide, attention_mask: wide } }), kilnError('INVALID_SHAPE', "the model's input 'input_ids' has shape [batch, 12]; the data is [null, 13]"));
  });

  it('a free sequence axis (as Hugging Face exports have): sized by name for training, refused without it, naming how', async () => {
    const DYN = `${EXPORTED_DIR}/textdyn.onnx`;
    await assert.rejects(GraphModel.load(DYN), kilnError('INVALID_SHAPE', "input 'input_ids' has shape [batch, sequence], free at axis 1", 'dimensions: { "sequence": n }', '--dimension sequence=n'));
    // As a file to run it takes any length (up to its 32 positions).
    const runnable = await loadModel(DYN);
    assert.ok(runnable instanceof OnnxModel);
    const test = paddedTokenTask(256, 31, true);
    for (const length of [12, 8]) {
      const cut = (t: Tensor) => new Tensor((t.data as BigInt64Array).filter((_, i) => i % 12 < length), [t.shape[0]!, length], 'int64');
      const x = { input_ids: cut(test.x.input_ids), attention_mask: cut(test.x.attention_mask) };
      assert.deepEqual((await runnable.predict(x)).shape, [256, 2]);
      const model = await GraphModel.load(DYN, { dimensions: { sequence: length } });
      assert.deepEqual(model.modelInput, { name: 'input_ids', shape: [length] });
      model.compile({ optimizer: adam({ learningRate: 3e-3 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
      const train = paddedTokenTask(1024, 32, true);
      const h = await model.fit({ input_ids: cut(train.x.input_ids), attention_mask: cut(train.x.attention_mask) }, train.y, { epochs: 2, batchSize: 64, verbose: 0, seed: 1 });
      assert.ok(h.history.loss![1]! < h.history.loss![0]!, `length ${length}: loss ${h.history.loss}`);
      // The model at 12 predicts what the file predicts at 12 before training.
      if (length === 12) {
        const fresh = await GraphModel.load(DYN, { dimensions: { sequence: 12 } });
        assert.deepEqual(Array.from((await fresh.predict(x)).data as Float32Array), Array.from((await runnable.predict(x)).data as Float32Array));
      }
    }
    // Names that are not free dimensions past the batch axis, and sizes that are not sizes: the caller's errors, at once.
    await assert.rejects(loadModel(DYN, { dimensions: { seq: 12 } }), kilnError('INVALID_ARGUMENT', "dimension 'seq' is no free dimension of the model's inputs (free: sequence)"));
    await assert.rejects(loadModel(DYN, { dimensions: { batch: 4 } }), kilnError('INVALID_ARGUMENT', "'batch' is the batch axis (axis 0)"));
    await assert.rejects(GraphModel.load(DYN, { dimensions: { sequence: 0 } }), kilnError('INVALID_ARGUMENT', "dimension 'sequence' must be a positive integer, got 0"));
    // A size the graph does not run at (its position table holds 32): said with the size, not as a file that only runs.
    for (const load of [() => loadModel(DYN, { dimensions: { sequence: 40 } }), () => GraphModel.load(DYN, { dimensions: { sequence: 40 } })]) {
      // Not as a batch dimension to export either: one example does not run at that length.
      await assert.rejects(load(), kilnError('INVALID_ARGUMENT', `'${DYN}' with sequence=40: does not run on inputs of shape 'input_ids' [N, 40], 'attention_mask' [N, 40], not even one example`));
    }
    // A file saved at 12 remembers it: the same size again is nothing to do, another is refused with the reason.
    const t = await tempDir();
    try {
      const model = await GraphModel.load(DYN, { dimensions: { sequence: 12 } });
      await model.save(t.path('at12.onnx'));
      const again = await GraphModel.load(t.path('at12.onnx'), { dimensions: { sequence: 12 } });
      assert.deepEqual(again.modelInput.shape, [12]);
      await assert.rejects(GraphModel.load(t.path('at12.onnx'), { dimensions: { sequence: 8 } }), kilnError('INVALID_ARGUMENT', "'sequence' was fixed at 12 when this file was made"));
      // Models whose input has no free dimension to size: refused, not ignored.
      await assert.rejects(loadModel(`${EXPORTED_DIR}/textmask.onnx`, { dimensions: { sequence: 12 } }), kilnError('INVALID_ARGUMENT', "dimension 'sequence' is no free dimension of the model's inputs (it has none past the batch axis)"));
      const q = await quantize(model, { mode: 'dynamic' });
      await q.save(t.path('q.onnx'));
      await assert.rejects(loadModel(t.path('q.onnx'), { dimensions: { sequence: 12 } }), kilnError('INVALID_ARGUMENT', 'is quantized, and runs at any size as it is'));
    } finally {
      await t.remove();
    }
  });

  it('what cannot take its inputs says so: the default student, a training package, the command line', async () => {
    const model = await GraphModel.load(MASKED);
    const data = paddedTokenTask(32, 18, false);
    await assert.rejects(distill({ teacher: model, x: data.x, y: data.y, epochs: 1, verbose: 0 }), kilnError('INVALID_ARGUMENT', 'the data is several inputs (input_ids, attention_mask): give a student'));
    await assert.rejects(bench([{ name: 'textmask', model }], { x: data.x.input_ids, y: data.y }), kilnError('INVALID_ARGUMENT', 'the model has 2 inputs (input_ids, attention_mask): give x as an object'));
    // Malformed objects and ids of another integer type are named before any run.
    await assert.rejects(bench([{ name: 'textmask', model }], { x: { input_ids: 3 } as never, y: data.y }), kilnError('INVALID_ARGUMENT', 'data.x.input_ids is not a tensor'));
    await assert.rejects(bench([{ name: 'textmask', model }], { x: null as never, y: data.y }), kilnError('INVALID_ARGUMENT', 'data.x must be a tensor, or tensors by input name'));
    const int32 = new Tensor(Int32Array.from(data.x.input_ids.data as BigInt64Array, Number), [32, SEQ], 'int32');
    await assert.rejects(bench([{ name: 'textmask', model }], { x: { ...data.x, input_ids: int32 }, y: data.y }), kilnError('INVALID_ARGUMENT', "x.input_ids must be int64, as the model's input 'input_ids' is; got int32"));
    await assert.rejects(quantize(model, { mode: 'dynamic', evaluate: { y: data.y } as never }), kilnError('INVALID_ARGUMENT', 'evaluate.x must be a tensor, or tensors by'));
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    await assert.rejects(exportTrainer(model, '/nonexistent/kiln-package'), kilnError('INVALID_ARGUMENT', 'takes 2 inputs'));
    // An image set for a model of two inputs: the command names the arrays it wants instead.
    const cli = await runMain(['prune', MASKED, '--sparsity', '0.5', '--dataset', 'embedded']);
    assert.notEqual(cli.code, 0);
    assert.match(cli.err, /takes 2 inputs \(input_ids, attention_mask\) and --dataset gives one array: give a directory of NumPy arrays with one file per input \(x_train.input_ids.npy, x_train.attention_mask.npy/);
  });
});

