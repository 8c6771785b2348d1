/** The tuning study's HTML report: the objective per trial, the two most important parameters against it, the importance table. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderTuneReport } from '../../src/report/tune.js';
import { SearchSpace, choice, logUniform } from '../../src/tune/space.js';
import type { TrialResult, TuneResult } from '../../src/tune/study.js';
import { parameterImportance } from '../../src/tune/importance.js';

describe('renderTuneReport', () => {
  it('draws the objective per trial and the two most important parameters, and defines importance', async () => {
    const space = new SearchSpace({ lr: logUniform(1e-4, 1e-2), optimizer: choice(['adam', 'sgd']), batchSize: choice([32, 64]) });
    const trial = (id: number, params: TrialResult['params'], value: number | undefined, state: TrialResult['state'] = 'complete'): TrialResult => ({ id, params, state, ...(value !== undefined ? { value } : {}), epochs: 2, metrics: {}, curve: [], seconds: 1, fromJournal: false });
    const trials = [
      trial(0, { lr: 1e-3, optimizer: 'adam', batchSize: 32 }, 0.85),
      trial(1, { lr: 1e-4, optimizer: 'sgd', batchSize: 32 }, 0.6),
      trial(2, { lr: 5e-3, optimizer: 'adam', batchSize: 64 }, 0.84),
      trial(3, { lr: 2e-4, optimizer: 'sgd', batchSize: 64 }, 0.62),
      trial(4, { lr: 1e-2, optimizer: 'sgd', batchSize: 32 }, undefined, 'failed'),
    ];
    const importance = parameterImportance(space, trials.filter((t) => t.value !== undefined).map((t) => ({ params: t.params, value: t.value! })));
    const result: TuneResult = { space, objective: { metric: 'val_accuracy' }, direction: 'maximize', sampler: 'tpe', trials, best: trials[0]!, importance, resumed: { finished: 0, rerun: [] }, budgetSpent: false, seconds: 10 };
    // optimizer splits the values perfectly (η² ≈ 1); batchSize hardly at all.
    assert.equal(importance.at(-1)!.name, 'batchSize');
    const html = await renderTuneReport(result);
    assert.equal((html.match(/<svg/g) ?? []).length, 3);
    for (const { name } of importance.slice(0, 2)) assert.ok(html.includes(`${name} against the objective`), name);
    assert.ok(!html.includes('batchSize against the objective'));
    assert.ok(html.includes('correlation ratio η²'));
    assert.match(html, /Best: trial 0, objective 0\.8500/);
    assert.match(html, /5 trials \(4 complete, 0 pruned, 1 failed\)/);
  });
});
