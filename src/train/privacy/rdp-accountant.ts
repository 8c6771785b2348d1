/**
 * Privacy accounting for DP-SGD and DP-FedAvg: the Rényi-DP (RDP) of the subsampled Gaussian
 * mechanism, its composition over steps, its conversion to (ε, δ)-DP, and the noise multiplier that
 * meets a target ε. The analysis is Mironov, Talwar and Zhang, "Rényi Differential Privacy of the
 * Sampled Gaussian Mechanism" (2019, arXiv:1908.10530), Section 3.3: the same computation as
 * TF Privacy's `compute_rdp` and Opacus' `opacus/accountants/analysis/rdp.py`, written here in
 * float64 with its own log-space erfc. Reference values (Opacus' formula run in Python, and figures
 * printed in Opacus' and TF Privacy's documentation) are checked in test/train/privacy/.
 *
 * Everything runs in TypeScript on purpose: it is a few hundred scalar operations per training step,
 * not a tensor computation.
 */
import { KilnError } from '../../errors.js';

/**
 * The RDP orders α Opacus' `RDPAccountant` uses by default: 1.1, 1.2, …, 10.9 and 12, 13, …, 63.
 * ε is minimised over them, so a wider or finer set can only lower (never raise) the reported ε.
 */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 52 }, (_, x) => 12 + x),
]);

/** Arguments of {@link computeRdp}. */
export interface ComputeRdpArgs {
  /** Probability q that an example takes part in one step (batch size / data set size), in [0, 1]. */
  samplingRate: number;
  /** σ: the Gaussian noise's standard deviation divided by the L2 sensitivity (the clipping norm). */
  noiseMultiplier: number;
  /** How many times the mechanism runs with these parameters (training steps). */
  steps: number;
  /** RDP orders α > 1; default {@link DEFAULT_RDP_ORDERS}. */
  orders?: readonly number[];
}

/**
 * RDP of the sampled Gaussian mechanism run `steps` times: one value per order α, the bound on the
 * Rényi divergence of order α between the outputs on neighbouring data sets (add or remove one
 * example, Poisson sampling with rate q). Composition over steps multiplies by `steps`; `Infinity`
 * where there is no privacy (σ = 0).
 */
export function computeRdp({ samplingRate: q, noiseMultiplier: sigma, steps, orders = DEFAULT_RDP_ORDERS }: ComputeRdpArgs): number[] {
  checkRange('samplingRate', q, 0, 1);
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new KilnError('INVALID_ARGUMENT', `noiseMultiplier: expected a finite number ≥ 0, got ${sigma}`);
  if (!(steps >= 0) || !Number.isFinite(steps)) throw new KilnError('INVALID_ARGUMENT', `steps: expected a finite number ≥ 0, got ${steps}`);
  checkOrders(orders);
  return orders.map((alpha) => steps * rdpOneStep(q, sigma, alpha));
}

/** Arguments of {@link epsilonFromRdp}. */
export interface EpsilonFromRdpArgs {
  /** The RDP orders α > 1 the `rdp` values belong to. */
  orders: readonly number[];
  /** RDP at each order (the output of {@link computeRdp}, or a sum of several). */
  rdp: readonly number[];
  /** Target δ, in (0, 1). */
  delta: number;
}

/**
 * Converts RDP to (ε, δ)-DP and returns the smallest ε over the orders, with the order that gave it.
 *
 * The conversion is the improved one of Balle, Barthe, Gaboardi, Hsu and Sato, "Hypothesis Testing
 * Interpretations and Rényi Differential Privacy" (AISTATS 2020, arXiv:1905.09982, Theorem 21), which
 * Opacus' `get_privacy_spent` and TF Privacy (since 2021) use:
 *   ε(α) = RDP(α) + log((α − 1)/α) − (log δ + log α)/(α − 1).
 * The older conversion of Mironov (2017), ε(α) = RDP(α) − log δ/(α − 1), which TF Privacy's 2019
 * tutorials printed, is always larger by log(α)/(α − 1) − log((α − 1)/α) > 0.
 * Where δ² + e^(−RDP) ≥ 1 (RDP within about δ² of 0), ε is 0, as in TF Privacy's `compute_epsilon`.
 * Returns `{ epsilon: Infinity, order: NaN }` when every order's RDP is infinite (no privacy).
 */
export function epsilonFromRdp({ orders, rdp, delta }: EpsilonFromRdpArgs): { epsilon: number; order: number } {
  checkOrders(orders);
  if (orders.length !== rdp.length) {
    throw new KilnError('INVALID_ARGUMENT', `epsilonFromRdp: orders has ${orders.length} values but rdp has ${rdp.length}; expected one RDP value per order`);
  }
  if (!(delta > 0 && delta < 1)) throw new KilnError('INVALID_ARGUMENT', `delta: expected a number in (0, 1), got ${delta}`);
  let best = { epsilon: Infinity, order: NaN };
  for (let k = 0; k < orders.length; k++) {
    const alpha = orders[k]!;
    const r = rdp[k]!;
    if (Number.isNaN(r) || r < 0) throw new KilnError('INVALID_ARGUMENT', `rdp[${k}]: expected a number ≥ 0, got ${r}`);
    // TF Privacy's shortcut: when δ² ≥ 1 − e^(−RDP), the KL bound δ ≤ √(1 − e^(−KL)) already gives ε = 0
    // (this is what makes an accountant with no steps report 0, not the conversion's slack of ~0.1).
    const eps = delta * delta + Math.expm1(-r) >= 0 ? 0 : r + Math.log1p(-1 / alpha) - (Math.log(delta) + Math.log(alpha)) / (alpha - 1);
    if (eps < best.epsilon) best = { epsilon: eps, order: alpha };
  }
  // The bound can dip below 0 only for RDP ≈ 0 and huge orders; ε-DP is never below 0.
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

/**
 * Keeps the running RDP of a training run whose steps may differ in sampling rate and noise
 * (heterogeneous steps compose by summing RDP order by order), and reports ε for a δ.
 *
 * ```ts
 * const accountant = new RdpAccountant();
 * accountant.step({ samplingRate: 256 / 60000, noiseMultiplier: 1.1, steps: 234 });
 * accountant.epsilon(1e-5); // ε after one epoch
 * ```
 */
export class RdpAccountant {
  /** The RDP orders this accountant tracks. */
  readonly orders: readonly number[];
  private readonly total: number[];
  private stepCount = 0;
  // Training calls step() with the same (q, σ) thousands of times: the per-step RDP is computed once.
  private cached: { q: number; sigma: number; rdp: number[] } | undefined;

  /** @param orders RDP orders α > 1 to track; default {@link DEFAULT_RDP_ORDERS}. */
  constructor(orders: readonly number[] = DEFAULT_RDP_ORDERS) {
    checkOrders(orders);
    this.orders = Object.freeze([...orders]);
    this.total = new Array<number>(orders.length).fill(0);
  }

  /** Records `steps` (default 1) runs of the sampled Gaussian mechanism with rate q and multiplier σ. */
  step({ samplingRate, noiseMultiplier, steps = 1 }: { samplingRate: number; noiseMultiplier: number; steps?: number }): void {
    if (!(steps >= 0) || !Number.isFinite(steps)) throw new KilnError('INVALID_ARGUMENT', `steps: expected a finite number ≥ 0, got ${steps}`);
    if (this.cached === undefined || this.cached.q !== samplingRate || this.cached.sigma !== noiseMultiplier) {
      this.cached = { q: samplingRate, sigma: noiseMultiplier, rdp: computeRdp({ samplingRate, noiseMultiplier, steps: 1, orders: this.orders }) };
    }
    for (let k = 0; k < this.total.length; k++) this.total[k]! += steps * this.cached.rdp[k]!;
    this.stepCount += steps;
  }

  /** How many mechanism runs (steps) have been recorded. */
  get steps(): number {
    return this.stepCount;
  }

  /** The composed RDP so far, one value per order. */
  get rdp(): readonly number[] {
    return [...this.total];
  }

  /** ε spent so far at this δ (improved conversion, see {@link epsilonFromRdp}); 0 before any step. */
  epsilon(delta: number): number {
    return epsilonFromRdp({ orders: this.orders, rdp: this.total, delta }).epsilon;
  }

  /** ε spent so far at this δ and the RDP order that attains it. */
  spent(delta: number): { epsilon: number; order: number } {
    return epsilonFromRdp({ orders: this.orders, rdp: this.total, delta });
  }
}

/** Arguments of {@link noiseMultiplierFor}. */
export interface NoiseMultiplierForArgs {
  /** The ε the whole run may spend. */
  targetEpsilon: number;
  /** The δ of the guarantee, in (0, 1). */
  delta: number;
  /** Probability q that an example takes part in one step. */
  samplingRate: number;
  /** Planned number of steps. */
  steps: number;
  /** RDP orders; default {@link DEFAULT_RDP_ORDERS}. */
  orders?: readonly number[];
  /** Stop once ε is within this much below the target; default 0.01 (Opacus' default). */
  epsilonTolerance?: number;
}

/** The largest σ {@link noiseMultiplierFor} tries before it declares the budget out of reach. */
const MAX_NOISE_MULTIPLIER = 1e6;

/**
 * The noise multiplier σ for which `steps` runs at sampling rate q spend at most `targetEpsilon`
 * (at `delta`), found as Opacus' `get_noise_multiplier` finds it: double σ from 10 until ε ≤ target,
 * then bisect until ε lies within `epsilonTolerance` below the target. The σ returned always meets
 * the target (ε(σ) ≤ targetEpsilon).
 */
export function noiseMultiplierFor({ targetEpsilon, delta, samplingRate, steps, orders = DEFAULT_RDP_ORDERS, epsilonTolerance = 0.01 }: NoiseMultiplierForArgs): number {
  if (!(targetEpsilon > 0) || !Number.isFinite(targetEpsilon)) throw new KilnError('INVALID_ARGUMENT', `targetEpsilon: expected a finite number > 0, got ${targetEpsilon}`);
  if (!(epsilonTolerance > 0)) throw new KilnError('INVALID_ARGUMENT', `epsilonTolerance: expected a number > 0, got ${epsilonTolerance}`);
  const eps = (sigma: number): number => epsilonFromRdp({ orders, rdp: computeRdp({ samplingRate, noiseMultiplier: sigma, steps, orders }), delta }).epsilon;
  let low = 0;
  let high = 10;
  let epsHigh = eps(high);
  while (epsHigh > targetEpsilon) {
    high *= 2;
    if (high > MAX_NOISE_MULTIPLIER) {
      throw new KilnError(
        'INVALID_ARGUMENT',
        `targetEpsilon ${targetEpsilon} at delta ${delta} is out of reach for ${steps} steps at sampling rate ${samplingRate}: ` +
          `even noise multiplier ${MAX_NOISE_MULTIPLIER} spends more; raise the budget, take fewer steps or sample less`,
      );
    }
    epsHigh = eps(high);
  }
  while (targetEpsilon - epsHigh > epsilonTolerance) {
    const mid = (low + high) / 2;
    const e = eps(mid);
    if (e < targetEpsilon) {
      high = mid;
      epsHigh = e;
    } else {
      low = mid;
    }
    if (high - low < 1e-12 * high) break; // ε is flat here (e.g. steps = 0); more halving gains nothing
  }
  return high;
}

// ---- the sampled Gaussian mechanism's RDP, one step ----

/** RDP of one step at order α (Mironov et al. 2019, Sec. 3.3): log(A_α)/(α − 1). */
function rdpOneStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (!Number.isFinite(alpha)) return Infinity;
  const logA = Number.isInteger(alpha) ? logAIntegerOrder(q, sigma, alpha) : logAFractionalOrder(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** log A_α for integer α: the finite binomial sum Σᵢ C(α,i) qⁱ (1−q)^(α−i) exp((i² − i)/(2σ²)). */
function logAIntegerOrder(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  let logBinom = 0; // log C(α, i), built up term by term
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const term = logBinom + i * Math.log(q) + (alpha - i) * Math.log1p(-q) + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, term);
  }
  return logA;
}

/**
 * log A_α for fractional α: the integral split at z₀ = σ² log(1/q − 1) + ½ into two series whose
 * terms carry erfc factors; binomial coefficients of a fractional α change sign, so terms are added
 * or subtracted in log space. Summation stops once both new terms fall below e⁻³⁰, as in the reference.
 */
function logAFractionalOrder(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logAbsBinom = 0; // log |C(α, i)|
  let binomPositive = true;
  for (let i = 0; i < 100_000; i++) {
    if (i > 0) {
      const factor = (alpha - i + 1) / i;
      logAbsBinom += Math.log(Math.abs(factor));
      if (factor < 0) binomPositive = !binomPositive;
    }
    const j = alpha - i;
    const logT0 = logAbsBinom + i * logQ + j * log1mQ;
    const logT1 = logAbsBinom + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (binomPositive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

/** log(eˣ + eʸ) without overflow. */
function logAdd(x: number, y: number): number {
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  if (a === -Infinity) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

/** log(eˣ − eʸ) for x ≥ y. */
function logSub(x: number, y: number): number {
  if (x < y) {
    throw new KilnError('RUNTIME_ERROR', `RDP accounting lost precision: a series term (log ${y}) exceeded its partial sum (log ${x}); try other orders`);
  }
  if (y === -Infinity) return x;
  if (x === y) return -Infinity;
  const d = x - y;
  return d > 700 ? x : Math.log(Math.expm1(d)) + y;
}

// ---- log erfc in float64, accurate in both tails ----

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/**
 * log(erfc(x)) to near float64 precision for every x: erf's Taylor series where |x| ≤ 2, Laplace's
 * continued fraction for erfc (evaluated bottom-up, in log space) beyond, and erfc(x) = 2 − erfc(−x)
 * for x < −2. The RDP series needs erfc far into its upper tail (x in the tens), where erfc itself
 * underflows; Numerical-Recipes-style fits (1e-7) are too coarse to reproduce published ε.
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x > 2) return logErfcUpperTail(x);
  if (x < -2) return Math.log(2 - Math.exp(logErfcUpperTail(-x)));
  return Math.log(1 - erfSeries(x));
}

/** erf(x) = 2/√π Σₙ (−1)ⁿ x^(2n+1) / (n! (2n+1)), for |x| ≤ 2 (loses at most ~3 digits there). */
function erfSeries(x: number): number {
  const x2 = x * x;
  let power = x; // (−1)ⁿ x^(2n+1) / n!
  let sum = x;
  for (let n = 1; n < 200; n++) {
    power *= -x2 / n;
    const term = power / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/**
 * log erfc(x) for x > 2 from erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))),
 * evaluated from the bottom with enough levels for x ≥ 2 (the fraction converges faster as x grows).
 */
function logErfcUpperTail(x: number): number {
  const levels = x < 3 ? 160 : x < 6 ? 80 : 40;
  let f = x;
  for (let k = levels; k >= 1; k--) f = x + k / 2 / f;
  return -x * x - LOG_SQRT_PI - Math.log(f);
}

function checkRange(name: string, value: number, low: number, high: number): void {
  if (!(value >= low && value <= high)) throw new KilnError('INVALID_ARGUMENT', `${name}: expected a number in [${low}, ${high}], got ${value}`);
}

function checkOrders(orders: readonly number[]): void {
  if (orders.length === 0) throw new KilnError('INVALID_ARGUMENT', 'orders: expected at least one RDP order, got none');
  for (const alpha of orders) {
    if (!(alpha > 1)) throw new KilnError('INVALID_ARGUMENT', `orders: every RDP order must be > 1, got ${alpha}`);
  }
}
