import { KilnError } from '../../errors.js';
import type { Graph } from '../../graph/graph.js';
import { modelToProto } from '../../graph/onnx-io.js';
import { encodeModel } from '../../graph/proto.js';
import { sharedRuntime, type Runtime } from '../../runtime/runtime.js';
import { Tensor } from '../../tensor.js';
import type { Range } from './params.js';

/** How activation ranges are estimated from calibration data: full range, a percentile of it, or the
 * range that keeps the quantized histogram closest in KL divergence (TensorRT's entropy method). */
export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';
/** Every calibration method. */
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];

/** Options of `calibrateActivations`. */
export interface CalibrationOptions {
  /**
   * 'minmax': the full observed range. 'percentile': clip the tails (each side keeps `percentile`
   * percent of the values). 'entropy': the clipping threshold that minimizes the KL divergence between
   * the value histogram and its 8-bit quantized version (TensorRT's method, as ONNX Runtime's
   * EntropyCalibrater).
   */
  method?: CalibrationMethod;
  /** For 'percentile' (default 99.999, ONNX Runtime's default). */
  percentile?: number;
  /** Histogram bins for 'percentile' and 'entropy' (default 2048). */
  bins?: number;
  /** Examples per run of the float model (default 64). */
  batchSize?: number;
  /** The runtime worker to run the float model in (default: the shared one). */
  runtime?: Runtime;
}

/**
 * Runs the float graph on calibration data with every float intermediate value added as a graph output,
 * and returns the range of each value (graph inputs included) by name. x is the data of the graph's
 * (first) input, or tensors by input name for a graph of several (token ids and an attention mask).
 * 'percentile' and 'entropy' make two passes: one for each value's extent, one for its histogram over
 * that extent. A value that reaches ±∞ (an attention mask's −∞, added to the scores before Softmax)
 * keeps its infinite range, which tells the quantizer to leave it float; NaN anywhere is an error.
 */
export async function calibrateActivations(graph: Graph, x: Tensor | Readonly<Record<string, Tensor>>, options: CalibrationOptions = {}): Promise<Map<string, Range>> {
  const method = options.method ?? 'minmax';
  if (!CALIBRATION_METHODS.includes(method)) throw new KilnError('INVALID_ARGUMENT', `unknown calibration method '${method}'; expected one of ${CALIBRATION_METHODS.join(', ')}`);
  const batchSize = options.batchSize ?? 64;
  const runtime = options.runtime ?? sharedRuntime();
  const inputs: Readonly<Record<string, Tensor>> = x instanceof Tensor ? { [graph.inputs[0]!.name]: x } : x;
  const missing = graph.inputs.map((v) => v.name).filter((name) => !(inputs[name] instanceof Tensor));
  if (missing.length > 0) throw new KilnError('INVALID_ARGUMENT', `calibration data has no tensor for input ${missing.map((m) => `'${m}'`).join(', ')}`);
  const n = Object.values(inputs)[0]?.shape[0] ?? 0;
  if (n === 0) throw new KilnError('INVALID_DATA', 'the calibration set is empty: give at least one example');
  const observed = [
    ...graph.inputs.filter((v) => v.dtype === 'float32').map((v) => v.name),
    // An output the node does not write ('', as a recurrent layer's unused Y may be) has no values.
    ...graph.nodes.flatMap((node) => node.outputs.filter((o) => o !== '' && graph.value(o).dtype === 'float32')),
  ];
  const proto = modelToProto(graph);
  const declared = new Set((proto.graph!.output ?? []).map((o) => o.name));
  for (const name of observed) if (!declared.has(name)) proto.graph!.output!.push({ name, type: { tensorType: { elemType: 1 } } });
  const session = await runtime.load(encodeModel(proto));
  const forEachBatch = async (visit: (name: string, data: Float32Array) => void) => {
    for (let start = 0; start < n; start += batchSize) {
      const feeds = Object.fromEntries(graph.inputs.map((v) => [v.name, inputs[v.name]!.slice(start, start + batchSize)]));
      const out = await runtime.run(session, feeds, { fetch: observed });
      for (const name of observed) visit(name, out[name]!.data as Float32Array);
    }
  };
  try {
    const ranges = new Map<string, Range>(observed.map((name) => [name, { min: Infinity, max: -Infinity }]));
    await forEachBatch((name, data) => {
      const r = ranges.get(name)!;
      let { min, max } = r;
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        if (v < min) min = v;
        if (v > max) max = v;
        // NaN fails both comparisons above; it must not pass unnoticed.
        if (v !== v) min = max = NaN;
      }
      r.min = min;
      r.max = max;
    });
    for (const [name, r] of ranges) {
      if (Number.isNaN(r.min) || Number.isNaN(r.max)) {
        throw new KilnError('INVALID_DATA', `calibration: value '${name}' is NaN on the calibration data; check the data for NaN or infinite values`);
      }
    }
    if (method === 'minmax') return ranges;
    // Infinite ranges stay as they are (no histogram spans them); the others are refined.
    const bounded = [...ranges].filter(([, r]) => Number.isFinite(r.min) && Number.isFinite(r.max));
    const bins = options.bins ?? 2048;
    // percentile: a histogram over [min, max]; entropy: over [0, max |x|].
    const histograms = new Map<string, { hist: Float64Array; lo: number; width: number }>();
    for (const [name, r] of bounded) {
      const lo = method === 'entropy' ? 0 : r.min;
      const hi = method === 'entropy' ? Math.max(Math.abs(r.min), Math.abs(r.max)) : r.max;
      histograms.set(name, { hist: new Float64Array(bins), lo, width: (hi - lo) / bins || 1 });
    }
    await forEachBatch((name, data) => {
      const h = histograms.get(name);
      if (!h) return;
      const { hist, lo, width } = h;
      for (let i = 0; i < data.length; i++) {
        const v = method === 'entropy' ? Math.abs(data[i]!) : data[i]!;
        const b = Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)));
        hist[b]!++;
      }
    });
    const result = new Map<string, Range>(ranges);
    for (const [name, r] of bounded) {
      const h = histograms.get(name)!;
      result.set(name, method === 'percentile' ? percentileRange(h.hist, h.lo, h.width, r, options.percentile ?? 99.999) : entropyRange(h.hist, h.width, r));
    }
    return result;
  } finally {
    await runtime.release(session);
  }
}

/** The value below which a fraction of the histogram's mass lies (upper edge of that bin). */
function quantile(hist: Float64Array, lo: number, width: number, fraction: number): number {
  const total = hist.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (let i = 0; i < hist.length; i++) {
    acc += hist[i]!;
    if (acc >= fraction * total) return lo + (i + 1) * width;
  }
  return lo + hist.length * width;
}

/**
 * Clips each tail to (100 − p)/2 percent; a value that is never negative (after ReLU) keeps 0 as its
 * lower end and clips only its upper tail, to p percent.
 */
export function percentileRange(hist: Float64Array, lo: number, width: number, full: Range, percentile: number): Range {
  if (!(percentile > 0 && percentile <= 100)) throw new KilnError('INVALID_ARGUMENT', `percentile must be in (0, 100], got ${percentile}`);
  if (full.min >= 0) return { min: full.min, max: Math.min(full.max, quantile(hist, lo, width, percentile / 100)) };
  const cut = (100 - percentile) / 200;
  return { min: Math.max(full.min, quantile(hist, lo, width, cut) - width), max: Math.min(full.max, quantile(hist, lo, width, 1 - cut)) };
}

/**
 * TensorRT's entropy calibration on a histogram of |x|: for each candidate threshold (from 128 bins
 * up), fold the clipped tail into the last bin (P), quantize P to 128 levels and expand it back (Q),
 * and keep the threshold with the smallest KL(P ‖ Q). Signed values get a symmetric range.
 */
export function entropyRange(hist: Float64Array, width: number, full: Range, levels = 128): Range {
  const bins = hist.length;
  let best = bins;
  let bestKl = Infinity;
  // Candidate thresholds every few bins: the divergence varies slowly and this keeps calibration fast.
  const stride = Math.max(1, Math.floor((bins - levels) / 256));
  for (let i = levels; i <= bins; i += stride) {
    const p = Float64Array.from(hist.subarray(0, i));
    let outliers = 0;
    for (let k = i; k < bins; k++) outliers += hist[k]!;
    p[i - 1] = p[i - 1]! + outliers;
    const q = new Float64Array(i);
    const merge = i / levels;
    for (let j = 0; j < levels; j++) {
      const start = Math.floor(j * merge);
      const end = j === levels - 1 ? i : Math.floor((j + 1) * merge);
      let sum = 0;
      let nonZero = 0;
      for (let k = start; k < end; k++) {
        sum += hist[k]!;
        if (p[k]! > 0) nonZero++;
      }
      for (let k = start; k < end; k++) if (p[k]! > 0) q[k] = sum / nonZero;
    }
    const pSum = p.reduce((a, b) => a + b, 0);
    const qSum = q.reduce((a, b) => a + b, 0);
    if (pSum === 0 || qSum === 0) continue;
    let kl = 0;
    for (let k = 0; k < i; k++) {
      if (p[k]! === 0) continue;
      const pk = p[k]! / pSum;
      // A bin P has but Q lost: a large finite penalty instead of infinity, as the reference does.
      const qk = q[k]! > 0 ? q[k]! / qSum : 1e-9;
      kl += pk * Math.log(pk / qk);
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  const threshold = best * width;
  return full.min >= 0 ? { min: full.min, max: Math.min(full.max, threshold) } : { min: Math.max(full.min, -threshold), max: Math.min(full.max, threshold) };
}
