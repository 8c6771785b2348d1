/*
 * kiln optimize on the trained tutorial CNN (Fashion-MNIST): the model is trained `--epochs` epochs
 * (Adam 1e-3, batch 32, the whole training split unless --limit), then optimizeModel searches with
 * --max-accuracy-drop 0.5 for each objective. Printed per objective: the chosen candidate, its test
 * accuracy against the original's, and its speed-up at batch 64 and size ratio (gzip) — the speed-up
 * from the chosen model timed again against the original, alone, 7 interleaved rounds (ONNX Runtime
 * through Kiln's runtime worker, same run). Targets (issue): latency ≥ 2.5× faster at batch 64,
 * size ≥ 8× smaller, each within 0.5 points.
 *
 *   node dist/bench/tune/optimize.js [--epochs 2] [--limit 60000] [--objectives latency,size] [--budget-minutes 20] [--model file.onnx]
 */
import os from 'node:os';
import { datasets, layers, loadModel, losses, optimizeModel, optimizers, sequential, Sequential } from '../../src/index.js';
import { benchArgs } from '../args.js';
import { cpuDescription, table } from '../train/common.js';

const args = benchArgs('node dist/bench/tune/optimize.js [flags]', {
  epochs: { type: 'number', default: 2, help: 'training epochs of the original model' },
  limit: { type: 'number', default: 12000, help: 'training images for the original and fine-tuning (60000: all)' },
  objectives: { type: 'string', default: 'latency,size' },
  'max-accuracy-drop': { type: 'number', default: 0.5 },
  'budget-minutes': { type: 'number', help: 'time budget of each search' },
  model: { type: 'string', help: 'a trained Kiln model instead of training one' },
  dir: { type: 'string', help: "the four IDX files (default: Debian's dataset-fashion-mnist)" },
});
const data = await datasets.fashionMnist(args.dir);
const train = { x: data.train.images.slice(0, args.limit), y: data.train.labels.slice(0, args.limit) };
const evaluation = { x: data.test.images, y: data.test.labels };
console.log(`${cpuDescription()}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);

let model: Sequential;
if (args.model) {
  const loaded = await loadModel(args.model);
  if (!(loaded instanceof Sequential)) throw new Error(`${args.model} is not a Kiln model`);
  model = loaded;
} else {
  model = sequential({ seed: 42, layers: layers.tutorialCnn([28, 28, 1]) });
  model.compile({ optimizer: optimizers.adam({ learningRate: 1e-3 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  const t0 = performance.now();
  await model.fit(train.x, train.y, { epochs: args.epochs, batchSize: 32, verbose: 0, seed: 1 });
  console.log(`tutorial CNN trained ${args.epochs} epochs on ${train.x.shape[0]} images in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

const rows: string[][] = [];
for (const objective of args.objectives.split(',') as ('latency' | 'size')[]) {
  const r = await optimizeModel(model, {
    train,
    evaluation,
    objective,
    maxAccuracyDrop: args['max-accuracy-drop'],
    ...(args['budget-minutes'] ? { timeBudgetMs: args['budget-minutes'] * 60_000 } : {}),
    onProgress: (line) => console.log(`  [${objective}] ${line}`),
  });
  const c = r.chosen;
  const line = c
    ? `${objective}: chosen ${c.name}, accuracy ${(100 * c.accuracy).toFixed(2)}% vs ${(100 * r.original.accuracy).toFixed(2)}% (${(100 * (c.accuracy - r.original.accuracy)).toFixed(2)} points); ${r.check!.speedup64.toFixed(2)}× faster at batch 64 (${r.check!.originalMs64.toFixed(2)} → ${r.check!.chosenMs64.toFixed(2)} ms, timed again), ${c.compression.toFixed(2)}× smaller gzip (${c.gzipBytes} vs ${r.original.gzipBytes} bytes), ${(r.original.fileBytes / c.fileBytes).toFixed(2)}× smaller raw; front: ${r.front.map((f) => f.name).join(', ')}; ${r.seconds.toFixed(0)} s`
    : `${objective}: nothing within ${args['max-accuracy-drop']} points; front: ${r.front.map((f) => f.name).join(', ')}`;
  console.log(line);
  for (const k of [r.original, ...r.candidates]) rows.push([objective, k.name, (100 * k.accuracy).toFixed(2), k.latencyMs64.toFixed(2), `${k.speedup64.toFixed(2)}×`, String(k.gzipBytes), `${k.compression.toFixed(2)}×`, r.front.includes(k) ? 'front' : '', k === c ? 'chosen' : '']);
}
console.log('');
console.log(table(['objective', 'model', 'test acc %', 'ms @64', 'speed-up', 'gzip bytes', 'smaller', 'front', ''], rows));
