/*
 * Parallel trials: the same fixed budget of trials (random sampler, one seed, so both runs train the
 * very same configurations) run one at a time and `--parallel` at a time, rounds interleaved
 * (1, N, 1, N, ...) so that a machine busier at one moment does not favour one side. One at a time
 * trains as fit() does by default (the process-wide worker, replicas when the batch allows);
 * N at a time gives each trial its own runtime worker with cores / N threads and one replica.
 * Target (issue): 2 at a time ≥ 1.5× faster than 1 on 2 cores.
 *
 *   node dist/bench/tune/parallel.js [--trials 4] [--epochs 1] [--limit 6000] [--parallel 2] [--rounds 2]
 */
import os from 'node:os';
import { datasets, tuner } from '../../src/index.js';
import { benchArgs } from '../args.js';
import { cpuDescription } from '../train/common.js';

const args = benchArgs('node dist/bench/tune/parallel.js [flags]', {
  trials: { type: 'number', default: 4, help: 'trials in the fixed budget' },
  epochs: { type: 'number', default: 1, help: 'epochs per trial' },
  limit: { type: 'number', default: 6000, help: 'training images' },
  parallel: { type: 'number', default: 2, help: 'trials at a time in the parallel runs' },
  rounds: { type: 'number', default: 2, help: 'interleaved rounds of (1, parallel)' },
  dir: { type: 'string', help: "the four IDX files (default: Debian's dataset-fashion-mnist)" },
});
const data = await datasets.fashionMnist(args.dir);
const x = data.train.images.slice(0, args.limit);
const y = data.train.labels.slice(0, args.limit);
console.log(`${cpuDescription()}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const SPACE = ['lr=1e-4..1e-2:log', 'batchSize=32,64,128', 'filters=16,32,64', 'optimizer=adam,sgd,rmsprop'];
console.log(`${args.trials} trials × ${args.epochs} epoch(s) on ${x.shape[0]} Fashion-MNIST images, tutorial-cnn family, space ${SPACE.join(' ')}`);
const space = tuner.parseSearchSpace(SPACE);
const build = tuner.presetBuilder('tutorial-cnn', [28, 28, 1], 10);

async function run(parallel: number): Promise<{ seconds: number; values: number[] }> {
  const t0 = performance.now();
  const r = await tuner.tune({ space, build, x, y, epochs: args.epochs, maxTrials: args.trials, sampler: 'random', seed: 7, parallel });
  return { seconds: (performance.now() - t0) / 1000, values: r.trials.map((t) => t.value ?? NaN) };
}

const times: Record<number, number[]> = { 1: [], [args.parallel]: [] };
for (let round = 0; round < args.rounds; round++) {
  for (const p of [1, args.parallel]) {
    const r = await run(p);
    times[p]!.push(r.seconds);
    console.log(`round ${round + 1}, ${p} at a time: ${r.seconds.toFixed(1)} s (validation accuracy per trial ${r.values.map((v) => v.toFixed(3)).join(' ')}); load average ${os.loadavg()[0]!.toFixed(1)}`);
  }
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)]!;
const ratios = times[1]!.map((t, i) => t / times[args.parallel]![i]!);
console.log('');
console.log(`${args.parallel} at a time vs 1: ${(median(times[1]!) / median(times[args.parallel]!)).toFixed(2)}× faster (median times ${median(times[1]!).toFixed(1)} vs ${median(times[args.parallel]!).toFixed(1)} s; per round ${ratios.map((r) => r.toFixed(2)).join(', ')}) (target ≥ 1.5× on 2 cores)`);
