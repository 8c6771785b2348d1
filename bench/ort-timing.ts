/*
 * Shared by the benches that time ONNX Runtime sessions against each other (quantize/, prune/): models
 * run in turn on one feed, so that load from other processes falls on all of them alike, and the
 * per-node kernel times of ONNX Runtime's own profile. Each bench opens its sessions with its own options.
 */
import type ort from 'onnxruntime-node';

export interface Timing {
  medianMs: number;
  /** 10th percentile: close to the undisturbed time when other processes preempt some runs. */
  p10Ms: number;
  minMs: number;
  /** Process CPU time per run, median; asked for at one thread only, where it is the session's own. */
  cpuMs?: number;
}

/** The value at fraction q of the sorted values (q = 0.5: the median, lower of the two middle ones). */
const quantile = (v: number[], q: number) => [...v].sort((a, b) => a - b)[Math.floor(q * (v.length - 1))]!;

/**
 * Times `sessions` in turn on one feed, `rounds` times after `warmup` untimed rounds: [session] → timing.
 * The sessions stay open (the caller releases them).
 */
export async function timeInterleaved(sessions: ort.InferenceSession[], feed: Record<string, ort.Tensor>, opts: { rounds: number; warmup: number; cpu: boolean }): Promise<Timing[]> {
  const wall = sessions.map(() => [] as number[]);
  const cpu = sessions.map(() => [] as number[]);
  for (let r = 0; r < opts.warmup + opts.rounds; r++) {
    for (let k = 0; k < sessions.length; k++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await sessions[k]!.run(feed);
      const dt = performance.now() - t0;
      const dc = process.cpuUsage(c0);
      if (r >= opts.warmup) {
        wall[k]!.push(dt);
        cpu[k]!.push((dc.user + dc.system) / 1000);
      }
    }
  }
  return wall.map((w, k) => ({ medianMs: quantile(w, 0.5), p10Ms: quantile(w, 0.1), minMs: Math.min(...w), ...(opts.cpu ? { cpuMs: quantile(cpu[k]!, 0.5) } : {}) }));
}

/** An event of the JSON file ONNX Runtime's profiler writes. */
export interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args: { op_name?: string };
}

/** Each node's kernel time in a profile, µs: the median over the runs profiled, by node name. */
export function kernelTimeByNode(events: ProfileEvent[]): Map<string, { op: string; us: number }> {
  const perNode = new Map<string, { op: string; d: number[] }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    const entry = perNode.get(name) ?? { op: e.args.op_name ?? '?', d: [] };
    entry.d.push(e.dur);
    perNode.set(name, entry);
  }
  return new Map([...perNode].map(([name, { op, d }]) => [name, { op, us: [...d].sort((a, b) => a - b)[Math.floor(d.length / 2)]! }]));
}
