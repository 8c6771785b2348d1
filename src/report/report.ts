import { bench, type BenchModelSource, type BenchOptions, type BenchReport } from '../bench/bench.js';
import type { ModelInputs } from '../model/input-rows.js';
import type { Tensor } from '../tensor.js';
import { writeReport, type ReportOptions } from './html.js';

/** Options of `report`: the page's, the measurement's, and where to write it. */
export interface CreateReportOptions extends ReportOptions, BenchOptions {
  /** Where the HTML goes (default 'kiln-report.html'). */
  out?: string;
}

/** What a report shows: models to measure on test data, or measurements already taken (`kiln bench --json`). */
export type ReportInput =
  | {
      /** The models to measure. */
      models: BenchModelSource[];
      /** Test inputs: one tensor, or tensors by input name for models of several. */
      x: ModelInputs;
      /** Test labels. */
      y: Tensor;
    }
  | {
      /** Measurements from `bench` or `kiln bench --json`. */
      measurements: BenchReport;
    };

/** Benches the models on the test data (unless given measurements) and writes the HTML report. */
export async function report(
  input: ReportInput,
  options: CreateReportOptions = {},
): Promise<{
  /** The HTML file written. */
  file: string;
  /** The measurements it shows. */
  bench: BenchReport;
}> {
  const measured = 'measurements' in input ? input.measurements : await bench(input.models, { x: input.x, y: input.y }, options);
  const file = await writeReport(options.out ?? 'kiln-report.html', measured, options);
  return { file, bench: measured };
}
