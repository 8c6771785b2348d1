/**
 * ASHA inside tune() at sub-epoch rungs, on a model whose validation accuracy is scripted (a test
 * double counting the rows fit() trains and the evaluations asked of it), so every rung boundary,
 * every promotion and every replayed journal line can be worked out by hand:
 *   216 training rows (240, the last 10% held out), batch 16 → 14 steps per epoch;
 *   epochs 2, minEpochs 0.25, η 3 → rungs at 0.25 and 0.75 epoch = steps round(3.5) = 4 and
 *   round(10.5) = 11; evaluation points 0.25, 0.75, 1, 2 epochs = steps 4, 11, 14, 28.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { Tensor } from '../../src/tensor.js';
import type { TrainableModel } from '../../src/train/model.js';
import type { HyperParameters } from '../../src/tune/hyper-parameters.js';
import type { Sampler } from '../../src/tune/samplers/sampler.js';
import { choice } from '../../src/tune/space.js';
import { tune, type TuneOptions } from '../../src/tune/study.js';
import { tempDir } from '../train/helpers.js';

const N = 240;
const x = new Tensor(Float32Array.from({ length: N }, (_, i) => i), [N, 1], 'float32');
const y = new Tensor(new Int32Array(N), [N], 'int32');
const BATCH = 16;

/** Each trial's quality q: its validation accuracy after s steps is q + s/1000, so every trial gains alike and rungs rank by q. */
const QUALITY = [0.5, 0.7, 0.6, 0.9, 0.4, 0.8];

/** A model that trains nothing: it counts the rows and steps fit() is given, and evaluates to q + steps/1000. */
class ScriptedModel {
  steps = 0;
  readonly fits: number[] = [];
  readonly evaluatedAt: number[] = [];
  constructor(private readonly q: number) {}
  async fit(xs: Tensor, _ys: Tensor, args: { batchSize: number }): Promise<void> {
    this.fits.push(xs.shape[0]!);
    this.steps += Math.ceil(xs.shape[0]! / args.batchSize);
  }
  async evaluate(): Promise<{ loss: number; accuracy: number }> {
    this.evaluatedAt.push(this.steps);
    const accuracy = this.q + this.steps / 1000;
    return { loss: 1 - accuracy, accuracy };
  }
  trainingLayout(): [] {
    return [];
  }
  toOnnx(): Uint8Array {
    return new Uint8Array(8);
  }
  countParams(): { total: number } {
    return { total: 1 };
  }
  dispose(): void {}
}

/** Proposes trial i's quality as the i-th trial (its id: no trial fails here, so every earlier one is observed). */
const byTrial: Sampler = { name: 'by-trial', sample: (_space, observed) => ({ q: QUALITY[observed.length]! }) };

function study(over: Partial<TuneOptions> = {}) {
  const models = new Map<number, ScriptedModel>();
  const options: TuneOptions = {
    space: { q: choice(QUALITY) },
    build: (hp: HyperParameters) => {
      const model = new ScriptedModel(hp.number('q'));
      models.set(hp.trial, model);
      return { model: model as unknown as TrainableModel, batchSize: BATCH };
    },
    x,
    y,
    epochs: 2,
    maxTrials: QUALITY.length,
    sampler: byTrial,
    earlyStopping: { minEpochs: 0.25, reductionFactor: 3 },
    seed: 5,
    ...over,
  };
  return { models, run: () => tune(options) };
}

/**
 * Optuna's rule by hand (keep the best max(1, ⌊n/3⌋) of the n values at a rung, the trial's own included):
 *   trial 0 (q 0.5): first at both rungs → complete.
 *   trial 1 (0.7): best of 2 at ¼ (keep 1), best of 2 at ¾ → complete.
 *   trial 2 (0.6): ¼ holds 0.5 0.7 0.6, keep 1 (0.7) → pruned after 0.25 epoch.
 *   trial 3 (0.9): best of 4 at ¼, best of 3 at ¾ → complete.
 *   trial 4 (0.4): ¼ holds 5, keep 1 (0.9) → pruned after 0.25.
 *   trial 5 (0.8): ¼ holds 6, keep 2 (0.9, 0.8) → goes on; ¾ holds 0.5 0.7 0.9 0.8, keep 1 (0.9) → pruned after 0.75.
 */
const EXPECTED: [string, number][] = [
  ['complete', 2],
  ['complete', 2],
  ['pruned', 0.25],
  ['complete', 2],
  ['pruned', 0.25],
  ['pruned', 0.75],
];

describe('ASHA at sub-epoch rungs', () => {
  it('evaluates at the rungs inside the first epoch, after round(rung · steps per epoch) steps, and trains on from there', async () => {
    const { models, run } = study();
    const r = await run();
    const complete = models.get(0)!;
    // Steps 4 (¼ epoch), 11 (¾), 14 (1 epoch), 28 (2 epochs): one evaluation each, no retraining in between.
    assert.deepEqual(complete.evaluatedAt, [4, 11, 14, 28]);
    // Rows per segment: 4 batches of 16; 7 more; the epoch's last 3 (two of 16, one of 8); the whole second epoch.
    assert.deepEqual(complete.fits, [64, 112, 40, 216]);
    assert.deepEqual(r.trials[0]!.curve, [
      { epochs: 0.25, value: 0.5 + 0.004 },
      { epochs: 0.75, value: 0.5 + 0.011 },
      { epochs: 1, value: 0.5 + 0.014 },
      { epochs: 2, value: 0.5 + 0.028 },
    ]);
    // A trial stopped at the first rung trained its 4 steps and nothing more.
    assert.deepEqual(models.get(2)!.fits, [64]);
    assert.deepEqual(models.get(5)!.fits, [64, 112]);
  });

  it('promotes and stops trials as the hand-worked example says', async () => {
    const r = await study().run();
    assert.deepEqual(r.trials.map((t) => [t.state, t.epochs]), EXPECTED);
    assert.equal(r.best?.id, 3);
    // A pruned trial's value is its last report: trial 5 at ¾ epoch (step 11).
    assert.equal(r.trials[5]!.value, 0.8 + 0.011);
  });

  it('replays sub-epoch rungs from the journal: a resumed study decides as an uninterrupted one', async () => {
    const t = await tempDir();
    try {
      const journal = t.path('study.jsonl');
      const first = await study({ journal, maxTrials: 3 }).run();
      assert.deepEqual(first.trials.map((x) => [x.state, x.epochs]), EXPECTED.slice(0, 3));
      const lines = (await readFile(journal, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; trial?: number; epochs?: number });
      assert.deepEqual(lines.filter((l) => l.type === 'report' && l.trial === 1).map((l) => l.epochs), [0.25, 0.75, 1, 2]);
      assert.deepEqual(lines.filter((l) => l.type === 'report' && l.trial === 2).map((l) => l.epochs), [0.25]);
      // Trials 3–5 run in a new process's study: trial 5 goes on past ¼ only because the journal's
      // three values at ¼ (0.5, 0.7, 0.6) are counted there — from 0.9 and 0.4 alone it would stop.
      const { models, run } = study({ journal });
      const resumed = await run();
      assert.deepEqual(resumed.resumed, { finished: 3, rerun: [] });
      assert.deepEqual(resumed.trials.map((x) => [x.state, x.epochs]), EXPECTED);
      assert.deepEqual([...models.keys()], [3, 4, 5]);
      assert.deepEqual(models.get(5)!.evaluatedAt, [4, 11]);
    } finally {
      await t.remove();
    }
  });
});
