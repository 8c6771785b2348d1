/*
 * Fine-tuning the PyTorch-exported text fixtures (textcls: int64 input_ids; textmask: input_ids and
 * attention_mask, as a Hugging Face sequence classifier; tokentag: the same inputs and a label per token,
 * -100 on padding, as a token classifier; causallm: a causal language model with a tied head, on
 * next-token labels) on token data, Kiln against PyTorch in the same
 * run: from the same initial weights (the .onnx's), Adam with the same lr, batch size and epochs, and the
 * same batches in the same order (a permutation per epoch from the seed, written for the PyTorch script),
 * once per seed, interleaved. The task is the fixtures' own rule reversed (label 1 where token 1 is NOT
 * more frequent than token 2; tokentag: labels 1 and 2 of its tokens 1 and 2 swapped; causallm: counting
 * down by 1, 2 or 3 where it was pretrained counting up): as exported they
 * score low on it, so the accuracy after fine-tuning measures the training (tokentag's: of the labelled
 * tokens, its loss the mean over them, PyTorch's ignore_index=-100). Prints per fixture the mean test accuracy of each side and the difference in
 * points, and the training throughput (examples/s over the training loop only) as Kiln / PyTorch at
 * PyTorch's faster thread count.
 *
 *   node dist/bench/any-onnx/finetune-text.js [--fixtures textcls,textmask,tokentag,causallm] [--epochs 1] [--batch-size 64] [--lr 1e-3]
 *                                             [--seeds 0,1,2] [--train 10000] [--test 5000] [--torch-threads 1,2] [--no-torch] [--json]
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { losses, optimizers, type Tensor } from '../../src/index.js';
import { saveNpy } from '../../src/data/npy.js';
import type { ModelInputs } from '../../src/model/input-rows.js';
import { Random } from '../../src/random.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { countingTask, IGNORE_INDEX, paddedTokenTask, SEQ, taggedTokenTask, tokenTask } from '../../test/fixtures/exported/token-task.js';
import { benchArgs } from '../args.js';
import { cpuDescription, findTorchPython, fmt, peakRssMiB, table, torchEnv } from '../train/common.js';
import { exitOnUnknownFixtures, fixturePath, mean, runTorch, timedFit, torchScript } from './common.js';

const TEXT_FIXTURES = ['textcls', 'textmask', 'tokentag', 'causallm'];
const args = benchArgs('node dist/bench/any-onnx/finetune-text.js [flags]', {
  fixtures: { type: 'string', default: TEXT_FIXTURES.join(','), help: `comma-separated, of ${TEXT_FIXTURES.join(', ')}` },
  epochs: { type: 'number', default: 1 },
  'batch-size': { type: 'number', default: 64 },
  lr: { type: 'number', default: 1e-3, help: "Adam's learning rate (both sides)" },
  seeds: { type: 'numbers', default: [0, 1, 2], help: 'one training per seed and side, interleaved' },
  train: { type: 'number', default: 10000, help: 'training sequences (10,000 × 1 epoch leaves the task unsolved: ~85%, so accuracy compares the training)' },
  test: { type: 'number', default: 5000, help: 'test sequences' },
  'torch-threads': { type: 'numbers', default: [1, 2], help: 'torch.set_num_threads; several: each runs, accuracy from the first, examples/s the best' },
  'no-torch': { type: 'boolean', help: 'Kiln only' },
  json: { type: 'boolean', help: 'print one JSON object on stdout (progress goes to stderr)' },
});
const fixtures = args.fixtures.split(',').map((f) => f.trim());
exitOnUnknownFixtures('finetune-text.js', '--fixtures', fixtures, TEXT_FIXTURES);
const { epochs, lr, seeds } = args;
const batchSize = args['batch-size'];
const say = (line: string) => (args.json ? console.error(line) : console.log(line));

interface Run {
  seed: number;
  testAccuracy: number;
  trainSeconds: number;
  examplesPerSecond: number;
}

const env = torchEnv();
const python = args['no-torch'] ? undefined : findTorchPython(env, ['torch', 'numpy']);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-finetune-text-'));
const machine = { cpu: cpuDescription(), node: process.version, onnxruntime: ort.env.versions.node ?? '', loadAverageAtStart: os.loadavg()[0]! };
say(`Fine-tuning the exported text fixtures on the reversed token task: ${args.train} training and ${args.test} test sequences of 12 tokens`);
say(`settings: ${epochs} epoch(s), batch ${batchSize}, Adam (torch's defaults, epsilon 1e-8) lr ${lr}, seeds ${seeds.join(',')}; the same batches in the same order on both sides`);
say(`machine: ${machine.cpu}; node ${machine.node}; onnxruntime-node ${machine.onnxruntime}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(', ')}`);
say(
  python
    ? `PyTorch: ${python} ${torchScript('torch_finetune_text.py')}, ${args['torch-threads'].join(' and ')} thread(s) (examples/s: the faster)`
    : `PyTorch: ${args['no-torch'] ? 'skipped (--no-torch)' : 'not importable with numpy (set KILN_BENCH_PYTHON, or apt-get install python3-torch)'}; Kiln only`,
);

interface Part {
  /** By input name, as the .npy files are named and as a model of several inputs takes them. */
  inputs: Record<string, Tensor>;
  labels: Tensor;
}

/** Each fixture's data (training and test parts), also written as .npy files for the PyTorch script. */
async function taskData(fixture: string, dir: string): Promise<{ train: Part; test: Part }> {
  const draw = (n: number, seed: number): Part => {
    if (fixture === 'textmask' || fixture === 'tokentag') {
      const { x, y } = fixture === 'textmask' ? paddedTokenTask(n, seed, true) : taggedTokenTask(n, seed, true);
      return { inputs: x, labels: y };
    }
    const { x, y } = fixture === 'causallm' ? countingTask(n, seed, [-1, -2, -3]) : tokenTask(n, seed, true);
    return { inputs: { input_ids: x }, labels: y };
  };
  const parts = { train: draw(args.train, 101), test: draw(args.test, 202) };
  await mkdir(dir, { recursive: true });
  for (const [name, part] of Object.entries(parts)) {
    for (const [input, t] of Object.entries(part.inputs)) await saveNpy(path.join(dir, `${name}_${input}.npy`), t);
    await saveNpy(path.join(dir, `${name}_labels.npy`), part.labels);
  }
  return parts;
}

/** What Kiln's fit takes: the one tensor of a single-input model, else the inputs by name. */
const modelInputs = (part: Part): ModelInputs => (Object.keys(part.inputs).length === 1 ? Object.values(part.inputs)[0]! : part.inputs);

function orderFile(dir: string, seed: number, n: number): { file: string; orders: Int32Array[] } {
  const random = new Random(seed);
  const orders = Array.from({ length: epochs }, () => random.permutation(n));
  const all = new Int32Array(epochs * n);
  orders.forEach((o, e) => all.set(o, e * n));
  const file = path.join(dir, `order-${seed}.i32`);
  writeFileSync(file, new Uint8Array(all.buffer));
  return { file, orders };
}

const results: { fixture: string; kiln: Run[]; torch: (Run & { byThreads: Record<number, number> })[] }[] = [];
for (const fixture of fixtures) {
  const dir = path.join(scratch, fixture);
  const data = await taskData(fixture, dir);
  const result = { fixture, kiln: [] as Run[], torch: [] as (Run & { byThreads: Record<number, number> })[] };
  results.push(result);
  for (const seed of seeds) {
    const { file, orders } = orderFile(dir, seed, args.train);
    // tokentag's and causallm's sequence axis is free: sized as the data's; labels of -100 are left out.
    const tagger = fixture === 'tokentag' || fixture === 'causallm';
    const model = await GraphModel.load(fixturePath(fixture), tagger ? { dimensions: { sequence: SEQ } } : {});
    const loss = tagger ? losses.sparseCategoricalCrossentropy({ fromLogits: true, ignoreClass: IGNORE_INDEX }) : 'sparseCategoricalCrossentropy';
    model.compile({ optimizer: optimizers.adam({ learningRate: lr, epsilon: 1e-8 }), loss, metrics: ['accuracy'] });
    const { seconds } = await timedFit(model, modelInputs(data.train), data.train.labels, { epochs, batchSize, seed, orders });
    const k = { seed, testAccuracy: (await model.evaluate(modelInputs(data.test), data.test.labels)).accuracy!, trainSeconds: seconds, examplesPerSecond: (args.train * epochs) / seconds };
    model.dispose();
    result.kiln.push(k);
    let line = `${fixture} seed ${seed}: kiln ${(100 * k.testAccuracy).toFixed(2)}% ${fmt(k.examplesPerSecond)} ex/s`;
    if (python) {
      const runs = args['torch-threads'].map((threads) => ({
        threads,
        ...runTorch<Run>(python, torchScript('torch_finetune_text.py'), ['--fixture', fixture, '--data', dir, '--epochs', String(epochs), '--batch-size', String(batchSize), '--lr', String(lr), '--seed', String(seed), '--order', file, '--threads', String(threads)], env),
      }));
      const fastest = runs.reduce((a, b) => (b.examplesPerSecond > a.examplesPerSecond ? b : a));
      const t = { seed, testAccuracy: runs[0]!.testAccuracy, trainSeconds: fastest.trainSeconds, examplesPerSecond: fastest.examplesPerSecond, byThreads: Object.fromEntries(runs.map((r) => [r.threads, r.examplesPerSecond])) };
      result.torch.push(t);
      line += `, torch ${(100 * t.testAccuracy).toFixed(2)}% ${Object.entries(t.byThreads).map(([n, v]) => `${fmt(v)} ex/s at ${n} thread(s)`).join(', ')}`;
    }
    say(`${line}  (load average ${os.loadavg()[0]!.toFixed(1)})`);
  }
}

const summary = results.map((r) => {
  const kAcc = mean(r.kiln.map((s) => s.testAccuracy));
  const tAcc = r.torch.length ? mean(r.torch.map((s) => s.testAccuracy)) : undefined;
  const kEps = mean(r.kiln.map((s) => s.examplesPerSecond));
  const tEps = r.torch.length ? mean(r.torch.map((s) => s.examplesPerSecond)) : undefined;
  return { fixture: r.fixture, kilnAccuracy: kAcc, torchAccuracy: tAcc, differencePoints: tAcc === undefined ? undefined : 100 * (kAcc - tAcc), kilnExamplesPerSecond: kEps, torchExamplesPerSecond: tEps, throughputRatio: tEps === undefined ? undefined : kEps / tEps };
});
const na = (v: number | undefined, f: (v: number) => string) => (v === undefined ? 'n/a' : f(v));
say(`\nMeans over ${seeds.length} seed(s); examples/s over the training loop only:`);
say(
  table(
    ['fixture', 'Kiln acc', 'PyTorch acc', 'Kiln - PyTorch', 'Kiln ex/s', 'PyTorch ex/s', 'Kiln/PyTorch'],
    summary.map((s) => [
      s.fixture,
      `${(100 * s.kilnAccuracy).toFixed(2)}%`,
      na(s.torchAccuracy, (v) => `${(100 * v).toFixed(2)}%`),
      na(s.differencePoints, (d) => `${d >= 0 ? '+' : ''}${d.toFixed(2)} pts`),
      fmt(s.kilnExamplesPerSecond),
      na(s.torchExamplesPerSecond, fmt),
      na(s.throughputRatio, (v) => `${v.toFixed(2)}x`),
    ]),
  ),
);
say(`Peak RSS ${fmt(peakRssMiB())} MiB (Kiln's process).`);
if (args.json) console.log(JSON.stringify({ settings: { fixtures, epochs, batchSize, lr, seeds, train: args.train, test: args.test }, machine, results, summary }));
process.exit(0);
