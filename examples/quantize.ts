/**
 * Quantize a trained model: static int8 (activation ranges calibrated on training images, weights per
 * output channel, standard QDQ ONNX that ONNX Runtime fuses into integer kernels), and float16 weights
 * for comparison. Each run measures accuracy and latency against the float model in the same process.
 *
 *     node dist/examples/quantize.js [--model fashion-cnn.onnx] [--calibration-samples 512] [--limit N]
 *
 * `--limit N` measures on the first N test images only. Writes fashion-cnn.int8.onnx and
 * fashion-cnn.float16.onnx next to the model.
 */
import { parseArgs } from 'node:util';
import * as kiln from 'kiln';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'fashion-cnn.onnx' },
    'calibration-samples': { type: 'string', default: '512' },
    limit: { type: 'string' },
  },
});
const limit = args.limit === undefined ? undefined : Number(args.limit);

const { train, test } = await kiln.datasets.embedded();
const evaluate = {
  x: limit ? test.images.slice(0, limit) : test.images,
  y: limit ? test.labels.slice(0, limit) : test.labels,
  latencyRuns: 10,
};
const model = await kiln.loadModel(args.model);

// Static int8: BatchNormalization folded into the convolutions, ranges calibrated (minmax) on a seeded
// random subset of the training images. On x86 CPUs without VNNI the weights default to 7 bits
// (ONNX Runtime's kernels saturate with 8), and convolutions too small to gain stay float.
const int8 = await kiln.quantize(model, {
  mode: 'static',
  calibration: train.images,
  calibrationSamples: Number(args['calibration-samples']),
  evaluate,
});
const r = int8.report;
console.log(`static int8: ${r.sizeBefore} -> ${r.sizeAfter} bytes (${r.compression.toFixed(2)}x smaller), settings ${JSON.stringify(r.settings)}`);
for (const layer of r.layers) console.log(`  ${layer.layer}: ${layer.precision}${layer.reason ? ` (${layer.reason})` : ''}`);
if (r.evaluation) {
  const { before, after, agreement } = r.evaluation;
  console.log(`  accuracy ${before.accuracy?.toFixed(4)} -> ${after.accuracy?.toFixed(4)}, ${(100 * agreement).toFixed(1)}% of predictions agree`);
  console.log(`  latency at batch ${r.evaluation.batchSize}: ${before.latencyMs.toFixed(2)} -> ${after.latencyMs.toFixed(2)} ms`);
}
await int8.save(args.model.replace(/\.onnx$/, '') + '.int8.onnx');

// float16: half-size weights, computed in float32 (ONNX Runtime's CPU provider has few float16 kernels).
const half = await kiln.quantize(model, { mode: 'float16', evaluate });
console.log(`float16: ${half.report.sizeBefore} -> ${half.report.sizeAfter} bytes, accuracy ${half.report.evaluation?.after.accuracy?.toFixed(4)}`);
await half.save(args.model.replace(/\.onnx$/, '') + '.float16.onnx');

// A quantized model is an OnnxModel: it runs and saves, and no longer trains.
const logits = await int8.predict(test.images.slice(0, 4));
console.log(`int8 predictions for four test images: ${[...kiln.metrics.predictedLabels(logits)].join(', ')}`);
