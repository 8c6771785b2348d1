/*
 * Transfer learning from a PyTorch-exported model, Kiln against PyTorch (bench/any-onnx/torch_transfer.py)
 * in the same run, on Fashion-MNIST split in two halves:
 *   1. source: the resnet (or resnet_wide) fixture, from its .onnx weights, trained 1 epoch on classes 0–4 (its 10-way head);
 *   2. transfer: a new 5-way head (GraphModel.replaceHead(5); labels 5–9 → 0–4) over the frozen backbone
 *      (trainOnly('head.*'): every other weight, BatchNorm running statistics included, keeps its value),
 *      1 epoch on classes 5–9;
 *   3. scratch: the same architecture with a 5-way head and every weight drawn afresh, all trained 1
 *      epoch on classes 5–9: what transfer learning is measured against.
 * Accuracies are top-1 on the test images of the classes concerned. Target: transfer >= 90% on 5–9.
 *
 *   node dist/bench/any-onnx/transfer.js [--fixture resnet|resnet_wide] [--batch-size 64] [--lr 1e-3] [--seed 0] [--limit N] [--torch-threads 2] [--no-torch] [--json]
 *
 * "From scratch", honestly: fine-tuning the fixture's own weights with a new head would not be from
 * scratch (make_fixtures.py pretrained them on all ten classes), so every weight is re-drawn from the
 * distributions PyTorch's constructors use, as torch_transfer.py's scratch model is: Conv and Linear
 * weights and Linear biases U(±1/√fan_in) (kaiming_uniform with a = √5), Conv biases likewise, BatchNorm
 * scale 1, shift 0, running mean 0, running variance 1; only the random values differ (Kiln's generator).
 *
 * The frozen backbone's BatchNorm runs on its running statistics while the head trains, in Kiln (a
 * BatchNorm whose scale and shift are frozen runs as exported) as in PyTorch (eval mode); the bench
 * prints how far the backbone moved — nothing, weights and statistics alike.
 */
import os from 'node:os';
import ort from 'onnxruntime-node';
import { Random, Tensor, datasets, optimizers } from '../../src/index.js';
import { GraphModel } from '../../src/train/graph-model.js';
import type { CompileArgs } from '../../src/train/model.js';
import { benchArgs } from '../args.js';
import { cpuDescription, findTorchPython, fmt, peakRssMiB, table, torchEnv } from '../train/common.js';
import { FIXTURE_OPTIONS, exitOnUnknownFixtures, fixturePath, runTorch, selectClasses, timedFit, torchScript } from './common.js';

const args = benchArgs('node dist/bench/any-onnx/transfer.js [flags]', {
  'batch-size': { type: 'number', default: 64 },
  lr: { type: 'number', default: 1e-3, help: "Adam's learning rate (both sides, every phase)" },
  seed: { type: 'number', default: 0, help: 'shuffles, and the new head and the scratch weights' },
  limit: { type: 'number', help: 'the first N training images of each 5-class half (the test sets stay whole)' },
  fixture: { type: 'string', default: 'resnet', help: 'resnet or resnet_wide (test/fixtures/exported)' },
  'torch-threads': { type: 'number', default: 2, help: "torch.set_num_threads (bench/train's best configuration)" },
  'no-torch': { type: 'boolean', help: 'Kiln only' },
  json: { type: 'boolean', help: 'print one JSON object on stdout (progress goes to stderr)' },
});
const { lr, seed, limit } = args;
const batchSize = args['batch-size'];
const say = (line: string) => (args.json ? console.error(line) : console.log(line));
/** The head's weights in the resnet fixtures (torch's state_dict names survive the PRESERVE export). */
const HEAD = 'head.*';

interface Phase {
  trainImages: number;
  testAccuracy: number;
  trainSeconds: number;
}
interface TorchTransfer {
  source: Phase;
  transfer: Phase;
  scratch: Phase;
  torchVersion: string;
  threads: number;
}

exitOnUnknownFixtures('transfer.js', '--fixture', [args.fixture], ['resnet', 'resnet_wide']);
const env = torchEnv();
const python = args['no-torch'] ? undefined : findTorchPython(env);
const data = await datasets.fashionMnist();
const sourceTrain = selectClasses(data.train.images, data.train.labels, 0, 5, 0, limit);
const targetTrain = selectClasses(data.train.images, data.train.labels, 5, 10, 5, limit);
const sourceTest = selectClasses(data.test.images, data.test.labels, 0, 5);
const targetTest = selectClasses(data.test.images, data.test.labels, 5, 10, 5);

const settings = {
  fixture: args.fixture,
  epochsPerPhase: 1,
  batchSize,
  lr,
  seed,
  optimizer: "Adam (beta1 0.9, beta2 0.999, epsilon 1e-8: torch's defaults), a fresh one per phase",
  trainImages: { source: sourceTrain.y.shape[0]!, target: targetTrain.y.shape[0]! },
  testImages: { source: sourceTest.y.shape[0]!, target: targetTest.y.shape[0]! },
  torch: python ? { python, script: torchScript('torch_transfer.py'), threads: args['torch-threads'] } : null,
};
const machine = { cpu: cpuDescription(), node: process.version, onnxruntime: ort.env.versions.node ?? '', loadAverageAtStart: os.loadavg()[0]! };
say(`Transfer learning, ${args.fixture} fixture: classes 0-4 (${settings.trainImages.source} images) then 5-9 (${settings.trainImages.target} images)${limit !== undefined ? ` (--limit ${limit})` : ''}; test ${settings.testImages.source} / ${settings.testImages.target} images`);
say(`settings: 1 epoch per phase, batch ${batchSize}, ${settings.optimizer}, lr ${lr}, seed ${seed}; sparse categorical cross-entropy from logits`);
say(`machine: ${machine.cpu}; node ${machine.node}; onnxruntime-node ${machine.onnxruntime}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(', ')}`);
say(python ? `PyTorch: ${python} ${settings.torch!.script}, ${args['torch-threads']} threads, bench/train's OpenBLAS/malloc environment` : `PyTorch: ${args['no-torch'] ? 'skipped (--no-torch)' : 'not importable (set KILN_BENCH_PYTHON, or apt-get install python3-torch)'}; Kiln only`);

const compileArgs = (): CompileArgs => ({ optimizer: optimizers.adam({ learningRate: lr, epsilon: 1e-8 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });

/** Trains 1 epoch on (x, y) and measures test accuracy on (tx, ty). */
async function phase(model: GraphModel, train: { x: Tensor; y: Tensor }, test: { x: Tensor; y: Tensor }): Promise<Phase> {
  const { seconds } = await timedFit(model, train.x, train.y, { epochs: 1, batchSize, seed });
  const r = await model.evaluate(test.x, test.y);
  return { trainImages: train.y.shape[0]!, testAccuracy: r.accuracy!, trainSeconds: seconds };
}

/** Every weight of an (imported PyTorch) model re-drawn as PyTorch's constructors draw it; see the header. */
function torchDefaultInit(weights: Map<string, Tensor>, rng: Random): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const uniform = (shape: number[], bound: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return new Tensor(Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * bound), shape, 'float32');
  };
  const fill = (shape: number[], v: number) => new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v), shape, 'float32');
  for (const [name, t] of weights) {
    const shape = [...t.shape];
    const owner = weights.get(name.replace(/\.bias$/, '.weight'));
    if (name.endsWith('.running_mean')) out.set(name, fill(shape, 0));
    else if (name.endsWith('.running_var')) out.set(name, fill(shape, 1));
    else if (shape.length >= 2) out.set(name, uniform(shape, 1 / Math.sqrt(shape.slice(1).reduce((a, b) => a * b, 1))));
    else if (name.endsWith('.weight')) out.set(name, fill(shape, 1)); // BatchNorm scale
    else if (name.endsWith('.bias') && owner && owner.shape.length >= 2) out.set(name, uniform(shape, 1 / Math.sqrt(owner.shape.slice(1).reduce((a, b) => a * b, 1))));
    else if (name.endsWith('.bias')) out.set(name, fill(shape, 0)); // BatchNorm shift
    else throw new Error(`scratch initialization: no PyTorch default for weight '${name}' (shape [${shape.join(', ')}])`);
  }
  return out;
}

const isRunningStat = (name: string) => /\.running_(mean|var)$/.test(name);

/**
 * The largest change outside the head between two snapshots, for the learned weights and for the
 * BatchNorm running statistics apart: both 0 when the backbone was truly frozen.
 */
function backboneChange(before: Map<string, Tensor>, after: Map<string, Tensor>): { weights: number; runningStats: number } {
  const max = { weights: 0, runningStats: 0 };
  for (const [name, t] of before) {
    if (name.startsWith('head.')) continue;
    const a = t.data as Float32Array;
    const b = after.get(name)!.data as Float32Array;
    const key = isRunningStat(name) ? 'runningStats' : 'weights';
    for (let i = 0; i < a.length; i++) max[key] = Math.max(max[key], Math.abs(a[i]! - b[i]!));
  }
  return max;
}

const sourceTestSet = { x: sourceTest.x, y: sourceTest.y };
const targetTestSet = { x: targetTest.x, y: targetTest.y };

// Kiln: source, then transfer on the same model, then scratch.
const model = await GraphModel.load(fixturePath(args.fixture), { ...FIXTURE_OPTIONS, seed });
model.compile(compileArgs());
const kSource = await phase(model, sourceTrain, sourceTestSet);
say(`kiln source (0-4, 10-way head): ${(100 * kSource.testAccuracy).toFixed(2)}%, ${fmt(kSource.trainSeconds, 1)} s`);
await model.replaceHead(5);
model.trainOnly(HEAD);
const trained = model.paramInfos().filter((p) => p.spec.trainable).map((p) => p.name);
const before = new Map([...model.getWeights()].map(([k, v]) => [k, new Tensor((v.data as Float32Array).slice(), [...v.shape], 'float32')]));
const kTransfer = await phase(model, targetTrain, targetTestSet);
const change = backboneChange(before, model.getWeights());
say(`kiln transfer (5-9, new head, trained: ${trained.join(', ')}): ${(100 * kTransfer.testAccuracy).toFixed(2)}%, ${fmt(kTransfer.trainSeconds, 1)} s; backbone's largest change: weights ${change.weights}, BatchNorm running statistics ${change.runningStats}`);

const scratch = await GraphModel.load(fixturePath(args.fixture), { ...FIXTURE_OPTIONS, seed });
await scratch.replaceHead(5);
scratch.setWeights(torchDefaultInit(scratch.getWeights(), new Random(seed)));
scratch.compile(compileArgs());
const kScratch = await phase(scratch, targetTrain, targetTestSet);
say(`kiln scratch (5-9, every weight re-drawn): ${(100 * kScratch.testAccuracy).toFixed(2)}%, ${fmt(kScratch.trainSeconds, 1)} s`);

let torch: TorchTransfer | undefined;
if (python) {
  const flags = ['--fixture', args.fixture, '--batch-size', String(batchSize), '--lr', String(lr), '--seed', String(seed), '--threads', String(args['torch-threads'])];
  if (limit !== undefined) flags.push('--limit', String(limit));
  torch = runTorch<TorchTransfer>(python, torchScript('torch_transfer.py'), flags, env);
  say(`torch source ${(100 * torch.source.testAccuracy).toFixed(2)}%, transfer ${(100 * torch.transfer.testAccuracy).toFixed(2)}%, scratch ${(100 * torch.scratch.testAccuracy).toFixed(2)}% (torch ${torch.torchVersion}, ${torch.threads} threads)`);
}

const kiln = { source: kSource, transfer: { ...kTransfer, trainedWeights: trained, backboneLargestChange: change }, scratch: kScratch };
const bnNote = 'BatchNorm in the frozen backbone while the head trains: on its running statistics, not updated, in PyTorch (eval mode) and Kiln (frozen scale and shift)' + (change.runningStats > 0 || change.weights > 0 ? `; yet Kiln's backbone moved (${change.weights} / ${change.runningStats})` : '');
// The table goes to stdout, or with --json to stderr beside the progress lines, the JSON alone on stdout.
{
  const pct = (p: Phase | undefined) => (p ? `${(100 * p.testAccuracy).toFixed(2)}%` : 'n/a');
  const secs = (p: Phase | undefined) => (p ? fmt(p.trainSeconds, 1) : 'n/a');
  say('\nTop-1 accuracy on the test images of the phase\'s classes; seconds over each training loop only:');
  say(
    table(
      ['phase', 'classes', 'train images', 'Kiln acc', 'PyTorch acc', 'Kiln s', 'PyTorch s'],
      [
        ['source: fixture weights, 10-way head, all trained', '0-4', fmt(kSource.trainImages), pct(kSource), pct(torch?.source), secs(kSource), secs(torch?.source)],
        ['transfer: new 5-way head, backbone frozen (trainOnly)', '5-9', fmt(kTransfer.trainImages), pct(kTransfer), pct(torch?.transfer), secs(kTransfer), secs(torch?.transfer)],
        ['scratch: fresh weights, 5-way head, all trained', '5-9', fmt(kScratch.trainImages), pct(kScratch), pct(torch?.scratch), secs(kScratch), secs(torch?.scratch)],
      ],
    ),
  );
  say(`Kiln's backbone during transfer, largest change: learned weights ${change.weights}, BatchNorm running statistics ${change.runningStats}${change.runningStats > 0 ? ' (trainOnly did not hold them: they moved on classes 5-9)' : ''}.`);
  say(`${bnNote}.`);
  say(`target: transfer >= 90% on classes 5-9 (Kiln ${pct(kTransfer)}). Peak RSS ${fmt(peakRssMiB())} MiB (Kiln's process).`);
}
if (args.json) console.log(JSON.stringify({ settings, machine, kiln, torch: torch ?? null, note: bnNote, peakRssMiB: peakRssMiB() }));
process.exit(0);
