/*
 * Shared by the distillation benches (fashion.ts, any-onnx.ts): the summary over seeds of plain
 * against distilled test accuracy — means, sample standard deviations, the difference's range — and
 * the per-seed table they print it with.
 */
import { mean } from '../any-onnx/common.js';

/** One seed's test accuracies (fractions): the student trained on labels alone, and distilled. */
export interface SeedResult {
  seed: number;
  plain: number;
  distilled: number;
}

/** Sample standard deviation (n − 1); 0 for a single value. */
export function std(v: number[]): number {
  return v.length < 2 ? 0 : Math.sqrt(v.reduce((s, a) => s + (a - mean(v)) ** 2, 0) / (v.length - 1));
}

/** Plain, distilled and distilled − plain test accuracy over the seeds, in percent (points for the difference). */
export function seedSummary(rows: SeedResult[]) {
  const plain = rows.map((r) => 100 * r.plain);
  const distilled = rows.map((r) => 100 * r.distilled);
  const diffs = rows.map((r) => 100 * (r.distilled - r.plain));
  return {
    plainMean: mean(plain),
    plainStd: std(plain),
    distilledMean: mean(distilled),
    distilledStd: std(distilled),
    differenceMean: mean(diffs),
    differenceStd: std(diffs),
    differenceMin: Math.min(...diffs),
    differenceMax: Math.max(...diffs),
  };
}

/** Prints one line per seed, then the means ± standard deviations. */
export function printSeedTable(rows: SeedResult[], s: ReturnType<typeof seedSummary>): void {
  console.log('');
  console.log('seed  plain     distilled  difference');
  for (const r of rows) console.log(`${String(r.seed).padEnd(4)}  ${(100 * r.plain).toFixed(2)}%    ${(100 * r.distilled).toFixed(2)}%     ${(100 * (r.distilled - r.plain)).toFixed(2)}`);
  console.log(
    `mean  ${s.plainMean.toFixed(2)}% ± ${s.plainStd.toFixed(2)}  ${s.distilledMean.toFixed(2)}% ± ${s.distilledStd.toFixed(2)}  ${s.differenceMean.toFixed(2)} ± ${s.differenceStd.toFixed(2)} points (min ${s.differenceMin.toFixed(2)}, max ${s.differenceMax.toFixed(2)}; ± is the sample standard deviation over seeds)`,
  );
}
