/*
 * Quantization of models PyTorch exported (test/fixtures/exported), on the real Fashion-MNIST
 * (Debian's dataset-fashion-mnist: calibration from the training split, accuracy on all 10,000 test
 * images, fed through the fixture's layout, channels first):
 *
 * - the small ViT (vit17 and vit13 by default): float32, static int8 with Kiln's defaults, static with
 *   each of LayerNorm / GELU / Softmax put into 8 bits (floatOps: the "with and without" of each
 *   decision), static with attention's activation MatMuls kept float, and dynamic int8;
 * - the ResNet: float32, static int8, dynamic int8.
 *
 * For each: file size and ratio (issue target for static int8 of the ViT: ≥ 3.5× smaller), test
 * accuracy and change (target: within 1 point), latency at batch 64 interleaved with float (all
 * cores, and one thread with the process CPU time per run, the steadier figure on a shared machine),
 * and the op types ONNX Runtime runs after its graph optimizations (which QDQ groups it fused). Then
 * where the bytes of the default static int8 file go, ONNX Runtime's per-operator profile of float vs
 * static int8, and onnx.checker.check_model(full_check=True) with the input/output names of every
 * file written (through --python, bench/quantize/check_onnx.py).
 *
 *   node dist/bench/quantize/any-onnx.js [--fixtures vit17,vit13,resnet] [--calibration-samples 512]
 *        [--rounds 60] [--python /usr/bin/python3] [--out DIR] [--json FILE]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { datasets, quantize, type QuantizeOptions } from '../../src/index.js';
import { decodeModel, encodeModel, type ModelProto, type NodeProto, type TensorProto } from '../../src/graph/proto.js';
import { adaptInput } from '../../src/model/input-adapter.js';
import { loadModel } from '../../src/train/load.js';
import { benchArgs } from '../args.js';
import { cpuDescription } from '../train/common.js';
import { fixturePath } from '../any-onnx/common.js';
import type { Timing } from '../ort-timing.js';
import { interleavedLatency, profile, runtimeOps, table, testAccuracy } from './common.js';

const args = benchArgs('node dist/bench/quantize/any-onnx.js [flags]', {
  fixtures: { type: 'string', default: 'vit17,vit13,resnet', help: 'comma-separated fixtures of test/fixtures/exported' },
  'calibration-samples': { type: 'number', default: 512 },
  rounds: { type: 'number', default: 60, help: 'latency rounds (each model once per round, in turn)' },
  python: { type: 'string', default: '/usr/bin/python3', help: 'a python3 with onnx, for onnx.checker (skipped when missing)' },
  out: { type: 'string', default: path.join(os.tmpdir(), 'kiln-bench-quantize-any-onnx'), help: 'where the quantized files are written' },
  json: { type: 'string', help: 'also write the results here' },
});
const BATCH = 64;
const threads = os.availableParallelism();
const started = performance.now();
const data = await datasets.fashionMnist();
console.log(`machine: ${cpuDescription()}; node ${process.version}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`Fashion-MNIST ${data.train.images.shape[0]} train / ${data.test.images.shape[0]} test; calibration ${args['calibration-samples']} training images; latency at batch ${BATCH}, ${args.rounds} interleaved rounds`);
mkdirSync(args.out, { recursive: true });

const ATTENTION_MATMULS = [0, 1].flatMap((l) => [`/encoder/layers.${l}/self_attn/MatMul_1`, `/encoder/layers.${l}/self_attn/MatMul_2`]);

function variantsFor(fixture: string, calibration: QuantizeOptions['calibration']): [string, QuantizeOptions][] {
  const base: QuantizeOptions = { mode: 'static', calibration, calibrationSamples: args['calibration-samples'] };
  if (fixture.startsWith('vit')) {
    return [
      ['static int8 (defaults)', base],
      ['static, LayerNorm in 8 bits', { ...base, floatOps: ['Gelu', 'Softmax'] }],
      ['static, GELU in 8 bits', { ...base, floatOps: ['LayerNormalization', 'Softmax'] }],
      ['static, Softmax in 8 bits', { ...base, floatOps: ['LayerNormalization', 'Gelu'] }],
      ['static, all three in 8 bits', { ...base, floatOps: [] }],
      ['static, attention MatMuls float', { ...base, exclude: ATTENTION_MATMULS }],
      ['dynamic int8', { mode: 'dynamic' }],
    ];
  }
  return [
    ['static int8 (defaults)', base],
    ['static, every conv int8', { ...base, minConvReduction: 0 }],
    ['dynamic int8', { mode: 'dynamic' }],
  ];
}

/** The op types worth listing from ONNX Runtime's optimized graph: integer kernels, conversions, float compute. */
function fused(ops: Record<string, number>): string {
  const shown = Object.entries(ops).filter(([op]) => /QLinear|QGemm|Integer|DynamicQuantize|QuantizeLinear|DequantizeLinear|^(Conv|FusedConv|MatMul|FusedMatMul|Gemm|FusedGemm)$/.test(op));
  return shown
    .sort((a, b) => b[1] - a[1])
    .map(([op, n]) => `${op} ${n}`)
    .join(', ');
}

/** Serialized bytes of a part of a model (a few bytes of message framing included). */
const bytesOf = (graph: ModelProto['graph']) => encodeModel({ graph }).length;

/**
 * Where a quantized file's bytes go, against the float file: int8 weights, int32 biases, the Q/DQ
 * scales and zero points, float initializers left, the original graph's nodes, the nodes Kiln added,
 * metadata. Also the ceiling: the float file with only its quantized weights shrunk to one byte each.
 */
function byteAccounting(floatProto: ModelProto, q: ModelProto, floatSize: number, quantSize: number): (string | number)[][] {
  const inits = q.graph!.initializer ?? [];
  const floatInits = new Map((floatProto.graph!.initializer ?? []).map((t) => [t.name!, t]));
  const originalNodes = new Set((floatProto.graph!.node ?? []).map((n) => n.name!));
  const isQdqParam = (t: TensorProto) => /\/(scale|zp)$/.test(t.name!);
  const part = (label: string, ts: TensorProto[] = [], nodes: NodeProto[] = []) => {
    const b = bytesOf({ initializer: ts, node: nodes });
    return [label, ts.length + nodes.length, b, `${((100 * b) / quantSize).toFixed(1)}%`];
  };
  const int8 = inits.filter((t) => t.dataType === 3 && !isQdqParam(t));
  const int32 = inits.filter((t) => t.dataType === 6);
  const params = inits.filter(isQdqParam);
  const floats = inits.filter((t) => t.dataType === 1 && !isQdqParam(t));
  const kept = (q.graph!.node ?? []).filter((n) => originalNodes.has(n.name!));
  const added = (q.graph!.node ?? []).filter((n) => !originalNodes.has(n.name!));
  const meta = encodeModel({ metadataProps: q.metadataProps ?? [] }).length;
  // The ceiling: every weight that became int8 at one byte per value, nothing else changed.
  const quantizedFloatBytes = int8.reduce((a, t) => a + (floatInits.get(t.name!.replace(/\/int8$/, ''))?.rawData?.length ?? 0), 0);
  const int8Values = int8.reduce((a, t) => a + (t.rawData?.length ?? 0), 0);
  const ceiling = floatSize / (floatSize - quantizedFloatBytes + int8Values);
  const floatNodes = bytesOf({ node: floatProto.graph!.node ?? [] });
  return [
    part('int8 weights', int8),
    part('int32 biases', int32),
    part('Q/DQ scales and zero points (activations and per-channel weights)', params),
    part(`float32 initializers left${floats.length ? ` (${floats.map((t) => t.name).slice(0, 6).join(', ')}${floats.length > 6 ? ', …' : ''})` : ''}`, floats),
    part("the export's own nodes (names, shape arithmetic, Constants)", [], kept),
    part('nodes Kiln added (QuantizeLinear, DequantizeLinear, integer patterns)', [], added),
    ['metadata', (q.metadataProps ?? []).length, meta, `${((100 * meta) / quantSize).toFixed(1)}%`],
    ['(float file: its nodes)', (floatProto.graph!.node ?? []).length, floatNodes, `${((100 * floatNodes) / floatSize).toFixed(1)}% of ${floatSize}`],
    ['(the quantized weights: float bytes → int8 bytes)', int8.length, `${quantizedFloatBytes} → ${int8Values}`, `${(quantizedFloatBytes / Math.max(1, int8Values)).toFixed(2)}× smaller`],
    ['(ceiling: the float file with only those weights at 1 byte each)', '', floatSize - quantizedFloatBytes + int8Values, `${ceiling.toFixed(2)}× smaller`],
  ];
}

const speed = (t: Timing[], k: number, key: 'medianMs' | 'p10Ms' | 'cpuMs') => (t[0]![key]! / t[k]![key]!).toFixed(2);
const written: string[] = [];
const results: Record<string, unknown> = {};
for (const fixture of args.fixtures.split(',')) {
  const file = fixturePath(fixture);
  if (!existsSync(file)) {
    console.error(`any-onnx.js: no fixture ${file}`);
    process.exit(2);
  }
  const model = await loadModel(file);
  const floatBytes = new Uint8Array(readFileSync(file));
  const inputShape = decodeModel(floatBytes).graph!.input![0]!.type!.tensorType!.shape!.dim!.map((d) => (d.dimValue !== undefined ? Number(d.dimValue) : null));
  const testX = adaptInput(data.test.images, { name: 'input', dtype: 'float32', shape: inputShape });
  const batch = testX.slice(0, BATCH);
  const names = ['float32'];
  const files: Uint8Array[] = [floatBytes];
  const reports: unknown[] = [null];
  for (const [name, options] of variantsFor(fixture, data.train.images)) {
    const t0 = performance.now();
    const q = await quantize(model, options);
    const seconds = (performance.now() - t0) / 1000;
    names.push(name);
    files.push(q.bytes);
    reports.push({ ...q.report, quantizeSeconds: seconds });
    const out = path.join(args.out, `${fixture}.${name.replace(/[^a-z0-9]+/gi, '-').replace(/-$/, '')}.onnx`);
    writeFileSync(out, q.bytes);
    written.push(out);
    if (name === 'static int8 (defaults)' || name === 'dynamic int8') {
      // The report's float layers, one line per reason.
      const byReason = new Map<string, string[]>();
      for (const l of q.report.floatLayers) byReason.set(l.reason, [...(byReason.get(l.reason) ?? []), l.layer]);
      console.log(`\n${fixture}, ${name}: kept float${byReason.size === 0 ? ': nothing' : ''}`);
      for (const [reason, layers] of byReason) console.log(`  ${layers.length}× ${reason}: ${layers.join(', ')}`);
    }
  }
  const accuracies: number[] = [];
  for (const bytes of files) accuracies.push(await testAccuracy(bytes, testX, data.test.labels, threads));
  const ops: Record<string, number>[] = [];
  for (const bytes of files) ops.push(await runtimeOps(bytes));
  const tAll = await interleavedLatency(files, batch, threads, args.rounds);
  const t1 = await interleavedLatency(files, batch, 1, args.rounds);
  const rows = files.map((bytes, k) => [
    names[k]!,
    `${(bytes.length / 1024).toFixed(1)} KiB`,
    `${(floatBytes.length / bytes.length).toFixed(2)}×`,
    `${(100 * accuracies[k]!).toFixed(2)}%`,
    k === 0 ? '' : `${(100 * (accuracies[k]! - accuracies[0]!)) >= 0 ? '+' : ''}${(100 * (accuracies[k]! - accuracies[0]!)).toFixed(2)}`,
    `${tAll[k]!.medianMs.toFixed(2)} / ${tAll[k]!.p10Ms.toFixed(2)}`,
    `${speed(tAll, k, 'medianMs')}× / ${speed(tAll, k, 'p10Ms')}×`,
    `${t1[k]!.medianMs.toFixed(2)} / ${t1[k]!.cpuMs!.toFixed(2)}`,
    `${speed(t1, k, 'medianMs')}× / ${speed(t1, k, 'cpuMs')}×`,
    fused(ops[k]!),
  ]);
  console.log(`\n## ${fixture} (${(floatBytes.length / 1024).toFixed(1)} KiB float32)\n`);
  console.log(
    table(['model', 'size', 'smaller', 'test acc', 'Δ points', `ms ${threads} thr median / p10`, `speedup ${threads} thr median / p10`, 'ms 1 thr median / CPU', 'speedup 1 thr median / CPU', 'ONNX Runtime runs (after its optimizations)'], rows),
  );

  const staticDefault = names.indexOf('static int8 (defaults)');
  console.log(`\n${fixture}: where the bytes of the static int8 file go (${files[staticDefault]!.length} bytes)\n`);
  console.log(table(['part', 'count', 'bytes', 'share'], byteAccounting(decodeModel(floatBytes), decodeModel(files[staticDefault]!), floatBytes.length, files[staticDefault]!.length)));

  const pf = await profile(floatBytes, batch, args.out, `${fixture}-float`);
  const pq = await profile(files[staticDefault]!, batch, args.out, `${fixture}-int8`);
  const opsByTime = [...new Set([...Object.keys(pf), ...Object.keys(pq)])].sort((a, b) => Math.max(pf[b] ?? 0, pq[b] ?? 0) - Math.max(pf[a] ?? 0, pq[a] ?? 0));
  const total = (p: Record<string, number>) => Math.round(Object.values(p).reduce((a, b) => a + b, 0));
  console.log(`\n${fixture}: ONNX Runtime profile at batch ${BATCH}, 1 thread (µs per run by op type; each node's median over 30 runs)\n`);
  console.log(table(['op', 'float32', 'static int8'], [...opsByTime.map((o) => [o, pf[o] ? String(Math.round(pf[o]!)) : '', pq[o] ? String(Math.round(pq[o]!)) : '']), ['total', String(total(pf)), String(total(pq))]]));

  const compression = floatBytes.length / files[staticDefault]!.length;
  const delta = 100 * (accuracies[staticDefault]! - accuracies[0]!);
  console.log(
    `\n${fixture} static int8: ${compression.toFixed(2)}× smaller (target ≥ 3.5: ${compression >= 3.5 ? 'met' : 'NOT met'}), ${delta >= 0 ? '+' : ''}${delta.toFixed(2)} points (target within 1: ${Math.abs(delta) <= 1 ? 'met' : 'NOT met'}), ` +
      `${speed(t1, staticDefault, 'cpuMs')}× float's speed by CPU time at 1 thread, ${speed(tAll, staticDefault, 'medianMs')}× at ${threads} threads (medians)`,
  );
  results[fixture] = { names, sizes: files.map((f) => f.length), accuracies, latency: { allCores: tAll, oneThread: t1 }, runtimeOps: ops, profile: { float: pf, int8: pq }, reports };
}

console.log('\nonnx.checker.check_model(full_check=True) on every file written:');
if (!existsSync(args.python)) console.log(`  skipped: no ${args.python}`);
else {
  // This file runs from dist/bench/quantize; the Python script stays in the source tree.
  const checker = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/quantize/check_onnx.py');
  const r = spawnSync(args.python, [checker, ...written], { encoding: 'utf8' });
  if (r.status !== 0) console.log(`  skipped: ${args.python} ${checker} failed (exit ${r.status}): ${r.stderr.trim().split('\n').at(-1)}`);
  else {
    for (const line of r.stdout.trim().split('\n')) {
      const c = JSON.parse(line) as { file: string; ok: boolean; error: string | null; onnx: string; opsets: Record<string, number>; inputs: unknown; outputs: unknown };
      console.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${path.basename(c.file)} (onnx ${c.onnx}, opset ${JSON.stringify(c.opsets)}) inputs ${JSON.stringify(c.inputs)} outputs ${JSON.stringify(c.outputs)}${c.error ? `: ${c.error}` : ''}`);
    }
  }
}
console.log(`\nbench time ${((performance.now() - started) / 60000).toFixed(1)} min; load average now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
if (args.json) writeFileSync(args.json, JSON.stringify(results, null, 1));
process.exit(0);
