/**
 * DP-SGD in fit (src/train/privacy/): per-example gradients against each example's gradient taken
 * alone (a batch of 1 through the plain step), clipping against a hand computation, the noiseless
 * unclipped step against plain SGD, the noise's spread against σ·C/B, ε per epoch against the
 * accountant, and the errors for what per-example clipping does not cover.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from '../../../src/graph/graph.js';
import { layers, losses, optimizers, sequential, Tensor } from '../../../src/index.js';
import { Random } from '../../../src/random.js';
import { dpSgdGradient } from '../../../src/train/privacy/dp-sgd-step.js';
import { computeRdp, DEFAULT_RDP_ORDERS, epsilonFromRdp } from '../../../src/train/privacy/rdp-accountant.js';
import { kilnError, maxAbsDifference, weightsOf } from '../helpers.js';

const PRIVACY_OFF = { l2NormClip: 1e9, noiseMultiplier: 0, delta: 1e-5 };

/** A small CNN: conv (with bias) → relu → flatten → dense (with bias), so both per-example rules run. */
function smallCnn() {
  const model = sequential({
    seed: 5,
    layers: [
      layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [6, 6, 2] }),
      layers.conv2d({ filters: 2, kernelSize: 2, strides: 2, activation: 'relu' }),
      layers.flatten(),
      layers.dense({ units: 4 }),
    ],
  });
  model.compile({ optimizer: optimizers.sgd({ learningRate: 1 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
  return model;
}

function images(n: number, seed: number) {
  const rng = new Random(seed);
  return {
    x: new Tensor(Float32Array.from({ length: n * 6 * 6 * 2 }, () => rng.normal()), [n, 6, 6, 2], 'float32'),
    y: new Tensor(Int32Array.from({ length: n }, (_, i) => i % 4), [n], 'int32'),
  };
}

/** Flat difference after − before of all weights, in a fixed key order. */
function delta(before: Record<string, number[]>, after: Record<string, number[]>): number[] {
  return Object.keys(before).sort().flatMap((k) => after[k]!.map((v, i) => v - before[k]![i]!));
}
const norm = (v: number[]) => Math.sqrt(v.reduce((s, a) => s + a * a, 0));

describe('DP-SGD in fit', () => {
  const n = 4;
  const { x, y } = images(n, 11);

  /** Each example's own gradient: one plain SGD step (lr 1) on it alone, from the same start. */
  async function perExampleGradients(): Promise<number[][]> {
    const grads: number[][] = [];
    for (let i = 0; i < n; i++) {
      const m = smallCnn();
      const before = weightsOf(m);
      await m.fit(x.slice(i, i + 1), y.slice(i, i + 1), { epochs: 1, batchSize: 1, verbose: 0, replicas: 1 });
      grads.push(delta(before, weightsOf(m)).map((d) => -d));
      m.dispose();
    }
    return grads;
  }

  it('with no noise and a clip no gradient reaches, the step is plain SGD’s', async () => {
    const plain = smallCnn();
    const priv = smallCnn();
    assert.equal(maxAbsDifference(weightsOf(plain), weightsOf(priv)), 0);
    await plain.fit(x, y, { epochs: 2, batchSize: 2, verbose: 0, replicas: 1, shuffle: false });
    const h = await priv.fit(x, y, { epochs: 2, batchSize: 2, verbose: 0, shuffle: false, privacy: PRIVACY_OFF });
    const diff = maxAbsDifference(weightsOf(plain), weightsOf(priv));
    assert.ok(diff < 1e-5, `DP step differs from SGD by ${diff}`);
    assert.equal(h.history.epsilon!.length, 2);
    assert.equal(h.history.epsilon![0], Infinity); // σ = 0 buys no privacy
    plain.dispose();
    priv.dispose();
  });

  it('each example’s gradient (its norm and direction) is the gradient of that example alone, clipped to C', async () => {
    const g = await perExampleGradients();
    const norms = g.map(norm);
    // A clip between the norms: some examples are scaled down, the others pass whole.
    const sorted = [...norms].sort((a, b) => a - b);
    const clip = (sorted[1]! + sorted[2]!) / 2;
    const expected = g[0]!.map((_, k) => g.reduce((s, gi, i) => s + gi[k]! * Math.min(1, clip / (norms[i]! + 1e-6)), 0) / n);
    const m = smallCnn();
    const before = weightsOf(m);
    await m.fit(x, y, { epochs: 1, batchSize: n, verbose: 0, privacy: { l2NormClip: clip, noiseMultiplier: 0, delta: 1e-5 } });
    const got = delta(before, weightsOf(m)).map((d) => -d);
    const worst = Math.max(...got.map((v, k) => Math.abs(v - expected[k]!)));
    assert.ok(worst < 1e-5 * Math.max(1, norm(expected)), `clipped mean gradient differs by ${worst}`);
    // Clipping bounds every example's share: the update is at most C (here C < the largest norm).
    assert.ok(norm(got) <= clip + 1e-6, `update norm ${norm(got)} > C ${clip}`);
    m.dispose();
  });

  it('clipping by hand: a linear model, MSE, two examples with gradients of norm 5 and 0.5, C = 1', async () => {
    // y = w·x + b from w = 0, b = 0; per-example loss (w·x + b − t)², gradient −2t·[x, 1].
    // Example 1: x = [2, 0], t = 1.25 → gradient −2.5·[2, 0, 1], norm 2.5·√5 ≈ 5.59 → scaled to norm 1.
    // Example 2: x = [0, 0], t = −0.25 → gradient 0.5·[0, 0, 1], norm 0.5 → kept.
    const model = sequential({ seed: 1, layers: [layers.dense({ units: 1, inputShape: [2], kernelInitializer: 'zeros' })] });
    model.compile({ optimizer: optimizers.sgd({ learningRate: 1 }), loss: 'meanSquaredError' });
    const xs = new Tensor(Float32Array.of(2, 0, 0, 0), [2, 2], 'float32');
    const ts = new Tensor(Float32Array.of(1.25, -0.25), [2, 1], 'float32');
    await model.fit(xs, ts, { epochs: 1, batchSize: 2, verbose: 0, shuffle: false, privacy: { l2NormClip: 1, noiseMultiplier: 0, delta: 1e-5 } });
    const g1 = [-5, 0, -2.5].map((v) => v / (2.5 * Math.sqrt(5) + 1e-6));
    const g2 = [0, 0, 0.5];
    const mean = g1.map((v, k) => (v + g2[k]!) / 2);
    const w = weightsOf(model);
    const kernel = Object.keys(w).find((k) => k.includes('kernel'))!;
    const bias = Object.keys(w).find((k) => k.includes('bias'))!;
    const got = [...w[kernel]!, ...w[bias]!];
    mean.forEach((v, k) => assert.ok(Math.abs(got[k]! + v) < 1e-6, `weight ${k}: ${got[k]} vs ${-v}`));
    model.dispose();
  });

  it('the noise has mean 0 and standard deviation σ·C/B, fresh at every step', async () => {
    // All-zero inputs and targets from zero weights: every gradient is 0, so an SGD step (lr 1) moves
    // the weights by exactly −noise/B.
    const units = 40;
    const inputs = 24;
    const model = sequential({ seed: 2, layers: [layers.dense({ units, inputShape: [inputs], kernelInitializer: 'zeros' })] });
    model.compile({ optimizer: optimizers.sgd({ learningRate: 1 }), loss: 'meanSquaredError' });
    const zeros = model.getWeights();
    const start = new Map([...zeros].map(([k, t]) => [k, new Tensor(new Float32Array(t.size), [...t.shape], 'float32')]));
    const b = 8;
    const clip = 0.5;
    const sigma = 3;
    const draws: number[][] = [];
    for (let k = 0; k < 3; k++) {
      model.setWeights(start);
      const before = weightsOf(model);
      await model.fit(new Tensor(new Float32Array(b * inputs), [b, inputs], 'float32'), new Tensor(new Float32Array(b * units), [b, units], 'float32'), {
        epochs: 1,
        batchSize: b,
        verbose: 0,
        privacy: { l2NormClip: clip, noiseMultiplier: sigma, delta: 1e-5 },
      });
      draws.push(delta(before, weightsOf(model)));
    }
    const all = draws.flat();
    const mean = all.reduce((s, v) => s + v, 0) / all.length;
    const sd = Math.sqrt(all.reduce((s, v) => s + (v - mean) ** 2, 0) / (all.length - 1));
    const want = (sigma * clip) / b;
    // 3 × 1,000 draws: the sample sd is within 5% of the true one far beyond 4 standard errors (1.3%).
    assert.ok(Math.abs(sd / want - 1) < 0.05, `noise sd ${sd}, expected σC/B = ${want}`);
    assert.ok(Math.abs(mean) < (4 * want) / Math.sqrt(all.length), `noise mean ${mean}`);
    assert.notDeepEqual(draws[0], draws[1]);
    model.dispose();
  });

  it('logs ε per epoch as the accountant computes it, and targetEpsilon picks a σ that stays within it', async () => {
    const { x: bx, y: by } = images(64, 3);
    const m = smallCnn();
    const h = await m.fit(bx, by, { epochs: 3, batchSize: 16, verbose: 0, privacy: { l2NormClip: 1, noiseMultiplier: 1.1, delta: 1e-5 } });
    const eps = h.history.epsilon!;
    eps.forEach((e, epoch) => {
      const want = epsilonFromRdp({ orders: DEFAULT_RDP_ORDERS, rdp: computeRdp({ samplingRate: 16 / 64, noiseMultiplier: 1.1, steps: 4 * (epoch + 1) }), delta: 1e-5 }).epsilon;
      assert.ok(Math.abs(e - want) < 1e-9, `epoch ${epoch}: ε ${e} vs ${want}`);
    });
    assert.equal(m.privacySpent!.steps, 12);
    m.dispose();
    const t = smallCnn();
    const ht = await t.fit(bx, by, { epochs: 2, batchSize: 16, verbose: 0, privacy: { l2NormClip: 1, targetEpsilon: 3, delta: 1e-5 } });
    const final = ht.history.epsilon!.at(-1)!;
    assert.ok(final <= 3 && final > 2.98, `ε after the planned epochs ${final}`);
    t.dispose();
  });

  it('what per-example clipping does not cover is a KilnError naming it', async () => {
    const bn = sequential({ seed: 1, layers: [layers.dense({ units: 3, inputShape: [2] }), layers.batchNormalization(), layers.dense({ units: 2 })] });
    bn.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy' });
    const x2 = new Tensor(new Float32Array(8), [4, 2], 'float32');
    const y2 = new Tensor(Int32Array.of(0, 1, 0, 1), [4], 'int32');
    await assert.rejects(bn.fit(x2, y2, { verbose: 0, privacy: PRIVACY_OFF }), kilnError('INVALID_ARGUMENT', 'batch normalization'));
    await assert.rejects(bn.fit(x2, y2, { verbose: 0, privacy: { l2NormClip: 1, delta: 1e-5 } }), kilnError('INVALID_ARGUMENT', 'exactly one of noiseMultiplier and targetEpsilon'));
    await assert.rejects(bn.fit(x2, y2, { verbose: 0, replicas: 2, privacy: PRIVACY_OFF }), kilnError('INVALID_ARGUMENT', '1 replica'));
    bn.dispose();

    // A parameter read by an op with no per-example rule (a scale, as in layer normalization).
    const g = new Graph('t');
    const input = g.input('input', 'float32', ['N', 3]);
    const labels = g.input('labels', 'float32', ['N', 3]);
    const scale = g.input('scale:value', 'float32', [3]);
    const out = g.op1('Mul', [input, scale]);
    const loss = g.op1('ReduceMean', [g.op1('Mul', [g.op1('Sub', [out, labels]), g.op1('Sub', [out, labels])])], { keepdims: 0 });
    assert.throws(
      () => dpSgdGradient(1)({ graph: g, loss, labels, params: [scale], layout: [{ name: 'scale', offset: 0, size: 3, shape: [3] }], totalSize: 3, gradients: undefined }),
      kilnError('NO_GRADIENT', "parameter 'scale'", 'Mul'),
    );
  });
});
