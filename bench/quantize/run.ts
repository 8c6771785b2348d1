/*
 * Quantization benchmark on Fashion-MNIST (Debian's dataset-fashion-mnist, kiln.datasets.fashionMnist()):
 * the tutorial CNN and the small-VGG preset, trained in float (cached between runs), then quantized.
 * For each: file size, test accuracy (all 10,000 test images) and latency at batch 64 of the float
 * model against static int8 (the default settings), a few static variants (7-bit vs 8-bit weights,
 * per-tensor weights, int8 activations, every convolution int8), dynamic int8 and float16, and ONNX
 * Runtime's per-operator profile (enableProfiling) of float vs default int8.
 *
 *   node dist/bench/quantize/run.js [--presets tutorialCnn,smallVgg] [--train-samples 20000] [--epochs 1]
 *        [--calibration-samples 512] [--rounds 60] [--cache DIR] [--json FILE]
 *
 * Latency: ONNX Runtime sessions in this process with the options Kiln's runtime worker uses
 * (graph optimization 'all', sequential execution), batch 64 of test images, float and quantized
 * runs interleaved so that load from other processes hits both alike; reported at 2 threads (Kiln's
 * default here: all cores) and at 1 thread without spinning together with the process CPU time per
 * run, which on a loaded machine is the steadier measure. Ratios are of medians.
 *
 * Targets (issue): static int8 file ≥ 3.5× smaller than fp32, test accuracy within 0.5 points,
 * latency at batch 64 ≥ 1.3× faster than fp32.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { datasets, layers, loadModel, losses, optimizers, quantize, sequential, type QuantizeOptions, type Sequential } from '../../src/index.js';
import { benchArgs } from '../args.js';
import { interleavedLatency, profile, table, testAccuracy } from './common.js';

const PRESETS = ['tutorialCnn', 'smallVgg'] as const;
const args = benchArgs('node dist/bench/quantize/run.js [flags]', {
  presets: { type: 'string', default: PRESETS.join(','), help: `comma-separated: ${PRESETS.join(', ')}` },
  'train-samples': { type: 'number', default: 20000 },
  epochs: { type: 'number', default: 1, help: 'float training' },
  'calibration-samples': { type: 'number', default: 512 },
  rounds: { type: 'number', default: 60, help: 'latency rounds' },
  cache: { type: 'string', default: path.join(os.tmpdir(), 'kiln-bench-quantize'), help: 'trained float models' },
  json: { type: 'string', help: 'also write the results here' },
});
const presets = args.presets.split(',') as (typeof PRESETS)[number][];
const unknownPreset = presets.find((p) => !PRESETS.includes(p));
if (unknownPreset !== undefined) {
  console.error(`run.js: --presets takes ${PRESETS.join(' and/or ')}, got '${unknownPreset}'`);
  process.exit(2);
}
const { epochs, rounds, cache: cacheDir } = args;
const trainSamples = args['train-samples'];
const calibrationSamples = args['calibration-samples'];
const jsonFile = args.json ?? '';
const BATCH = 64;

const started = performance.now();
const data = await datasets.fashionMnist();
const threads = os.availableParallelism();
console.log(`Fashion-MNIST ${data.train.images.shape[0]} train / ${data.test.images.shape[0]} test; ${threads} cores; ${os.cpus()[0]?.model}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);

async function floatModel(preset: (typeof presets)[number]): Promise<Sequential> {
  mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, `${preset}-${trainSamples}x${epochs}.onnx`);
  if (existsSync(file)) {
    const m = await loadModel(file);
    console.log(`${preset}: float model from ${file}`);
    return m as Sequential;
  }
  const m = sequential({ seed: 42, layers: layers[preset]([28, 28, 1]) });
  m.compile({ optimizer: optimizers.adam({ learningRate: 1e-3 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  const t0 = performance.now();
  await m.fit(data.train.images.slice(0, trainSamples), data.train.labels.slice(0, trainSamples), { epochs, batchSize: 64, verbose: 0 });
  console.log(`${preset}: trained on ${trainSamples} images × ${epochs} epoch(s) in ${((performance.now() - t0) / 1000).toFixed(0)} s → ${file}`);
  await m.save(file);
  return m;
}

const results: Record<string, unknown> = {};
for (const preset of presets) {
  const model = await floatModel(preset);
  const floatBytes = model.toOnnx();
  const calibration = data.train.images;
  const base: QuantizeOptions = { mode: 'static', calibration, calibrationSamples };
  const variants: [string, QuantizeOptions][] = [
    ['static int8 (defaults)', base],
    ['static, 8-bit weights (reduceRange off)', { ...base, reduceRange: false }],
    ['static, per-tensor weights', { ...base, perChannel: false }],
    ['static, int8 activations', { ...base, activationType: 'int8' }],
    ['static, every conv int8 (minConvReduction 0)', { ...base, minConvReduction: 0 }],
    ['static, percentile calibration', { ...base, method: 'percentile' }],
    ['dynamic int8', { mode: 'dynamic' }],
    ['float16 weights', { mode: 'float16' }],
  ];
  const floatAccuracy = await testAccuracy(floatBytes, data.test.images, data.test.labels, threads);
  const rows: (string | number)[][] = [];
  const quantized: { name: string; bytes: Uint8Array; acc: number; report: unknown }[] = [];
  for (const [name, options] of variants) {
    const t0 = performance.now();
    const q = await quantize(model, options);
    const seconds = (performance.now() - t0) / 1000;
    quantized.push({ name, bytes: q.bytes, acc: await testAccuracy(q.bytes, data.test.images, data.test.labels, threads), report: { ...q.report, quantizeSeconds: seconds } });
    if (name === 'static int8 (defaults)') {
      console.log(`\n${preset}: layers kept in float: ${q.report.floatLayers.map((l) => `${l.layer} (${l.reason})`).join('; ') || 'none'}`);
      if (q.report.foldedBatchNorm.length) console.log(`${preset}: batch normalization folded: ${q.report.foldedBatchNorm.join(', ')}`);
      console.log(`${preset}: settings ${JSON.stringify(q.report.settings)}`);
    }
  }
  const all = [floatBytes, ...quantized.map((q) => q.bytes)];
  const batch = data.test.images.slice(0, BATCH);
  const t2 = await interleavedLatency(all, batch, threads, rounds);
  const t1 = await interleavedLatency(all, batch, 1, rounds);
  const names = ['float32', ...quantized.map((q) => q.name)];
  const accs = [floatAccuracy, ...quantized.map((q) => q.acc)];
  for (let k = 0; k < all.length; k++) {
    rows.push([
      names[k]!,
      `${(all[k]!.length / 1024).toFixed(1)} KiB`,
      k === 0 ? '1.00×' : `${(all[0]!.length / all[k]!.length).toFixed(2)}×`,
      `${(100 * accs[k]!).toFixed(2)}%`,
      k === 0 ? '' : `${(100 * (accs[k]! - accs[0]!)).toFixed(2)}`,
      `${t2[k]!.medianMs.toFixed(2)} / ${t2[k]!.p10Ms.toFixed(2)}`,
      `${(t2[0]!.medianMs / t2[k]!.medianMs).toFixed(2)}× / ${(t2[0]!.p10Ms / t2[k]!.p10Ms).toFixed(2)}×`,
      `${t1[k]!.medianMs.toFixed(2)} / ${t1[k]!.p10Ms.toFixed(2)}`,
      `${t1[k]!.cpuMs!.toFixed(2)}`,
      `${(t1[0]!.medianMs / t1[k]!.medianMs).toFixed(2)}× / ${(t1[0]!.p10Ms / t1[k]!.p10Ms).toFixed(2)}× / ${(t1[0]!.cpuMs! / t1[k]!.cpuMs!).toFixed(2)}×`,
    ]);
  }
  console.log(`\n## ${preset}\n`);
  console.log(
    table(['model', 'size', 'smaller', 'test acc', 'Δ points', `ms ${threads} thr median / p10`, `speedup ${threads} thr median / p10`, 'ms 1 thr median / p10', 'CPU ms 1 thr', 'speedup 1 thr median / p10 / CPU'], rows),
  );
  const pf = await profile(floatBytes, batch, cacheDir, `${preset}-float`);
  const pq = await profile(quantized[0]!.bytes, batch, cacheDir, `${preset}-int8`);
  const ops = [...new Set([...Object.keys(pf), ...Object.keys(pq)])].sort((a, b) => Math.max(pf[b] ?? 0, pq[b] ?? 0) - Math.max(pf[a] ?? 0, pq[a] ?? 0));
  console.log(`\n${preset}: ONNX Runtime profile at batch 64, 1 thread (µs per run, by operator type; each node's median over 30 runs)\n`);
  console.log(table(['op', 'float32', 'static int8'], [...ops.map((o) => [o, pf[o] ? String(Math.round(pf[o]!)) : '', pq[o] ? String(Math.round(pq[o]!)) : '']), ['total', String(Math.round(Object.values(pf).reduce((a, b) => a + b, 0))), String(Math.round(Object.values(pq).reduce((a, b) => a + b, 0)))]]));
  const def = quantized[0]!;
  const compression = floatBytes.length / def.bytes.length;
  const delta = 100 * (def.acc - floatAccuracy);
  const speed2 = t2[0]!.medianMs / t2[1]!.medianMs;
  const speed1 = t1[0]!.medianMs / t1[1]!.medianMs;
  const profiled = Object.values(pf).reduce((a, b) => a + b, 0) / Object.values(pq).reduce((a, b) => a + b, 0);
  console.log(
    `\n${preset} targets: size ${compression.toFixed(2)}× (≥ 3.5: ${compression >= 3.5 ? 'met' : 'NOT met'}), accuracy ${delta >= 0 ? '+' : ''}${delta.toFixed(2)} points (within 0.5: ${Math.abs(delta) <= 0.5 ? 'met' : 'NOT met'}), latency (medians) ${speed2.toFixed(2)}× at ${threads} threads, ${speed1.toFixed(2)}× at 1 thread, ${profiled.toFixed(2)}× in ONNX Runtime's own kernel times (≥ 1.3: ${Math.min(speed1, speed2) >= 1.3 ? 'met' : Math.max(speed1, speed2, profiled) >= 1.3 ? 'met by some measures only' : 'NOT met'})`,
  );
  results[preset] = { rows, floatAccuracy, variants: quantized.map((q) => ({ name: q.name, size: q.bytes.length, accuracy: q.acc, report: q.report })), latency: { threads: t2, oneThread: t1 }, profile: { float: pf, int8: pq } };
}
console.log(`\nbench time ${((performance.now() - started) / 60000).toFixed(1)} min; load average now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
if (jsonFile) writeFileSync(jsonFile, JSON.stringify(results, null, 1));
process.exit(0);
