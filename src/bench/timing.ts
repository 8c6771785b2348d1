import type { SessionInfo } from '../runtime/protocol.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Tensor } from '../tensor.js';

/** Nearest-rank percentile (p in [0, 1]) of samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Milliseconds of each of `runs` consecutive calls with the same feeds. */
export async function timeCalls(runtime: Runtime, session: SessionInfo, feeds: Record<string, Tensor>, runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await runtime.run(session, feeds);
    times.push(performance.now() - t0);
  }
  return times;
}
