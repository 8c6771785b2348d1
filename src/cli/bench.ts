import { bench, type BenchOptions } from '../bench/bench.js';
import { formatBenchTable } from '../bench/format.js';
import { KilnError } from '../errors.js';
import { sliceInputs } from '../model/input-rows.js';
import { OnnxModel } from '../model/onnx-model.js';
import { loadTestSplit } from './examples.js';
import { requireArraysForInputs, requireOneInput } from './import-options.js';
import type { OptionSpec, ParsedOptions } from './args.js';
import type { Command } from './command.js';

/** Timing options shared by `kiln bench` and `kiln report`. */
export const TIMING_OPTIONS: OptionSpec[] = [
  { name: 'dataset', type: 'string', description: 'data set name or path, or a directory of NumPy arrays (x_test.npy, y_test.npy; one x_test.<input>.npy per input); its test split is used', default: 'embedded' },
  { name: 'limit', type: 'number', integer: true, min: 1, description: 'use only the first n test examples' },
  { name: 'batch-size', type: 'number', integer: true, min: 1, description: 'batch size of the throughput measurement', default: 64 },
  { name: 'repetitions', type: 'number', integer: true, min: 1, description: 'timed rounds (figures are medians over rounds)', default: 5 },
  { name: 'latency-runs', type: 'number', integer: true, min: 1, description: 'batch-1 calls per round', default: 100 },
  { name: 'warmup', type: 'number', integer: true, min: 0, description: 'untimed calls before measuring', default: 20 },
];

export function timingOptions(options: ParsedOptions): BenchOptions {
  return {
    dataset: String(options.dataset),
    batchSize: Number(options['batch-size']),
    repetitions: Number(options.repetitions),
    latencyRuns: Number(options['latency-runs']),
    warmup: Number(options.warmup),
  };
}

/** The --dataset's test split (images, or NumPy arrays: one tensor, or tensors by input name), its first --limit examples. */
export async function testData(options: ParsedOptions) {
  const { test } = await loadTestSplit(String(options.dataset));
  const limit = options.limit === undefined ? test.y.shape[0]! : Number(options.limit);
  return { x: sliceInputs(test.x, 0, limit), y: test.y.slice(0, limit) };
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Compare a model and its variants: parameters, FLOPs, size, accuracy, macro F1, latency, throughput',
  usage: 'kiln bench model.onnx [variant.onnx ...] --dataset <name|path> [--json]',
  options: [...TIMING_OPTIONS, { name: 'json', type: 'boolean', description: 'print the measurements as JSON' }],
  async run({ positionals, options }, out) {
    if (positionals.length === 0) throw new KilnError('INVALID_ARGUMENT', 'kiln bench: give one or more model files, e.g. kiln bench model.onnx model-int8.onnx --dataset embedded');
    // Every file first (a typo named before the data loads); one of several inputs needs arrays by input name.
    const files = await Promise.all(positionals.map((file) => OnnxModel.load(file)));
    files.forEach((model, k) => requireArraysForInputs(model, positionals[k]!, String(options.dataset)));
    const data = await testData(options);
    files.forEach((model, k) => requireOneInput(model, positionals[k]!, data.x));
    const report = await bench(positionals, data, { ...timingOptions(options), onProgress: options.json ? undefined : (line) => out(line) });
    out(options.json ? JSON.stringify(report) : `\n${formatBenchTable(report)}`);
    return 0;
  },
};
