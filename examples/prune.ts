/**
 * Prune a trained model two ways and compare: magnitude pruning to 75% sparsity on TF-MOT's
 * polynomial schedule (the zeros make the file compress, the model is as fast as before), and
 * structured pruning of half the filters and units (the model gets smaller and faster). Each is
 * fine-tuned with its masks inside the training step.
 *
 *     node dist/examples/prune.js [--model fashion-cnn.onnx] [--epochs 2] [--limit N]
 *
 * Writes pruned-sparse.onnx and pruned-structured.onnx next to the model.
 */
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as kiln from 'kiln';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'fashion-cnn.onnx' },
    epochs: { type: 'string', default: '2' },
    limit: { type: 'string' },
  },
});
const epochs = Number(args.epochs);
const limit = args.limit === undefined ? undefined : Number(args.limit);

const { train, test } = await kiln.datasets.embedded();
const fineTune = {
  x: limit ? train.images.slice(0, limit) : train.images,
  y: limit ? train.labels.slice(0, limit) : train.labels,
  epochs,
  batchSize: 64,
  verbose: 0 as const,
};
// Measure accuracy on the test split and latency at batch 64, before and after.
const measure = { evaluation: { x: test.images, y: test.labels }, latency: { batchSize: 64, runs: 10 } };

// Pruning works on Kiln's own layer models (a Sequential).
const model = await kiln.loadModel(args.model);
if (!(model instanceof kiln.Sequential)) throw new Error(`${args.model} is not a Kiln Sequential model: Kiln prunes its own layer models`);

const percent = (v: number | undefined) => (v === undefined ? '-' : `${(100 * v).toFixed(2)}%`);
function show(title: string, report: kiln.PruneReport): void {
  const { before, after } = report;
  console.log(`${title} (${report.method})`);
  console.log(`  parameters ${before.parameters} -> ${after.parameters}, non-zero ${before.nonZeroParameters} -> ${after.nonZeroParameters}`);
  console.log(`  gzip ${before.gzipBytes} -> ${after.gzipBytes} bytes, FLOPs ${before.flops} -> ${after.flops}`);
  console.log(`  accuracy ${percent(before.accuracy)} -> ${percent(after.accuracy)}, latency ${before.latencyMs?.toFixed(2)} -> ${after.latencyMs?.toFixed(2)} ms`);
  for (const layer of report.layers.filter((l) => l.pruned)) {
    console.log(`  ${layer.name}: kernel sparsity ${percent(layer.kernelSparsity)}${layer.units ? `, units ${layer.units[0]} -> ${layer.units[1]}` : ''}`);
  }
}

// Unstructured: with only `sparsity` given, Kiln builds the schedule (polynomial decay over the first
// ~70% of the fine-tuning steps, masks recomputed ~20 times); `schedule: kiln.pruning.polynomialDecay(...)`
// sets it by hand.
const sparse = await kiln.prune(model, { sparsity: 0.75, fineTune, ...measure });
show('magnitude pruning, 75% of each pruned kernel', sparse.report);
if (sparse.report.maskUpdates) console.log(`  ${sparse.report.maskUpdates.length} mask updates`);
await sparse.model.save(join(dirname(args.model), 'pruned-sparse.onnx'));

// Structured: half the filters of each convolution and half the units of each hidden dense layer go,
// ranked by the L1 norm of their weights; the layers after them shrink to match.
const structured = await kiln.prune(model, { structured: { ratio: 0.5, criterion: 'l1' }, fineTune, ...measure });
show('structured pruning, half the filters and units', structured.report);
await structured.model.save(join(dirname(args.model), 'pruned-structured.onnx'));
console.log('saved pruned-sparse.onnx and pruned-structured.onnx');
