/*
 * Where the compiled training step spends its time: ONNX Runtime's per-node profile of the tutorial
 * CNN's step (Adam, sparse CE from logits), or with `--fixture NAME` of one of the PyTorch-exported
 * models of test/fixtures/exported/ (GraphModel, as bench/any-onnx/finetune.ts trains it: NCHW layout,
 * Adam with epsilon 1e-8), each node's median over the runs, grouped by op type and listed by node.
 *
 *   node dist/bench/train/profile.js [--batch 32] [--runs 30] [--top 40] [--threads N] [--fixture resnet]
 *
 * `--threads 1 --batch 64` is what each of fit's two replicas runs at batch 128 on 2 cores.
 *
 * It also splits the kernel time into the matrix-product ops (Conv, ConvTranspose, Gemm, MatMul and
 * their fused forms, with the FLOPs each did and its GFLOP/s) and everything else, and measures ONNX
 * Runtime's own best matrix product here on the same threads (one large Gemm shaped like the second
 * convolution's weight gradient): the step's FLOPs at that rate are its floor if nothing else cost.
 */
import os from 'node:os';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { Tensor, losses, optimizers } from '../../src/index.js';
import { Random } from '../../src/random.js';
import { GraphModel } from '../../src/train/graph-model.js';
import type { Model } from '../../src/model/model.js';
import { FIXTURE_OPTIONS, fixturePath } from '../any-onnx/common.js';
import { STATE_PARAMS, compileTraining, slotState } from '../../src/train/training-step.js';
import { benchArgs } from '../args.js';
import { bestGemm, randomImages, table, tutorialCnn } from './common.js';

const { batch, runs, top, threads, fixture } = benchArgs('node dist/bench/train/profile.js [flags]', {
  batch: { type: 'number', default: 32 },
  runs: { type: 'number', default: 30, help: 'profiled runs; each node shows its median' },
  top: { type: 'number', default: 40, help: 'nodes listed' },
  threads: { type: 'number', default: os.availableParallelism(), help: "ONNX Runtime's intra-op threads" },
  fixture: { type: 'string', help: 'an exported model of test/fixtures/exported/ (resnet, mlp, dwsep, ...) instead of the tutorial CNN' },
});

const model: Model = fixture ? await GraphModel.load(fixturePath(fixture), FIXTURE_OPTIONS) : tutorialCnn();
const what = fixture ? `${fixture} fixture` : 'tutorial CNN';
const optimizer = optimizers.adam({ learningRate: 1e-3, ...(fixture ? { epsilon: 1e-8 } : {}) });
const compiled = compileTraining(model, losses.sparseCategoricalCrossentropy({ fromLogits: true }), optimizer, null);
const flat = new Float32Array(compiled.totalSize);
for (const l of compiled.layout) flat.set(model.weights.get(l.name)!.data as Float32Array, l.offset);
const feeds: Record<string, ort.Tensor> = { [STATE_PARAMS]: new ort.Tensor('float32', flat, [flat.length]) };
for (const s of optimizer.slots) feeds[slotState(s.name)] = new ort.Tensor('float32', new Float32Array(compiled.totalSize).fill(s.initial), [compiled.totalSize]);
// Non-trainable state (BatchNorm's running statistics) is fed under its own name, as the trainer keeps it.
for (const name of compiled.frozen) {
  const t = model.weights.get(name)!;
  feeds[name] = new ort.Tensor('float32', t.data as Float32Array, [...t.shape]);
}
const { x, y } = fixture ? randomInputs(model.inputShape as number[], batch, 3) : randomImages(batch, 3);
feeds.input = new ort.Tensor('float32', x.data as Float32Array, [...x.shape]);
feeds.labels = new ort.Tensor('int64', BigInt64Array.from(y.data as Int32Array, (v) => BigInt(v)), [batch]);
feeds.lr = new ort.Tensor('float32', Float32Array.of(1e-3), []);

const dir = await mkdtemp(join(os.tmpdir(), 'kiln-profile-'));
const session = await ort.InferenceSession.create(compiled.trainStep, {
  intraOpNumThreads: threads,
  graphOptimizationLevel: 'extended', // as fit runs it
  enableProfiling: true,
  profileFilePrefix: join(dir, 'step'),
});
const wall: number[] = [];
for (let r = 0; r < runs + 3; r++) {
  feeds.step = new ort.Tensor('float32', Float32Array.of(r + 1), []);
  const t0 = performance.now();
  const out = await session.run(feeds);
  if (r >= 3) wall.push(performance.now() - t0);
  for (const [o, s] of Object.entries(compiled.store)) feeds[s] = out[o]!;
}
session.endProfiling();
await session.release();
const file = (await readdir(dir)).find((f) => f.endsWith('.json'))!;
type Shapes = Record<string, number[]>[];
const events = JSON.parse(await readFile(join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args: { op_name?: string; output_type_shape?: Shapes; input_type_shape?: Shapes } }[];
await rm(dir, { recursive: true, force: true });

const dims = (shapes: Shapes | undefined, k: number): number[] => Object.values(shapes?.[k] ?? {})[0] ?? [];
const prod = (v: number[]) => v.reduce((a, b) => a * b, 1);
/** Multiply-adds ×2 of a matrix-product node, from its input and output shapes (0 for other ops). */
function flopsOf(op: string, inputs: Shapes | undefined, outputs: Shapes | undefined): number {
  const out = dims(outputs, 0);
  if (op === 'Conv' || op === 'FusedConv') {
    const w = dims(inputs, 1); // [Cout, Cin/group, kh, kw]
    return 2 * prod(out) * prod(w.slice(1));
  }
  if (op === 'ConvTranspose') {
    const x = dims(inputs, 0); // [N, Cin, H, W], weight [Cin, Cout/group, kh, kw]
    return 2 * prod(x) * prod(dims(inputs, 1).slice(1));
  }
  if (op === 'Gemm' || op === 'FusedGemm') return 2 * prod(out) * (prod(dims(inputs, 0)) / out[0]!);
  if (op === 'MatMul' || op === 'FusedMatMul') {
    const a = dims(inputs, 0);
    const m = out.at(-2) ?? 1;
    return 2 * prod(out) * (prod(a.slice(-2)) / m);
  }
  return 0;
}

const perNode = new Map<string, { op: string; d: number[]; shape: string; flops: number }>();
for (const e of events) {
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
  const name = e.name.slice(0, -'_kernel_time'.length);
  const op = e.args.op_name ?? '?';
  const entry = perNode.get(name) ?? { op, d: [], shape: JSON.stringify(e.args.output_type_shape ?? ''), flops: flopsOf(op, e.args.input_type_shape, e.args.output_type_shape) };
  entry.d.push(e.dur);
  perNode.set(name, entry);
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const nodes = [...perNode].map(([name, { op, d, shape, flops }]) => ({ name, op, us: median(d.slice(3)), shape, flops }));
const total = nodes.reduce((a, n) => a + n.us, 0);
const byOp = new Map<string, { us: number; n: number }>();
for (const n of nodes) {
  const e = byOp.get(n.op) ?? { us: 0, n: 0 };
  e.us += n.us;
  e.n++;
  byOp.set(n.op, e);
}
console.log(`${what} training step, B=${batch}, ${threads} thread(s): wall median ${median(wall).toFixed(2)} ms, kernels ${(total / 1000).toFixed(2)} ms, ${nodes.length} nodes`);
console.log(table(['op type', 'nodes', 'µs', 'share'], [...byOp].sort((a, b) => b[1].us - a[1].us).map(([op, e]) => [op, String(e.n), e.us.toFixed(0), `${((100 * e.us) / total).toFixed(1)}%`])));
console.log(`\ntop ${top} nodes:`);
console.log(table(['node', 'op', 'µs', 'output'], nodes.sort((a, b) => b.us - a.us).slice(0, top).map((n) => [n.name.slice(0, 60), n.op, n.us.toFixed(0), n.shape.slice(0, 70)])));

// ------------------------------------------------ matrix products against ORT's own best here ----
const products = nodes.filter((n) => n.flops > 0);
const productUs = products.reduce((a, n) => a + n.us, 0);
const productFlops = products.reduce((a, n) => a + n.flops, 0);
// The second convolution's weight-gradient shape, and a square one; the faster counts.
const candidates = [await bestGemm(64, 144 * batch, 288, threads, 20, 3), await bestGemm(1024, 1024, 1024, threads, 20, 3)];
const best = candidates.reduce((a, b) => (b.gflops > a.gflops ? b : a));
const peakGflops = best.gflops;
const floorMs = productFlops / peakGflops / 1e6;
console.log(`\nmatrix products (Conv, ConvTranspose, Gemm, MatMul): ${(productUs / 1000).toFixed(2)} ms for ${(productFlops / 1e9).toFixed(3)} GFLOP (${(productFlops / productUs / 1e3).toFixed(1)} GFLOP/s); everything else ${((total - productUs) / 1000).toFixed(2)} ms`);
console.log(`ORT's best here on ${threads} thread(s), best of 20 runs: ${candidates.map((c) => `${c.label} ${c.ms.toFixed(2)} ms, ${c.gflops.toFixed(1)} GFLOP/s`).join('; ')}`);
console.log(`the step's products at that rate: ${floorMs.toFixed(2)} ms (${(batch / floorMs * 1000).toFixed(0)} img/s if nothing else cost anything)`);
console.log(table(['node', 'op', 'µs', 'MFLOP', 'GFLOP/s'], products.sort((a, b) => b.us - a.us).map((n) => [n.name.slice(0, 50), n.op, n.us.toFixed(0), (n.flops / 1e6).toFixed(1), (n.flops / n.us / 1e3).toFixed(1)])));

/** Uniform [0, 1) inputs of the model's shape and random labels of 10 classes (the fixtures' heads). */
function randomInputs(shape: number[], n: number, seed: number): { x: Tensor<'float32'>; y: Tensor<'int32'> } {
  const rng = new Random(seed);
  const x = new Float32Array(n * shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = rng.next();
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = rng.int(10);
  return { x: new Tensor(x, [n, ...shape], 'float32'), y: new Tensor(y, [n], 'int32') };
}
