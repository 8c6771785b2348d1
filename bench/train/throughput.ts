/*
 * Training throughput of the tutorial CNN: Kiln's model.fit against PyTorch (when a Python with torch
 * is importable), at batch 32 and 128, on random 32×32×3 images.
 *
 *   node dist/bench/train/throughput.js [--batches 32,128] [--images 4096] [--epochs 2] [--rounds 2]
 *                                       [--no-torch] [--no-breakdown] [--no-single-session] [--sweep] [--replicas R]
 *
 * Every measurement runs in its own child process (so each peak RSS belongs to one configuration),
 * Kiln and PyTorch alternating, `--rounds` times; the table shows each one's best round, since on a
 * noisy machine the best is the least disturbed. Each round also times ONNX Runtime's fastest matrix
 * product here (a 1024³ Gemm on all cores), and the summary puts the 1.3× target in FLOP/s against it. `--replicas R` is passed to Kiln's fit (default: fit's own
 * choice, 2 replicas on 2 cores from batch 64 on; 1 is the single-session step). Without `--replicas`, a
 * batch that fit splits across replicas is also trained on one session in the same round, right after,
 * and the summary gives the replicas' gain over one session (median and every round); `--no-single-session`
 * skips that. Child modes (used internally):
 *   --child kiln|breakdown|sweep|peak --batch B [--options name,name --sweep-rounds R]
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { Runtime, Tensor, losses, modelCost, optimizers, sequential } from '../../src/index.js';
import { layerFromConfig } from '../../src/layers/index.js';
import { STATE_PARAMS, compileTraining, slotState } from '../../src/train/training-step.js';
import { benchArgs } from '../args.js';
import { bestGemm, compileForClassification, findTorchPython, fmt, peakRssMiB, randomImages, table, torchEnv, tutorialCnn } from './common.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The .py lives next to the .ts source: dist/bench/train → bench/train. */
const TORCH_SCRIPT = resolve(here, '../../../bench/train/torch_reference.py');

const args = benchArgs('node dist/bench/train/throughput.js [flags]', {
  batches: { type: 'numbers', default: [32, 128] },
  images: { type: 'number', default: 4096, help: 'random images per epoch' },
  epochs: { type: 'number', default: 2, help: 'timed epochs, after one warm-up epoch' },
  rounds: { type: 'number', default: 2, help: 'Kiln and PyTorch alternate; best round shown' },
  replicas: { type: 'number', help: "fit's replicas (default: fit's own choice)" },
  'no-torch': { type: 'boolean', help: 'Kiln only' },
  'no-breakdown': { type: 'boolean', help: 'skip the per-step breakdown' },
  'no-single-session': { type: 'boolean', help: "skip one session's run beside the replicas'" },
  sweep: { type: 'boolean', help: 'also time ONNX Runtime session options' },
  // Internal: the parent runs itself as a child for each measurement.
  child: { type: 'string', help: '(internal) kiln, breakdown, sweep or peak' },
  batch: { type: 'number', default: 32, help: '(internal) the child\'s batch' },
  options: { type: 'string', default: '', help: '(internal) sweep: option sets whose names contain these' },
  'sweep-rounds': { type: 'number', default: 2, help: '(internal) sweep rounds' },
});
const { images, epochs } = args;
/** FitArgs.replicas for the Kiln children (undefined: fit's default). */
const replicas = args.replicas;

interface Result {
  /** The replicas fit used (Kiln only). */
  replicas?: number;
  imgPerSec: number;
  msPerStep: number;
  peakRssMiB: number;
  [k: string]: unknown;
}

// ---------------------------------------------------------------- child: Kiln fit ----------------
async function childKiln(batch: number): Promise<Result> {
  const model = tutorialCnn();
  compileForClassification(model);
  const { x, y } = randomImages(images);
  await model.fit(x, y, { epochs: 1, batchSize: batch, verbose: 0, replicas }); // warm-up: session creation, first runs
  const t0 = performance.now();
  await model.fit(x, y, { epochs, batchSize: batch, verbose: 0, replicas });
  const ms = performance.now() - t0;
  const steps = Math.ceil(images / batch) * epochs;
  return { replicas: model.trainingReplicas, imgPerSec: (images * epochs) / (ms / 1000), msPerStep: ms / steps, peakRssMiB: peakRssMiB() };
}

// ---------------------------------------------------------------- child: the machine's matrix peak --
/**
 * ONNX Runtime's best matrix product on this machine: a 1024³ Gemm on all cores (and on one), best of
 * 10 runs. No training step can do its convolutions and products faster than this.
 */
async function childPeak(): Promise<Record<string, number>> {
  return {
    allCoresGflops: (await bestGemm(1024, 1024, 1024, os.availableParallelism(), 10, 2)).gflops,
    oneCoreGflops: (await bestGemm(1024, 1024, 1024, 1, 10, 2)).gflops,
  };
}

/**
 * FLOPs of one training image of the tutorial CNN as PyTorch computes it (every row, the first
 * layer's input gradient skipped): forward, weight gradients (as much again) and input gradients (as
 * much again but for the first layer).
 */
function trainingFlopsPerImage(): { training: number; forward: number } {
  const model = tutorialCnn();
  const forward = modelCost(model).flops;
  const first = modelCost(sequential({ layers: [layerFromConfig(model.layers[0]!.serialize())] })).flops;
  return { training: 3 * forward - first, forward };
}

// ---------------------------------------------------------------- the compiled step, by hand ------
function compiledStep() {
  const model = tutorialCnn();
  const optimizer = optimizers.adam({ learningRate: 1e-3 });
  const compiled = compileTraining(model, losses.sparseCategoricalCrossentropy({ fromLogits: true }), optimizer, null);
  const flat = new Float32Array(compiled.totalSize);
  for (const l of compiled.layout) flat.set(model.weights.get(l.name)!.data as Float32Array, l.offset);
  const state: Record<string, Tensor<'float32'>> = { [STATE_PARAMS]: new Tensor(flat, [flat.length], 'float32') };
  for (const s of optimizer.slots) state[slotState(s.name)] = new Tensor(new Float32Array(compiled.totalSize).fill(s.initial), [compiled.totalSize], 'float32');
  return { compiled, state };
}

/** A few distinct batches to cycle through (input NHWC float32, labels int64). */
function batchesOf(batch: number, count = 8) {
  const { x, y } = randomImages(batch * count, 7);
  return Array.from({ length: count }, (_, k) => ({
    input: x.slice(k * batch, (k + 1) * batch),
    labels: new Tensor(BigInt64Array.from(y.slice(k * batch, (k + 1) * batch).data as Int32Array, (v) => BigInt(v)), [batch], 'int64'),
  }));
}

/** What the runtime worker uses for a training step (src/train/compiled-steps.ts). */
const BASE_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: os.availableParallelism(),
  interOpNumThreads: 1,
  graphOptimizationLevel: 'extended',
  executionMode: 'sequential',
};

/** ONNX Runtime directly on this thread: state outputs fed back as inputs, no worker, no copies. */
async function rawOrt(batch: number, options: ort.InferenceSession.SessionOptions) {
  const { compiled, state } = compiledStep();
  const session = await ort.InferenceSession.create(compiled.trainStep, options);
  const feedsState: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(state)) feedsState[k] = new ort.Tensor('float32', t.data as Float32Array, t.shape);
  const data = batchesOf(batch).map((b) => ({
    input: new ort.Tensor('float32', b.input.data as Float32Array, b.input.shape),
    labels: new ort.Tensor('int64', b.labels.data as BigInt64Array, b.labels.shape),
  }));
  let t = 0;
  const step = async () => {
    t++;
    const b = data[t % data.length]!;
    const out = await session.run({
      ...feedsState,
      input: b.input,
      labels: b.labels,
      lr: new ort.Tensor('float32', Float32Array.of(1e-3), []),
      step: new ort.Tensor('float32', Float32Array.of(t), []),
    });
    for (const [o, s] of Object.entries(compiled.store)) feedsState[s] = out[o]!;
    if (!Number.isFinite((out.loss!.data as Float32Array)[0]!)) throw new Error('loss not finite');
  };
  return { step, release: () => session.release() };
}

/** The same step through Kiln's runtime worker, as fit sends it, but one at a time with nothing overlapped. */
async function viaWorker(batch: number) {
  const { compiled, state } = compiledStep();
  const runtime = new Runtime();
  const session = await runtime.load(compiled.trainStep, { optimizationLevel: 'extended' }); // as fit loads it
  await runtime.setState(state);
  const data = batchesOf(batch);
  let t = 0;
  const step = async () => {
    t++;
    const b = data[t % data.length]!;
    await runtime.run(
      session,
      { input: b.input, labels: b.labels, lr: new Tensor(Float32Array.of(1e-3), [], 'float32'), step: new Tensor(Float32Array.of(t), [], 'float32') },
      { fetch: ['loss'], store: compiled.store, requireFinite: ['loss'] },
    );
  };
  return { step, release: () => runtime.close() };
}

async function timeSteps(step: () => Promise<void>, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await step();
  return (performance.now() - t0) / n;
}

/**
 * ms per step: ORT alone, through the worker, and through fit, interleaved in blocks (best block each).
 * All three run the one-session step (fit with replicas: 1), so the differences are fit's overheads.
 */
async function childBreakdown(batch: number): Promise<Record<string, number>> {
  const steps = Math.ceil(images / batch);
  const raw = await rawOrt(batch, BASE_OPTIONS);
  const worker = await viaWorker(batch);
  const model = tutorialCnn();
  compileForClassification(model);
  const { x, y } = randomImages(images);
  await model.fit(x, y, { epochs: 1, batchSize: batch, verbose: 0, replicas: 1 });
  for (let i = 0; i < 5; i++) {
    await raw.step();
    await worker.step();
  }
  const best = { ortRunMs: Infinity, workerRunMs: Infinity, fitStepMs: Infinity };
  for (let r = 0; r < 2; r++) {
    best.ortRunMs = Math.min(best.ortRunMs, await timeSteps(raw.step, steps));
    best.workerRunMs = Math.min(best.workerRunMs, await timeSteps(worker.step, steps));
    const t0 = performance.now();
    await model.fit(x, y, { epochs: 1, batchSize: batch, verbose: 0, replicas: 1 });
    best.fitStepMs = Math.min(best.fitStepMs, (performance.now() - t0) / steps);
  }
  await raw.release();
  await worker.release();
  return best;
}

// ---------------------------------------------------------------- child: session-option sweep -----
const SWEEP: Record<string, ort.InferenceSession.SessionOptions> = {
  'baseline (fit today)': BASE_OPTIONS,
  'optimization all (NCHWc layout)': { ...BASE_OPTIONS, graphOptimizationLevel: 'all' },
  'optimization basic': { ...BASE_OPTIONS, graphOptimizationLevel: 'basic' },
  'optimization disabled': { ...BASE_OPTIONS, graphOptimizationLevel: 'disabled' },
  'enableCpuMemArena false': { ...BASE_OPTIONS, enableCpuMemArena: false },
  'enableMemPattern false': { ...BASE_OPTIONS, enableMemPattern: false },
  'intraOp 1': { ...BASE_OPTIONS, intraOpNumThreads: 1 },
  'intraOp 3': { ...BASE_OPTIONS, intraOpNumThreads: 3 },
  'intraOp 4': { ...BASE_OPTIONS, intraOpNumThreads: 4 },
  'executionMode parallel, interOp 2': { ...BASE_OPTIONS, executionMode: 'parallel', interOpNumThreads: 2 },
  'executionMode parallel, interOp 2, intraOp 1': { ...BASE_OPTIONS, executionMode: 'parallel', interOpNumThreads: 2, intraOpNumThreads: 1 },
  'no spinning': { ...BASE_OPTIONS, extra: { session: { intra_op: { allow_spinning: '0' } } } },
};

/** Median over `--sweep-rounds` interleaved blocks (default 2: the best block) of each option set. */
async function childSweep(batch: number): Promise<Record<string, number>> {
  const steps = Math.max(4, Math.ceil(512 / batch));
  const only = args.options.split(',').filter(Boolean);
  const rounds = args['sweep-rounds'];
  const runners: [string, Awaited<ReturnType<typeof rawOrt>>][] = [];
  for (const [name, o] of Object.entries(SWEEP)) if (only.length === 0 || only.some((w) => name.includes(w))) runners.push([name, await rawOrt(batch, o)]);
  for (const [, r] of runners) for (let i = 0; i < 3; i++) await r.step();
  const times: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, r] of runners) (times[name] ??= []).push(await timeSteps(r.step, steps));
  }
  const best: Record<string, number> = {};
  for (const [name, t] of Object.entries(times)) best[name] = rounds <= 2 ? Math.min(...t) : t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!;
  for (const [, r] of runners) await r.release();
  return best;
}

// ---------------------------------------------------------------- parent ---------------------------
function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Record<string, number> {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
  const line = r.stdout.trim().split('\n').at(-1)!;
  return JSON.parse(line) as Record<string, number>;
}

async function main(): Promise<void> {
  const child = args.child;
  if (child) {
    const batch = args.batch;
    const result = child === 'kiln' ? await childKiln(batch) : child === 'breakdown' ? await childBreakdown(batch) : child === 'peak' ? await childPeak() : await childSweep(batch);
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0);
  }

  const { batches, rounds } = args;
  const self = fileURLToPath(import.meta.url);
  const env = torchEnv();
  const python = args['no-torch'] ? undefined : findTorchPython(env);
  const common = ['--images', String(images), '--epochs', String(epochs)];
  const kilnArgs = replicas === undefined ? [] : ['--replicas', String(replicas)];
  console.log(`Tutorial CNN training, random 32x32x3 inputs, ${images} images/epoch, 1 warm-up epoch + ${epochs} timed, best of ${rounds} rounds`);
  console.log(`machine: ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? '?'}; node ${process.version}; onnxruntime-node ${ort.env.versions.node ?? ''}`);
  console.log(`load average at start: ${os.loadavg().map((l) => l.toFixed(1)).join(', ')} (above ~2 the figures are disturbed by other processes)`);
  console.log(`Kiln fit replicas: ${replicas ?? "fit's default (one per core, up to 4, while each gets >= 32 rows of a batch)"}`);
  console.log(python ? `PyTorch: ${python} ${TORCH_SCRIPT}` : 'PyTorch: not importable (set KILN_BENCH_PYTHON, or apt-get install python3-torch); Kiln only');

  const kiln = new Map<number, Record<string, number>>();
  const torch = new Map<number, Record<string, number>>();
  const keepBest = (m: Map<number, Record<string, number>>, b: number, r: Record<string, number>) => {
    const prev = m.get(b);
    if (!prev || r.imgPerSec! > prev.imgPerSec!) m.set(b, { ...r, peakRssMiB: Math.max(r.peakRssMiB!, prev?.peakRssMiB ?? 0) });
    else prev.peakRssMiB = Math.max(prev.peakRssMiB!, r.peakRssMiB!);
  };
  const peak = { allCoresGflops: 0, oneCoreGflops: 0 };
  /** Per batch that fit split across replicas: its replica count and, per round, replicas img/s over one session's. */
  const replicaGain = new Map<number, { replicas: number; ratios: number[] }>();
  const compareOneSession = replicas === undefined && !args['no-single-session'];
  for (let round = 0; round < rounds; round++) {
    const p = runChild(process.execPath, [self, '--child', 'peak']);
    peak.allCoresGflops = Math.max(peak.allCoresGflops, p.allCoresGflops!);
    peak.oneCoreGflops = Math.max(peak.oneCoreGflops, p.oneCoreGflops!);
    console.log(`round ${round + 1}: ORT's 1024³ Gemm ${fmt(p.allCoresGflops!, 1)} GFLOP/s on ${os.availableParallelism()} cores, ${fmt(p.oneCoreGflops!, 1)} on one`);
    for (const b of batches) {
      const k = runChild(process.execPath, [self, '--child', 'kiln', '--batch', String(b), ...common, ...kilnArgs]);
      keepBest(kiln, b, k);
      let line = `round ${round + 1} B=${b}: kiln ${fmt(k.imgPerSec!)} img/s${k.replicas! > 1 ? ` (${k.replicas} replicas)` : ''}`;
      if (compareOneSession && k.replicas! > 1) {
        const one = runChild(process.execPath, [self, '--child', 'kiln', '--batch', String(b), ...common, '--replicas', '1']);
        const gain = replicaGain.get(b) ?? { replicas: k.replicas!, ratios: [] };
        gain.ratios.push(k.imgPerSec! / one.imgPerSec!);
        replicaGain.set(b, gain);
        line += `, one session ${fmt(one.imgPerSec!)} img/s (${gain.ratios.at(-1)!.toFixed(2)}x)`;
      }
      if (python) {
        const t = runChild(python, [TORCH_SCRIPT, '--batch', String(b), '--threads', '2', ...common], env);
        keepBest(torch, b, t);
        line += `, torch ${fmt(t.imgPerSec!)} img/s (kiln/torch ${(k.imgPerSec! / t.imgPerSec!).toFixed(2)}x)`;
      }
      console.log(`${line}  (load average ${os.loadavg()[0]!.toFixed(1)})`);
    }
  }

  const rows = batches.map((b) => {
    const k = kiln.get(b)!;
    const t = torch.get(b);
    return [
      `B=${b}`,
      fmt(k.imgPerSec!),
      fmt(k.msPerStep!, 1),
      t ? fmt(t.imgPerSec!) : 'n/a',
      t ? fmt(t.msPerStep!, 1) : 'n/a',
      t ? `${(k.imgPerSec! / t.imgPerSec!).toFixed(2)}x` : 'n/a',
      fmt(k.peakRssMiB!),
      t ? fmt(t.peakRssMiB!) : 'n/a',
    ];
  });
  console.log('\n' + table(['batch', 'Kiln img/s', 'Kiln ms/step', 'PyTorch img/s', 'PyTorch ms/step', 'Kiln/PyTorch', 'Kiln peak RSS MiB', 'PyTorch peak RSS MiB'], rows));
  if (python) console.log('target: Kiln/PyTorch >= 1.30x at both batch sizes');
  if (replicaGain.size > 0) {
    console.log(`\nData parallelism: fit's replicas against one session, the same batch, trained right after them in each round:`);
    console.log(
      table(
        ['batch', 'replicas', 'median replicas / one session', 'rounds faster', 'per round'],
        [...replicaGain].map(([b, { replicas: r, ratios }]) => {
          const sorted = [...ratios].sort((x, y) => x - y);
          const mid = sorted.length / 2;
          const median = sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
          return [`B=${b}`, String(r), `${median.toFixed(2)}x`, `${ratios.filter((x) => x > 1).length} of ${ratios.length}`, ratios.map((x) => x.toFixed(2)).join(', ')];
        }),
      ),
    );
  }

  // The target as a FLOP rate: what 1.3× PyTorch needs, against the fastest matrix product here.
  const flops = trainingFlopsPerImage();
  console.log(
    `\nOne training image: ${fmt(flops.training / 1e6, 1)} MFLOP (forward ${fmt(flops.forward / 1e6, 2)}); ORT's best 1024³ Gemm in this run: ` +
      `${fmt(peak.allCoresGflops, 1)} GFLOP/s on ${os.availableParallelism()} cores (${fmt(peak.oneCoreGflops, 1)} on one)`,
  );
  console.log(
    table(
      ['batch', 'Kiln GFLOP/s', 'PyTorch GFLOP/s', 'PyTorch share of the Gemm peak', '1.3x PyTorch needs', '1.3x PyTorch share of the peak'],
      batches.map((b) => {
        const t = torch.get(b);
        const rate = (imgPerSec: number) => (imgPerSec * flops.training) / 1e9;
        return [
          `B=${b}`,
          fmt(rate(kiln.get(b)!.imgPerSec!), 1),
          t ? fmt(rate(t.imgPerSec!), 1) : 'n/a',
          t ? `${((100 * rate(t.imgPerSec!)) / peak.allCoresGflops).toFixed(0)}%` : 'n/a',
          t ? fmt(1.3 * rate(t.imgPerSec!), 1) : 'n/a',
          t ? `${((100 * 1.3 * rate(t.imgPerSec!)) / peak.allCoresGflops).toFixed(0)}%` : 'n/a',
        ];
      }),
    ),
  );

  if (!args['no-breakdown']) {
    const rowsB = batches.map((b) => {
      const r = runChild(process.execPath, [self, '--child', 'breakdown', '--batch', String(b), ...common]);
      return [
        `B=${b}`,
        fmt(r.ortRunMs!, 2),
        fmt(r.workerRunMs!, 2),
        fmt(r.fitStepMs!, 2),
        `${((100 * r.ortRunMs!) / r.fitStepMs!).toFixed(0)}%`,
        fmt(r.fitStepMs! - r.ortRunMs!, 2),
      ];
    });
    console.log('\nWhere a step goes (ms per step, best of 2 interleaved blocks of one epoch each):');
    console.log(table(['batch', 'ORT session.run alone', 'runtime.run via worker', 'fit step', 'ORT share of fit', 'overhead ms'], rowsB));
  }

  if (args.sweep) {
    for (const b of batches) {
      const r = runChild(process.execPath, [self, '--child', 'sweep', '--batch', String(b), ...common]);
      const base = r['baseline (fit today)']!;
      console.log(`\nORT session options, raw session.run, B=${b} (ms per step, best of 2 interleaved blocks):`);
      console.log(table(['options', 'ms/step', 'vs baseline'], Object.entries(r).map(([name, ms]) => [name, fmt(ms, 2), `${(base / ms).toFixed(2)}x`])));
    }
  }
}

await main();
