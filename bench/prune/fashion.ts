/*
 * Pruning on Fashion-MNIST with the tutorial CNN, all in one run:
 *   1. dense: tutorialCnn([28, 28, 1]) trained 2 epochs (Adam 1e-3, batch 64);
 *   2. unstructured: 80% magnitude sparsity (TF-MOT polynomialDecay 0 → 0.8 over steps 0–1200, masks
 *      every 100 steps) while fine-tuning 2 epochs from the dense model;
 *   3. structured: 50% of the filters/units of every layer but the output removed (L1), fine-tuned 2 epochs;
 *   4. control: the dense model fine-tuned 2 more epochs without pruning (same training budget as 2 and 3).
 * Reports test accuracy, parameters, FLOPs, file size raw and gzip, and inference latency at batch 64
 * (median of interleaved runs, through Kiln's runtime worker and through onnxruntime-node directly).
 *
 *   node dist/bench/prune/fashion.js [--epochs 2] [--finetune-epochs 2] [--runs 200] [--dir DIR] [--no-control]
 *
 * Targets (issue): unstructured within 1.0 point of the dense model's accuracy and ≥ 3× smaller gzip;
 * structured ≥ 1.6× faster at batch 64 and within 1.5 points after fine-tuning.
 */
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { datasets, layers, losses, modelCost, optimizers, prune, pruning, sequential, Sequential, type PruneReport } from '../../src/index.js';
import { decodeModel } from '../../src/graph/proto.js';
import { Random } from '../../src/random.js';
import { benchArgs } from '../args.js';

const args = benchArgs('node dist/bench/prune/fashion.js [flags]', {
  epochs: { type: 'number', default: 2, help: 'dense training' },
  'finetune-epochs': { type: 'number', default: 2 },
  runs: { type: 'number', default: 200, help: 'latency runs per model' },
  dir: { type: 'string', help: "the four IDX files (default: Debian's dataset-fashion-mnist)" },
  'no-control': { type: 'boolean', help: 'skip the unpruned control' },
});
const { epochs, runs, dir } = args;
const fineTuneEpochs = args['finetune-epochs'];
const control = !args['no-control'];
const batchSize = 64;
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;

const data = await datasets.fashionMnist(dir);
const { images: x, labels: y } = data.train;
const test = { x: data.test.images, y: data.test.labels };
console.log(`Fashion-MNIST ${x.shape[0]} train / ${test.x.shape[0]} test; tutorial CNN; batch ${batchSize}; ${os.availableParallelism()} cores; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);

const compileArgs = () => ({ optimizer: optimizers.adam({ learningRate: 1e-3 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });

// 1. Dense baseline.
const dense = sequential({ seed: 42, layers: layers.tutorialCnn([28, 28, 1]) });
dense.compile(compileArgs());
let t0 = performance.now();
await dense.fit(x, y, { epochs, batchSize, verbose: 0, seed: 1 });
const denseSeconds = (performance.now() - t0) / 1000;
console.log(`dense trained ${epochs} epochs in ${denseSeconds.toFixed(0)} s [${elapsed()}]`);

const fineTune = { x, y, epochs: fineTuneEpochs, batchSize, verbose: 0 as const, seed: 2, optimizer: optimizers.adam({ learningRate: 1e-3 }) };
const stepsPerEpoch = Math.ceil(x.shape[0]! / batchSize);
const endStep = Math.min(1200, 100 * Math.floor((0.65 * stepsPerEpoch * fineTuneEpochs) / 100) || 1);

// 2. Unstructured 80% with a polynomial schedule.
t0 = performance.now();
const schedule = pruning.polynomialDecay({ initialSparsity: 0, finalSparsity: 0.8, beginStep: 0, endStep, frequency: Math.min(100, endStep) });
const sparse = await prune(dense, { schedule, fineTune, evaluation: test });
const sparseSeconds = (performance.now() - t0) / 1000;
console.log(`unstructured 80% fine-tuned in ${sparseSeconds.toFixed(0)} s, ${sparse.report.maskUpdates!.length} mask updates [${elapsed()}]`);

// 3. Structured 50%: accuracy right after removal, then with fine-tuning.
const removedOnly = await prune(dense, { structured: { ratio: 0.5, criterion: 'l1' }, evaluation: test });
t0 = performance.now();
const structured = await prune(dense, { structured: { ratio: 0.5, criterion: 'l1' }, fineTune: { ...fineTune, optimizer: optimizers.adam({ learningRate: 1e-3 }) }, evaluation: test });
const structuredSeconds = (performance.now() - t0) / 1000;
console.log(`structured 50% fine-tuned in ${structuredSeconds.toFixed(0)} s [${elapsed()}]`);

// 4. Control: the same extra training without pruning.
let controlAccuracy: number | undefined;
if (control) {
  const more = Sequential.fromProto(decodeModel(dense.toOnnx()));
  more.compile(compileArgs());
  await more.fit(x, y, { epochs: fineTuneEpochs, batchSize, verbose: 0, seed: 2 });
  controlAccuracy = (await more.evaluate(test.x, test.y)).accuracy;
  console.log(`control fine-tuned ${fineTuneEpochs} epochs without pruning [${elapsed()}]`);
}

// Latency at batch 64: interleaved runs, median, through the runtime worker and through ORT directly.
const models: [string, Sequential][] = [['dense', dense], ['unstructured 80%', sparse.model], ['structured 50%', structured.model]];
const workerMs = await pruning.measureLatency(models.map(([, m]) => m), { batchSize, runs });
const sessions = await Promise.all(models.map(([, m]) => ort.InferenceSession.create(m.toOnnx())));
const rng = new Random(5);
const input = new ort.Tensor('float32', Float32Array.from({ length: batchSize * 28 * 28 }, () => rng.next()), [batchSize, 28, 28, 1]);
const ortTimes: number[][] = models.map(() => []);
for (let r = -5; r < runs; r++) {
  for (let k = 0; k < sessions.length; k++) {
    const s = performance.now();
    await sessions[k]!.run({ input });
    if (r >= 0) ortTimes[k]!.push(performance.now() - s);
  }
}
const median = (t: number[]) => [...t].sort((a, b) => a - b)[Math.floor(t.length / 2)]!;
const ortMs = ortTimes.map(median);
console.log(`latency measured (${runs} interleaved runs each) [${elapsed()}]`);

const denseCost = modelCost(dense);
const denseAccuracy = sparse.report.before.accuracy!;
const row = (name: string, r: PruneReport['after'], k: number) => [
  name,
  r.accuracy !== undefined ? `${(100 * r.accuracy).toFixed(2)}%` : '',
  r.accuracy !== undefined && name !== 'dense' ? (100 * (r.accuracy - denseAccuracy)).toFixed(2) : '',
  r.parameters.toLocaleString('en-US'),
  r.nonZeroParameters.toLocaleString('en-US'),
  `${(r.flops / 1e6).toFixed(2)} M`,
  `${(r.fileBytes / 1024).toFixed(1)} KiB`,
  `${(r.gzipBytes / 1024).toFixed(1)} KiB`,
  `${(denseCost.gzipBytes / r.gzipBytes).toFixed(2)}×`,
  workerMs[k]!.toFixed(2),
  ortMs[k]!.toFixed(2),
  `${(ortMs[0]! / ortMs[k]!).toFixed(2)}×`,
];
const header = ['model', 'test acc', 'Δ points', 'params', 'non-zero', 'FLOPs', 'file', 'gzip', 'gzip gain', 'ms/64 worker', 'ms/64 ORT', 'speed-up (ORT)'];
const rows = [row('dense', { ...denseCost, accuracy: denseAccuracy }, 0), row('unstructured 80%', sparse.report.after, 1), row('structured 50%', structured.report.after, 2)];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
console.log('\n' + [line(header), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...rows.map(line)].join('\n'));

const sparseDelta = 100 * (sparse.report.after.accuracy! - denseAccuracy);
const structuredDelta = 100 * (structured.report.after.accuracy! - denseAccuracy);
const gzipGain = denseCost.gzipBytes / sparse.report.after.gzipBytes;
const speedupOrt = ortMs[0]! / ortMs[2]!;
const speedupWorker = workerMs[0]! / workerMs[2]!;
console.log(`
dense: ${epochs} epochs, ${denseSeconds.toFixed(0)} s; unstructured fine-tune ${sparseSeconds.toFixed(0)} s (schedule ${JSON.stringify(schedule.config)}); structured fine-tune ${structuredSeconds.toFixed(0)} s
structured 50% right after removal, before fine-tuning: ${(100 * removedOnly.report.after.accuracy!).toFixed(2)}%
${controlAccuracy !== undefined ? `control (dense + ${fineTuneEpochs} more epochs, no pruning): ${(100 * controlAccuracy).toFixed(2)}%` : ''}
unstructured 80%: kernel sparsity ${(100 * sparse.report.targetSparsity!).toFixed(2)}% (${sparse.report.layers.filter((l) => l.pruned).map((l) => `${l.name} ${(100 * l.kernelSparsity!).toFixed(1)}%`).join(', ')}), total ${(100 * sparse.report.sparsity).toFixed(2)}%
targets:
  unstructured accuracy within 1.0 point of dense: ${sparseDelta.toFixed(2)} points -> ${sparseDelta >= -1 ? 'PASS' : 'FAIL'}
  unstructured gzip >= 3x smaller: ${gzipGain.toFixed(2)}x -> ${gzipGain >= 3 ? 'PASS' : 'FAIL'}
  structured >= 1.6x faster at batch 64: ${speedupOrt.toFixed(2)}x (ORT), ${speedupWorker.toFixed(2)}x (worker) -> ${speedupOrt >= 1.6 && speedupWorker >= 1.6 ? 'PASS' : 'FAIL'}
  structured accuracy within 1.5 points: ${structuredDelta.toFixed(2)} points -> ${structuredDelta >= -1.5 ? 'PASS' : 'FAIL'}
total ${elapsed()}; load average now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
process.exit(0);
