/**
 * Initial weights follow Keras' variance-scaling formulas and are reproducible from the model seed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, sequential, Random, type Tensor } from '../../src/index.js';
import { initialValues } from '../../src/layers/initializers.js';
import { assertThrowsKiln } from '../model/helpers.js';

function stats(t: Tensor): { mean: number; variance: number; maxAbs: number } {
  const data = t.data as Float32Array;
  let sum = 0;
  let maxAbs = 0;
  for (const v of data) {
    sum += v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  const mean = sum / data.length;
  let sq = 0;
  for (const v of data) sq += (v - mean) ** 2;
  return { mean, variance: sq / (data.length - 1), maxAbs };
}

function assertNear(actual: number, expected: number, relative: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= relative * Math.abs(expected), `${what}: expected ≈ ${expected} (±${relative * 100}%), got ${actual}`);
}

describe('glorotUniform', () => {
  it('draws within ±sqrt(6 / (fanIn + fanOut)) with variance limit² / 3', () => {
    const [fanIn, fanOut] = [120, 80];
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    const s = stats(initialValues('glorotUniform', [fanIn, fanOut * 200], [fanIn, fanOut], new Random(1)));
    assert.ok(s.maxAbs <= limit, `max |w| ${s.maxAbs} exceeds the limit ${limit}`);
    assert.ok(s.maxAbs > 0.99 * limit, `max |w| ${s.maxAbs} should reach the limit ${limit}`);
    assertNear(s.variance, (limit * limit) / 3, 0.03, 'variance');
    assert.ok(Math.abs(s.mean) < 0.01 * limit, `mean ${s.mean}`);
  });

  it("is dense's default kernel initializer, with fans (inputs, units); the bias starts at zero", () => {
    const model = sequential({ layers: [layers.dense({ units: 48, inputShape: [80] })] });
    const limit = Math.sqrt(6 / (80 + 48));
    const s = stats(model.weights.get('dense/kernel')!);
    assert.ok(s.maxAbs <= limit && s.maxAbs > 0.95 * limit, `max |w| ${s.maxAbs}, limit ${limit}`);
    assertNear(s.variance, (limit * limit) / 3, 0.06, 'variance');
    assert.deepEqual(Array.from(model.weights.get('dense/bias')!.data as Float32Array), new Array(48).fill(0));
  });

  it("is conv2d's default, with Keras' fans (kh·kw·channels, kh·kw·filters)", () => {
    const model = sequential({ layers: [layers.conv2d({ filters: 32, kernelSize: 3, inputShape: [8, 8, 16] })] });
    const limit = Math.sqrt(6 / (3 * 3 * 16 + 3 * 3 * 32));
    const kernel = model.weights.get('conv2d/kernel')!;
    assert.deepEqual(kernel.shape, [32, 16, 3, 3]);
    const s = stats(kernel);
    assert.ok(s.maxAbs <= limit && s.maxAbs > 0.95 * limit, `max |w| ${s.maxAbs}, limit ${limit}`);
    assertNear(s.variance, (limit * limit) / 3, 0.06, 'variance');
  });
});

describe('heNormal and the other initializers', () => {
  it('heNormal has standard deviation sqrt(2 / fanIn), truncated at two (untruncated) deviations', () => {
    const fanIn = 200;
    const s = stats(initialValues('heNormal', [fanIn, 100], [fanIn, 100], new Random(2)));
    assertNear(Math.sqrt(s.variance), Math.sqrt(2 / fanIn), 0.03, 'std');
    assert.ok(s.maxAbs <= (2 * Math.sqrt(2 / fanIn)) / 0.87962566103423978 + 1e-7, `max |w| ${s.maxAbs} beyond the truncation`);
    assert.ok(Math.abs(s.mean) < 0.01 * Math.sqrt(2 / fanIn) * 3, `mean ${s.mean}`);
  });

  it('heNormal as a dense kernelInitializer uses fanIn = inputs', () => {
    const model = sequential({ layers: [layers.dense({ units: 200, kernelInitializer: 'heNormal', inputShape: [50] })] });
    assertNear(Math.sqrt(stats(model.weights.get('dense/kernel')!).variance), Math.sqrt(2 / 50), 0.04, 'std');
  });

  it('glorotNormal has std sqrt(2 / (fanIn + fanOut)); heUniform stays within ±sqrt(6 / fanIn)', () => {
    const g = stats(initialValues('glorotNormal', [300, 100], [300, 100], new Random(3)));
    assertNear(Math.sqrt(g.variance), Math.sqrt(2 / 400), 0.03, 'glorotNormal std');
    const limit = Math.sqrt(6 / 300);
    const h = stats(initialValues('heUniform', [300, 100], [300, 100], new Random(4)));
    assert.ok(h.maxAbs <= limit && h.maxAbs > 0.99 * limit, `heUniform max |w| ${h.maxAbs}, limit ${limit}`);
    assertNear(h.variance, (limit * limit) / 3, 0.03, 'heUniform variance');
  });

  it('zeros and ones fill constants', () => {
    assert.deepEqual(Array.from(initialValues('zeros', [2, 3], [2, 3], new Random(5)).data), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(initialValues('ones', [4], [4, 4], new Random(5)).data), [1, 1, 1, 1]);
  });

  it('rejects an unknown initializer name, listing the known ones', () => {
    assertThrowsKiln(
      () => layers.dense({ units: 2, kernelInitializer: 'orthogonal' as never }),
      'INVALID_ARGUMENT',
      '"orthogonal"',
      'glorotUniform',
    );
  });
});

describe('initial weights are reproducible from the seed', () => {
  const build = (seed?: number) =>
    sequential({
      seed,
      layers: [layers.conv2d({ filters: 4, kernelSize: 3, inputShape: [6, 6, 2] }), layers.flatten(), layers.dense({ units: 3 })],
    });
  const weightsOf = (m: ReturnType<typeof build>) => new Map([...m.weights].map(([k, t]) => [k, Array.from(t.data as Float32Array)]));

  it('the same seed gives identical weights', () => {
    assert.deepEqual(weightsOf(build(11)), weightsOf(build(11)));
  });

  it('a different seed gives different weights', () => {
    const a = weightsOf(build(11));
    const b = weightsOf(build(12));
    for (const name of ['conv2d/kernel', 'dense/kernel']) assert.notDeepEqual(a.get(name), b.get(name), name);
  });

  it('the default seed is fixed, so two unseeded models start equal', () => {
    assert.deepEqual(weightsOf(build()), weightsOf(build()));
  });

  it("different weights of one model are not copies of each other's stream", () => {
    const m = sequential({ layers: [layers.dense({ units: 4, inputShape: [4] }), layers.dense({ units: 4 })] });
    assert.notDeepEqual(Array.from(m.weights.get('dense/kernel')!.data as Float32Array), Array.from(m.weights.get('dense_1/kernel')!.data as Float32Array));
  });

  it('adding a layer does not change the initial values of the layers before it', () => {
    const small = sequential({ seed: 5, layers: [layers.dense({ units: 3, inputShape: [4] })] });
    const big = sequential({ seed: 5, layers: [layers.dense({ units: 3, inputShape: [4] }), layers.dense({ units: 2 })] });
    assert.deepEqual(Array.from(small.weights.get('dense/kernel')!.data as Float32Array), Array.from(big.weights.get('dense/kernel')!.data as Float32Array));
  });
});
