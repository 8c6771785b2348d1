/**
 * Example-level DP on clients (src/federated/example-privacy.ts): local training runs fit()'s DP-SGD
 * (one SGD step on the whole data with σ = 0 moves the weights by at most η·C, a hand bound plain
 * training exceeds many times); the ε a simulation reports after each round is the RDP accountant's
 * for the client's q = batch/examples and its local steps so far, within the target; a client
 * refuses a round past its budget; a client joined to a coordinator calibrates σ to the planned
 * rounds and counts its own ε; and bad settings are refused with a KilnError.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join as joinPath } from 'node:path';
import { pino } from 'pino';
import { federated, layers, privacy, sequential } from '../../src/index.js';
import { KilnError } from '../../src/errors.js';
import { join } from '../../src/federated/client/join.js';
import { serve } from '../../src/federated/coordinator/serve.js';
import { makeTempDir } from '../data/fixtures.js';
import { blobs } from '../train/helpers.js';
import { blobs as clientBlobs, TOKENS, writeTinyModel } from './helpers.js';

const model = () => sequential({ seed: 5, layers: [layers.dense({ units: 8, activation: 'relu', inputShape: [2] }), layers.dense({ units: 3 })] });

/** ε of `steps` sampled Gaussian steps at (q, σ), straight from the accountant's functions. */
function epsilonOf(samplingRate: number, noiseMultiplier: number, steps: number, delta = 1e-5): number {
  const rdp = privacy.computeRdp({ samplingRate, noiseMultiplier, steps });
  return privacy.epsilonFromRdp({ orders: privacy.DEFAULT_RDP_ORDERS, rdp, delta }).epsilon;
}

function norm(a: federated.ModelWeights, b: federated.ModelWeights): number {
  let s = 0;
  a.forEach((w, k) => w.data.forEach((v, i) => (s += (v - b[k]!.data[i]!) ** 2)));
  return Math.sqrt(s);
}

describe('trainLocally with example-level privacy', () => {
  it('clips every example inside the step: one SGD step moves the weights by at most η·C', async () => {
    const data = blobs(64, 4);
    const m = model();
    const global = federated.getWeights(m);
    const options = { epochs: 1, batchSize: 64, optimizer: 'sgd', learningRate: 0.5, seed: 3 };
    const plain = await federated.trainLocally(m, global, data, options);
    const clip = 1e-3;
    const clipped = await federated.trainLocally(m, global, data, { ...options, privacy: { l2NormClip: clip, noiseMultiplier: 0, delta: 1e-5 } });
    // The mean of 64 gradients each of norm ≤ C has norm ≤ C; the examples' gradients here are far above C.
    const moved = norm(clipped.weights, global);
    assert.ok(moved > 0 && moved <= 0.5 * clip * (1 + 1e-4), `moved ${moved}, bound ${0.5 * clip}`);
    assert.ok(norm(plain.weights, global) > 50 * moved, `plain ${norm(plain.weights, global)} against clipped ${moved}`);
  });

  it("refuses FedProx's proximal term and a privacy without σ", async () => {
    const m = model();
    const g = federated.getWeights(m);
    await assert.rejects(federated.trainLocally(m, g, blobs(32, 1), { proximalMu: 0.1, privacy: { l2NormClip: 1, noiseMultiplier: 1, delta: 1e-5 } }), (e: unknown) => e instanceof KilnError && /proximal term/.test(e.message));
    await assert.rejects(federated.trainLocally(m, g, blobs(32, 1), { privacy: { l2NormClip: 1, targetEpsilon: 3, delta: 1e-5 } }), (e: unknown) => e instanceof KilnError && /needs the noise multiplier/.test(e.message));
  });
});

describe('simulate with example-level privacy', () => {
  it("reports after every round the accountant's ε for the client's q and local steps, within the target", async () => {
    const starts: federated.ExamplePrivacyRun[] = [];
    const r = await federated.simulate({
      dataset: 'embedded',
      clients: 2,
      rounds: 3,
      trainLimit: 400,
      testLimit: 100,
      batchSize: 50,
      localOptimizer: 'adam',
      learningRate: 2e-3,
      seed: 1,
      privacy: { unit: 'example', l2NormClip: 1, targetEpsilon: 4, delta: 1e-5 },
      onStart: (i) => starts.push(i.privacy!),
    });
    const p = r.privacy!;
    assert.deepEqual(starts, [p]);
    assert.deepEqual(r.clientSizes, [200, 200]);
    assert.deepEqual(p.samplingRates, [0.25, 0.25]);
    assert.deepEqual(p.stepsPerRound, [4, 4]);
    assert.equal(p.noiseMultiplier, privacy.noiseMultiplierFor({ targetEpsilon: 4, delta: 1e-5, samplingRate: 0.25, steps: 12 }));
    assert.match(r.setting, /example-dp iid/);
    r.rounds.forEach((x, k) => {
      const expected = epsilonOf(0.25, p.noiseMultiplier, 4 * (k + 1));
      assert.ok(Math.abs(x.epsilon! - expected) <= 1e-9 * expected, `round ${x.round}: ε ${x.epsilon} against ${expected}`);
    });
    const last = r.rounds.at(-1)!.epsilon!;
    assert.ok(last > 3.9 && last <= 4 * 1.01, `ε after the planned rounds ${last}`);
  });

  it('refuses both units at once, FedProx, and bad budgets', async () => {
    const base = { dataset: 'embedded', clients: 2, rounds: 1, trainLimit: 200, testLimit: 50 } as const;
    const ok = { unit: 'example', l2NormClip: 1, targetEpsilon: 8, delta: 1e-5 } as const;
    const refused = async (options: federated.SimulateOptions, pattern: RegExp) => assert.rejects(federated.simulate({ ...base, ...options }), (e: unknown) => e instanceof KilnError && pattern.test(e.message));
    await refused({ privacy: ok, wrapStrategy: (s, plan) => federated.dpFedAvg({ strategy: s, targetEpsilon: 8, clipNorm: 1, ...plan }) }, /example-level privacy and DP-FedAvg .* at once/);
    await refused({ privacy: ok, strategy: 'fedprox', strategySettings: { proximalMu: 0.1 } }, /FedProx's proximal term/);
    await refused({ privacy: { ...ok, targetEpsilon: 0 } }, /targetEpsilon must be a finite number > 0, got 0/);
    await refused({ privacy: { ...ok, targetEpsilon: -1 } }, /targetEpsilon must be a finite number > 0/);
    await refused({ privacy: { ...ok, delta: 1 / 200 } }, /delta must be in \(0, 1\/N\) for N = 200/);
    await refused({ privacy: { ...ok, noiseMultiplier: 1 } }, /exactly one of targetEpsilon and noiseMultiplier, got both/);
    await refused({ privacy: { unit: 'example', l2NormClip: 1 } }, /got neither/);
    await refused({ privacy: { ...ok, l2NormClip: 0 } }, /l2NormClip must be a finite number > 0/);
    await refused({ privacy: { ...ok, unit: 'client' as never } }, /privacy.unit must be 'example'/);
  });
});

describe('ClientPrivacy', () => {
  it('counts rounds and refuses the one that would pass the budget', () => {
    const shape = { examples: 1000, batchSize: 100, epochs: 1 };
    const p = federated.planClientPrivacy({ unit: 'example', l2NormClip: 1, targetEpsilon: 2 }, shape, 3);
    assert.equal(p.delta, 1e-5);
    assert.equal(p.epsilon(), 0);
    for (let k = 1; k <= 3; k++) {
      p.checkBudget(shape);
      assert.equal(p.recordRound(shape), epsilonOf(0.1, p.noiseMultiplier, 10 * k));
    }
    assert.ok(p.epsilon() <= 2 * 1.01);
    assert.throws(() => p.checkBudget(shape), (e: unknown) => e instanceof KilnError && /another round \(10 DP-SGD steps\) would spend ε = .*over this client's budget ε = 2/.test(e.message));
  });
});

describe('join with example-level privacy', () => {
  it('trains with DP-SGD calibrated to the planned rounds and reports its own ε per round', async () => {
    const { dir, remove } = await makeTempDir();
    const modelFile = await writeTinyModel(dir);
    const handle = await serve({ model: modelFile, tokens: TOKENS, rounds: 2, clientsPerRound: 2, port: 0, logger: pino({ level: 'silent' }), checkpointDir: joinPath(dir, 'ck'), batchSize: 12 });
    const seen: federated.JoinedRound[] = [];
    const data = clientBlobs(3, 48);
    await Promise.all([
      join(handle.url, { dataset: data, token: TOKENS.alice!, privacy: { unit: 'example', l2NormClip: 1, targetEpsilon: 5, delta: 1e-3 }, onRound: (r) => seen.push(r) }),
      join(handle.url, { dataset: clientBlobs(4, 48), token: TOKENS.bob! }),
    ]);
    await handle.finished;
    await handle.close();
    const sigma = privacy.noiseMultiplierFor({ targetEpsilon: 5, delta: 1e-3, samplingRate: 12 / 48, steps: 2 * 4 });
    assert.deepEqual(seen.map((r) => r.noiseMultiplier), [sigma, sigma]);
    seen.forEach((r, k) => assert.equal(r.epsilon, epsilonOf(0.25, sigma, 4 * (k + 1), 1e-3)));
    assert.ok(seen[1]!.epsilon! <= 5 * 1.01);
    await assert.rejects(join(handle.url, { dataset: data, token: TOKENS.alice!, privacy: { unit: 'example', l2NormClip: 1, targetEpsilon: 5, delta: 0.1 } }), /delta must be in \(0, 1\/N\) for N = 48/);
    await remove();
  });
});
