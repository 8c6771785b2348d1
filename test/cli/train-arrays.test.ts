/**
 * `kiln train` and `kiln evaluate` on a directory of NumPy arrays (Keras' x_train / y_train / x_test /
 * y_test naming): the exported text fixtures on token ids — textmask with one file per input
 * (x_train.input_ids.npy, x_train.attention_mask.npy), textcls with x_train.npy — and a Kiln CNN on
 * float images; every malformed directory refused by name before training, nothing written.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { saveNpy } from '../../src/data/npy.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { Tensor } from '../../src/tensor.js';
import { EXPORTED_DIR } from '../fixtures/exported/reference.js';
import { paddedTokenTask, taggedTokenTask, tokenTask } from '../fixtures/exported/token-task.js';
import { tempDir } from '../train/helpers.js';
import { runMain } from './helpers.js';

const ACCURACY = /accuracy (\d+\.\d+)%/;

describe('kiln train / evaluate on NumPy arrays', () => {
  let t: Awaited<ReturnType<typeof tempDir>>;
  /** Writes a data set directory: x per input name ('' for x_<split>.npy alone), y per split. */
  const write = async (dir: string, splits: Partial<Record<'train' | 'test', { x: Record<string, Tensor>; y: Tensor }>>) => {
    await mkdir(t.path(dir), { recursive: true });
    for (const [split, { x, y }] of Object.entries(splits) as [string, { x: Record<string, Tensor>; y: Tensor }][]) {
      for (const [name, tensor] of Object.entries(x)) await saveNpy(t.path(`${dir}/x_${split}${name ? `.${name}` : ''}.npy`), tensor);
      await saveNpy(t.path(`${dir}/y_${split}.npy`), y);
    }
  };

  before(async () => {
    t = await tempDir();
    const train = paddedTokenTask(2048, 21, true);
    const test = paddedTokenTask(256, 22, true);
    await write('masked', { train: { x: train.x, y: train.y }, test: { x: test.x, y: test.y } });
    const ids = tokenTask(512, 23, true);
    const idsTest = tokenTask(128, 24, true);
    await write('ids', { train: { x: { '': ids.x }, y: ids.y }, test: { x: { '': idsTest.x }, y: idsTest.y } });
    const pixels = (n: number) => new Tensor(Float32Array.from({ length: n * 28 * 28 }, (_, i) => (i % 7) / 7), [n, 28, 28, 1], 'float32');
    const labels = (n: number) => new Tensor(Int32Array.from({ length: n }, (_, i) => i % 3), [n], 'int32');
    await write('images', { train: { x: { '': pixels(96) }, y: labels(96) }, test: { x: { '': pixels(32) }, y: labels(32) } });
  });
  after(() => t.remove());

  it('fine-tunes a model of two inputs from one array per input, and evaluates the saved file on them', async () => {
    const r = await runMain(['train', '--model', `${EXPORTED_DIR}/textmask.onnx`, '--dataset', t.path('masked'), '--epochs', '4', '--lr', '0.003', '--validation-split', '0', '--batch-size', '64', '--out', t.path('masked.onnx')]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /on .*masked: 2048 examples attention_mask \[12\], input_ids \[12\], 2 classes|on .*masked: 2048 examples input_ids \[12\], attention_mask \[12\], 2 classes/);
    const trained = Number(ACCURACY.exec(r.out)![1]);
    assert.ok(trained > 80, `accuracy after 4 epochs on the reversed task: ${trained}%`);
    const saved = await OnnxModel.load(t.path('masked.onnx'));
    assert.deepEqual(saved.inputs.map((i) => [i.name, i.dtype]), [['input_ids', 'int64'], ['attention_mask', 'int64']]);
    const e = await runMain(['evaluate', t.path('masked.onnx'), '--dataset', t.path('masked'), '--json']);
    assert.equal(e.code, 0, e.err);
    assert.equal((100 * (JSON.parse(e.out) as { accuracy: number }).accuracy).toFixed(2), trained.toFixed(2));
  });

  it('trains a model of token ids from x_train.npy, and a Kiln CNN from float64 images given by an input name', async () => {
    const ids = await runMain(['train', '--model', `${EXPORTED_DIR}/textcls.onnx`, '--dataset', t.path('ids'), '--epochs', '1', '--out', t.path('ids.onnx')]);
    assert.equal(ids.code, 0, ids.err);
    assert.match(ids.out, /512 examples \[12\], 2 classes/);
    const e = await runMain(['evaluate', t.path('ids.onnx'), '--dataset', t.path('ids'), '--json']);
    assert.equal(e.code, 0, e.err);
    assert.equal((100 * (JSON.parse(e.out) as { accuracy: number }).accuracy).toFixed(2), ACCURACY.exec(ids.out)![1]);
    // NumPy's default float64, saved as x_train.input.npy: fed as float32, as the model's one input.
    const pixels = (n: number) => new Tensor(Float64Array.from({ length: n * 28 * 28 }, (_, i) => (i % 7) / 7), [n, 28, 28, 1], 'float64');
    const labels = (n: number) => new Tensor(Int32Array.from({ length: n }, (_, i) => i % 3), [n], 'int32');
    await write('float64', { train: { x: { input: pixels(96) }, y: labels(96) }, test: { x: { input: pixels(32) }, y: labels(32) } });
    const cnn = await runMain(['train', '--model', 'tutorial-cnn', '--dataset', t.path('float64'), '--epochs', '1', '--out', t.path('cnn.onnx')]);
    assert.equal(cnn.code, 0, cnn.err);
    assert.match(cnn.out, /96 examples \[28,28,1\], 3 classes/);
  });

  it('evaluates from the test arrays alone, an inference-only file of two inputs too; quantize and bench say what an image set cannot feed', async () => {
    const { x, y } = paddedTokenTask(128, 26, true);
    await write('test-only', { test: { x, y } });
    const e = await runMain(['evaluate', `${EXPORTED_DIR}/textmask.onnx`, '--dataset', t.path('test-only'), '--json']);
    assert.equal(e.code, 0, e.err);
    assert.ok((JSON.parse(e.out) as { accuracy: number }).accuracy < 0.35, 'as exported it follows the original rule');
    const q = await runMain(['quantize', `${EXPORTED_DIR}/textmask.onnx`, '--mode', 'dynamic', '--no-eval', '--no-suggest', '--out', t.path('textmask.int8.onnx')]);
    assert.equal(q.code, 0, q.err);
    const int8 = await runMain(['evaluate', t.path('textmask.int8.onnx'), '--dataset', t.path('test-only'), '--json']);
    assert.equal(int8.code, 0, int8.err);
    assert.ok(Math.abs((JSON.parse(int8.out) as { accuracy: number }).accuracy - (JSON.parse(e.out) as { accuracy: number }).accuracy) < 0.05);
    const one = await runMain(['evaluate', t.path('textmask.int8.onnx'), '--dataset', t.path('ids'), '--json']);
    assert.notEqual(one.code, 0);
    assert.match(one.err, /takes 2 inputs \(input_ids, attention_mask\) and --dataset gives one array/);
    const oneArray = /takes 2 inputs \(input_ids, attention_mask\) and --dataset gives one array: give a directory of NumPy arrays with one file per input \(x_train.input_ids.npy, x_train.attention_mask.npy/;
    const evaluated = await runMain(['quantize', `${EXPORTED_DIR}/textmask.onnx`, '--mode', 'dynamic', '--out', t.path('never.onnx')]);
    assert.match(evaluated.err, oneArray);
    const calibrated = await runMain(['quantize', `${EXPORTED_DIR}/textmask.onnx`, '--mode', 'static', '--no-eval', '--out', t.path('never.onnx')]);
    assert.match(calibrated.err, oneArray);
    const benched = await runMain(['bench', `${EXPORTED_DIR}/textmask.onnx`]);
    assert.match(benched.err, oneArray);
    assert.ok(!existsSync(t.path('never.onnx')));
  });

  it('prune, quantize (static int8, calibrated by input name), distill, optimize, bench and report read the arrays', async () => {
    const masked = `${EXPORTED_DIR}/textmask.onnx`;
    const data = t.path('masked');
    const json = <T>(r: { code: number; out: string; err: string }): T => {
      assert.equal(r.code, 0, r.err);
      return JSON.parse(r.out) as T;
    };
    const pruned = json<{ after: { parameters: number }; before: { parameters: number } }>(
      await runMain(['prune', masked, '--structured', '--mlp', '0.5', '--dataset', data, '--epochs', '1', '--json', '--out', t.path('pruned.onnx')]),
    );
    assert.ok(pruned.after.parameters < pruned.before.parameters, JSON.stringify(pruned));
    const quantized = json<{ evaluation: { agreement: number; runtimeOps: { after: Record<string, number> } } }>(
      await runMain(['quantize', masked, '--mode', 'static', '--dataset', data, '--no-suggest', '--json', '--out', t.path('masked.int8.onnx')]),
    );
    assert.ok(quantized.evaluation.agreement > 0.95 && (quantized.evaluation.runtimeOps.after.QuantizeLinear ?? 0) > 0, JSON.stringify(quantized.evaluation));
    const distilled = await runMain(['distill', '--teacher', masked, '--student', t.path('pruned.onnx'), '--dataset', data, '--epochs', '1', '--out', t.path('student.onnx')]);
    assert.equal(distilled.code, 0, distilled.err);
    assert.match(distilled.out, /test accuracy\s+\d+\.\d+%\s+\d+\.\d+%/);
    const optimized = await runMain(['optimize', masked, '--dataset', data, '--objective', 'size', '--max-accuracy-drop', '100', '--prune-ratios', 'none', '--sparsities', 'none', '--out', t.path('optimized')]);
    assert.equal(optimized.code, 0, optimized.err);
    const summary = JSON.parse(readFileSync(t.path('optimized/optimize.json'), 'utf8')) as { candidates: { name: string }[] };
    assert.deepEqual(summary.candidates.map((c) => c.name).sort(), ['float-fp16', 'float-int8', 'original']);
    const timing = ['--dataset', data, '--limit', '64', '--repetitions', '1', '--latency-runs', '3', '--warmup', '1'];
    const benched = json<{ models: { name: string; accuracy: number }[] }>(await runMain(['bench', masked, t.path('masked.int8.onnx'), ...timing, '--json']));
    assert.equal(benched.models.length, 2);
    const reported = await runMain(['report', masked, ...timing, '--out', t.path('report.html')]);
    assert.equal(reported.code, 0, reported.err);
    assert.ok(existsSync(t.path('report.html')));
  });

  it('sizes a free sequence axis from the arrays (or --dimension), and names what disagrees', async () => {
    const dyn = `${EXPORTED_DIR}/textdyn.onnx`;
    // The arrays are [N, 12]: train, prune and optimize read the length from them.
    const r = await runMain(['train', '--model', dyn, '--dataset', t.path('masked'), '--epochs', '1', '--validation-split', '0', '--out', t.path('dyn.onnx')]);
    assert.equal(r.code, 0, r.err);
    const saved = await OnnxModel.load(t.path('dyn.onnx'));
    assert.deepEqual(saved.inputs.map((i) => i.shape), [['batch', 12], ['batch', 12]]);
    const pruned = await runMain(['prune', dyn, '--sparsity', '0.5', '--dataset', t.path('masked'), '--epochs', '1', '--out', t.path('dyn-pruned.onnx')]);
    assert.equal(pruned.code, 0, pruned.err);
    const given = await runMain(['train', '--model', dyn, '--dataset', t.path('masked'), '--dimension', 'sequence=12', '--epochs', '1', '--out', t.path('dyn-given.onnx')]);
    assert.equal(given.code, 0, given.err);
    // Inputs sharing the dimension whose arrays disagree on it.
    const small = paddedTokenTask(16, 27, false);
    const short = new Tensor((small.x.attention_mask.data as BigInt64Array).filter((_, i) => i % 12 < 10), [16, 10], 'int64');
    await write('ragged', { train: { x: { input_ids: small.x.input_ids, attention_mask: short }, y: small.y }, test: { x: { input_ids: small.x.input_ids, attention_mask: short }, y: small.y } });
    const ragged = await runMain(['train', '--model', dyn, '--dataset', t.path('ragged'), '--epochs', '1', '--out', t.path('never-dyn.onnx')]);
    assert.match(ragged.err, /dimension 'sequence' is 12 in the data for 'input_ids' and 10 in the data for 'attention_mask'/);
    const bad = await runMain(['train', '--model', dyn, '--dataset', t.path('masked'), '--dimension', 'sequence', '--out', t.path('never-dyn.onnx')]);
    assert.match(bad.err, /--dimension takes name=size pairs/);
    const preset = await runMain(['train', '--model', 'tutorial-cnn', '--dataset', t.path('images'), '--dimension', 'sequence=12', '--out', t.path('never-dyn.onnx')]);
    assert.match(preset.err, /--train-only, --num-classes and --dimension apply to imported ONNX models/);
    // A test split padded to another length than the training split's: said before any training.
    const test = paddedTokenTask(16, 28, false);
    const pad = (v: Tensor) => new Tensor(BigInt64Array.from({ length: 16 * 16 }, (_, i) => (i % 16 < 12 ? (v.data as BigInt64Array)[Math.floor(i / 16) * 12 + (i % 16)]! : 0n)), [16, 16], 'int64');
    await write('longer-test', { train: { x: small.x, y: small.y }, test: { x: { input_ids: pad(test.x.input_ids), attention_mask: pad(test.x.attention_mask) }, y: test.y } });
    for (const command of [['train', '--model', dyn], ['prune', dyn, '--sparsity', '0.5']]) {
      const longer = await runMain([...command, '--dataset', t.path('longer-test'), '--epochs', '1', '--out', t.path('never-dyn.onnx')]);
      assert.match(longer.err, /x\.input_ids has shape \[16, 16\], the model takes \[null, 12\]/, command[0]);
      assert.doesNotMatch(longer.out + longer.err, /Epoch 1\/1/, `${command[0]}: no training before the error`);
    }
    const info = await runMain(['info', dyn, '--trainable', '--dimension', 'sequence=12']);
    assert.equal(info.code, 0, info.err);
    assert.match(info.out, /Trainable: yes/);
    assert.ok(!existsSync(t.path('never-dyn.onnx')));
  });

  it('fine-tunes a token classifier on a label per token, padding labelled -100 left out by --ignore-class', async () => {
    // tokentag.onnx: logits [batch, sequence, 3]; y_train.npy [N, 12] with -100 on padding, as Hugging Face's token labels.
    const train = taggedTokenTask(2048, 26, true);
    const test = taggedTokenTask(256, 27, true);
    await write('tagged', { train: { x: train.x, y: train.y }, test: { x: test.x, y: test.y } });
    const model = `${EXPORTED_DIR}/tokentag.onnx`;
    const refused = await runMain(['train', '--model', model, '--dataset', t.path('tagged'), '--epochs', '1', '--out', t.path('never-tagged.onnx')]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /\[INVALID_DATA\]: label y\[\d+, \d+\] is -100, expected an integer class in \[0, 3\) for a model with 3 outputs; a label that marks positions to leave out is the loss's ignoreClass \(kiln train, evaluate and distill: --ignore-class -100; a model they save remembers it for the other commands\)/);
    assert.ok(!existsSync(t.path('never-tagged.onnx')));
    const r = await runMain(['train', '--model', model, '--dataset', t.path('tagged'), '--ignore-class', '-100', '--epochs', '8', '--lr', '0.003', '--validation-split', '0', '--batch-size', '64', '--out', t.path('tagged.onnx')]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /2048 examples (input_ids \[12\], attention_mask \[12\]|attention_mask \[12\], input_ids \[12\]), 3 classes/);
    const trained = Number(ACCURACY.exec(r.out)![1]);
    assert.ok(trained > 95, `token accuracy after 8 epochs on the swapped labels: ${trained}%`);
    // The saved file remembers its sizes and its loss; evaluate counts the same tokens.
    const e = await runMain(['evaluate', t.path('tagged.onnx'), '--dataset', t.path('tagged'), '--ignore-class', '-100', '--json']);
    assert.equal(e.code, 0, e.err);
    const result = JSON.parse(e.out) as { accuracy: number; confusion: number[][] };
    assert.equal((100 * result.accuracy).toFixed(2), trained.toFixed(2));
    const labelled = Array.from(test.y.data).filter((l) => l !== -100).length;
    assert.equal(result.confusion.flat().reduce((a, b) => a + b, 0), labelled);
    const saved = await OnnxModel.load(t.path('tagged.onnx'));
    assert.deepEqual(JSON.parse(saved.description.metadata['kiln.training']!).loss, { name: 'sparseCategoricalCrossentropy', config: { fromLogits: true, ignoreClass: -100 } });
    // The saved loss's ignored label is the default; the other commands count the labelled tokens (negative labels are no class).
    const recorded = await runMain(['evaluate', t.path('tagged.onnx'), '--dataset', t.path('tagged'), '--json']);
    assert.equal(recorded.code, 0, recorded.err);
    assert.equal((JSON.parse(recorded.out) as { accuracy: number }).accuracy, result.accuracy);
    const bench = await runMain(['bench', t.path('tagged.onnx'), '--dataset', t.path('tagged'), '--json']);
    assert.equal(bench.code, 0, bench.err);
    assert.equal((JSON.parse(bench.out) as { models: { accuracy: number }[] }).models[0]!.accuracy, result.accuracy);
    const quantized = await runMain(['quantize', t.path('tagged.onnx'), '--mode', 'dynamic', '--dataset', t.path('tagged'), '--out', t.path('tagged.int8.onnx')]);
    assert.equal(quantized.code, 0, quantized.err);
    assert.match(quantized.out, new RegExp(`Accuracy +${(100 * result.accuracy).toFixed(2)}% +\\d+\\.\\d+%`));
    // Structured pruning fine-tunes with the saved loss, padding's -100 ignored.
    const pruned = await runMain(['prune', t.path('tagged.onnx'), '--structured', '--mlp', '0.5', '--dataset', t.path('tagged'), '--epochs', '1', '--out', t.path('tagged-pruned.onnx')]);
    assert.equal(pruned.code, 0, pruned.err);
    assert.match(pruned.out, new RegExp(`Test accuracy +${(100 * result.accuracy).toFixed(2)}% +\\d+\\.\\d+%`));
    // Distilled into the exported tagger: soft targets per token; the ignored label is the teacher's saved one.
    const distilled = await runMain(['distill', '--teacher', t.path('tagged.onnx'), '--student', model, '--dataset', t.path('tagged'), '--epochs', '2', '--out', t.path('student.onnx')]);
    assert.equal(distilled.code, 0, distilled.err);
    assert.match(distilled.out, new RegExp(`test accuracy +${(100 * result.accuracy).toFixed(2)}% +\\d+\\.\\d+%`));
    const student = await OnnxModel.load(t.path('student.onnx'));
    assert.deepEqual(JSON.parse(student.description.metadata['kiln.training']!).loss, { name: 'sparseCategoricalCrossentropy', config: { fromLogits: true, ignoreClass: -100 } });
  });

  it("fine-tunes PyTorch's segmentation export (logits [N, 11, 28, 28]) on a label per pixel, classes on axis 1 as the labels [N, 28, 28] imply", async () => {
    // segnet.onnx: a U-Net whose decoder is ConvTranspose. Pixels above 0.5 are class 3, the rest 0.
    const images = (n: number, seed: number) => {
      const x = Float32Array.from({ length: n * 784 }, (_, i) => ((i * 7919 + seed * 104729) % 1009) / 1009);
      return { x: { '': new Tensor(x, [n, 28, 28, 1], 'float32') }, y: new Tensor(BigInt64Array.from(x, (v) => (v > 0.5 ? 3n : 0n)), [n, 28, 28], 'int64') };
    };
    await write('pixels', { train: images(256, 1), test: images(64, 2) });
    const model = `${EXPORTED_DIR}/segnet.onnx`;
    const r = await runMain(['train', '--model', model, '--dataset', t.path('pixels'), '--epochs', '6', '--lr', '0.003', '--validation-split', '0', '--batch-size', '32', '--out', t.path('segnet.onnx')]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /256 examples \[28,28,1\], 4 classes/);
    const trained = Number(ACCURACY.exec(r.out)![1]);
    assert.ok(trained > 95, `pixel accuracy after 6 epochs: ${trained}%`);
    const saved = await OnnxModel.load(t.path('segnet.onnx'));
    assert.deepEqual(JSON.parse(saved.description.metadata['kiln.training']!).loss, { name: 'sparseCategoricalCrossentropy', config: { fromLogits: true, axis: 1 } });
    // Every pixel counted, by the saved loss's axis.
    const e = await runMain(['evaluate', t.path('segnet.onnx'), '--dataset', t.path('pixels'), '--json']);
    assert.equal(e.code, 0, e.err);
    const result = JSON.parse(e.out) as { accuracy: number; confusion: number[][] };
    assert.equal((100 * result.accuracy).toFixed(2), trained.toFixed(2));
    assert.equal(result.confusion.flat().reduce((a, b) => a + b, 0), 64 * 784);
    // The file as exported (no saved loss): the axis from the labels.
    const exported = await runMain(['evaluate', model, '--dataset', t.path('pixels'), '--json']);
    assert.equal(exported.code, 0, exported.err);
    assert.equal((JSON.parse(exported.out) as { confusion: number[][] }).confusion.flat().reduce((a, b) => a + b, 0), 64 * 784);
    // Without labels (a training package for later), the classes are on the axis whose grid is the input's.
    const exportedTrainer = await runMain(['export-trainer', model, '--out', t.path('segnet-trainer')]);
    assert.equal(exportedTrainer.code, 0, exportedTrainer.err);
    assert.deepEqual((JSON.parse(readFileSync(t.path('segnet-trainer/manifest.json'), 'utf8')) as { loss: unknown }).loss, { name: 'sparseCategoricalCrossentropy', config: { fromLogits: true, axis: 1 } });
    // Pruning fine-tunes with the axis the labels imply, the exported file's too; structured pruning
    // shrinks the decoder's ConvTranspose channels with the encoder's they are concatenated with.
    const pruned = await runMain(['prune', model, '--sparsity', '0.5', '--dataset', t.path('pixels'), '--epochs', '1', '--out', t.path('segnet-pruned.onnx')]);
    assert.equal(pruned.code, 0, pruned.err);
    const taylor = await runMain(['prune', model, '--structured', '--ratio', '0.25', '--criterion', 'taylor', '--dataset', t.path('pixels'), '--epochs', '1', '--out', t.path('segnet-taylor.onnx')]);
    assert.equal(taylor.code, 0, taylor.err);
    const structured = await runMain(['prune', t.path('segnet.onnx'), '--structured', '--ratio', '0.5', '--dataset', t.path('pixels'), '--epochs', '1', '--out', t.path('segnet-small.onnx')]);
    assert.equal(structured.code, 0, structured.err);
    assert.match(structured.out, /\/up1\/ConvTranspose +channels +16 → 8 +pruned/);
    assert.match(structured.out, new RegExp(`Test accuracy +${(100 * result.accuracy).toFixed(2)}% +\\d+\\.\\d+%`));
    // Static int8 agrees pixel by pixel (classes on axis 1); bench counts every pixel as evaluate does.
    const quantized = await runMain(['quantize', t.path('segnet.onnx'), '--mode', 'static', '--dataset', t.path('pixels'), '--no-suggest', '--json', '--out', t.path('segnet.int8.onnx')]);
    assert.equal(quantized.code, 0, quantized.err);
    const evaluation = (JSON.parse(quantized.out) as { evaluation: { before: { accuracy: number }; agreement: number } }).evaluation;
    assert.equal(evaluation.before.accuracy, result.accuracy);
    assert.ok(evaluation.agreement > 0.95, `pixels whose class int8 keeps: ${evaluation.agreement}`);
    const bench = await runMain(['bench', t.path('segnet.onnx'), '--dataset', t.path('pixels'), '--json', '--repetitions', '1', '--latency-runs', '3', '--warmup', '1']);
    assert.equal(bench.code, 0, bench.err);
    assert.equal((JSON.parse(bench.out) as { models: { accuracy: number }[] }).models[0]!.accuracy, result.accuracy);
    // Distilled into the exported file: soft targets per pixel, over the classes of axis 1.
    const distilled = await runMain(['distill', '--teacher', t.path('segnet.onnx'), '--student', model, '--dataset', t.path('pixels'), '--epochs', '8', '--lr', '0.003', '--batch-size', '32', '--validation-split', '0', '--alpha', '0.5', '--temperature', '2', '--out', t.path('segnet-student.onnx')]);
    assert.equal(distilled.code, 0, distilled.err);
    const [, teacherAccuracy, studentAccuracy] = /test accuracy +(\d+\.\d+)% +(\d+\.\d+)%/.exec(distilled.out)!.map(Number);
    assert.equal(teacherAccuracy!.toFixed(2), (100 * result.accuracy).toFixed(2));
    assert.ok(studentAccuracy! > 90, `the student's pixel accuracy: ${studentAccuracy}%`);
  });

  it('a --dataset that names nothing is said to name nothing, before the inputs are counted', async () => {
    for (const command of [['prune', '--sparsity', '0.5'], ['quantize', '--mode', 'static'], ['bench']]) {
      const r = await runMain([command[0]!, `${EXPORTED_DIR}/textmask.onnx`, ...command.slice(1), '--dataset', t.path('no-such-folder')]);
      assert.notEqual(r.code, 0);
      assert.match(r.err, /is neither a known name/, `${command[0]}: ${r.err}`);
    }
  });

  it('refuses a malformed directory, one array for a model of two inputs, and misnamed inputs, writing nothing', async () => {
    const fails = async (dataset: string, model: string, ...fragments: (string | RegExp)[]) => {
      const out = t.path(`never-${Math.random().toString(36).slice(2)}.onnx`);
      const r = await runMain(['train', '--model', model, '--dataset', dataset, '--epochs', '1', '--out', out]);
      assert.notEqual(r.code, 0, r.out);
      for (const f of fragments) assert.ok(typeof f === 'string' ? r.err.includes(f) : f.test(r.err), `stderr "${r.err}" should mention ${String(f)}`);
      assert.ok(!existsSync(out), 'nothing written');
    };
    const masked = `${EXPORTED_DIR}/textmask.onnx`;
    const small = paddedTokenTask(16, 25, false);
    await write('no-y-test', { train: { x: small.x, y: small.y }, test: { x: small.x, y: small.y } });
    await rm(t.path('no-y-test/y_test.npy'));
    await fails(t.path('no-y-test'), masked, 'FILE_NOT_FOUND', 'y_test.npy is missing');
    await write('both', { train: { x: { ...small.x, '': small.x.input_ids }, y: small.y }, test: { x: small.x, y: small.y } });
    await fails(t.path('both'), masked, 'INVALID_DATA', 'give x_train.npy or one x_train.<input>.npy per input, not both');
    await write('rows', { train: { x: { ...small.x, attention_mask: small.x.attention_mask.slice(0, 8) }, y: small.y }, test: { x: small.x, y: small.y } });
    await fails(t.path('rows'), masked, 'INVALID_DATA', 'x_train.attention_mask.npy has 8 examples', '16 labels');
    await write('other-names', { train: { x: small.x, y: small.y }, test: { x: { input_ids: small.x.input_ids }, y: small.y } });
    await fails(t.path('other-names'), masked, 'INVALID_DATA', 'the splits hold other inputs: train attention_mask, input_ids, test input_ids');
    await write('half-label', { train: { x: small.x, y: new Tensor(Float32Array.from({ length: 16 }, (_, i) => (i === 3 ? 0.5 : 1)), [16], 'float32') }, test: { x: small.x, y: small.y } });
    await fails(t.path('half-label'), masked, 'INVALID_DATA', 'label 3 is 0.5');
    await fails(t.path('ids'), masked, "takes 2 inputs (input_ids, attention_mask) and --dataset gives one array", 'x_train.input_ids.npy, x_train.attention_mask.npy');
    await write('misnamed', { train: { x: { ids: small.x.input_ids, attention_mask: small.x.attention_mask }, y: small.y }, test: { x: { ids: small.x.input_ids, attention_mask: small.x.attention_mask }, y: small.y } });
    await fails(t.path('misnamed'), masked, "must hold a tensor for each of the model's inputs (input_ids, attention_mask); missing input_ids; the model has no input ids");
  });
});
