import { promises as fs } from 'node:fs';
import type { BenchReport } from '../bench/bench.js';
import { formatBenchTable } from '../bench/format.js';
import { KilnError } from '../errors.js';
import { report } from '../report/report.js';
import { TIMING_OPTIONS, testData, timingOptions } from './bench.js';
import type { Command } from './command.js';

export const reportCommand: Command = {
  name: 'report',
  summary: 'Write a self-contained HTML report: the variants table, accuracy vs size and vs latency, training curves',
  usage: 'kiln report model.onnx [variant.onnx ...] --dataset <name|path> --out report.html   (or: kiln report --bench bench.json)',
  options: [
    ...TIMING_OPTIONS,
    { name: 'bench', type: 'string', description: "measurements from 'kiln bench --json' to use instead of measuring" },
    { name: 'title', type: 'string', description: 'page title', default: 'Kiln model report' },
    { name: 'out', type: 'string', description: 'where to write the HTML', default: 'kiln-report.html' },
  ],
  async run({ positionals, options }, out) {
    let measurements: BenchReport | undefined;
    if (options.bench) {
      try {
        measurements = JSON.parse(await fs.readFile(String(options.bench), 'utf8')) as BenchReport;
      } catch (err) {
        throw new KilnError('INVALID_DATA', `--bench '${options.bench}' is not the JSON 'kiln bench --json' prints: ${(err as Error).message}`);
      }
      if (!Array.isArray(measurements?.models)) throw new KilnError('INVALID_DATA', `--bench '${options.bench}' has no "models" list; expected the output of 'kiln bench --json'`);
    } else if (positionals.length === 0) {
      throw new KilnError('INVALID_ARGUMENT', 'kiln report: give model files (kiln report model.onnx variant.onnx --dataset embedded) or --bench bench.json');
    }
    const input = measurements ? { measurements } : { models: positionals, ...(await testData(options)) };
    const { file, bench } = await report(input, { ...timingOptions(options), title: String(options.title), out: String(options.out), onProgress: (line) => out(line) });
    out(`\n${formatBenchTable(bench)}\n`);
    out(`Report written to ${file}`);
    return 0;
  },
};
