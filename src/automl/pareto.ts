/**
 * The Pareto front of measured models: those no other model beats on every axis at once — accuracy
 * (higher is better), latency at batch 1 and at batch 64, and size (lower is better).
 */
export interface MeasuredPoint {
  accuracy: number;
  latencyMs1: number;
  latencyMs64: number;
  /** The size the objective uses (gzip-compressed file bytes). */
  sizeBytes: number;
}

/** Whether a is at least as good as b on every axis and strictly better on one. */
export function dominates(a: MeasuredPoint, b: MeasuredPoint): boolean {
  const notWorse = a.accuracy >= b.accuracy && a.latencyMs1 <= b.latencyMs1 && a.latencyMs64 <= b.latencyMs64 && a.sizeBytes <= b.sizeBytes;
  const better = a.accuracy > b.accuracy || a.latencyMs1 < b.latencyMs1 || a.latencyMs64 < b.latencyMs64 || a.sizeBytes < b.sizeBytes;
  return notWorse && better;
}

/** The points no other point dominates, in the order given. */
export function paretoFront<T extends MeasuredPoint>(points: readonly T[]): T[] {
  return points.filter((p) => !points.some((q) => q !== p && dominates(q, p)));
}
