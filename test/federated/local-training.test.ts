/**
 * A client's local round (src/federated/local-training.ts): weights travel out and back by name,
 * mismatched weights are refused, FedProx's proximal term inside the compiled step pulls the local
 * weights toward the global ones (against μ = 0), and its gradient in one SGD step equals
 * μ(w − w_global), checked against finite differences of μ/2‖w − w_global‖² computed here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { federated, layers, sequential, Tensor } from '../../src/index.js';
import { KilnError } from '../../src/errors.js';
import { blobs } from '../train/helpers.js';

const model = () => sequential({ seed: 5, layers: [layers.dense({ units: 8, activation: 'relu', inputShape: [2] }), layers.dense({ units: 3 })] });

describe('getWeights / setWeights', () => {
  it('round-trips the trainable weights and refuses wrong names, shapes and NaN', () => {
    const m = model();
    const ws = federated.getWeights(m);
    assert.deepEqual(ws.map((x) => x.dims), [[2, 8], [8], [8, 3], [3]]);
    const changed = ws.map((x) => ({ ...x, data: x.data.map((v) => v + 1) }));
    federated.setWeights(m, changed);
    assert.deepEqual(federated.getWeights(m), changed);
    assert.throws(() => federated.setWeights(m, ws.slice(1)), (e: unknown) => e instanceof KilnError && e.code === 'INVALID_SHAPE');
    assert.throws(() => federated.setWeights(m, [{ ...ws[0]!, dims: [8, 2] }, ...ws.slice(1)]), (e: unknown) => e instanceof KilnError && /shape \[2, 8\], got \[8, 2\]/.test(e.message));
    assert.throws(() => federated.setWeights(m, [{ ...ws[0]!, name: 'x' }, ...ws.slice(1)]), (e: unknown) => e instanceof KilnError && /should be/.test(e.message));
    const nan = federated.cloneWeights(ws);
    nan[2]!.data[1] = NaN;
    assert.throws(() => federated.setWeights(m, nan), (e: unknown) => e instanceof KilnError && e.code === 'INVALID_DATA');
    // Nothing changed on the failures.
    assert.deepEqual(federated.getWeights(m), changed);
  });
});

describe('trainLocally with FedProx', () => {
  it('stays closer to the global weights with μ > 0 than with μ = 0', async () => {
    const data = blobs(96, 4);
    const m = model();
    const global = federated.getWeights(m);
    const options = { epochs: 5, batchSize: 16, optimizer: 'sgd', learningRate: 0.1, seed: 3 };
    const plain = await federated.trainLocally(m, global, data, options);
    const prox = await federated.trainLocally(m, global, data, { ...options, proximalMu: 2 });
    const drift = (r: { weights: federated.ModelWeights }) => federated.l2Norm(federated.subtractWeights(r.weights, global));
    assert.equal(plain.numExamples, 96);
    assert.ok(drift(plain) > 0.1, `plain training moved the weights by ${drift(plain)}`);
    assert.ok(drift(prox) < 0.8 * drift(plain), `μ = 2 drift ${drift(prox)} vs μ = 0 drift ${drift(plain)}`);
  });

  it('adds μ(w − w_global) to the gradient, as finite differences of the proximal term say', async () => {
    const data = blobs(24, 6);
    const m = model();
    const w0 = federated.getWeights(m);
    // A global model away from w0, so the proximal gradient is not zero at the first step.
    const global = w0.map((x, k) => ({ ...x, data: x.data.map((v, i) => v + 0.05 * Math.sin(1 + i + 7 * k)) }));
    const mu = 0.7;
    const lr = 0.1;
    const oneStep = async (proximalMu: number) => {
      federated.prepareLocalTraining(m, { optimizer: 'sgd', learningRate: lr, proximalMu });
      federated.setWeights(m, w0);
      const feeds = proximalMu > 0 ? { extraFeeds: () => ({ [federated.GLOBAL_WEIGHTS_INPUT]: new Tensor(federated.flattenWeights(global), [federated.countValues(global)], 'float32') }) } : {};
      const h = await m.fit(data.x, data.y, { epochs: 1, batchSize: 24, shuffle: false, verbose: 0, replicas: 1, ...feeds });
      return { w: federated.flattenWeights(federated.getWeights(m)), loss: h.history.loss![0]! };
    };
    const withMu = await oneStep(mu);
    const without = await oneStep(0);
    const w = federated.flattenWeights(w0);
    const g = federated.flattenWeights(global);
    // P(w) = μ/2 Σ (w − g)², in float64, and its central differences.
    const penalty = (v: Float64Array) => (mu / 2) * v.reduce((a, x, i) => a + (x - g[i]!) ** 2, 0);
    const h = 1e-4;
    let checked = 0;
    for (let i = 0; i < w.length; i += 7) {
      const plus = Float64Array.from(w);
      const minus = Float64Array.from(w);
      plus[i] += h;
      minus[i] -= h;
      const numeric = (penalty(plus) - penalty(minus)) / (2 * h);
      // The compiled step's proximal gradient: what it subtracted beyond plain SGD, over the learning rate.
      const compiled = (without.w[i]! - withMu.w[i]!) / lr;
      assert.ok(Math.abs(compiled - numeric) < 2e-4, `parameter ${i}: step's proximal gradient ${compiled}, finite differences ${numeric}`);
      checked++;
    }
    assert.ok(checked > 5);
    // The reported training loss carries the term too.
    assert.ok(Math.abs(withMu.loss - without.loss - penalty(Float64Array.from(w))) < 1e-4, `${withMu.loss} − ${without.loss}`);
  });
});
