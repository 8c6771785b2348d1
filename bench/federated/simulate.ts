/*
 * Federated simulation of the tutorial CNN on Fashion-MNIST (10 clients, 1 local epoch per round),
 * Kiln's `federated.simulate` against a PyTorch reference of the same simulation (reference.py: the
 * same split, read from the indices this bench writes; the same initial weights, Kiln's, which this
 * bench writes (starting-point.ts) and the reference loads and checks logit for logit; the same local
 * optimizer, batch and rounds), measured in the same invocation, one setting after the other, Kiln
 * then PyTorch:
 *
 *   1. IID FedAvg, local Adam lr 1e-3 (state reset every round)         target ≥ 88% after 20 rounds
 *   2. 2-class non-IID FedAvg, local SGD lr 0.02 (the issue's calibration) Kiln within 2 points of PyTorch
 *   3. 2-class non-IID, Kiln's best strategy (--best, tuned once)         target ≥ 70%
 *   4. DP-FedAvg on the IID split at ε = --dp-epsilon, δ = 1e-5           target ≥ 80%
 *   5. central training on the union of the shards, same optimizer, rounds × local epochs epochs
 *   6. example-level DP-FedAvg on the IID split: every client trains with DP-SGD (--dp-batch,
 *      --dp-optimizer, --dp-lr, --dp-example-clip), ε ≤ --dp-epsilon per client over all its local
 *      steps (δ = 1e-5)                                                  target ≥ 80%
 *
 *   node dist/bench/federated/simulate.js [--rounds 20] [--train-limit 60000] [--test-limit 10000]
 *       [--settings 1,2,3,4,5,6] [--best fedavgm] [--dp-epsilon 8] [--dp-clip 1] [--dp-batch 512]
 *       [--dp-optimizer adam] [--dp-lr 0.02] [--dp-example-clip 1] [--no-torch] [--seed 42]
 *       [--batch 32] [--local-epochs 1] [--maxpool-ties all|first] [--torch-threads 2]
 *
 * Full size (60,000 training images × 20 rounds per setting) is ~20 epochs of Fashion-MNIST per
 * setting: `--train-limit` and `--rounds` make short runs (the first N training images are split).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { datasets, federated, Sequential } from '../../src/index.js';
import type { CompileArgs } from '../../src/train/model.js';
import type { TrainingStepOptions } from '../../src/train/training-step.js';
import { saveStartingPoint } from './starting-point.js';
import { tutorialCnn } from '../../src/layers/presets.js';
import { benchArgs } from '../args.js';
import { cpuDescription, findTorchPython, fmt, peakRssMiB, table, torchEnv } from '../train/common.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The .py lives next to the .ts source: dist/bench/federated → bench/federated. */
const REFERENCE = resolve(here, '../../../bench/federated/reference.py');

const args = benchArgs('node dist/bench/federated/simulate.js [flags]', {
  rounds: { type: 'number', default: 20 },
  clients: { type: 'number', default: 10 },
  batch: { type: 'number', default: 32, help: 'local batch size, both sides (one bigger than a shard makes each local epoch one full-batch step, which no shuffle changes)' },
  'local-epochs': { type: 'number', default: 1, help: 'local epochs per round, both sides' },
  'train-limit': { type: 'number', default: 60000, help: 'first N training images, split among the clients' },
  'test-limit': { type: 'number', default: 10000, help: 'first N test images for the accuracy after each round' },
  settings: { type: 'numbers', default: [1, 2, 3, 4, 5, 6], help: 'which settings to run (see the header)' },
  best: { type: 'string', default: 'fedavgm', help: "setting 3's strategy: fedprox, fedavgm or fedadam" },
  'server-momentum': { type: 'number', default: 0.9, help: "setting 3's FedAvgM momentum" },
  'server-lr': { type: 'number', help: "setting 3's server learning rate (FedAvgM default 1, FedAdam default 0.01)" },
  tau: { type: 'number', default: 1e-3, help: "setting 3's FedAdam τ" },
  'proximal-mu': { type: 'number', default: 0.1, help: "setting 3's FedProx μ" },
  'dp-epsilon': { type: 'number', default: 8 },
  'dp-clip': { type: 'number', default: 1, help: "DP-FedAvg's clip norm C" },
  'dp-batch': { type: 'number', default: 512, help: "setting 6's local batch size (q = batch / a client's examples)" },
  'dp-optimizer': { type: 'string', default: 'adam', help: "setting 6's local optimizer" },
  'dp-lr': { type: 'number', default: 0.02, help: "setting 6's local learning rate" },
  'dp-example-clip': { type: 'number', default: 1, help: "setting 6's per-example gradient clip norm C" },
  'no-torch': { type: 'boolean', help: 'Kiln only' },
  'maxpool-ties': { type: 'string', default: 'all', help: "Kiln's MaxPool gradient on tied maxima: 'all' (Kiln's layer models' own rule: every tied position) or 'first' (PyTorch's)" },
  'torch-threads': { type: 'number', default: 2, help: "PyTorch's intra-op threads (1 holds up better on a machine other work loads)" },
  seed: { type: 'number', default: 42 },
});
const { rounds, clients, seed, batch } = args;
const localEpochs = args['local-epochs'];
const ties = args['maxpool-ties'];
if (ties !== 'all' && ties !== 'first') {
  console.error(`--maxpool-ties must be 'all' or 'first', got '${ties}'`);
  process.exit(2);
}

/**
 * The tutorial CNN as Kiln's layer models train it, except that with --maxpool-ties first its MaxPool
 * gradient goes to a window's first maximum only, as PyTorch's does (Sequential's default, every tied
 * maximum, is faster; ties are common over Fashion-MNIST's blank background).
 */
class BenchSequential extends Sequential {
  override compile(compileArgs: CompileArgs, step: TrainingStepOptions = {}): void {
    super.compile(compileArgs, { ...step, gradients: { ...step.gradients, maxPoolTies: ties as 'all' | 'first' } });
  }
}

const data = await datasets.fashionMnist();
const trainN = Math.min(args['train-limit'], data.train.images.shape[0]!);
const testN = Math.min(args['test-limit'], data.test.images.shape[0]!);
console.log(`${cpuDescription()}`);
console.log(`Fashion-MNIST: ${trainN} training images over ${clients} clients, ${testN} test images; tutorial CNN; ${rounds} rounds of ${localEpochs} local epoch(s), batch ${batch} (setting 6: --dp-batch); Kiln's MaxPool gradient to ${ties === 'all' ? 'every tied maximum (its layer models\' rule)' : "a window's first maximum (PyTorch's rule)"}`);

const env = torchEnv();
const python = args['no-torch'] ? undefined : findTorchPython(env);
if (!args['no-torch'] && !python) console.log('PyTorch not importable: Kiln only');
const work = mkdtempSync(join(tmpdir(), 'kiln-fed-bench-'));

interface Curve {
  accuracy: number[];
  seconds: number;
}

/** Test images on which the reference must reproduce Kiln's initial logits before it trains. */
const CHECK_IMAGES = 64;

/** A fresh tutorial CNN seeded as `federated.simulate`'s own, and its starting point written for the reference. */
async function startingModel(label: string): Promise<{ model: Sequential; init: string }> {
  const model = new BenchSequential({ layers: tutorialCnn([28, 28, 1], 10), seed });
  const init = join(work, `${label.replace(/\W+/g, '-')}-init`);
  const logits = await model.predict(data.test.images.slice(0, Math.min(CHECK_IMAGES, testN)));
  await saveStartingPoint(init, { weights: federated.getWeights(model), logits });
  return { model, init };
}

/** Runs the PyTorch reference on the given shards from Kiln's starting point `init`; resolves with its accuracy per round. */
function torchRun(label: string, shards: Int32Array[], init: string, optimizer: string, lr: number, central = false): Promise<Curve | undefined> {
  if (!python) return Promise.resolve(undefined);
  const file = join(work, `${label.replace(/\W+/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ shards: shards.map((s) => Array.from(s)) }));
  const argv = [REFERENCE, '--split', file, '--init', init, '--rounds', String(rounds), '--optimizer', optimizer, '--lr', String(lr), '--batch', String(batch), '--local-epochs', String(localEpochs), '--test-limit', String(testN), '--threads', String(args['torch-threads']), '--seed', String(seed), ...(central ? ['--central'] : [])];
  return new Promise((done, fail) => {
    const child = spawn(python, argv, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const curve: Curve = { accuracy: [], seconds: 0 };
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const r = JSON.parse(buffer.slice(0, nl)) as { round: number; accuracy: number; loss: number; seconds: number } | { initialLogitsMaxDiff: number; images: number };
        buffer = buffer.slice(nl + 1);
        if ('initialLogitsMaxDiff' in r) {
          console.log(`  PyTorch ${label}: starts from Kiln's weights (initial logits on ${r.images} test images within ${r.initialLogitsMaxDiff.toExponential(2)} of Kiln's)`);
          continue;
        }
        curve.accuracy.push(r.accuracy);
        curve.seconds += r.seconds;
        console.log(`  PyTorch ${label} round ${r.round}: ${(100 * r.accuracy).toFixed(2)}% test loss ${r.loss.toFixed(4)} (${r.seconds.toFixed(1)} s)`);
      }
    });
    child.on('exit', (code) => (code === 0 ? done(curve) : fail(new Error(`reference.py exited with ${code}`))));
  });
}

/** Kiln's simulation of one setting, printing each round. */
async function kilnRun(label: string, options: federated.SimulateOptions): Promise<Curve & { epsilon?: number }> {
  const r = await federated.simulate({
    dataset: data,
    clients,
    rounds,
    trainLimit: trainN,
    testLimit: testN,
    seed,
    model: new BenchSequential({ layers: tutorialCnn([28, 28, 1], 10), seed }),
    batchSize: batch,
    localEpochs,
    ...options,
    onRound: (x) => console.log(`  Kiln ${label} round ${x.round}: ${(100 * x.accuracy).toFixed(2)}% test loss ${x.loss.toFixed(4)} (${x.seconds.toFixed(1)} s)${x.epsilon !== undefined ? ` ε ${x.epsilon.toFixed(2)}` : ''}`),
  });
  return { accuracy: r.rounds.map((x) => x.accuracy), seconds: r.rounds.reduce((a, x) => a + x.seconds, 0), epsilon: r.rounds.at(-1)!.epsilon };
}

/** Central training: the union of the shards, one model, `rounds` × local epochs epochs with continuing optimizer state. */
async function kilnCentral(model: Sequential, optimizer: string, lr: number): Promise<Curve> {
  federated.prepareLocalTraining(model, { optimizer, learningRate: lr });
  const x = data.train.images.slice(0, trainN);
  const y = data.train.labels.slice(0, trainN);
  const tx = data.test.images.slice(0, testN);
  const ty = data.test.labels.slice(0, testN);
  const curve: Curve = { accuracy: [], seconds: 0 };
  for (let e = 1; e <= rounds * localEpochs; e++) {
    const t0 = performance.now();
    await model.fit(x, y, { epochs: 1, batchSize: batch, verbose: 0, seed: seed + e });
    const s = (performance.now() - t0) / 1000;
    curve.seconds += s;
    const acc = (await model.evaluate(tx, ty, { batchSize: 1000 })).accuracy!;
    curve.accuracy.push(acc);
    console.log(`  Kiln central epoch ${e}: ${(100 * acc).toFixed(2)}% (${s.toFixed(1)} s)`);
  }
  return curve;
}

const labels = data.train.labels.slice(0, trainN).data as Int32Array;
const iid = federated.iidSplit(trainN, clients, seed);
const nonIid = federated.nonIidSplit(labels, 10, clients, 2, seed);
const pct = (c: Curve | undefined) => (c ? `${(100 * c.accuracy.at(-1)!).toFixed(2)}%` : '–');
const rows: string[][] = [];
const want = new Set(args.settings);

if (want.has(1)) {
  console.log('\n1. IID FedAvg, local Adam lr 1e-3');
  const start = await startingModel('iid fedavg');
  const k = await kilnRun('iid fedavg', { model: start.model, strategy: 'fedavg', localOptimizer: 'adam', learningRate: 1e-3 });
  const t = await torchRun('iid fedavg', iid, start.init, 'adam', 1e-3);
  rows.push(['1. IID FedAvg (Adam 1e-3)', pct(k), pct(t), fmt(k.seconds), t ? fmt(t.seconds) : '–', '≥ 88%', k.accuracy.at(-1)! >= 0.88 ? 'met' : 'not met']);
}
if (want.has(2)) {
  console.log('\n2. 2-class non-IID FedAvg, local SGD lr 0.02');
  const start = await startingModel('non-iid fedavg');
  const k = await kilnRun('non-iid fedavg', { model: start.model, strategy: 'fedavg', nonIid: 2, localOptimizer: 'sgd', learningRate: 0.02 });
  const t = await torchRun('non-iid fedavg', nonIid, start.init, 'sgd', 0.02);
  const gap = t ? 100 * (k.accuracy.at(-1)! - t.accuracy.at(-1)!) : undefined;
  rows.push(['2. non-IID FedAvg (SGD 0.02)', pct(k), pct(t), fmt(k.seconds), t ? fmt(t.seconds) : '–', 'within 2 points', gap === undefined ? '–' : `${gap >= 0 ? '+' : ''}${gap.toFixed(2)} points: ${Math.abs(gap) <= 2 ? 'met' : 'not met'}`]);
}
if (want.has(3)) {
  const best = args.best;
  const settings: federated.StrategySettings = { serverMomentum: args['server-momentum'], tau: args.tau, proximalMu: args['proximal-mu'], eta: args['server-lr'] ?? 0.01, ...(args['server-lr'] !== undefined ? { serverLearningRate: args['server-lr'] } : {}) };
  console.log(`\n3. 2-class non-IID ${best} (${JSON.stringify(settings)}), local SGD lr 0.02`);
  const k = await kilnRun(`non-iid ${best}`, { strategy: best, strategySettings: settings, nonIid: 2, localOptimizer: 'sgd', learningRate: 0.02 });
  rows.push([`3. non-IID ${best} (SGD 0.02)`, pct(k), '–', fmt(k.seconds), '–', '≥ 70%', k.accuracy.at(-1)! >= 0.7 ? 'met' : 'not met']);
}
if (want.has(4)) {
  const eps = args['dp-epsilon'];
  console.log(`\n4. DP-FedAvg, IID, ε = ${eps}, δ = 1e-5, clip ${args['dp-clip']}, local Adam lr 1e-3`);
  let sigma = 0;
  let dp: federated.DpFedAvg | undefined;
  const k = await kilnRun('dp iid', {
    strategy: 'fedavg',
    localOptimizer: 'adam',
    learningRate: 1e-3,
    wrapStrategy: (s, plan) => {
      dp = federated.dpFedAvg({ strategy: s, targetEpsilon: eps, delta: 1e-5, clipNorm: args['dp-clip'], ...plan, normal: federated.seededNormal(seed) });
      sigma = dp.noiseMultiplier;
      return dp;
    },
  });
  // Why the accuracy is what it is: the noise on the mean update against the clipped signal.
  const d = federated.countValues(federated.getWeights(new Sequential({ layers: tutorialCnn([28, 28, 1], 10) })));
  const norms = [...dp!.lastNorms].sort((a, b) => a - b);
  const noiseNorm = (sigma * args['dp-clip'] * Math.sqrt(d)) / clients;
  console.log(`  σ = ${sigma.toFixed(3)} for ε ≤ ${eps} over ${rounds} rounds at q = 1; noise on the mean update: std ${(sigma * args['dp-clip'] / clients).toFixed(4)} per weight, norm ≈ σC√d/K = ${noiseNorm.toFixed(2)} over d = ${d} weights, against a mean clipped update of norm ≤ C = ${args['dp-clip']} (last round's client update norms before clipping: median ${norms[Math.floor(norms.length / 2)]!.toFixed(3)})`);
  rows.push([`4. DP-FedAvg IID (σ = ${sigma.toFixed(2)}, ε = ${k.epsilon?.toFixed(2)})`, pct(k), '–', fmt(k.seconds), '–', '≥ 80%', k.accuracy.at(-1)! >= 0.8 ? 'met' : 'not met']);
}
if (want.has(6)) {
  const eps = args['dp-epsilon'];
  const [batch, optimizer, lr, clip] = [args['dp-batch'], args['dp-optimizer'], args['dp-lr'], args['dp-example-clip']];
  console.log(`\n6. Example-level DP-FedAvg (DP-SGD on every client), IID, ε ≤ ${eps} per client, δ = 1e-5, clip ${clip} per example, local ${optimizer} lr ${lr}, batch ${batch}`);
  let plan: federated.ExamplePrivacyRun | undefined;
  const k = await kilnRun('example-dp iid', {
    strategy: 'fedavg',
    localOptimizer: optimizer,
    learningRate: lr,
    batchSize: batch,
    privacy: { unit: 'example', l2NormClip: clip, targetEpsilon: eps, delta: 1e-5 },
    onStart: (info) => {
      plan = info.privacy;
      const p = info.privacy!;
      console.log(`  σ = ${p.noiseMultiplier.toFixed(3)} for ε ≤ ${eps} per client over ${rounds} rounds: q = ${p.samplingRates[0]!.toFixed(4)} (batch ${batch} of ${info.clientSizes[0]} examples), ${p.stepsPerRound[0]} DP-SGD steps per round, ${p.stepsPerRound[0]! * rounds} in the run; noise std on a batch's mean gradient σC/B = ${((p.noiseMultiplier * clip) / batch).toFixed(4)}`);
    },
  });
  rows.push([`6. example-level DP-FedAvg IID (σ = ${plan?.noiseMultiplier.toFixed(2)}, ε = ${k.epsilon?.toFixed(2)}, ${optimizer} ${lr}, B ${batch}, C ${clip})`, pct(k), '–', fmt(k.seconds), '–', '≥ 80% at ε ≤ 8', k.accuracy.at(-1)! >= 0.8 && k.epsilon! <= 8 ? 'met' : 'not met']);
}
if (want.has(5)) {
  console.log(`\n5. Central training, Adam lr 1e-3, ${rounds * localEpochs} epochs on the union of the shards`);
  const start = await startingModel('central');
  const k = await kilnCentral(start.model, 'adam', 1e-3);
  const t = await torchRun('central', iid, start.init, 'adam', 1e-3, true);
  rows.push([`5. central (Adam 1e-3, ${rounds * localEpochs} epochs)`, pct(k), pct(t), fmt(k.seconds), t ? fmt(t.seconds) : '–', 'beside', '–']);
}

console.log(`\nAfter ${rounds} rounds, ${trainN} training / ${testN} test images, ${clients} clients:`);
console.log(table(['setting', 'Kiln', 'PyTorch', 'Kiln train s', 'PyTorch train s', 'target', ''], rows));
console.log(`peak RSS ${fmt(peakRssMiB())} MiB`);
process.exit(0);
