/**
 * The strategies (src/federated/strategies/) against examples worked by hand: FedAvg's example-weighted
 * average, FedAvgM's momentum over two rounds, FedAdam's moments over two rounds, state that survives
 * a checkpoint, and updates that are rejected (NaN/Inf, wrong shape, no examples) without touching
 * the server state.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { federated } from '../../src/index.js';
import { KilnError } from '../../src/errors.js';

const { FedAvg, FedAvgM, FedAdam, FedProx, strategyByName } = federated;
type W = federated.ModelWeights;

/** One weight 'w' of the given values. */
const w = (...values: number[]): W => [{ name: 'w', dims: [values.length], data: Float32Array.from(values) }];
const values = (x: W) => Array.from(x[0]!.data);
const close = (got: number[], want: number[], tol = 1e-6) => got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= tol, `index ${i}: got ${g}, want ${want[i]}`));

describe('FedAvg', () => {
  it('averages the clients weighted by their example counts', () => {
    // (1·[1, 2] + 3·[4, 8]) / 4 = [13/4, 26/4]
    const next = new FedAvg().aggregate(w(0, 0), [{ weights: w(1, 2), numExamples: 1 }, { weights: w(4, 8), numExamples: 3 }], 1);
    close(values(next), [3.25, 6.5]);
  });

  it('FedProx aggregates as FedAvg and carries μ for its clients', () => {
    const s = new FedProx({ proximalMu: 0.5 });
    assert.equal(s.proximalMu, 0.5);
    close(values(s.aggregate(w(0), [{ weights: w(2), numExamples: 1 }, { weights: w(5), numExamples: 2 }], 1)), [4]);
    assert.throws(() => new FedProx({ proximalMu: -1 }), KilnError);
  });
});

describe('FedAvgM', () => {
  it('steps on the pseudo-gradient with server momentum over two rounds', () => {
    const s = new FedAvgM({ serverLearningRate: 1, serverMomentum: 0.9 });
    // Round 1: avg = [0.5, 2]; Δ = g − avg = [0.5, −1]; v = Δ; g' = g − v = [0.5, 2].
    const g1 = s.aggregate(w(1, 1), [{ weights: w(0, 2), numExamples: 1 }, { weights: w(1, 2), numExamples: 1 }], 1);
    close(values(g1), [0.5, 2]);
    // Round 2: avg = [0, 2]; Δ = [0.5, 0]; v = 0.9·[0.5, −1] + [0.5, 0] = [0.95, −0.9]; g'' = [−0.45, 2.9].
    const g2 = s.aggregate(g1, [{ weights: w(0, 2), numExamples: 5 }], 2);
    close(values(g2), [-0.45, 2.9]);
  });

  it('scales the step by the server learning rate, and without momentum is FedAvg at η = 1', () => {
    // Δ = 1 − 3 = −2; g' = 1 − 0.5·(−2) = 2
    close(values(new FedAvgM({ serverLearningRate: 0.5 }).aggregate(w(1), [{ weights: w(3), numExamples: 1 }], 1)), [2]);
    close(values(new FedAvgM().aggregate(w(1), [{ weights: w(3), numExamples: 1 }, { weights: w(6), numExamples: 2 }], 1)), [5]);
  });
});

describe('FedAdam', () => {
  it('follows Reddi et al.’s server Adam over two rounds', () => {
    const s = new FedAdam({ eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 0.01 });
    // Round 1: Δ = 2 − 1 = 1; m = 0.1; v = 0.01; g' = 1 + 0.1·0.1/(0.1 + 0.01) = 1.0909090909…
    const g1 = s.aggregate(w(1), [{ weights: w(2), numExamples: 4 }], 1);
    close(values(g1), [1.0909090909090908]);
    // Round 2: avg = g' − 1, Δ = −1; m = 0.09 − 0.1 = −0.01; v = 0.0099 + 0.01 = 0.0199;
    // g'' = g' + 0.1·(−0.01)/(√0.0199 + 0.01) = 1.0842895272829969
    const g2 = s.aggregate(g1, [{ weights: w(values(g1)[0]! - 1), numExamples: 4 }], 2);
    close(values(g2), [1.0842895272829969]);
  });

  it('restores its moments from a checkpointed state and continues the same way', () => {
    const a = new FedAdam({ tau: 0.01 });
    const g1 = a.aggregate(w(1, -1), [{ weights: w(2, 0), numExamples: 1 }], 1);
    const saved = JSON.parse(JSON.stringify(a.state()));
    const b = new FedAdam({ tau: 0.01 });
    b.restore(saved);
    const next = [{ weights: w(0, 3), numExamples: 1 }];
    assert.deepEqual(values(b.aggregate(g1, next, 2)), values(a.aggregate(g1, next, 2)));
  });
});

describe('rejected updates', () => {
  for (const name of federated.STRATEGY_NAMES) {
    it(`${name} rejects NaN, infinite and wrong-shaped updates and keeps its state`, () => {
      const s = strategyByName(name);
      const good = [{ weights: w(1, 2), numExamples: 1 }];
      assert.throws(() => s.aggregate(w(0, 0), [...good, { weights: w(NaN, 0), numExamples: 1 }], 1), (e: unknown) => e instanceof KilnError && e.code === 'INVALID_DATA' && /NaN/.test(e.message));
      assert.throws(() => s.aggregate(w(0, 0), [{ weights: w(Infinity, 0), numExamples: 1 }], 1), (e: unknown) => e instanceof KilnError && e.code === 'INVALID_DATA');
      assert.throws(() => s.aggregate(w(0, 0), [{ weights: w(1, 2, 3), numExamples: 1 }], 1), (e: unknown) => e instanceof KilnError && e.code === 'INVALID_SHAPE');
      assert.throws(() => s.aggregate(w(0, 0), [{ weights: [{ name: 'v', dims: [2], data: new Float32Array(2) }], numExamples: 1 }], 1), (e: unknown) => e instanceof KilnError && /should be 'w'/.test(e.message));
      assert.throws(() => s.aggregate(w(0, 0), [{ weights: w(1, 2), numExamples: 0 }], 1), KilnError);
      assert.throws(() => s.aggregate(w(0, 0), [], 1), KilnError);
      // The failed rounds left no trace: the same as a fresh strategy's first round.
      assert.deepEqual(values(s.aggregate(w(0, 0), good, 1)), values(strategyByName(name).aggregate(w(0, 0), good, 1)));
    });
  }
});
