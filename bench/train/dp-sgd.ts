/*
 * DP-SGD on Fashion-MNIST against plain training of the same model, interleaved in one run: the
 * tutorial CNN (Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10, kiln.layers.tutorialCnn), the same
 * optimizer, batch and epochs; one epoch of plain `fit`, then one of `fit({ privacy })`, and so on,
 * each continuing its own model. σ is the smallest that keeps the whole run within --epsilon at
 * --delta (kiln.privacy.noiseMultiplierFor over all planned steps, q = batch / 60,000); the accountant
 * then reports ε after every epoch. Both train on one session (DP-SGD's step is not split across
 * replicas), so the slowdown compares like with like; plain fit's default on 2+ cores would use
 * replicas from batch 64 on. Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
 * or the four IDX files in --dir.
 *
 *   node dist/bench/train/dp-sgd.js [--epochs 3] [--batch 256] [--epsilon 3] [--delta 1e-5] [--clip 1] [--lr 2e-3] [--seed 42]
 *
 * Target (issue 19): DP-SGD at ε ≤ 3 (δ = 1e-5) on Fashion-MNIST: test accuracy and the slowdown
 * against plain fit, printed side by side.
 */
import os from 'node:os';
import { datasets, layers, losses, optimizers, privacy, sequential, type Sequential } from '../../src/index.js';
import { benchArgs } from '../args.js';
import { cpuDescription, fmt, peakRssMiB, table } from './common.js';

const args = benchArgs('node dist/bench/train/dp-sgd.js [flags]', {
  epochs: { type: 'number', default: 3 },
  batch: { type: 'number', default: 256 },
  epsilon: { type: 'number', default: 3, help: 'the ε the whole DP-SGD run may spend' },
  delta: { type: 'number', default: 1e-5 },
  clip: { type: 'number', default: 1, help: 'per-example L2 clipping norm C' },
  lr: { type: 'number', default: 2e-3, help: 'Adam learning rate (both runs)' },
  seed: { type: 'number', default: 42 },
  limit: { type: 'number', help: 'train on the first N training images only (a quick look; σ and ε follow N)' },
  dir: { type: 'string', help: "the four IDX files (default: Debian's dataset-fashion-mnist)" },
});

const data = await datasets.fashionMnist(args.dir);
const x = args.limit ? data.train.images.slice(0, args.limit) : data.train.images;
const y = args.limit ? data.train.labels.slice(0, args.limit) : data.train.labels;
const n = x.shape[0]!;
const stepsPerEpoch = Math.ceil(n / args.batch);
const samplingRate = args.batch / n;
const sigma = privacy.noiseMultiplierFor({ targetEpsilon: args.epsilon, delta: args.delta, samplingRate, steps: stepsPerEpoch * args.epochs });
console.log(`machine: ${cpuDescription()}; node ${process.version}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(
  `Fashion-MNIST: ${n} train / ${data.test.images.shape[0]} test images; tutorial CNN; Adam ${args.lr}; batch ${args.batch}; ${args.epochs} epochs; ` +
    `DP-SGD: C = ${args.clip}, σ = ${sigma.toFixed(4)} (for ε ≤ ${args.epsilon} at δ = ${args.delta}, q = ${samplingRate.toPrecision(4)}, ${stepsPerEpoch * args.epochs} steps)`,
);

function model(): Sequential {
  const m = sequential({ seed: args.seed, layers: layers.tutorialCnn([28, 28, 1]) });
  m.compile({ optimizer: optimizers.adam({ learningRate: args.lr }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  return m;
}

const plain = model();
const dp = model();
const rows: string[][] = [];
let plainSeconds = 0;
let dpSeconds = 0;
for (let e = 0; e < args.epochs; e++) {
  const seed = 1000 + e;
  let t0 = performance.now();
  await plain.fit(x, y, { epochs: 1, batchSize: args.batch, verbose: 0, seed, replicas: 1 });
  const tPlain = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const h = await dp.fit(x, y, { epochs: 1, batchSize: args.batch, verbose: 0, seed, privacy: { l2NormClip: args.clip, noiseMultiplier: sigma, delta: args.delta } });
  const tDp = (performance.now() - t0) / 1000;
  plainSeconds += tPlain;
  dpSeconds += tDp;
  const plainAcc = (await plain.evaluate(data.test.images, data.test.labels)).accuracy!;
  const dpAcc = (await dp.evaluate(data.test.images, data.test.labels)).accuracy!;
  const eps = h.history.epsilon![0]!;
  rows.push([String(e + 1), `${(100 * plainAcc).toFixed(2)}%`, `${(100 * dpAcc).toFixed(2)}%`, eps.toFixed(3), fmt(tPlain, 1), fmt(tDp, 1), `${(tDp / tPlain).toFixed(2)}×`]);
  console.log(`epoch ${e + 1}: plain ${rows.at(-1)![1]} (${rows.at(-1)![4]} s), DP-SGD ${rows.at(-1)![2]} at ε = ${rows.at(-1)![3]} (${rows.at(-1)![5]} s)`);
}
console.log('\n' + table(['epoch', 'plain test acc', 'DP-SGD test acc', 'ε (δ = ' + args.delta + ')', 'plain s', 'DP-SGD s', 'DP / plain'], rows));
const spent = dp.privacySpent!;
console.log(
  `\nafter ${args.epochs} epochs: DP-SGD ${rows.at(-1)![2]} at ε = ${spent.epsilon.toFixed(3)} (δ = ${spent.delta}, σ = ${spent.noiseMultiplier.toFixed(4)}, C = ${spent.l2NormClip}, ${spent.steps} steps) vs plain ${rows.at(-1)![1]}; ` +
    `training time ${fmt(dpSeconds, 1)} s vs ${fmt(plainSeconds, 1)} s: slowdown ${(dpSeconds / plainSeconds).toFixed(2)}× (one session each, interleaved by epoch); peak RSS ${fmt(peakRssMiB())} MiB`,
);
process.exit(0);
