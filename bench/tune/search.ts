/*
 * kiln.tuner on Fashion-MNIST with the tutorial CNN family, the checks, per search seed:
 *   default — Adam 1e-3, batch 32, the preset's widths (filters 32, units 64), `--epochs` epochs;
 *   tpe     — TPE over the space, `--trials` trials of `--epochs` epochs, full budget;
 *   random  — random search over the same space and budget;
 *   asha    — TPE with ASHA (first rung `--min-epochs`, η `--eta`), same trial count.
 * Arms run one after the other, the first arm alternating from seed to seed.
 * Each search scores trials on the last 10% of the training images; every figure printed is test
 * accuracy of the best trial's saved model (or the default model) on the test split, and each
 * search's wall time. Targets (issue): best ≥ default + 1 point (mean over seeds); TPE's best ≥
 * random's in ≥ 2 of 3 seeds; ASHA within 0.3 points of the full-budget best in ≤ 50% of its time.
 *
 *   node dist/bench/tune/search.js [--seeds 42,1,2] [--trials 24] [--epochs 2] [--limit 60000] [--arms default,tpe,random,asha] [--startup-trials 10]
 *
 * The defaults are a short run (1 seed, 8 trials of which 4 random start-up trials, 6,000 training
 * images) for a shared 2-core machine; the full check is
 * `--seeds 42,1,2 --trials 24 --limit 60000 --startup-trials 10`.
 */
import os from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { datasets, loadModel, tuner } from '../../src/index.js';
import { evaluateClassifier } from '../../src/train/metrics.js';
import { benchArgs } from '../args.js';
import { cpuDescription, table } from '../train/common.js';

const args = benchArgs('node dist/bench/tune/search.js [flags]', {
  seeds: { type: 'numbers', default: [42], help: 'search seeds' },
  trials: { type: 'number', default: 8, help: 'trials per search (issue: 24)' },
  epochs: { type: 'number', default: 2, help: 'epochs per trial and for the default' },
  limit: { type: 'number', default: 6000, help: 'training images used (60000: all)' },
  arms: { type: 'string', default: 'default,tpe,random,asha', help: 'which runs to make' },
  'startup-trials': { type: 'number', default: 4, help: "TPE's random start-up trials (Optuna's default 10 leaves no TPE trial in a short run)" },
  'min-epochs': { type: 'number', default: 0.25, help: "ASHA's first rung, in epochs" },
  eta: { type: 'number', default: 3, help: "ASHA's reduction factor" },
  dir: { type: 'string', help: "the four IDX files (default: Debian's dataset-fashion-mnist)" },
});
const arms = args.arms.split(',');
const data = await datasets.fashionMnist(args.dir);
const x = data.train.images.slice(0, args.limit);
const y = data.train.labels.slice(0, args.limit);
const test = { x: data.test.images, y: data.test.labels };
console.log(`${cpuDescription()}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`Fashion-MNIST: ${x.shape[0]} training images (last 10% score trials), ${test.x.shape[0]} test; tutorial-cnn family; ${args.trials} trials × ${args.epochs} epochs; TPE after ${args['startup-trials']} random trials`);

const SPACE = ['lr=1e-4..1e-2:log', 'batchSize=32,64,128', 'filters=16,32,64', 'optimizer=adam,sgd,rmsprop'];
console.log(`space: ${SPACE.join('  ')}`);
const space = tuner.parseSearchSpace(SPACE);
const build = tuner.presetBuilder('tutorial-cnn', [28, 28, 1], 10);
const defaultSpace = tuner.parseSearchSpace(['lr=0.001', 'batchSize=32', 'filters=32', 'optimizer=adam']);
const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-tune-'));

async function testAccuracy(file: string): Promise<number> {
  const model = await loadModel(file);
  return evaluateClassifier(test.y, await model.predict(test.x, { batchSize: 256 })).accuracy;
}

interface Arm {
  accuracy: number;
  seconds: number;
  /** Epochs trained, summed over the search's trials: the resource ASHA saves. */
  epochs: number;
  /** Seconds inside trials, summed: the wall time less the sampler's and the test evaluation's. */
  trialSeconds: number;
  /** Seconds of each complete trial, by its parameters: the same trial in two arms shows the load's drift. */
  completeSeconds: Map<string, number>;
  best: string;
  states: string;
}

async function search(seed: number, arm: string): Promise<Arm> {
  const out = path.join(dir, `${arm}-${seed}.onnx`);
  const t0 = performance.now();
  const result = await tuner.tune({
    space: arm === 'default' ? defaultSpace : space,
    build,
    x,
    y,
    validationSplit: 0.1,
    epochs: args.epochs,
    maxTrials: arm === 'default' ? 1 : args.trials,
    sampler: arm === 'random' ? 'random' : new tuner.TpeSampler({ startupTrials: args['startup-trials'] }),
    earlyStopping: arm === 'asha' ? { minEpochs: args['min-epochs'], reductionFactor: args.eta } : false,
    seed,
    out,
    onTrialEnd: (t) => process.stdout.write(`  ${arm} seed ${seed} trial ${t.id}: ${t.state} ${t.value?.toFixed(4) ?? ''} after ${Math.round(t.epochs * 1000) / 1000} epochs ${JSON.stringify(t.params)} ${t.seconds.toFixed(1)} s\n`),
  });
  const seconds = (performance.now() - t0) / 1000;
  const states = ['complete', 'pruned', 'failed'].map((s) => `${result.trials.filter((t) => t.state === s).length} ${s}`).join(', ');
  const epochs = result.trials.reduce((sum, t) => sum + t.epochs, 0);
  const trialSeconds = result.trials.reduce((sum, t) => sum + t.seconds, 0);
  const completeSeconds = new Map(result.trials.filter((t) => t.state === 'complete').map((t) => [JSON.stringify(t.params), t.seconds]));
  return { accuracy: await testAccuracy(out), seconds, epochs, trialSeconds, completeSeconds, best: JSON.stringify(result.best?.params ?? {}), states };
}

const rows: string[][] = [];
const byArm = new Map<string, Arm[]>();
for (const [i, seed] of args.seeds.entries()) {
  // Whole searches cannot be interleaved trial by trial; alternating which arm runs first from one
  // seed to the next keeps a machine whose load drifts from favouring one arm in every seed.
  for (const arm of i % 2 ? [...arms].reverse() : arms) {
    const r = await search(seed, arm);
    (byArm.get(arm) ?? byArm.set(arm, []).get(arm)!).push(r);
    rows.push([String(seed), arm, (100 * r.accuracy).toFixed(2), r.seconds.toFixed(0), (Math.round(r.epochs * 100) / 100).toString(), r.states, r.best]);
    console.log(`seed ${seed} ${arm}: test accuracy ${(100 * r.accuracy).toFixed(2)}% in ${r.seconds.toFixed(0)} s`);
  }
}
await rm(dir, { recursive: true, force: true });

console.log('');
console.log(table(['seed', 'run', 'test acc %', 'seconds', 'epochs trained', 'trials', 'best parameters'], rows));
const mean = (arm: string) => (byArm.get(arm) ?? []).reduce((s, r) => s + r.accuracy, 0) / (byArm.get(arm)?.length || NaN);
console.log('');
if (byArm.has('default') && byArm.has('tpe')) console.log(`best (TPE) − default: ${(100 * (mean('tpe') - mean('default'))).toFixed(2)} points, mean of ${args.seeds.length} seed(s) (target ≥ +1)`);
if (byArm.has('tpe') && byArm.has('random')) {
  const wins = byArm.get('tpe')!.filter((r, i) => r.accuracy >= byArm.get('random')![i]!.accuracy).length;
  console.log(`TPE's best ≥ random's best in ${wins} of ${args.seeds.length} seed(s) (target: 2 of 3)`);
}
if (byArm.has('tpe') && byArm.has('asha')) {
  const tpe = byArm.get('tpe')!;
  byArm.get('asha')!.forEach((a, i) => {
    const t = tpe[i]!;
    console.log(`seed ${args.seeds[i]}: ASHA ${(100 * (a.accuracy - t.accuracy)).toFixed(2)} points against the full budget, in ${(100 * (a.seconds / t.seconds)).toFixed(0)}% of its wall time (target within 0.3 points in ≤ 50%)`);
    // Why the wall-time ratio is what it is: the resource ASHA saved (epochs) and what each epoch cost
    // (the arms' trials differ after TPE's start-up, and a filters-64 epoch costs several filters-16 ones).
    console.log(
      `  epochs trained ${a.epochs.toFixed(2)} vs ${t.epochs.toFixed(2)} (${(100 * (a.epochs / t.epochs)).toFixed(0)}%); seconds per epoch trained ${(a.trialSeconds / a.epochs).toFixed(1)} vs ${(t.trialSeconds / t.epochs).toFixed(1)}; outside trials ${(a.seconds - a.trialSeconds).toFixed(0)} vs ${(t.seconds - t.trialSeconds).toFixed(0)} s`,
    );
    const same = [...a.completeSeconds].filter(([params]) => t.completeSeconds.has(params));
    if (same.length) {
      const ashaSeconds = same.reduce((sum, [, sec]) => sum + sec, 0);
      const tpeSeconds = same.reduce((sum, [params]) => sum + t.completeSeconds.get(params)!, 0);
      console.log(`  the ${same.length} trial(s) complete in both arms with the same parameters took ${ashaSeconds.toFixed(0)} s in the ASHA arm and ${tpeSeconds.toFixed(0)} s in the full one (${(ashaSeconds / tpeSeconds).toFixed(2)}×: the machine's drift, ASHA's rung evaluations)`);
    }
  });
}
