/**
 * The Tree-structured Parzen Estimator (Bergstra, Bardenet, Bengio & Kégl, "Algorithms for
 * Hyper-Parameter Optimization", NeurIPS 2011), written after Optuna's TPESampler with its defaults
 * (univariate, as Optuna's `multivariate=False`):
 *
 * - the first `startupTrials` (10) trials are random;
 * - the finished trials are split by objective into the best γ(n) = min(⌈0.1·n⌉, 25) ("below") and
 *   the rest ("above"); complete trials rank before pruned ones, pruned ones by how far they got;
 * - for each active parameter, the below and above trials that have it each give a Parzen estimator:
 *   a mixture of one kernel per trial plus a prior kernel (weight 1). Numeric kernels are normals
 *   truncated to the range (in log space for log ranges; integers take the mass of ±½ around each
 *   value), centred on the observed values, each σ the larger gap to its sorted neighbours (the
 *   range's ends count as neighbours only for inner points), clipped to [range / min(100, 1 + kernels),
 *   range]; the prior kernel sits mid-range with σ = range. Categorical kernels put prior/kernels on
 *   every value plus 1 on the observed one. Kernel weights are 1, with Optuna's linear ramp down for
 *   the oldest trials beyond the newest 25;
 * - 24 candidates are drawn from the below estimator and the one with the largest l(x)/g(x) — log
 *   density below minus above — is taken.
 *
 * Deviations from Optuna, on purpose: log-scaled integers are modelled in log space over
 * [low − ½, high + ½] and rounded (Optuna keeps them continuous in log space over [low, high]); the
 * per-parameter draws come from the study's seeded generator in the space's order.
 */
import type { Random } from '../../random.js';
import type { ParamSpec, ParamValue, Params, SearchSpace } from '../space.js';
import { sampleActive, sampleUniform } from './random.js';
import type { Direction, ObservedTrial, Sampler } from './sampler.js';
import { logGaussMass, truncnormLogPdf, truncnormSample } from './truncnorm.js';

/** Settings of the TPE sampler (defaults as Optuna's). */
export interface TpeOptions {
  /** Random trials before the estimators are used (Optuna: 10). */
  startupTrials?: number;
  /** Candidates drawn from l(x) per parameter (Optuna: 24). */
  eiCandidates?: number;
  /** Weight of the prior kernel (Optuna: 1). */
  priorWeight?: number;
}

/** γ(n): how many of n finished trials count as good. */
export function defaultGamma(n: number): number {
  return Math.min(Math.ceil(0.1 * n), 25);
}

/** Kernel weights of n observations in trial order: 1, ramping down linearly for all but the newest 25. */
export function defaultWeights(n: number): number[] {
  if (n < 25) return Array.from({ length: n }, () => 1);
  const ramp = Array.from({ length: n - 25 }, (_, i) => (n - 25 === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (n - 25 - 1)));
  return [...ramp, ...Array.from({ length: 25 }, () => 1)];
}

/**
 * The best γ(n) trials and the rest, each in trial order. Complete trials by value; pruned trials after
 * them, those that got further first, then by their last value.
 */
export function splitTrials(history: readonly ObservedTrial[], direction: Direction): { below: ObservedTrial[]; above: ObservedTrial[] } {
  const sign = direction === 'maximize' ? -1 : 1;
  const complete = history.filter((t) => t.state === 'complete').sort((a, b) => sign * (a.value - b.value) || a.id - b.id);
  const pruned = history.filter((t) => t.state === 'pruned').sort((a, b) => b.epochs - a.epochs || sign * (a.value - b.value) || a.id - b.id);
  const ranked = [...complete, ...pruned];
  const n = defaultGamma(history.length);
  const byId = (a: ObservedTrial, b: ObservedTrial) => a.id - b.id;
  return { below: ranked.slice(0, n).sort(byId), above: ranked.slice(n).sort(byId) };
}

/** A numeric parameter's domain as the estimator models it: the (log-)interval and, for integers, the ±½ cells. */
interface NumericDomain {
  low: number;
  high: number;
  /** Integers on a linear scale: each value owns [v − ½, v + ½]. */
  discrete: boolean;
  toInternal(v: number): number;
  fromInternal(x: number): number;
}

function numericDomain(spec: Extract<ParamSpec, { kind: 'int' | 'float' }>): NumericDomain {
  if (spec.log) {
    const [lo, hi] = spec.kind === 'int' ? [spec.low - 0.5, spec.high + 0.5] : [spec.low, spec.high];
    const round = spec.kind === 'int' ? (v: number) => Math.min(spec.high, Math.max(spec.low, Math.round(v))) : (v: number) => Math.min(spec.high, Math.max(spec.low, v));
    return { low: Math.log(lo), high: Math.log(hi), discrete: false, toInternal: Math.log, fromInternal: (x) => round(Math.exp(x)) };
  }
  if (spec.kind === 'int') return { low: spec.low, high: spec.high, discrete: true, toInternal: (v) => v, fromInternal: (x) => Math.min(spec.high, Math.max(spec.low, Math.round(x))) };
  return { low: spec.low, high: spec.high, discrete: false, toInternal: (v) => v, fromInternal: (x) => x };
}

/** A mixture of truncated normals over one numeric parameter. */
export class NumericParzen {
  readonly mus: number[];
  readonly sigmas: number[];
  readonly weights: number[];
  /** The interval the kernels are truncated to (integers: widened by ½ at both ends). */
  private readonly lo: number;
  private readonly hi: number;

  constructor(
    observations: number[],
    observationWeights: number[],
    private readonly domain: { low: number; high: number; discrete: boolean },
    priorWeight = 1,
  ) {
    const step = domain.discrete ? 1 : 0;
    const { low, high } = domain;
    this.lo = low - step / 2;
    this.hi = high + step / 2;
    const priorMu = 0.5 * (low + high);
    const withPrior = [...observations, priorMu];
    const order = withPrior.map((_, i) => i).sort((a, b) => withPrior[a]! - withPrior[b]! || a - b);
    const sorted = order.map((i) => withPrior[i]!);
    const ends = [low - step / 2, ...sorted, high + step / 2];
    const sortedSigmas = sorted.map((_, k) => Math.max(ends[k + 1]! - ends[k]!, ends[k + 2]! - ends[k + 1]!));
    // consider_endpoints=False: the outermost kernels look only inwards.
    if (ends.length >= 4) {
      sortedSigmas[0] = ends[2]! - ends[1]!;
      sortedSigmas[sortedSigmas.length - 1] = ends[ends.length - 2]! - ends[ends.length - 3]!;
    }
    const sigmas = new Array<number>(withPrior.length);
    order.forEach((i, k) => (sigmas[i] = sortedSigmas[k]!));
    const width = high - low + step;
    const maxSigma = width;
    const minSigma = width / Math.min(100, 1 + withPrior.length);
    this.mus = withPrior;
    this.sigmas = sigmas.map((s, i) => (i === observations.length ? width : Math.min(maxSigma, Math.max(minSigma, s))));
    const raw = [...observationWeights, priorWeight];
    const total = raw.reduce((a, b) => a + b, 0);
    this.weights = raw.map((w) => w / total);
  }

  sample(rng: Random): number {
    const k = pick(this.weights, rng);
    const x = truncnormSample(rng, this.mus[k]!, this.sigmas[k]!, this.lo, this.hi);
    return this.domain.discrete ? Math.min(this.domain.high, Math.max(this.domain.low, Math.round(x))) : x;
  }

  logPdf(x: number): number {
    const terms = this.mus.map((mu, k) => {
      const sigma = this.sigmas[k]!;
      const density = this.domain.discrete
        ? logGaussMass((x - 0.5 - mu) / sigma, (x + 0.5 - mu) / sigma) - logGaussMass((this.lo - mu) / sigma, (this.hi - mu) / sigma)
        : truncnormLogPdf(x, mu, sigma, this.lo, this.hi);
      return Math.log(this.weights[k]!) + density;
    });
    return logSumExp(terms);
  }
}

/** A mixture of categorical kernels over one choice parameter (indices into its values). */
export class CategoricalParzen {
  /** Per kernel, the probability of each value. */
  readonly kernels: number[][];
  readonly weights: number[];

  constructor(observed: number[], observationWeights: number[], choices: number, priorWeight = 1) {
    const n = observed.length + 1;
    this.kernels = [...observed, -1].map((idx) => {
      const row = Array.from({ length: choices }, () => priorWeight / n);
      if (idx >= 0) row[idx]! += 1;
      const sum = row.reduce((a, b) => a + b, 0);
      return row.map((v) => v / sum);
    });
    const raw = [...observationWeights, priorWeight];
    const total = raw.reduce((a, b) => a + b, 0);
    this.weights = raw.map((w) => w / total);
  }

  sample(rng: Random): number {
    return pick(this.kernels[pick(this.weights, rng)]!, rng);
  }

  logPdf(index: number): number {
    let p = 0;
    this.kernels.forEach((row, k) => (p += this.weights[k]! * row[index]!));
    return Math.log(p);
  }
}

function pick(probabilities: number[], rng: Random): number {
  let u = rng.next();
  for (let i = 0; i < probabilities.length; i++) {
    u -= probabilities[i]!;
    if (u < 0) return i;
  }
  return probabilities.length - 1;
}

function logSumExp(terms: number[]): number {
  const m = Math.max(...terms);
  if (!Number.isFinite(m)) return m;
  return m + Math.log(terms.reduce((s, t) => s + Math.exp(t - m), 0));
}

/** The Tree-structured Parzen Estimator sampler, after Optuna's univariate TPESampler. */
export class TpeSampler implements Sampler {
  /** The sampler's name: 'tpe'. */
  readonly name = 'tpe';
  /** Random trials before the estimators are used (default 10). */
  readonly startupTrials: number;
  /** Candidates drawn from l(x) per parameter (default 24). */
  readonly eiCandidates: number;
  /** Weight of the prior kernel (default 1). */
  readonly priorWeight: number;

  constructor(options: TpeOptions = {}) {
    this.startupTrials = options.startupTrials ?? 10;
    this.eiCandidates = options.eiCandidates ?? 24;
    this.priorWeight = options.priorWeight ?? 1;
  }

  /** The next trial's parameters: random during start-up, then each the candidate with the largest l(x)/g(x). */
  sample(space: SearchSpace, history: readonly ObservedTrial[], direction: Direction, rng: Random): Params {
    if (history.length < this.startupTrials) return sampleActive(space, (_name, spec) => sampleUniform(spec, rng));
    const { below, above } = splitTrials(history, direction);
    return sampleActive(space, (name, spec) => this.sampleParam(name, spec, below, above, rng));
  }

  /** One parameter from the trials that had it: the candidate of l(x) with the largest l(x)/g(x). */
  private sampleParam(name: string, spec: ParamSpec, below: ObservedTrial[], above: ObservedTrial[], rng: Random): ParamValue {
    const withParam = (trials: ObservedTrial[]) => trials.filter((t) => name in t.params).map((t) => t.params[name]!);
    const good = withParam(below);
    const bad = withParam(above);
    if (spec.kind === 'choice') {
      const index = (v: ParamValue) => spec.values.findIndex((c) => c === v);
      const l = new CategoricalParzen(good.map(index), defaultWeights(good.length), spec.values.length, this.priorWeight);
      const g = new CategoricalParzen(bad.map(index), defaultWeights(bad.length), spec.values.length, this.priorWeight);
      return spec.values[best(this.eiCandidates, () => l.sample(rng), (i) => l.logPdf(i) - g.logPdf(i))]!;
    }
    const domain = numericDomain(spec);
    const l = new NumericParzen(good.map((v) => domain.toInternal(v as number)), defaultWeights(good.length), domain, this.priorWeight);
    const g = new NumericParzen(bad.map((v) => domain.toInternal(v as number)), defaultWeights(bad.length), domain, this.priorWeight);
    return domain.fromInternal(best(this.eiCandidates, () => l.sample(rng), (x) => l.logPdf(x) - g.logPdf(x)));
  }
}

/** Of `n` candidates, the one scoring highest (the first among equals). */
function best<T>(n: number, draw: () => T, score: (x: T) => number): T {
  let top: T = draw();
  let topScore = score(top);
  for (let i = 1; i < n; i++) {
    const x = draw();
    const s = score(x);
    if (s > topScore) {
      top = x;
      topScore = s;
    }
  }
  return top;
}
