import { formatBytes, formatNumber, formatTable } from '../text/format.js';
import type { BenchEntry, BenchReport } from './bench.js';

/** FLOPs with an SI prefix: 9,059,840 → '9.06 M'. */
export function formatFlops(flops: number): string {
  for (const [unit, scale] of [['G', 1e9], ['M', 1e6], ['k', 1e3]] as const) if (flops >= scale) return `${(flops / scale).toFixed(2)} ${unit}`;
  return String(flops);
}

export const BENCH_COLUMNS = ['Model', 'Params', 'Non-zero', 'FLOPs', 'Size', 'Gzip', 'Accuracy', 'Macro F1', 'p50 ms', 'p99 ms', 'img/s @B'] as const;

/** One table row per model, as the terminal and the HTML report show it. */
export function benchRow(e: BenchEntry): string[] {
  return [
    e.name,
    formatNumber(e.parameters),
    formatNumber(e.nonZeroParameters),
    formatFlops(e.flops),
    formatBytes(e.fileBytes),
    formatBytes(e.gzipBytes),
    `${(100 * e.accuracy).toFixed(2)}%`,
    e.macroF1.toFixed(4),
    e.latencyP50Ms.toFixed(3),
    e.latencyP99Ms.toFixed(3),
    formatNumber(Math.round(e.throughput)),
  ];
}

export function benchHeader(report: BenchReport): string[] {
  return BENCH_COLUMNS.map((c) => c.replace('@B', `@${report.settings.batchSize}`));
}

/** The terminal table of `kiln bench`, with a line on how it was measured. */
export function formatBenchTable(report: BenchReport): string {
  const table = formatTable(report.models.map(benchRow), { header: benchHeader(report), align: ['left', ...Array<'right'>(BENCH_COLUMNS.length - 1).fill('right')] });
  return [table, '', benchFootnote(report)].join('\n');
}

export function benchFootnote(report: BenchReport): string {
  const s = report.settings;
  const env = report.environment;
  return (
    `${report.testExamples} test examples${report.dataset ? ` of ${report.dataset}` : ''}; latency: batch 1, ${s.latencyRuns} calls per round; throughput: batch ${s.batchSize}, ${s.throughputBatches} calls per round; ` +
    `median of ${s.repetitions} rounds after ${s.warmup} warm-up calls. ${env.cpus} × ${env.cpu}, Node ${env.node}, ONNX Runtime ${env.onnxruntime}, load average ${env.loadAverage.toFixed(2)}.`
  );
}
