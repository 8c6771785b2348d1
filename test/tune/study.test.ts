/**
 * tune() end to end on a problem small enough to train dozens of models in seconds (three Gaussian
 * blobs, a small dense net): determinism, the best model saved, ASHA stopping trials, a NaN trial
 * recorded as failed while the search goes on, resuming from the journal without repeating a trial,
 * parallel trials, and the bad inputs the issue lists.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { dense } from '../../src/layers/index.js';
import { loadModel } from '../../src/train/load.js';
import { sparseCategoricalCrossentropy } from '../../src/train/losses.js';
import { evaluateClassifier } from '../../src/train/metrics.js';
import { adam, sgd } from '../../src/train/optimizers.js';
import { sequential } from '../../src/train/sequential.js';
import type { HyperParameters } from '../../src/tune/hyper-parameters.js';
import type { Sampler } from '../../src/tune/samplers/sampler.js';
import { choice, int, logUniform, type Params } from '../../src/tune/space.js';
import { tune, type TuneOptions } from '../../src/tune/study.js';
import { blobs, kilnError, tempDir } from '../train/helpers.js';

const data = blobs(240);

function build(hp: HyperParameters) {
  const model = sequential({ seed: hp.seed, layers: [dense({ units: hp.numberOr('units', 8), activation: 'relu', inputShape: [2] }), dense({ units: 3 })] });
  const lr = hp.number('lr');
  model.compile({ optimizer: hp.stringOr('optimizer', 'adam') === 'sgd' ? sgd({ learningRate: lr }) : adam({ learningRate: lr }), loss: sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  return { model, batchSize: 16 };
}

const base = (over: Partial<TuneOptions> = {}): TuneOptions => ({ space: { lr: logUniform(1e-3, 3e-1), units: int(2, 16) }, build, x: data.x, y: data.y, epochs: 2, maxTrials: 4, seed: 3, ...over });

/** Proposes the given trials in order (then repeats the last). */
function scripted(trials: Params[]): Sampler {
  let next = 0;
  return { name: 'scripted', sample: () => trials[Math.min(next++, trials.length - 1)]! };
}

describe('tune', () => {
  it('is deterministic for a seed, and saves the best complete trial, whose model scores what the study recorded', async () => {
    const t = await tempDir();
    try {
      const a = await tune(base({ out: t.path('best.onnx') }));
      const b = await tune(base());
      assert.deepEqual(a.trials.map((x) => [x.params, x.value]), b.trials.map((x) => [x.params, x.value]));
      assert.equal(a.trials.length, 4);
      assert.ok(a.best);
      const values = a.trials.filter((x) => x.state === 'complete').map((x) => x.value!);
      assert.equal(a.best.value, Math.max(...values));
      assert.equal(a.bestModelFile, t.path('best.onnx'));
      // The saved file is the best trial's model: its accuracy on the validation split is the recorded one.
      const saved = await loadModel(t.path('best.onnx'));
      const vx = data.x.slice(216, 240);
      const vy = data.y.slice(216, 240);
      const accuracy = evaluateClassifier(vy, await saved.predict(vx)).accuracy;
      assert.ok(Math.abs(accuracy - a.best.metrics.val_accuracy!) < 1e-6, `${accuracy} vs ${a.best.metrics.val_accuracy}`);
      assert.equal(a.importance.length, 2);
    } finally {
      await t.remove();
    }
  });

  it('records a diverging trial as failed and goes on', async () => {
    const sampler = scripted([{ lr: 0.05 }, { lr: 1e30 }, { lr: 0.05 }]);
    const r = await tune(base({ space: { lr: choice([0.05, 1e30]) }, sampler, maxTrials: 3 }));
    assert.deepEqual(r.trials.map((x) => x.state), ['complete', 'failed', 'complete']);
    assert.match(r.trials[1]!.error!, /NaN|infinite/);
    assert.equal(r.trials[1]!.value, undefined);
  });

  it('stops trials early with ASHA: a trial behind the best at a rung is pruned there', async () => {
    // Trial 0 learns (lr 0.1), trial 1 barely moves (lr 1e-4): at the rung (1 epoch) 1 is behind and stops.
    const sampler = scripted([{ lr: 0.1, optimizer: 'adam' }, { lr: 1e-4, optimizer: 'sgd' }]);
    const r = await tune(base({ space: { lr: choice([0.1, 1e-4]), optimizer: choice(['adam', 'sgd']) }, sampler, maxTrials: 2, epochs: 3, earlyStopping: { minEpochs: 1, reductionFactor: 3 } }));
    assert.deepEqual(r.trials.map((x) => [x.state, x.epochs]), [['complete', 3], ['pruned', 1]]);
    assert.deepEqual(r.trials[0]!.curve.map((c) => c.epochs), [1, 2, 3]);
  });

  it('resumes from its journal: finished trials are kept, not repeated, and the study goes on to maxTrials', async () => {
    const t = await tempDir();
    try {
      const journal = t.path('study.jsonl');
      const first = await tune(base({ journal, maxTrials: 2 }));
      const second = await tune(base({ journal, maxTrials: 4 }));
      assert.deepEqual(second.resumed, { finished: 2, rerun: [] });
      assert.deepEqual(second.trials.map((x) => [x.id, x.fromJournal]), [[0, true], [1, true], [2, false], [3, false]]);
      assert.deepEqual(second.trials.slice(0, 2).map((x) => x.value), first.trials.map((x) => x.value));
      // The same four trials as one uninterrupted run.
      const straight = await tune(base());
      assert.deepEqual(second.trials.map((x) => x.params), straight.trials.map((x) => x.params));
      const lines = (await readFile(journal, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; trial?: number });
      assert.deepEqual(lines.filter((l) => l.type === 'end').map((l) => l.trial), [0, 1, 2, 3]);
    } finally {
      await t.remove();
    }
  });

  it('runs an interrupted trial again with the same parameters', async () => {
    const t = await tempDir();
    try {
      const journal = t.path('study.jsonl');
      await tune(base({ journal, maxTrials: 1 }));
      // As a kill mid-trial leaves it: trial 1 started, never ended.
      await writeFile(journal, `${await readFile(journal, 'utf8')}${JSON.stringify({ type: 'start', trial: 1, params: { lr: 0.02, units: 5 }, at: '' })}\n`);
      const r = await tune(base({ journal, maxTrials: 2 }));
      assert.deepEqual(r.resumed, { finished: 1, rerun: [1] });
      assert.deepEqual(r.trials[1]!.params, { lr: 0.02, units: 5 });
      assert.equal(r.trials[1]!.state, 'complete');
    } finally {
      await t.remove();
    }
  });

  it('runs trials in parallel, one runtime worker each', async () => {
    let active = 0;
    let most = 0;
    const counted = (hp: HyperParameters) => {
      most = Math.max(most, ++active);
      return build(hp);
    };
    const r = await tune(base({ parallel: 2, maxTrials: 4, build: counted, onTrialEnd: () => active-- }));
    assert.equal(most, 2, 'two trials were under way at once');
    assert.equal(r.trials.length, 4);
    assert.ok(r.trials.every((x) => x.state === 'complete'));
  });

  it('weighs cost into the objective: accuracy − latencyWeight · batch-1 ms − sizeWeight · MiB', async () => {
    const r = await tune(base({ maxTrials: 2, objective: { metric: 'val_accuracy', latencyWeight: 0.01, sizeWeight: 1e6 } }));
    for (const t of r.trials) {
      assert.ok(t.cost!.latencyMs! > 0 && t.cost!.sizeBytes! > 0);
      const want = t.metrics.val_accuracy! - 0.01 * t.cost!.latencyMs! - (1e6 * t.cost!.sizeBytes!) / 2 ** 20;
      assert.ok(Math.abs(t.value! - want) < 1e-9, `${t.value} vs ${want}`);
    }
    // The larger model pays more: with this weight, size decides the ranking.
    const [a, b] = r.trials as [(typeof r.trials)[0], (typeof r.trials)[0]];
    if (a.cost!.sizeBytes! !== b.cost!.sizeBytes!) assert.equal(r.best!.id, a.cost!.sizeBytes! < b.cost!.sizeBytes! ? a.id : b.id);
  });

  it('refuses a parameter the builder never reads, naming it', async () => {
    await assert.rejects(tune(base({ space: { lr: logUniform(1e-3, 1e-1), units: int(2, 16), dropout: choice([0, 0.5]) } })), kilnError('INVALID_ARGUMENT', "never read 'dropout'"));
  });

  it('refuses a journal written for another search space', async () => {
    const t = await tempDir();
    try {
      const journal = t.path('study.jsonl');
      await tune(base({ journal, maxTrials: 1 }));
      await assert.rejects(tune(base({ journal, space: { lr: logUniform(1e-3, 1e-1), units: int(2, 32) } })), kilnError('INVALID_ARGUMENT', 'written for another study', 'search space'));
    } finally {
      await t.remove();
    }
  });

  it('refuses budgets too small for one trial and an empty space', async () => {
    await assert.rejects(tune(base({ maxTrials: 0 })), kilnError('INVALID_ARGUMENT', 'at least one trial'));
    await assert.rejects(tune(base({ epochs: 1, earlyStopping: 'asha' })), kilnError('INVALID_ARGUMENT', 'too small for early stopping'));
    await assert.rejects(tune(base({ timeBudgetMs: 0 })), kilnError('INVALID_ARGUMENT', 'time budget must be positive'));
    await assert.rejects(tune(base({ space: {} })), kilnError('INVALID_ARGUMENT', 'search space is empty'));
  });
});
