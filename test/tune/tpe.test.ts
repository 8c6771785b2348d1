/**
 * TPE: its Parzen estimators against hand-worked kernels (Optuna's bandwidth rule), γ and the kernel
 * weights, the split of trials, determinism, and that it finds better points than random search on a
 * known function with the same number of evaluations (fixed seeds, so the comparison cannot flake).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../../src/random.js';
import { RandomSampler } from '../../src/tune/samplers/random.js';
import type { ObservedTrial, Sampler } from '../../src/tune/samplers/sampler.js';
import { CategoricalParzen, defaultGamma, defaultWeights, NumericParzen, splitTrials, TpeSampler } from '../../src/tune/samplers/tpe.js';
import { choice, float, int, logUniform, SearchSpace, type Params } from '../../src/tune/space.js';
import { truncnormLogPdf } from '../../src/tune/samplers/truncnorm.js';

describe('Parzen estimators', () => {
  it('numeric kernels: centred on the observations, σ the larger gap to a sorted neighbour, prior mid-range with σ = range', () => {
    // Range [0, 10], observations 1, 2, 6; with the prior (5): sorted 1, 2, 5, 6 between the ends 0 and 10.
    // Gaps: 1→2: 1, 2→5: 3, 5→6: 1. Inner σ: max of both gaps: 2 → 3, 5 → 3. The outermost look only
    // inwards: σ(1) = 1, σ(6) = 1. minσ = 10 / min(100, 1 + 4) = 2, so σ = [2, 3, 2] for 1, 2, 6; prior 10.
    const p = new NumericParzen([1, 2, 6], [1, 1, 1], { low: 0, high: 10, discrete: false });
    assert.deepEqual(p.mus, [1, 2, 6, 5]);
    assert.deepEqual(p.sigmas, [2, 3, 2, 10]);
    assert.deepEqual(p.weights, [0.25, 0.25, 0.25, 0.25]);
    // The mixture density, summed by hand from the truncated normals.
    const x = 3.3;
    const want = Math.log(p.mus.reduce((s, mu, k) => s + 0.25 * Math.exp(truncnormLogPdf(x, mu, p.sigmas[k]!, 0, 10)), 0));
    assert.ok(Math.abs(p.logPdf(x) - want) < 1e-12);
  });

  it('integer kernels take the mass of ±½ around each value, and sum to one over the range', () => {
    const p = new NumericParzen([2, 3], [1, 1], { low: 1, high: 6, discrete: true });
    let total = 0;
    for (let v = 1; v <= 6; v++) total += Math.exp(p.logPdf(v));
    assert.ok(Math.abs(total - 1) < 1e-6, `total mass ${total}`);
  });

  it('categorical kernels: prior/kernels on every value plus one on the observed value', () => {
    // Observed indices 0, 0, 2 of 3 values; 4 kernels, prior weight 1 → 0.25 each; observation rows
    // [1.25, .25, .25]/1.75, prior row uniform. P(0) = (2·1.25/1.75 + .25/1.75 + 1/3) / 4.
    const c = new CategoricalParzen([0, 0, 2], [1, 1, 1], 3);
    const p0 = (2 * (1.25 / 1.75) + 0.25 / 1.75 + 1 / 3) / 4;
    assert.ok(Math.abs(Math.exp(c.logPdf(0)) - p0) < 1e-12);
    const sum = [0, 1, 2].reduce((s, i) => s + Math.exp(c.logPdf(i)), 0);
    assert.ok(Math.abs(sum - 1) < 1e-12);
  });

  it("γ and the kernel weights follow Optuna's defaults", () => {
    assert.deepEqual([1, 10, 11, 100, 300].map(defaultGamma), [1, 1, 2, 10, 25]);
    assert.deepEqual(defaultWeights(3), [1, 1, 1]);
    const w = defaultWeights(30);
    assert.equal(w.length, 30);
    assert.ok(Math.abs(w[0]! - 1 / 30) < 1e-12);
    assert.deepEqual(w.slice(5), Array.from({ length: 25 }, () => 1));
  });
});

describe('splitTrials', () => {
  it('ranks complete trials by value, then pruned ones by how far they got, each side in trial order', () => {
    const t = (id: number, state: 'complete' | 'pruned', value: number, epochs: number): ObservedTrial => ({ id, params: {}, state, value, epochs });
    const history = [t(0, 'complete', 0.5, 2), t(1, 'pruned', 0.9, 1), t(2, 'complete', 0.7, 2), ...Array.from({ length: 8 }, (_, i) => t(3 + i, 'complete', 0.1, 2)), t(11, 'pruned', 0.95, 0.5)];
    // 12 trials → γ = 2: the two best complete ones (0.7 and 0.5), pruned ones rank after every complete one.
    const { below, above } = splitTrials(history, 'maximize');
    assert.deepEqual(below.map((x) => x.id), [0, 2]);
    assert.deepEqual(above.map((x) => x.id), [1, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const min = splitTrials(history, 'minimize');
    assert.deepEqual(min.below.map((x) => x.id), [3, 4]);
  });
});

/** Runs a sampler sequentially on f for n trials; returns the best value found. */
function minimize(sampler: Sampler, space: SearchSpace, f: (p: Params) => number, n: number, seed: number): number {
  const history: ObservedTrial[] = [];
  for (let id = 0; id < n; id++) {
    const params = sampler.sample(space, history, 'minimize', new Random(seed * 1000 + id));
    space.checkParams(params);
    history.push({ id, params, state: 'complete', value: f(params), epochs: 1 });
  }
  return Math.min(...history.map((h) => h.value));
}

describe('TpeSampler', () => {
  const space = new SearchSpace({
    lr: logUniform(1e-5, 1e-1),
    units: int(8, 256),
    dropout: float(0, 0.5),
    optimizer: choice(['sgd', 'adam', 'rmsprop']),
  });
  // A bowl around lr = 1e-3, units = 96, dropout = 0.1, best with adam.
  const f = (p: Params) => (Math.log10(p.lr as number) + 3) ** 2 + ((p.units as number) - 96) ** 2 / 2000 + ((p.dropout as number) - 0.1) ** 2 * 10 + (p.optimizer === 'adam' ? 0 : 0.5);

  it('is random for its start-up trials, then proposes from the estimators, the same for the same seed', () => {
    const tpe = new TpeSampler();
    assert.deepEqual(tpe.sample(space, [], 'minimize', new Random(5)), new RandomSampler().sample(space, [], 'minimize', new Random(5)));
    const history: ObservedTrial[] = Array.from({ length: 12 }, (_, id) => {
      const params = new RandomSampler().sample(space, [], 'minimize', new Random(id));
      return { id, params, state: 'complete' as const, value: f(params), epochs: 1 };
    });
    const a = tpe.sample(space, history, 'minimize', new Random(99));
    const b = tpe.sample(space, history, 'minimize', new Random(99));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, new RandomSampler().sample(space, history, 'minimize', new Random(99)));
  });

  it('finds better points than random search with 40 evaluations over 20 seeds', () => {
    let wins = 0;
    let tpeSum = 0;
    let randomSum = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const tpe = minimize(new TpeSampler(), space, f, 40, seed);
      const random = minimize(new RandomSampler(), space, f, 40, seed);
      if (tpe < random) wins++;
      tpeSum += tpe;
      randomSum += random;
    }
    // Measured when written: 16 wins, mean best 0.344 vs 0.626 (deterministic: the seeds are fixed).
    assert.ok(wins >= 14, `TPE beat random on ${wins} of 20 seeds`);
    assert.ok(tpeSum < 0.7 * randomSum, `mean best: TPE ${tpeSum / 20}, random ${randomSum / 20}`);
  });

  it('handles conditional parameters: each estimator learns from the trials that had the parameter', () => {
    const cond = new SearchSpace({ optimizer: choice(['adam', 'sgd']), momentum: float(0, 0.99, { when: { parent: 'optimizer', values: ['sgd'] } }) });
    const g = (p: Params) => (p.optimizer === 'sgd' ? Math.abs((p.momentum as number) - 0.9) : 1);
    const best = minimize(new TpeSampler(), cond, g, 30, 7);
    assert.ok(best < 0.05, `best ${best}`);
  });
});
