/** The normal-distribution pieces of TPE against SciPy (fixtures/truncnorm_reference.py). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Random } from '../../src/random.js';
import { logGaussMass, ndtri, truncnormLogPdf, truncnormSample } from '../../src/tune/samplers/truncnorm.js';

const ref = JSON.parse(readFileSync(new URL('../../../test/tune/fixtures/truncnorm_reference.json', import.meta.url), 'utf8')) as {
  logpdf: number[][];
  ppf: number[][];
  logMass: number[][];
};

const close = (got: number, want: number, rel: number, what: string) => assert.ok(Math.abs(got - want) <= rel * Math.max(1, Math.abs(want)), `${what}: ${got} vs SciPy ${want}`);

describe('truncated normal against SciPy', () => {
  it('log density of N(mu, sigma) truncated to [low, high], tails included', () => {
    for (const [x, mu, s, lo, hi, want] of ref.logpdf) close(truncnormLogPdf(x!, mu!, s!, lo!, hi!), want!, 1e-6, `logpdf(${x}; ${mu}, ${s}, [${lo}, ${hi}])`);
  });

  it('log of the mass between two points, down to 1e-316', () => {
    for (const [a, b, want] of ref.logMass) close(logGaussMass(a!, b!), want!, 1e-6, `logMass(${a}, ${b})`);
  });

  it('the inverse CDF', () => {
    for (const [p, want] of ref.ppf) close(ndtri(p!), want!, 1e-6, `ppf(${p})`);
  });

  it('samples stay in the interval and follow the density (mean of a one-sided truncation)', () => {
    const rng = new Random(3);
    let sum = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const x = truncnormSample(rng, 0, 1, 0, 10);
      assert.ok(x >= 0 && x <= 10);
      sum += x;
    }
    // E[X | X > 0] for a standard normal is sqrt(2/pi) = 0.7979; the standard error here is ~0.004.
    assert.ok(Math.abs(sum / n - Math.sqrt(2 / Math.PI)) < 0.02, `mean ${sum / n}`);
    for (let i = 0; i < 1000; i++) {
      const x = truncnormSample(rng, 0, 1, 6, 9);
      assert.ok(x >= 6 && x <= 9, `upper-tail draw ${x}`);
    }
  });
});
