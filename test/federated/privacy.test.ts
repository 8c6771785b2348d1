/**
 * DP-FedAvg's aggregation (src/federated/privacy.ts): each update is clipped to norm C before it
 * counts, the mean of the clipped updates is what the wrapped strategy receives without noise, and
 * the noise on the sum has standard deviation σC.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { federated } from '../../src/index.js';

type W = federated.ModelWeights;
const w = (...values: number[]): W => [{ name: 'w', dims: [values.length], data: Float32Array.from(values) }];

describe('clipUpdate', () => {
  it('scales an update above the clip norm down to it and leaves a smaller one alone', () => {
    const big = federated.clipUpdate(w(3, 4), 1);
    assert.ok(Math.abs(big.norm - 5) < 1e-9);
    assert.ok(Math.abs(federated.l2Norm(big.delta) - 1) < 1e-6);
    assert.deepEqual(Array.from(big.delta[0]!.data), [Math.fround(0.6), Math.fround(0.8)]);
    assert.deepEqual(Array.from(federated.clipUpdate(w(0.3, 0.4), 1).delta[0]!.data), [Math.fround(0.3), Math.fround(0.4)]);
  });
});

describe('DpFedAvg', () => {
  it('bounds every client’s contribution by the clip norm (no noise: the mean of clipped deltas)', () => {
    const dp = new federated.DpFedAvg({ strategy: new federated.FedAvg(), clipNorm: 1, noiseMultiplier: 0, samplingRate: 1, normal: federated.seededNormal(1) });
    // Deltas [30, 40] (norm 50 → [0.6, 0.8]) and [0, 0.5] (kept): mean [0.3, 0.65]; example counts do not weigh.
    const next = dp.aggregate(w(1, 1), [{ weights: w(31, 41), numExamples: 1000 }, { weights: w(1, 1.5), numExamples: 1 }], 1);
    assert.deepEqual(dp.lastNorms.map((n) => Math.round(n * 1e6) / 1e6), [50, 0.5]);
    Array.from(next[0]!.data).forEach((v, i) => assert.ok(Math.abs(v - [1.3, 1.65][i]!) < 1e-6, `${v}`));
    // A client alone cannot move the model further than C / (number of clients).
    const alone = dp.aggregate(w(0, 0), [{ weights: w(1e6, -1e6), numExamples: 1 }, { weights: w(0, 0), numExamples: 1 }], 2);
    assert.ok(federated.l2Norm(alone) <= 0.5 + 1e-6);
  });

  it('adds Gaussian noise of standard deviation σC to the sum', () => {
    const n = 100_000;
    const zeros = new Array<number>(n).fill(0);
    const dp = new federated.DpFedAvg({ strategy: new federated.FedAvg(), clipNorm: 2, noiseMultiplier: 1.5, samplingRate: 0.5, normal: federated.seededNormal(9) });
    const clients = 4;
    const next = dp.aggregate(w(...zeros), Array.from({ length: clients }, () => ({ weights: w(...zeros), numExamples: 1 })), 1);
    const sum = Array.from(next[0]!.data, (v) => v * clients);
    const mean = sum.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(sum.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
    assert.ok(Math.abs(std - 3) < 0.05, `std ${std}, want σC = 3`);
  });
});

describe('dpFedAvg (calibrated)', () => {
  it('picks σ so the planned rounds spend at most the target ε, and reports ε spent after each round', () => {
    const dp = federated.dpFedAvg({ strategy: new federated.FedAvg(), targetEpsilon: 8, delta: 1e-5, clipNorm: 1, clients: 100, clientsPerRound: 10, rounds: 20, normal: federated.seededNormal(2) });
    assert.equal(dp.samplingRate, 0.1);
    const epsilons: number[] = [];
    let g = w(0, 0);
    for (let r = 1; r <= 20; r++) {
      g = dp.aggregate(g, [{ weights: w(0.1, 0.1), numExamples: 1 }], r);
      epsilons.push(dp.epsilon()!);
    }
    for (let r = 1; r < 20; r++) assert.ok(epsilons[r]! > epsilons[r - 1]!, 'ε grows every round');
    assert.ok(epsilons[19]! <= 8 && epsilons[19]! > 7.9, `ε after the planned rounds: ${epsilons[19]}`);
    // A resumed strategy replays the accountant to the same ε.
    const again = federated.dpFedAvg({ strategy: new federated.FedAvg(), targetEpsilon: 8, delta: 1e-5, clipNorm: 1, clients: 100, clientsPerRound: 10, rounds: 20 });
    again.restore(JSON.parse(JSON.stringify(dp.state())));
    assert.ok(Math.abs(again.epsilon()! - epsilons[19]!) < 1e-9);
  });
});
