/**
 * optimizeModel and `kiln optimize` on a small trained model (embedded data, tiny budgets): the front
 * is non-dominated, the chosen model is the best within the budget and what the file holds, and the
 * bad inputs are refused by name.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { optimizeModel, type OptimizeResult } from '../../src/automl/optimize.js';
import { dominates } from '../../src/automl/pareto.js';
import { embedded } from '../../src/data/embedded.js';
import { tutorialCnn } from '../../src/layers/index.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { sparseCategoricalCrossentropy } from '../../src/train/losses.js';
import { evaluateClassifier } from '../../src/train/metrics.js';
import { sequential, type Sequential } from '../../src/train/sequential.js';
import { recheckWarning } from '../../src/cli/optimize.js';
import { runMain } from '../cli/helpers.js';
import { kilnError, tempDir } from '../train/helpers.js';

const FAST = { measurement: { repetitions: 1, latencyRuns: 5, throughputBatches: 1 }, fineTuneEpochs: 1, distillEpochs: 1 };

describe('optimize', () => {
  let model: Sequential;
  let train: { x: import('../../src/tensor.js').Tensor; y: import('../../src/tensor.js').Tensor };
  let evaluation: typeof train;
  let result: OptimizeResult;

  before(async () => {
    const data = await embedded();
    train = { x: data.train.images.slice(0, 1200), y: data.train.labels.slice(0, 1200) };
    evaluation = { x: data.test.images.slice(0, 400), y: data.test.labels.slice(0, 400) };
    model = sequential({ layers: tutorialCnn([28, 28, 1], 10, { filters: 8, units: 32 }), seed: 1 });
    model.compile({ optimizer: 'adam', loss: sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    await model.fit(train.x, train.y, { epochs: 2, batchSize: 32, verbose: 0 });
    result = await optimizeModel(model, { train, evaluation, objective: 'size', maxAccuracyDrop: 100, pruneRatios: [0.5], studentRatios: [0.5], sparsities: [0.8], ...FAST });
  });

  it('makes every candidate and keeps a front no other model dominates', () => {
    assert.equal(result.candidates.length + result.skipped.length, 3 * 2 * 3 - 1);
    const all = [result.original, ...result.candidates];
    for (const f of result.front) assert.ok(!all.some((o) => dominates(o, f)), `${f.name} is dominated`);
    for (const c of all) if (!result.front.includes(c)) assert.ok(all.some((o) => dominates(o, c)), `${c.name} is off the front but nothing dominates it`);
  });

  it('chooses the smallest candidate within the budget, and the chosen bytes score the reported accuracy', async () => {
    const within = result.candidates.filter((c) => c.withinBudget);
    assert.ok(result.chosen);
    assert.equal(result.chosen.sizeBytes, Math.min(...within.map((c) => c.sizeBytes)));
    assert.ok(result.chosen.compression > 4, `compression ${result.chosen.compression}`);
    const chosen = new OnnxModel(result.chosen.bytes, (await import('../../src/model/read-model.js')).parseOnnx(result.chosen.bytes));
    const accuracy = evaluateClassifier(evaluation.y, (await chosen.predict(evaluation.x)) as never).accuracy;
    assert.equal(accuracy, result.chosen.accuracy);
  });

  it('holds the accuracy budget: nothing below it is chosen', async () => {
    const strict = await optimizeModel(model, { train, evaluation, objective: 'latency', maxAccuracyDrop: 0, pruneRatios: [0.5], studentRatios: [], sparsities: [], ...FAST });
    for (const c of strict.candidates) assert.equal(c.withinBudget, c.accuracy >= strict.original.accuracy);
    if (strict.chosen) assert.ok(strict.chosen.accuracy >= strict.original.accuracy);
  });

  it('refuses a time budget too small for one fine-tuned candidate, and what is not a trainable model', async () => {
    await assert.rejects(optimizeModel(model, { train, evaluation, objective: 'size', timeBudgetMs: 1 }), kilnError('INVALID_ARGUMENT', 'too small for one candidate'));
    await assert.rejects(optimizeModel({} as Sequential, { train, evaluation, objective: 'size' }), kilnError('NOT_TRAINABLE', 'needs a trainable model'));
    await assert.rejects(optimizeModel(model, { train, evaluation, objective: 'speed' as never }), kilnError('INVALID_ARGUMENT', "'latency' or 'size'"));
  });

  it('kiln optimize writes the front, the chosen model, a summary and the report, and names the chosen model', async () => {
    const t = await tempDir();
    try {
      await model.save(t.path('model.onnx'));
      const r = await runMain(['optimize', t.path('model.onnx'), '--objective', 'size', '--max-accuracy-drop', '100', '--prune-ratios', '0.5', '--student-ratios', 'none', '--sparsities', 'none', '--limit', '600', '--out', t.path('out')]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Chosen: (\S+) — accuracy/);
      const summary = JSON.parse(readFileSync(t.path('out/optimize.json'), 'utf8')) as { chosen: string; front: string[] };
      assert.ok(existsSync(t.path('out/chosen.onnx')));
      for (const name of summary.front) if (name !== 'original') assert.ok(existsSync(t.path(`out/${name}.onnx`)), name);
      const html = readFileSync(t.path('out/report.html'), 'utf8');
      assert.equal((html.match(/<svg/g) ?? []).length, 2);
      assert.ok(html.includes(`<strong>${summary.chosen}</strong>`));
      const bad = await runMain(['optimize', t.path('model.onnx'), '--objective', 'speed']);
      assert.match(bad.err, /--objective must be latency or size/);
    } finally {
      await t.remove();
    }
  });

  it('warns when the latency choice, timed again, was not faster than the original', () => {
    const chosen = { ...result.candidates[0]!, name: 'pruned50', speedup64: 1.17 };
    const check = { originalMs1: 1, chosenMs1: 1, originalMs64: 1.7, chosenMs64: 1.93, speedup1: 1, speedup64: 1.7 / 1.93, repetitions: 7 };
    assert.match(recheckWarning({ objective: 'latency', chosen, check }) ?? '', /timed again, pruned50 was not faster .*\(0\.88×\): the search's 1\.17×/);
    assert.equal(recheckWarning({ objective: 'latency', chosen, check: { ...check, speedup64: 1.3 } }), undefined);
    assert.equal(recheckWarning({ objective: 'size', chosen, check }), undefined);
  });
});
