/**
 * optimizeModel and `kiln optimize` on an imported graph: the PyTorch-exported ResNet fixture
 * (channels-first input `input`, output `logits`) pruned through its channel groups, sparsified and
 * quantized, every candidate keeping the file's input and output; scored in the file's own layout; a
 * stage the graph cannot take reported and skipped; students only when asked for.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { optimizeModel, type OptimizeResult } from '../../src/automl/optimize.js';
import { embedded } from '../../src/data/embedded.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { parseOnnx } from '../../src/model/read-model.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { runMain } from '../cli/helpers.js';
import { tempDir } from '../train/helpers.js';

const RESNET = new URL('../../../test/fixtures/exported/resnet.onnx', import.meta.url).pathname;
const FAST = { measurement: { repetitions: 1, latencyRuns: 5, throughputBatches: 1 }, fineTuneEpochs: 1, distillEpochs: 1 };

/** [N, H, W, C] → [N, C, H, W], written out here rather than through Kiln's input adapter. */
function channelsFirst(x: Tensor): Tensor {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const src = x.data as Float32Array;
  const out = new Float32Array(src.length);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) out[((i * c + ch) * h * w) + p] = src[(i * h * w + p) * c + ch]!;
  return new Tensor(out, [n, c, h, w], 'float32');
}

const described = (bytes: Uint8Array) => new OnnxModel(bytes, parseOnnx(bytes));

describe('optimize an imported graph', () => {
  let model: GraphModel;
  let train: { x: Tensor; y: Tensor };
  let evaluation: { x: Tensor; y: Tensor };
  let result: OptimizeResult;

  before(async () => {
    const data = await embedded();
    train = { x: data.train.images.slice(0, 600), y: data.train.labels.slice(0, 600) };
    evaluation = { x: data.test.images.slice(0, 300), y: data.test.labels.slice(0, 300) };
    model = await GraphModel.load(RESNET);
    result = await optimizeModel(model, { train, evaluation, objective: 'size', maxAccuracyDrop: 100, pruneRatios: [0.5, 0.99], sparsities: [0.5], quantizations: ['int8'], ...FAST });
  });

  it('prunes, sparsifies and quantizes it, every candidate keeping the input and output the file has', () => {
    assert.deepEqual(result.candidates.map((c) => c.name).sort(), ['float-int8', 'float-sparse50', 'float-sparse50-int8', 'pruned50', 'pruned50-int8', 'pruned50-sparse50', 'pruned50-sparse50-int8'].sort());
    const original = described(result.original.bytes);
    for (const c of result.candidates) {
      const m = described(c.bytes);
      assert.deepEqual(m.inputs.map((i) => [i.name, i.shape?.slice(1)]), original.inputs.map((i) => [i.name, i.shape?.slice(1)]), c.name);
      assert.deepEqual(m.outputs.map((o) => o.name), original.outputs.map((o) => o.name), c.name);
    }
    assert.deepEqual(original.inputs[0]!.shape?.slice(1), [1, 28, 28]);
    const pruned = result.candidates.find((c) => c.name === 'pruned50')!;
    assert.ok(pruned.parameters < 0.4 * result.original.parameters, `${pruned.parameters} of ${result.original.parameters}`);
  });

  it('scores every candidate on the data laid out as the file takes it (channels first)', async () => {
    const x = channelsFirst(evaluation.x);
    const labels = evaluation.y.data as Int32Array;
    for (const c of [result.original, ...result.candidates]) {
      const logits = (await described(c.bytes).predict(x)).data as Float32Array;
      let right = 0;
      for (let i = 0; i < labels.length; i++) {
        const row = logits.subarray(i * 10, (i + 1) * 10);
        if (row.indexOf(Math.max(...row)) === labels[i]) right++;
      }
      assert.equal(c.accuracy, right / labels.length, c.name);
    }
  });

  it('reports a stage the graph cannot take with the reason, and makes the rest', () => {
    const pruned99 = result.skipped.filter((s) => s.name.startsWith('pruned99'));
    assert.equal(pruned99.length, 4);
    for (const s of pruned99) assert.match(s.reason, /pruned99 could not be made: .*would leave none/);
  });

  it('leaves distilled students out unless asked for them, then makes them', async () => {
    assert.equal(result.notes.length, 1);
    assert.match(result.notes[0]!, /students not tried.*not a drop-in replacement/);
    const students = await optimizeModel(model, { train, evaluation, objective: 'size', maxAccuracyDrop: 100, pruneRatios: [], sparsities: [], quantizations: [], studentRatios: [0.25], ...FAST });
    assert.deepEqual(students.notes, []);
    assert.deepEqual(students.candidates.map((c) => c.name), ['student25']);
    const student = students.candidates[0]!;
    assert.deepEqual(described(student.bytes).inputs[0]!.shape?.slice(1), [28, 28, 1]);
    assert.ok(student.parameters <= 0.25 * model.countParams().total, `${student.parameters}`);
  });

  it('kiln optimize takes the exported file, and refuses a model it cannot train', async () => {
    const t = await tempDir();
    try {
      const r = await runMain(['optimize', RESNET, '--objective', 'size', '--max-accuracy-drop', '100', '--prune-ratios', '0.5', '--sparsities', 'none', '--limit', '300', '--fine-tune-epochs', '1', '--out', t.path('out')]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /note: distilled students not tried/);
      assert.match(r.out, /Chosen: (\S+) — accuracy/);
      const summary = JSON.parse(readFileSync(t.path('out/optimize.json'), 'utf8')) as { candidates: { name: string }[]; notes: string[] };
      assert.deepEqual(summary.candidates.map((c) => c.name).sort(), ['float-fp16', 'float-int8', 'original', 'pruned50', 'pruned50-fp16', 'pruned50-int8'].sort());
      assert.equal(summary.notes.length, 1);
      assert.equal(described(readFileSync(t.path('out/chosen.onnx'))).inputs[0]!.name, 'input');
      writeFileSync(t.path('int8.onnx'), result.candidates.find((c) => c.name === 'float-int8')!.bytes);
      const quantized = await runMain(['optimize', t.path('int8.onnx'), '--out', t.path('out2')]);
      assert.notEqual(quantized.code, 0);
      assert.match(quantized.err, /NOT_TRAINABLE.*cannot be optimized: it is quantized/);
    } finally {
      await t.remove();
    }
  });
});
