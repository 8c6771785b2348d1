/*
 * Structured pruning of PyTorch-exported models (test/fixtures/exported) on Fashion-MNIST, all in one
 * run, per fixture:
 *   1. original: the .onnx as exported (100 Adam steps in PyTorch), or with --trained-epochs E that fixture
 *      fine-tuned E epochs on all 60,000 training images first (cosine-decayed Adam, cached in --cache): a
 *      converged model, as users bring to pruning; test accuracy;
 *   2. control: the original fine-tuned --epochs epochs with Kiln (Adam --lr, batch --batch-size, seed --seed);
 *   3. pruned: kiln.prune(original, {structured}) — resnet: {ratio: 0.5} (half of every channel group;
 *      with --parameters F, {parameters: F}: the ratio that removes that fraction of the parameters),
 *      ViT: {heads: 0.5, mlp: 0.5} (half the heads and MLP units of both layers) — accuracy right after removal;
 *   4. pruned + fine-tuned the same --epochs epochs, same optimizer, batch and seed as the control (with
 *      --distill, by kiln.distill with the original as teacher);
 *   5. (ResNets, unless --no-scratch) the pruned architecture from a fresh PyTorch-default initialization,
 *      trained the same epochs: what that many parameters reach without the original's weights.
 * The accuracy targets compare 4 with 2 (the same training budget after the export); 4 − 1 is printed too.
 * Reports parameters (running statistics excluded, as PyTorch counts), FLOPs per example, file sizes,
 * onnx.checker.check_model(full_check=True) on the pruned file (with /usr/bin/python3's onnx, when
 * present), ONNX Runtime latency at batch 64 on the .onnx files as saved, original and pruned measured
 * interleaved (median and 10th percentile of wall time at ONNX Runtime's default threads and at 1
 * thread, median CPU time at 1 thread, which load from other processes disturbs least), and ONNX
 * Runtime's per-op kernel profile of both at 1 thread (where the time goes), with and without ONNX
 * Runtime's layout optimizations; a one-op graph on the same input is timed with them as the floor
 * every run pays (session call, input copy).
 *
 *   node dist/bench/prune/any-onnx-structured.js [--fixtures resnet,vit17] [--epochs 2] [--limit 12000]
 *                                                [--batch-size 64] [--lr 1e-3] [--seed 1] [--runs 200] [--no-control]
 *                                                [--trained-epochs E] [--cosine] [--cache DIR] [--criterion l1|l2|bnScale|taylor] [--iterations N]
 *                                                [--parameters F] [--distill]
 *
 * Targets (issue): resnet structured 50%: parameters ≤ 55% of the original, ≥ 1.6× faster at batch 64,
 * within 1.5 points after fine-tuning; ViT with half its heads and MLP units: ≥ 1.4× faster at batch 64,
 * within 2 points after fine-tuning. --limit 60000 fine-tunes on the whole training set (the default,
 * 12,000 images, keeps the run short on a shared 2-core machine).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { datasets, distill, optimizers, prune, Tensor } from '../../src/index.js';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';
import { Random } from '../../src/random.js';
import { GraphModel } from '../../src/train/graph-model.js';
import type { GraphCriterion, GraphPruneReport, GraphStructuredArgs } from '../../src/optimize/prune/graph-structured.js';
import { kernelTimeByNode, timeInterleaved, type ProfileEvent, type Timing } from '../ort-timing.js';
import { benchArgs } from '../args.js';
import { cosineOverTraining, cpuDescription, fmt, table } from '../train/common.js';
import { FIXTURE_OPTIONS, exitOnUnknownFixtures, trainedFixture } from '../any-onnx/common.js';

const PLANS: Record<string, { structured: GraphStructuredArgs; what: string; speedTarget: number; accuracyTarget: number; parameterTarget?: number; scratch?: boolean }> = {
  resnet: { structured: { ratio: 0.5 }, what: 'structured 50% (every channel group halved)', speedTarget: 1.6, accuracyTarget: 1.5, parameterTarget: 0.55, scratch: true },
  resnet_fused: { structured: { ratio: 0.5 }, what: 'structured 50% (every channel group halved)', speedTarget: 1.6, accuracyTarget: 1.5, parameterTarget: 0.55, scratch: true },
  resnet_wide: { structured: { ratio: 0.5 }, what: 'structured 50% (every channel group halved)', speedTarget: 1.6, accuracyTarget: 1.5, parameterTarget: 0.55, scratch: true },
  vit13: { structured: { heads: 0.5, mlp: 0.5 }, what: 'half the heads and MLP units', speedTarget: 1.4, accuracyTarget: 2 },
  vit17: { structured: { heads: 0.5, mlp: 0.5 }, what: 'half the heads and MLP units', speedTarget: 1.4, accuracyTarget: 2 },
  vit_wide: { structured: { heads: 0.5, mlp: 0.5 }, what: 'half the heads and MLP units', speedTarget: 1.4, accuracyTarget: 2 },
};

const args = benchArgs('node dist/bench/prune/any-onnx-structured.js [flags]', {
  fixtures: { type: 'string', default: 'resnet,vit17', help: `comma-separated, of ${Object.keys(PLANS).join(', ')}` },
  epochs: { type: 'number', default: 2, help: 'fine-tuning epochs (control and pruned alike)' },
  limit: { type: 'number', default: 12000, help: 'fine-tune on the first N training images (60000: all); the 10,000 test images are always used' },
  'batch-size': { type: 'number', default: 64 },
  lr: { type: 'number', default: 1e-3, help: "Adam's learning rate" },
  seed: { type: 'number', default: 1, help: 'fit shuffling seed (control and pruned alike)' },
  runs: { type: 'number', default: 200, help: 'latency runs per model and thread setting' },
  'no-control': { type: 'boolean', help: 'skip fine-tuning the unpruned original' },
  'no-scratch': { type: 'boolean', help: 'skip training the pruned ResNet architecture from a fresh initialization' },
  'trained-epochs': { type: 'number', default: 0, help: 'train each fixture this many epochs on all training images before pruning (0: as exported, 100 PyTorch steps)' },
  cosine: { type: 'boolean', help: "fine-tuning's learning rate decays from --lr to 0 along a cosine (control, pruned and scratch alike)" },
  cache: { type: 'string', default: path.join(os.tmpdir(), 'kiln-bench-distill'), help: 'the trained fixtures (shared with bench/distill/any-onnx.js)' },
  iterations: {
    type: 'number',
    default: 1,
    help: 'prune in this many rounds inside kiln.prune, each fine-tuned --epochs / N epochs (the cosine restarting each round): the same total fine-tuning as the control',
  },
  parameters: {
    type: 'number',
    help: "ResNets: remove this fraction of the parameters (structured.parameters: the ratio is found) instead of half of every channel group",
  },
  distill: {
    type: 'boolean',
    help: 'fine-tune the pruned model by distilling from the original (kiln.distill: temperature 4, alpha 0.1; the same epochs, optimizer, batch and seed) instead of fit on the labels alone; the control stays plain',
  },
  criterion: { type: 'string', default: 'l1', help: "what ranks the units: l1, l2, bnScale or taylor (the loss gradient on the first 8 batches of --batch-size training images)" },
});
const CRITERIA: GraphCriterion[] = ['l1', 'l2', 'bnScale', 'taylor'];
if (!CRITERIA.includes(args.criterion as GraphCriterion)) {
  console.error(`any-onnx-structured.js: --criterion takes ${CRITERIA.join(', ')}; got '${args.criterion}'`);
  process.exit(2);
}
const criterion = args.criterion as GraphCriterion;
const iterations = args.iterations;
if (!Number.isInteger(iterations) || iterations < 1 || args.epochs % iterations !== 0) {
  console.error(`any-onnx-structured.js: --iterations takes a positive integer dividing --epochs (${args.epochs}); got ${iterations}`);
  process.exit(2);
}
if (args.distill && iterations > 1) {
  console.error('any-onnx-structured.js: --distill fine-tunes after one removal; rounds (--iterations) fine-tune inside kiln.prune, on the labels');
  process.exit(2);
}
const fixtures = args.fixtures.split(',').map((f) => f.trim());
exitOnUnknownFixtures('any-onnx-structured.js', '--fixtures', fixtures, Object.keys(PLANS));
const { epochs, limit, lr, seed, runs } = args;
const batchSize = args['batch-size'];
const BATCH = 64;
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;

const data = await datasets.fashionMnist();
const x: Tensor<'float32'> = data.train.images.slice(0, limit);
const y: Tensor<'int32'> = data.train.labels.slice(0, limit);
const test = { x: data.test.images, y: data.test.labels };
console.log(`CPU: ${cpuDescription()}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; Node ${process.versions.node}, onnxruntime-node ${ort.env.versions.common}`);
console.log(`Fashion-MNIST: fine-tuning on ${x.shape[0]} training images, ${epochs} epoch(s), Adam ${lr}${args.cosine ? ' cosine-decayed to 0' : ''}, batch ${batchSize}, seed ${seed}; accuracy on the ${test.x.shape[0]} test images`);
const work = mkdtempSync(path.join(os.tmpdir(), 'kiln-prune-any-onnx-'));

/** Accuracy on the test set. */
async function accuracy(model: GraphModel): Promise<number> {
  model.compile({ optimizer: optimizers.adam({ learningRate: lr }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return (await model.evaluate(test.x, test.y)).accuracy!;
}

async function fineTune(model: GraphModel, teacher?: GraphModel): Promise<number> {
  // --cosine: from lr down to 0 along a cosine over the fine-tuning, the usual recipe after pruning a
  // converged model (a constant 1e-3 knocks a cosine-annealed original back down: the control too).
  const learningRate = args.cosine ? cosineOverTraining(lr, epochs, x.shape[0]!, batchSize) : lr;
  const t0 = performance.now();
  if (teacher) {
    // The original teaches its pruned copy (NNCF's and Torch-Pruning's recovery with knowledge distillation).
    await distill({ teacher, student: model, x, y, epochs, batchSize, seed, optimizer: optimizers.adam({ learningRate }), verbose: 0 });
  } else {
    model.compile({ optimizer: optimizers.adam({ learningRate }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    await model.fit(x, y, { epochs, batchSize, seed, verbose: 0 });
  }
  return (performance.now() - t0) / 1000;
}

/** Original and pruned at batch 64, interleaved run by run, on `threads` intra-op threads (0: ONNX Runtime's default). */
async function latency(files: Uint8Array[], threads: number): Promise<Timing[]> {
  const sessions = await Promise.all(files.map((f) => ort.InferenceSession.create(f, threads ? { intraOpNumThreads: threads } : {})));
  const batch = test.x.slice(0, BATCH);
  // One channel: the NHWC images are already in NCHW order.
  const feed = { input: new ort.Tensor('float32', batch.data as Float32Array, [BATCH, 1, 28, 28]) };
  const timings = await timeInterleaved(sessions, feed, { rounds: runs, warmup: 5, cpu: threads === 1 });
  await Promise.all(sessions.map((x) => x.release()));
  return timings;
}

/** ONNX Runtime's kernel time by op type at 1 thread (µs per run: each node's median over 30 runs, summed), and the node count. */
async function profile(file: Uint8Array, label: string, level: 'all' | 'extended' = 'all'): Promise<{ byOp: Record<string, number>; byNode: Map<string, { op: string; us: number }>; nodes: number }> {
  const prefix = path.join(work, `profile-${label}-${level}`);
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, enableProfiling: true, profileFilePrefix: prefix, graphOptimizationLevel: level });
  const batch = test.x.slice(0, BATCH);
  for (let r = 0; r < 30; r++) await s.run({ input: new ort.Tensor('float32', batch.data as Float32Array, [BATCH, 1, 28, 28]) });
  s.endProfiling();
  await s.release();
  const written = readdirSync(work).filter((f) => f.startsWith(path.basename(prefix)) && f.endsWith('.json'));
  const events = JSON.parse(readFileSync(path.join(work, written.at(-1)!), 'utf8')) as ProfileEvent[];
  const byNode = kernelTimeByNode(events);
  const byOp: Record<string, number> = {};
  for (const { op, us } of byNode.values()) byOp[op] = (byOp[op] ?? 0) + us;
  return { byOp, byNode, nodes: byNode.size };
}

/** The floor of a run: one GlobalAveragePool on the same [64, 1, 28, 28] input. */
function floorModel(): Uint8Array {
  const g = new Graph('floor');
  g.output(g.op1('GlobalAveragePool', [g.input('input', 'float32', ['N', 1, 28, 28])]), 'logits');
  return encodeModel(modelToProto(g, {}, 13));
}

/**
 * Fresh weights for a convolutional graph, as PyTorch initializes its layers: Conv and Linear weights
 * and biases uniform in ±1/√fan_in (kaiming_uniform with a = √5), BatchNorm scale 1, shift 0, running
 * mean 0 and variance 1.
 */
function reinitialized(model: GraphModel): Map<string, Tensor> {
  const rng = new Random(seed);
  const proto = decodeModel(model.toOnnx());
  const dims = new Map((proto.graph!.initializer ?? []).map((t) => [t.name ?? '', (t.dims ?? []).map(Number)]));
  const fanIn = (w: string) => dims.get(w)!.slice(1).reduce((a, b) => a * b, 1);
  const rule = new Map<string, () => number>();
  const uniform = (bound: number) => () => rng.uniform(-bound, bound);
  for (const n of proto.graph!.node ?? []) {
    const [, w, b, mean, variance] = n.input ?? [];
    if (n.opType === 'BatchNormalization') [[w, 1], [b, 0], [mean, 0], [variance, 1]].forEach(([name, v]) => rule.set(name as string, () => v as number));
    else if (n.opType === 'Conv' || n.opType === 'Gemm') for (const name of [w, b]) if (name) rule.set(name, uniform(1 / Math.sqrt(fanIn(w!))));
  }
  const out = new Map<string, Tensor>();
  for (const [name, t] of model.weights) {
    const next = rule.get(name);
    if (!next) throw new Error(`reinitialized: no initialization rule for '${name}'`);
    out.set(name, new Tensor(Float32Array.from({ length: t.size }, next), [...t.shape], 'float32'));
  }
  return out;
}

/** onnx.checker.check_model(full_check=True) with Debian's python3-onnx, when it is there. */
function onnxCheck(file: string): string {
  const py = spawnSync('/usr/bin/python3', ['-c', 'import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print("passed (onnx " + onnx.__version__ + ")")', file], { encoding: 'utf8' });
  if (py.error || (py.status !== 0 && /No module named 'onnx'/.test(py.stderr))) return 'not run (no /usr/bin/python3 with onnx)';
  return py.status === 0 ? py.stdout.trim() : `FAILED: ${py.stderr.trim().split('\n').at(-1)}`;
}

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
const summary: string[] = [];

for (const fixture of fixtures) {
  const planned = PLANS[fixture]!;
  const plan =
    args.parameters !== undefined && planned.scratch
      ? { ...planned, structured: { parameters: args.parameters }, what: `structured, ${pct(args.parameters)} of the parameters removed (the ratio found for it)` }
      : planned;
  console.log(`\n=== ${fixture}: ${plan.what} ${JSON.stringify({ ...plan.structured, criterion })} [${elapsed()}]`);
  const { file: originalFile } = await trainedFixture(fixture, args['trained-epochs'], { x: data.train.images, y: data.train.labels }, { batchSize, cacheDir: args.cache });
  const original = await GraphModel.load(originalFile, FIXTURE_OPTIONS);
  const originalAccuracy = await accuracy(original);
  const structured: GraphStructuredArgs = { ...plan.structured, criterion, ...(criterion === 'taylor' ? { data: { x: data.train.images, y: data.train.labels, batchSize } } : {}) };
  // In rounds, kiln.prune fine-tunes after each (epochs / iterations per round); in one, the bench does after it.
  const roundEpochs = epochs / iterations;
  const t0 = performance.now();
  const { model: pruned, report } = await prune(original, {
    structured: { ...structured, iterations },
    ...(iterations > 1
      ? { fineTune: { x, y, epochs: roundEpochs, batchSize, seed, verbose: 0 as const, optimizer: optimizers.adam({ learningRate: args.cosine ? cosineOverTraining(lr, roundEpochs, x.shape[0]!, batchSize) : lr }) } }
      : {}),
  });
  const roundsSeconds = (performance.now() - t0) / 1000;
  if (report.ratio !== undefined) console.log(`ratio found for ${pct(plan.structured.parameters!)} of the parameters: ${report.ratio.toFixed(4)} of every channel group`);
  const removedAccuracy = iterations > 1 ? undefined : await accuracy(pruned);
  const prunedFile = path.join(work, `${fixture}-pruned.onnx`);
  writeFileSync(prunedFile, pruned.toOnnx());
  const check = onnxCheck(prunedFile);
  const files = [original.toOnnx(), pruned.toOnnx(), floorModel()];

  let control: { accuracy: number; seconds: number } | undefined;
  if (!args['no-control']) {
    const tuned = await GraphModel.load(originalFile, FIXTURE_OPTIONS);
    const seconds = await fineTune(tuned);
    control = { accuracy: await accuracy(tuned), seconds };
    console.log(`control: the original fine-tuned ${epochs} epoch(s) in ${seconds.toFixed(0)} s [${elapsed()}]`);
  }
  let scratch: number | undefined;
  if (plan.scratch && !args['no-scratch']) {
    const fresh = await GraphModel.fromProto(decodeModel(pruned.toOnnx()), `${fixture}-pruned`);
    fresh.setWeights(reinitialized(fresh));
    const seconds = await fineTune(fresh);
    scratch = await accuracy(fresh);
    console.log(`scratch: the pruned architecture from a fresh initialization trained ${epochs} epoch(s) in ${seconds.toFixed(0)} s [${elapsed()}]`);
  }
  const prunedSeconds = iterations > 1 ? roundsSeconds : await fineTune(pruned, args.distill ? original : undefined);
  const tunedAccuracy = await accuracy(pruned);
  console.log(`pruned: ${iterations > 1 ? `${iterations} rounds, each fine-tuned ${roundEpochs} epoch(s),` : `fine-tuned ${epochs} epoch(s)${args.distill ? ' distilling from the original' : ''}`} in ${prunedSeconds.toFixed(0)} s [${elapsed()}]`);

  const threadsDefault = await latency(files, 0);
  const threadsOne = await latency(files, 1);
  const [profOriginal, profPruned] = [await profile(files[0]!, `${fixture}-original`), await profile(files[1]!, `${fixture}-pruned`)];
  // Without ONNX Runtime's layout optimizations (no NCHWc blocked convolutions, which pad channels to the SIMD width).
  const [plainOriginal, plainPruned] = [await profile(files[0]!, `${fixture}-original`, 'extended'), await profile(files[1]!, `${fixture}-pruned`, 'extended')];
  console.log(`latency: ${runs} interleaved runs per model and setting [${elapsed()}]`);

  const r: GraphPruneReport = report;
  const row = (name: string, acc: number | undefined, snap: GraphPruneReport['before'] | undefined) => [
    name,
    acc === undefined ? '' : pct(acc),
    snap ? fmt(snap.parameters) : '',
    snap ? `${(snap.flops / 1e6).toFixed(3)} M` : '',
    snap ? `${(snap.fileBytes / 1024).toFixed(1)} KiB` : '',
  ];
  console.log(
    '\n' +
      table(['model', 'test acc', 'params', 'FLOPs/example', 'file'], [
        row(args['trained-epochs'] ? `original (trained ${args['trained-epochs']} epochs)` : 'original (as exported)', originalAccuracy, r.before),
        row(`original + ${epochs} epoch(s) (control)`, control?.accuracy, undefined),
        row(iterations > 1 ? `pruned (${iterations} rounds; before fine-tuning: not measured)` : 'pruned, before fine-tuning', removedAccuracy, r.after),
        row(`pruned + ${epochs} epoch(s)${iterations > 1 ? ` (${roundEpochs} per round)` : args.distill ? ', distilled from the original' : ''}`, tunedAccuracy, undefined),
        ...(scratch !== undefined ? [row(`pruned architecture, fresh weights, ${epochs} epoch(s)`, scratch, undefined)] : []),
      ]),
  );
  console.log('\nGroups:');
  for (const g of r.groups) {
    console.log(`  ${g.kind.padEnd(8)} ${g.pruned ? `${g.units[0]} → ${g.units[1]}`.padEnd(8) : String(g.units[0]).padEnd(8)} ${g.producers.join(' + ')}${g.pruned ? '' : `  — left whole: ${g.leftWhole[0]?.node ?? ''} ${g.leftWhole[0]?.why ?? '(ratio 0)'}${g.leftWhole.length > 1 ? ` (+${g.leftWhole.length - 1} more)` : ''}`}`);
  }
  const speed = (t: Timing[], key: keyof Timing) => t[0]![key]! / t[1]![key]!;
  console.log(
    '\n' +
      table(['ONNX Runtime, batch 64', 'default threads: median ms', 'p10 ms', '1 thread: median ms', 'p10 ms', 'CPU ms'], [
        ...['original', 'pruned', 'floor: one GlobalAveragePool'].map((name, k) => [name, ...[threadsDefault[k]!.medianMs, threadsDefault[k]!.p10Ms, threadsOne[k]!.medianMs, threadsOne[k]!.p10Ms, threadsOne[k]!.cpuMs!].map((v) => v.toFixed(3))]),
        ['speed-up', ...[speed(threadsDefault, 'medianMs'), speed(threadsDefault, 'p10Ms'), speed(threadsOne, 'medianMs'), speed(threadsOne, 'p10Ms'), speed(threadsOne, 'cpuMs')].map((v) => `${v.toFixed(2)}×`)],
      ]),
  );
  const ops = [...new Set([...Object.keys(profOriginal.byOp), ...Object.keys(profPruned.byOp)])].sort((a, b) => (profOriginal.byOp[b] ?? 0) - (profOriginal.byOp[a] ?? 0));
  const total = (p: { byOp: Record<string, number> }) => Object.values(p.byOp).reduce((a, b) => a + b, 0);
  console.log(
    `\nONNX Runtime kernel profile, 1 thread, batch 64 (µs per run by op type; ${profOriginal.nodes} → ${profPruned.nodes} kernels after ONNX Runtime's graph optimizations):\n` +
      table(
        ['op', 'original µs', 'pruned µs', 'ratio'],
        [...ops, 'total'].map((op) => {
          const [a, b] = op === 'total' ? [total(profOriginal), total(profPruned)] : [profOriginal.byOp[op] ?? 0, profPruned.byOp[op] ?? 0];
          return [op, a.toFixed(0), b.toFixed(0), b > 0 ? `${(a / b).toFixed(2)}×` : ''];
        }),
      ),
  );

  // The convolutions one by one (ONNX Runtime names a fused or NCHWc node after its output).
  const convs = [...profOriginal.byNode].filter(([, v]) => v.op === 'Conv');
  if (convs.length > 1) {
    console.log(
      '\nConv kernels one by one (same profile):\n' +
        table(
          ['node (ONNX Runtime name)', 'original µs', 'pruned µs', 'ratio'],
          convs.map(([name, v]) => {
            const b = profPruned.byNode.get(name)?.us;
            return [name, v.us.toFixed(0), b === undefined ? '' : b.toFixed(0), b ? `${(v.us / b).toFixed(2)}×` : ''];
          }),
        ),
    );
  }

  const paramRatio = r.after.parameters / r.before.parameters;
  const flopRatio = r.before.flops / r.after.flops;
  const deltaControl = control ? 100 * (tunedAccuracy - control.accuracy) : undefined;
  const deltaOriginal = 100 * (tunedAccuracy - originalAccuracy);
  const cpuSpeed = speed(threadsOne, 'cpuMs');
  const wallSpeed = speed(threadsDefault, 'medianMs');
  const p10Speed = speed(threadsDefault, 'p10Ms');
  const floorCpu = threadsOne[2]!.cpuMs!;
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
  const lines = [
    `${fixture} (${plan.what}): onnx.checker full_check on the pruned file: ${check}; input/output names ${JSON.stringify([original.modelInput.name])} → logits kept`,
    ...(plan.parameterTarget !== undefined ? [`  parameters ${fmt(r.after.parameters)} / ${fmt(r.before.parameters)} = ${pct(paramRatio)} (target ≤ ${pct(plan.parameterTarget)}) -> ${verdict(paramRatio <= plan.parameterTarget)}`] : [`  parameters ${fmt(r.after.parameters)} / ${fmt(r.before.parameters)} = ${pct(paramRatio)}`]),
    `  FLOPs ${flopRatio.toFixed(2)}× fewer; kernel time (profile, 1 thread) ${(total(profOriginal) / total(profPruned)).toFixed(2)}× less (Conv ${((profOriginal.byOp.Conv ?? 0) / (profPruned.byOp.Conv ?? 1)).toFixed(2)}×); without layout optimizations (graphOptimizationLevel 'extended', no NCHWc) ${(total(plainOriginal) / total(plainPruned)).toFixed(2)}× less (Conv ${((plainOriginal.byOp.Conv ?? 0) / (plainPruned.byOp.Conv ?? 1)).toFixed(2)}×), ${(total(plainOriginal) / 1000).toFixed(3)} → ${(total(plainPruned) / 1000).toFixed(3)} ms`,
    `  speed-up at batch 64 (target ≥ ${plan.speedTarget}×): ${cpuSpeed.toFixed(2)}× in CPU time at 1 thread -> ${verdict(cpuSpeed >= plan.speedTarget)}; at default threads ${wallSpeed.toFixed(2)}× median wall, ${p10Speed.toFixed(2)}× 10th-percentile wall -> ${verdict(Math.min(wallSpeed, p10Speed) >= plan.speedTarget)}; above the floor every run pays (${floorCpu.toFixed(3)} ms CPU), ${((threadsOne[0]!.cpuMs! - floorCpu) / (threadsOne[1]!.cpuMs! - floorCpu)).toFixed(2)}×`,
    `  accuracy after ${epochs} epoch(s) of fine-tuning: ${pct(tunedAccuracy)} vs the control (original + the same fine-tuning) ${control ? pct(control.accuracy) : 'not run'}: ${deltaControl === undefined ? 'n/a' : `${deltaControl >= 0 ? '+' : ''}${deltaControl.toFixed(2)} points (target within ${plan.accuracyTarget}) -> ${verdict(deltaControl >= -plan.accuracyTarget)}`}; vs the original${args['trained-epochs'] ? ` trained ${args['trained-epochs']} epochs` : ' as exported'} ${pct(originalAccuracy)}: ${deltaOriginal >= 0 ? '+' : ''}${deltaOriginal.toFixed(2)} points${scratch !== undefined ? `; the pruned architecture from fresh weights: ${pct(scratch)}` : ''}`,
  ];
  summary.push(...lines);
  console.log('\n' + lines.join('\n'));
}

rmSync(work, { recursive: true, force: true });
console.log(`\nSummary\n${summary.join('\n')}\ntotal ${elapsed()}; load average now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
process.exit(0);
