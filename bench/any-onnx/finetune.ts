/*
 * Fine-tuning PyTorch-exported models (test/fixtures/exported/*.onnx) on Fashion-MNIST, Kiln against
 * PyTorch in the same run: each fixture trained with Kiln's GraphModel and with
 * bench/any-onnx/torch_finetune.py from the same initial weights (the .onnx's initializers, BatchNorm
 * running statistics included), Adam with the same lr, the same batch size and epochs, once per seed,
 * interleaved (Kiln seed s, PyTorch seed s, Kiln seed s+1, ...) so a drift of the machine's speed hits
 * both. Prints per fixture the mean test accuracy of each and the difference (target: within 0.5
 * points), and the training throughput (images/s over the training loop only) as Kiln / PyTorch
 * (target for resnet: >= 1.0x PyTorch in its best CPU configuration, as bench/train/throughput.ts runs it).
 * `segnet` (asked for by name) is the segmentation fixture: a class per pixel, Fashion-MNIST's images
 * labelled as models.segment_labels labels them (0 at most 0.2, the image's class + 1 above), the loss
 * and accuracy over every pixel on both sides (classes on axis 1). `vol3d` (asked for by name) is the
 * 3-D fixture: the images as clips of 4 frames, frame t moved t pixels right (models.clips), fed
 * channels last [N, 4, 28, 28, 1] to Kiln and channels first to PyTorch.
 *
 *   node dist/bench/any-onnx/finetune.js [--fixtures resnet,mlp] [--epochs 1] [--batch-size 64] [--lr 1e-3]
 *                                        [--seeds 0,1,2] [--limit N] [--torch-threads 2[,1]] [--replicas R] [--same-order] [--no-torch] [--json]
 *
 * The seed picks the shuffle on each side; the two sides' shuffles differ (Kiln's and torch's RNGs),
 * which is why the accuracy comparison is a mean over seeds. --same-order gives both sides the same
 * batches in the same order (a permutation per epoch from the seed, written for the PyTorch script):
 * then the two runs differ only by float rounding, and the comparison tests the training itself. A fixture Kiln cannot train (an op
 * without a gradient rule) is reported as such, with PyTorch's figures still measured. Without a
 * Python that imports torch (or with --no-torch) the bench runs Kiln alone and says so.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { datasets, losses, optimizers, Tensor } from '../../src/index.js';
import { Random } from '../../src/random.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { benchArgs } from '../args.js';
import { cpuDescription, findTorchPython, fmt, peakRssMiB, table, torchEnv } from '../train/common.js';
import { DEFAULT_FIXTURES, FIXTURES, FIXTURE_OPTIONS, exitOnUnknownFixtures, fixturePath, mean, runTorch, timedFit, torchScript } from './common.js';

/** The segmentation and 3-D fixtures: not in FIXTURES, which the other benches share (they classify images). */
const SEGMENTATION = 'segnet';
const VOLUME = 'vol3d';

const args = benchArgs('node dist/bench/any-onnx/finetune.js [flags]', {
  fixtures: { type: 'string', default: DEFAULT_FIXTURES.join(','), help: `comma-separated, of ${[...FIXTURES, SEGMENTATION, VOLUME].join(', ')}` },
  epochs: { type: 'number', default: 1 },
  'batch-size': { type: 'number', default: 64 },
  lr: { type: 'number', default: 1e-3, help: "Adam's learning rate (both sides)" },
  seeds: { type: 'numbers', default: [0, 1, 2], help: 'one training per seed and side, interleaved' },
  limit: { type: 'number', help: 'train on the first N training images (the 10,000 test images stay)' },
  'torch-threads': { type: 'numbers', default: [2], help: "torch.set_num_threads; several: each runs, accuracy from the first, img/s the best (on a loaded machine 1 thread can beat 2)" },
  replicas: { type: 'number', help: "Kiln fit's replicas (default: fit's own choice)" },
  'no-torch': { type: 'boolean', help: 'Kiln only' },
  'same-order': { type: 'boolean', help: "both sides train on the same batches in the same order (the seed's permutation per epoch)" },
  json: { type: 'boolean', help: 'print one JSON object on stdout (progress goes to stderr)' },
});
const fixtures = args.fixtures.split(',').map((f) => f.trim());
exitOnUnknownFixtures('finetune.js', '--fixtures', fixtures, [...FIXTURES, SEGMENTATION, VOLUME]);
const { epochs, lr, seeds, limit } = args;
const batchSize = args['batch-size'];
/** With --json, stdout carries the JSON object alone. */
const say = (line: string) => (args.json ? console.error(line) : console.log(line));

interface Run {
  seed: number;
  testAccuracy: number;
  trainSeconds: number;
  imagesPerSecond: number;
}
interface FixtureResult {
  fixture: string;
  kiln: Run[];
  /** Why Kiln could not train this fixture (compile's error), if it could not. */
  kilnError?: string;
  /** The replicas Kiln's fit used. */
  kilnReplicas?: number;
  torch: Run[];
}

const env = torchEnv();
const python = args['no-torch'] ? undefined : findTorchPython(env);
const data = await datasets.fashionMnist();
const x: Tensor<'float32'> = limit === undefined ? data.train.images : data.train.images.slice(0, limit);
const y: Tensor<'int32'> = limit === undefined ? data.train.labels : data.train.labels.slice(0, limit);
const trainImages = x.shape[0]!;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-finetune-'));

const settings = {
  fixtures,
  epochs,
  batchSize,
  lr,
  seeds,
  trainImages,
  testImages: data.test.images.shape[0]!,
  optimizer: 'Adam (beta1 0.9, beta2 0.999, epsilon 1e-8: torch\'s defaults; Kiln\'s own default epsilon is 1e-7)',
  loss: 'mean sparse categorical cross-entropy from logits',
  kilnReplicas: args.replicas ?? "fit's default",
  batchOrder: args['same-order'] ? "the same on both sides (Kiln's Random(seed).permutation per epoch)" : "each side's own shuffle from the seed",
  torch: python ? { python, script: torchScript('torch_finetune.py'), threads: args['torch-threads'], env: 'LD_LIBRARY_PATH=openblas-pthread OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728' } : null,
};
const machine = { cpu: cpuDescription(), node: process.version, onnxruntime: ort.env.versions.node ?? '', loadAverageAtStart: os.loadavg()[0]! };
say(`Fine-tuning exported fixtures on Fashion-MNIST: ${trainImages} training images${limit !== undefined ? ` (--limit ${limit})` : ''}, ${settings.testImages} test images`);
say(`settings: ${epochs} epoch(s), batch ${batchSize}, ${settings.optimizer}, lr ${lr}, seeds ${seeds.join(',')}; ${settings.loss}; Kiln fit replicas: ${settings.kilnReplicas}; batch order: ${settings.batchOrder}`);
say(`machine: ${machine.cpu}; node ${machine.node}; onnxruntime-node ${machine.onnxruntime}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(', ')}`);
say(python ? `PyTorch: ${python} ${settings.torch!.script}, ${args['torch-threads'].join(' and ')} thread(s)${args['torch-threads'].length > 1 ? ' (img/s: the faster)' : ''}, ${settings.torch!.env}` : `PyTorch: ${args['no-torch'] ? 'skipped (--no-torch)' : 'not importable (set KILN_BENCH_PYTHON, or apt-get install python3-torch)'}; Kiln only`);

/** --same-order: the batch order of each epoch for a seed, a permutation of the training images. */
function ordersFor(seed: number): Int32Array[] {
  const random = new Random(seed);
  return Array.from({ length: epochs }, () => random.permutation(trainImages));
}

/** The same orders as a file of little-endian int32 (epochs × images) for torch_finetune.py --order. */
function orderFile(seed: number): string {
  const file = path.join(scratch, `order-${seed}.i32`);
  if (!existsSync(file)) {
    const orders = ordersFor(seed);
    const all = new Int32Array(orders.length * trainImages);
    orders.forEach((o, e) => all.set(o, e * trainImages));
    writeFileSync(file, new Uint8Array(all.buffer));
  }
  return file;
}

/** A class per pixel, as models.segment_labels gives it: 0 where the pixel is at most 0.2, the image's class + 1 above. */
function segmentLabels(images: Tensor<'float32'>, labels: Tensor<'int32'>): Tensor<'int64'> {
  const [n, h, w] = images.shape as [number, number, number];
  const out = new BigInt64Array(n * h * w);
  for (let i = 0; i < out.length; i++) out[i] = images.data[i]! > 0.2 ? BigInt(labels.data[Math.floor(i / (h * w))]! + 1) : 0n;
  return new Tensor(out, [n, h, w], 'int64');
}
const pixelLabels = fixtures.includes(SEGMENTATION) ? { train: segmentLabels(x, y), test: segmentLabels(data.test.images, data.test.labels) } : undefined;

/** Images [N, 28, 28, 1] as models.clips makes them, channels last: [N, 4, 28, 28, 1], frame t moved t pixels right (zeros on the left). */
function clips(images: Tensor<'float32'>): Tensor<'float32'> {
  const [n, h, w] = images.shape as [number, number, number];
  const frames = 4;
  const out = new Float32Array(n * frames * h * w);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < frames; t++) {
      for (let r = 0; r < h; r++) {
        const from = (i * h + r) * w;
        out.set(images.data.subarray(from, from + w - t), ((i * frames + t) * h + r) * w + t);
      }
    }
  }
  return new Tensor(out, [n, frames, h, w, 1], 'float32');
}
const volumes = fixtures.includes(VOLUME) ? { train: clips(x), test: clips(data.test.images) } : undefined;

async function kilnRun(fixture: string, seed: number, result: FixtureResult): Promise<Run | undefined> {
  const model = await GraphModel.load(fixturePath(fixture), FIXTURE_OPTIONS);
  const pixels = fixture === SEGMENTATION ? pixelLabels : undefined;
  try {
    const loss = pixels ? losses.sparseCategoricalCrossentropy({ fromLogits: true, axis: 1 }) : 'sparseCategoricalCrossentropy';
    model.compile({ optimizer: optimizers.adam({ learningRate: lr, epsilon: 1e-8 }), loss, metrics: ['accuracy'] });
  } catch (err) {
    result.kilnError = (err as Error).message;
    return undefined;
  }
  try {
    const inputs = fixture === VOLUME ? volumes : undefined;
    const { seconds } = await timedFit(model, inputs?.train ?? x, pixels?.train ?? y, { epochs, batchSize, seed, replicas: args.replicas, orders: args['same-order'] ? ordersFor(seed) : undefined });
    result.kilnReplicas = model.trainingReplicas;
    const test = await model.evaluate(inputs?.test ?? data.test.images, pixels?.test ?? data.test.labels);
    return { seed, testAccuracy: test.accuracy!, trainSeconds: seconds, imagesPerSecond: (trainImages * epochs) / seconds };
  } finally {
    model.dispose();
  }
}

/**
 * PyTorch at each --torch-threads count, one after another: the accuracy of the first (the thread
 * count changes only float rounding), the speed of the fastest, which is PyTorch's best configuration
 * at that moment (on this 2-core machine, when loaded, 2 threads can be far slower than 1).
 */
function torchRun(fixture: string, seed: number): Run & { threads: number; byThreads: Record<number, number> } {
  const runs = args['torch-threads'].map((threads) => {
    const flags = ['--fixture', fixture, '--epochs', String(epochs), '--batch-size', String(batchSize), '--lr', String(lr), '--seed', String(seed), '--threads', String(threads)];
    if (limit !== undefined) flags.push('--limit', String(limit));
    if (args['same-order']) flags.push('--order', orderFile(seed));
    return { threads, ...runTorch<Run>(python!, torchScript('torch_finetune.py'), flags, env) };
  });
  const fastest = runs.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a));
  return {
    seed,
    testAccuracy: runs[0]!.testAccuracy,
    trainSeconds: fastest.trainSeconds,
    imagesPerSecond: fastest.imagesPerSecond,
    threads: fastest.threads,
    byThreads: Object.fromEntries(runs.map((r) => [r.threads, r.imagesPerSecond])),
  };
}

const pct = (a: number) => `${(100 * a).toFixed(2)}%`;
const results: FixtureResult[] = [];
for (const fixture of fixtures) {
  const result: FixtureResult = { fixture, kiln: [], torch: [] };
  results.push(result);
  for (const seed of seeds) {
    const k = result.kilnError === undefined ? await kilnRun(fixture, seed, result) : undefined;
    if (k) result.kiln.push(k);
    const t = python ? torchRun(fixture, seed) : undefined;
    if (t) result.torch.push(t);
    const kText = k ? `kiln ${pct(k.testAccuracy)} ${fmt(k.imagesPerSecond)} img/s` : `kiln cannot train it: ${result.kilnError}`;
    const tText = t ? `, torch ${pct(t.testAccuracy)} ${Object.entries(t.byThreads).map(([n, v]) => `${fmt(v)} img/s at ${n} thread(s)`).join(', ')}` : '';
    say(`${fixture} seed ${seed}: ${kText}${tText}  (load average ${os.loadavg()[0]!.toFixed(1)})`);
    if (!k && !t) break;
  }
}

/** Per fixture: the means over seeds, the accuracy difference in points and the throughput ratio. */
const summary = results.map((r) => {
  const kAcc = r.kiln.length ? mean(r.kiln.map((s) => s.testAccuracy)) : undefined;
  const tAcc = r.torch.length ? mean(r.torch.map((s) => s.testAccuracy)) : undefined;
  const kIps = r.kiln.length ? mean(r.kiln.map((s) => s.imagesPerSecond)) : undefined;
  const tIps = r.torch.length ? mean(r.torch.map((s) => s.imagesPerSecond)) : undefined;
  return {
    fixture: r.fixture,
    kilnAccuracy: kAcc,
    torchAccuracy: tAcc,
    differencePoints: kAcc !== undefined && tAcc !== undefined ? 100 * (kAcc - tAcc) : undefined,
    kilnImagesPerSecond: kIps,
    torchImagesPerSecond: tIps,
    throughputRatio: kIps !== undefined && tIps !== undefined ? kIps / tIps : undefined,
    kilnReplicas: r.kilnReplicas,
    kilnError: r.kilnError,
  };
});

// The table goes to stdout, or with --json to stderr beside the progress lines, the JSON alone on stdout.
{
  const na = (v: number | undefined, f: (v: number) => string) => (v === undefined ? 'n/a' : f(v));
  say(`\nMeans over ${seeds.length} seed(s); img/s over the training loop only:`);
  say(
    table(
      ['fixture', 'Kiln acc', 'PyTorch acc', 'Kiln - PyTorch', 'Kiln img/s', 'PyTorch img/s', 'Kiln/PyTorch'],
      summary.map((s) => [
        s.fixture,
        s.kilnError ? 'no gradient' : na(s.kilnAccuracy, pct),
        na(s.torchAccuracy, pct),
        na(s.differencePoints, (d) => `${d >= 0 ? '+' : ''}${d.toFixed(2)} pts`),
        na(s.kilnImagesPerSecond, (v) => fmt(v) + (s.kilnReplicas && s.kilnReplicas > 1 ? ` (${s.kilnReplicas} replicas)` : '')),
        na(s.torchImagesPerSecond, (v) => fmt(v)),
        na(s.throughputRatio, (v) => `${v.toFixed(2)}x`),
      ]),
    ),
  );
  for (const s of summary) if (s.kilnError) say(`${s.fixture}: Kiln cannot train it: ${s.kilnError}`);
  say(`targets: accuracy within 0.5 points of PyTorch (mean of 3 seeds); resnet throughput >= 1.00x PyTorch. Peak RSS ${fmt(peakRssMiB())} MiB (Kiln's process).`);
}
if (args.json) console.log(JSON.stringify({ settings, machine, results, summary, peakRssMiB: peakRssMiB() }));
process.exit(0);
