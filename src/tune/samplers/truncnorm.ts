/**
 * The normal distribution's pieces TPE's Parzen estimators need, in float64: the CDF in a form that
 * keeps its relative accuracy in the tails, the log of the mass between two points, the inverse CDF,
 * and sampling and log density of a normal truncated to an interval. Checked against SciPy's
 * truncnorm in test/tune/truncnorm.test.ts.
 */
import type { Random } from '../../random.js';

/**
 * erfc(x) by the Chebyshev fit of Numerical Recipes (erfcc): fractional error below 1.2e-7 for every
 * x, tails included, which is what log densities far from a kernel's centre need.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Standard normal CDF Φ(x). */
export function ndtr(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/**
 * log Φ(z), finite however far into the lower tail: below z = −20 (where Φ nears float64's smallest
 * numbers) from the asymptotic series log φ(z) − log(−z) + log(1 − 1/z² + 3/z⁴).
 */
export function logNdtr(z: number): number {
  if (z > -20) return Math.log(ndtr(z));
  const z2 = z * z;
  return -0.5 * z2 - 0.5 * Math.log(2 * Math.PI) - Math.log(-z) + Math.log(1 - 1 / z2 + 3 / (z2 * z2));
}

/** log(Φ(b) − Φ(a)) for a < b, computed on the side of zero where the subtraction loses nothing. */
export function logGaussMass(a: number, b: number): number {
  if (a >= 0) [a, b] = [-b, -a];
  const lb = logNdtr(b);
  return lb + Math.log1p(-Math.exp(logNdtr(a) - lb));
}

/**
 * Inverse of Φ: Acklam's rational approximation (relative error 1.15e-9), refined by one Halley step
 * against ndtr.
 */
export function ndtri(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  let x: number;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - low) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  const e = ndtr(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** Log density at x of N(mu, sigma²) truncated to [low, high]. */
export function truncnormLogPdf(x: number, mu: number, sigma: number, low: number, high: number): number {
  if (x < low || x > high) return -Infinity;
  const z = (x - mu) / sigma;
  return -0.5 * z * z - LOG_SQRT_2PI - Math.log(sigma) - logGaussMass((low - mu) / sigma, (high - mu) / sigma);
}

/** A draw from N(mu, sigma²) truncated to [low, high], by the inverse CDF (on the lower tail's side for accuracy). */
export function truncnormSample(rng: Random, mu: number, sigma: number, low: number, high: number): number {
  let a = (low - mu) / sigma;
  let b = (high - mu) / sigma;
  // In the upper tail Φ is close to 1 and loses digits: sample the mirror image there.
  const mirrored = a > 0;
  if (mirrored) [a, b] = [-b, -a];
  const pa = ndtr(a);
  const pb = ndtr(b);
  const z = ndtri(pa + (pb - pa) * rng.next());
  const x = mu + sigma * (mirrored ? -z : z);
  return Math.min(high, Math.max(low, x));
}
