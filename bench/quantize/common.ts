/*
 * Shared by the quantization benches (run.ts: Kiln's CNN presets; any-onnx.ts: PyTorch exports):
 * ONNX Runtime sessions with the options Kiln's runtime worker uses, test accuracy, float and
 * quantized models timed interleaved (with ../ort-timing.ts), ONNX Runtime's per-operator profile, the
 * op types of the graph it runs after its optimizations, and a markdown table.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { decodeModel } from '../../src/graph/proto.js';
import type { Tensor } from '../../src/tensor.js';
import { accuracy } from '../../src/train/metrics.js';
import { kernelTimeByNode, timeInterleaved, type ProfileEvent, type Timing } from '../ort-timing.js';

/** Graph optimization 'all', sequential execution; at one thread without spinning (steadier on a shared machine). */
export async function session(bytes: Uint8Array, intraOp: number, extra: Record<string, unknown> = {}): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: intraOp,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    ...(intraOp === 1 ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
    ...extra,
  });
}

function feedOf(s: ort.InferenceSession, x: Tensor): Record<string, ort.Tensor> {
  return { [s.inputNames[0]!]: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) };
}

/** Top-1 accuracy of a classifier file on x (already in the layout its input takes), 500 at a time. */
export async function testAccuracy(bytes: Uint8Array, x: Tensor, labels: Tensor, threads: number): Promise<number> {
  const s = await session(bytes, threads);
  const n = x.shape[0]!;
  const parts: Float32Array[] = [];
  for (let i = 0; i < n; i += 500) {
    const out = await s.run(feedOf(s, x.slice(i, i + 500)));
    parts.push(out[s.outputNames[0]!]!.data as Float32Array);
  }
  await s.release();
  const classes = parts[0]!.length / Math.min(n, 500);
  const scores = new Float32Array(n * classes);
  parts.reduce((offset, p) => (scores.set(p, offset), offset + p.length), 0);
  return accuracy(labels, scores, { numClasses: classes });
}

/** Several models timed in turn on one batch, `rounds` times after 3 warm-up rounds: [model] → timing. */
export async function interleavedLatency(models: Uint8Array[], batch: Tensor, intraOp: number, rounds: number): Promise<Timing[]> {
  const sessions = await Promise.all(models.map((b) => session(b, intraOp)));
  const timings = await timeInterleaved(sessions, feedOf(sessions[0]!, batch), { rounds, warmup: 3, cpu: intraOp === 1 });
  await Promise.all(sessions.map((s) => s.release()));
  return timings;
}

/** ONNX Runtime's own kernel time, µs per run by op type (each node's median over 30 runs, 1 thread). */
export async function profile(bytes: Uint8Array, batch: Tensor, dir: string, label: string): Promise<Record<string, number>> {
  const prefix = path.join(dir, `profile-${label}`);
  const s = await session(bytes, 1, { enableProfiling: true, profileFilePrefix: prefix });
  const feed = feedOf(s, batch);
  for (let r = 0; r < 30; r++) await s.run(feed);
  s.endProfiling();
  await s.release();
  // ONNX Runtime writes <prefix>_<timestamp>.json.
  const written = (await readdir(dir)).filter((f) => f.startsWith(path.basename(prefix)) && f.endsWith('.json')).map((f) => path.join(dir, f));
  if (written.length === 0) return {};
  const events = JSON.parse(await readFile(written.at(-1)!, 'utf8')) as ProfileEvent[];
  for (const f of written) await rm(f, { force: true });
  const byOp: Record<string, number> = {};
  for (const { op, us } of kernelTimeByNode(events).values()) byOp[op] = (byOp[op] ?? 0) + us;
  return byOp;
}

/** Op type counts of the graph ONNX Runtime runs after its optimizations (its fusions), from the file it writes. */
export async function runtimeOps(bytes: Uint8Array): Promise<Record<string, number>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-optimized-'));
  try {
    const file = path.join(dir, 'optimized.onnx');
    const s = await session(bytes, 1, { optimizedModelFilePath: file, logSeverityLevel: 3 });
    await s.release();
    const ops: Record<string, number> = {};
    for (const n of decodeModel(await readFile(file)).graph?.node ?? []) ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
    return ops;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  const line = (r: string[]) => '| ' + r.map((v, c) => v.padEnd(widths[c]!)).join(' | ') + ' |';
  return [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map((r) => line(r.map(String)))].join('\n');
}
