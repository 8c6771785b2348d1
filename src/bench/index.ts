/** `kiln bench`: size, accuracy and speed of a model and its variants, measured side by side. */
export { bench, bestModel, type BenchEntry, type BenchModelSource, type BenchOptions, type BenchReport } from './bench.js';
export { measureFlops, staticCost, type OnnxCost } from './cost.js';
export { formatBenchTable, formatFlops } from './format.js';
export { median, percentile } from './timing.js';
