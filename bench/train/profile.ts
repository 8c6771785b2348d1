/*
 * Where the compiled training step spends its time: ONNX Runtime's per-node profile of the tutorial
 * CNN's step (Adam, sparse CE from logits), each node's median over the runs, grouped by op type and
 * listed by node.
 *
 *   node dist/bench/train/profile.js [--batch 32] [--runs 30] [--top 40] [--threads N]
 *
 * `--threads 1 --batch 64` is what each of fit's two replicas runs at batch 128 on 2 cores.
 */
import os from 'node:os';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { Tensor, losses, optimizers } from '../../src/index.js';
import { STATE_PARAMS, compileTraining, slotState } from '../../src/train/training-step.js';
import { randomImages, table, tutorialCnn } from './common.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}
const batch = Number(arg('batch', '32'));
const runs = Number(arg('runs', '30'));
const top = Number(arg('top', '40'));
const threads = Number(arg('threads', String(os.availableParallelism())));

const model = tutorialCnn();
const optimizer = optimizers.adam({ learningRate: 1e-3 });
const compiled = compileTraining(model, losses.sparseCategoricalCrossentropy({ fromLogits: true }), optimizer, null);
const flat = new Float32Array(compiled.totalSize);
for (const l of compiled.layout) flat.set(model.weights.get(l.name)!.data as Float32Array, l.offset);
const feeds: Record<string, ort.Tensor> = { [STATE_PARAMS]: new ort.Tensor('float32', flat, [flat.length]) };
for (const s of optimizer.slots) feeds[slotState(s.name)] = new ort.Tensor('float32', new Float32Array(compiled.totalSize).fill(s.initial), [compiled.totalSize]);
const { x, y } = randomImages(batch, 3);
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
const events = JSON.parse(await readFile(join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args: { op_name?: string; output_type_shape?: unknown } }[];
await rm(dir, { recursive: true, force: true });

const perNode = new Map<string, { op: string; d: number[]; shape: string }>();
for (const e of events) {
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
  const name = e.name.slice(0, -'_kernel_time'.length);
  const entry = perNode.get(name) ?? { op: e.args.op_name ?? '?', d: [], shape: JSON.stringify(e.args.output_type_shape ?? '') };
  entry.d.push(e.dur);
  perNode.set(name, entry);
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const nodes = [...perNode].map(([name, { op, d, shape }]) => ({ name, op, us: median(d.slice(3)), shape }));
const total = nodes.reduce((a, n) => a + n.us, 0);
const byOp = new Map<string, { us: number; n: number }>();
for (const n of nodes) {
  const e = byOp.get(n.op) ?? { us: 0, n: 0 };
  e.us += n.us;
  e.n++;
  byOp.set(n.op, e);
}
console.log(`tutorial CNN training step, B=${batch}, ${threads} thread(s): wall median ${median(wall).toFixed(2)} ms, kernels ${(total / 1000).toFixed(2)} ms, ${nodes.length} nodes`);
console.log(table(['op type', 'nodes', 'µs', 'share'], [...byOp].sort((a, b) => b[1].us - a[1].us).map(([op, e]) => [op, String(e.n), e.us.toFixed(0), `${((100 * e.us) / total).toFixed(1)}%`])));
console.log(`\ntop ${top} nodes:`);
console.log(table(['node', 'op', 'µs', 'output'], nodes.sort((a, b) => b.us - a.us).slice(0, top).map((n) => [n.name.slice(0, 60), n.op, n.us.toFixed(0), n.shape.slice(0, 70)])));
