import { KilnError } from '../../errors.js';
import type { Layer } from '../../layers/index.js';
import type { Sequential } from '../../train/sequential.js';
import type { Tensor } from '../../tensor.js';

/**
 * A kernel magnitude pruning may zero. Biases, batch-norm parameters and moving statistics are never
 * targets (TF-MOT prunes kernels only). `view` reads the kernel as [outer, input, inner] so that m:n
 * blocks run along the input axis: Dense [in, units] is [1, in, units]; Conv2D [out, in, kh, kw] is
 * [out, in, kh·kw].
 */
export interface PruneTarget {
  /** The weight's name, `<layer>/kernel`. */
  name: string;
  /** The layer that owns it. */
  layer: string;
  /** The kernel's shape as stored. */
  shape: number[];
  /** The kernel read as [outer, input, inner], so m:n groups run along the input axis. */
  view: [number, number, number];
}

/** Layers that own a kernel (Conv2D, Dense), in model order. */
export function kernelLayers(model: Sequential): Layer[] {
  return model.layers.filter((l) => model.weights.has(`${l.name}/kernel`));
}

export function requireTrainableWeights(model: Sequential): void {
  if (model.countParams().trainable === 0) {
    throw new KilnError('NOT_TRAINABLE', `model '${model.name}' has no trainable weights (layers: ${model.layers.map((l) => `${l.name} (${l.className})`).join(', ') || 'none'}): there is nothing to prune`);
  }
}

/** Looks up layer names given by the user, each of which must exist and own a kernel. */
export function namedKernelLayers(model: Sequential, names: readonly string[], what: string): Layer[] {
  if (!Array.isArray(names) || names.length === 0) throw new KilnError('INVALID_ARGUMENT', `${what}: layers must be a non-empty list of layer names`);
  const prunable = kernelLayers(model);
  return names.map((name) => {
    const layer = model.layers.find((l) => l.name === name);
    if (!layer) {
      throw new KilnError('INVALID_ARGUMENT', `${what}: the model has no layer named '${name}'; its layers are ${model.layers.map((l) => l.name).join(', ')}`);
    }
    if (!prunable.includes(layer)) {
      throw new KilnError('INVALID_ARGUMENT', `${what}: layer '${name}' (${layer.className}) has no kernel to prune; layers with kernels: ${prunable.map((l) => l.name).join(', ')}`);
    }
    return layer;
  });
}

/**
 * The kernels unstructured pruning works on: the named layers, or by default every kernel layer but
 * the first and the last, which TF-MOT recommends leaving dense (few weights, much accuracy).
 */
export function selectTargets(model: Sequential, layers?: readonly string[]): PruneTarget[] {
  requireTrainableWeights(model);
  let chosen: Layer[];
  if (layers !== undefined) chosen = namedKernelLayers(model, layers, 'prune');
  else {
    const all = kernelLayers(model);
    chosen = all.slice(1, -1);
    if (chosen.length === 0) {
      throw new KilnError(
        'INVALID_ARGUMENT',
        `prune: the model has ${all.length} layer(s) with kernels (${all.map((l) => l.name).join(', ') || 'none'}); the first and last stay dense by default, which leaves nothing — name the layers to prune with layers: [...]`,
      );
    }
  }
  return chosen.map((layer) => {
    const name = `${layer.name}/kernel`;
    const shape = [...model.weights.get(name)!.shape];
    // m:n blocks run along the input channels: axis 1 of Conv2D's [filters, channels, kH, kW], axis 0 of
    // Conv2DTranspose's [channels, filters, kH, kW] and of Dense's [inputs, units].
    const rest = (from: number) => shape.slice(from).reduce((a, b) => a * b, 1);
    const view: [number, number, number] = shape.length === 2 ? [1, shape[0]!, shape[1]!] : layer.className === 'Conv2DTranspose' ? [1, shape[0]!, rest(1)] : [shape[0]!, shape[1]!, rest(2)];
    return { name, layer: layer.name!, shape, view };
  });
}

/** How many of n weights a sparsity zeroes: TF-MOT keeps round(n·(1 − sparsity)). */
export function prunedCount(n: number, sparsity: number): number {
  return n - Math.round(n * (1 - sparsity));
}

/**
 * Zeroes (in `keep`, 1 = keep) exactly `count` of the smallest magnitudes across the given arrays;
 * ties at the threshold go in order, so the count is exact even when many weights are already zero.
 */
function pruneSmallest(values: readonly Float32Array[], keep: readonly Uint8Array[], count: number): void {
  if (count <= 0) return;
  const total = values.reduce((n, v) => n + v.length, 0);
  const all = new Float32Array(total);
  let o = 0;
  for (const v of values) for (let i = 0; i < v.length; i++) all[o++] = Math.abs(v[i]!);
  all.sort();
  const threshold = all[Math.min(count, total) - 1]!;
  let remaining = count;
  values.forEach((v, k) => {
    const m = keep[k]!;
    for (let i = 0; i < v.length; i++) {
      if (Math.abs(v[i]!) < threshold) {
        m[i] = 0;
        remaining--;
      }
    }
  });
  values.forEach((v, k) => {
    const m = keep[k]!;
    for (let i = 0; i < v.length && remaining > 0; i++) {
      if (m[i] === 1 && Math.abs(v[i]!) === threshold) {
        m[i] = 0;
        remaining--;
      }
    }
  });
}

/** 0/1 keep-masks zeroing the smallest magnitudes: per kernel ('layer') or one threshold for all ('global'). */
export function magnitudeMasks(values: readonly Float32Array[], sparsity: number, scope: 'layer' | 'global'): Uint8Array[] {
  const keep = values.map((v) => new Uint8Array(v.length).fill(1));
  if (scope === 'global') pruneSmallest(values, keep, prunedCount(values.reduce((n, v) => n + v.length, 0), sparsity));
  else values.forEach((v, k) => pruneSmallest([v], [keep[k]!], prunedCount(v.length, sparsity)));
  return keep;
}

/**
 * TF-MOT's m-by-n sparsity: m zeros in every block of n consecutive weights along the input axis
 * (2:4 is what sparse tensor cores run). A shorter last block keeps at most n − m of its weights.
 */
export function mByNMask(values: Float32Array, view: [number, number, number], m: number, n: number): Uint8Array {
  const [outer, input, inner] = view;
  const keep = new Uint8Array(values.length).fill(1);
  const keepPerBlock = n - m;
  const idx: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < inner; r++) {
      for (let start = 0; start < input; start += n) {
        idx.length = 0;
        for (let i = start; i < Math.min(input, start + n); i++) idx.push((o * input + i) * inner + r);
        // Largest magnitudes first; equal ones in index order, so the mask is deterministic.
        idx.sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b);
        for (let j = keepPerBlock; j < idx.length; j++) keep[idx[j]!] = 0;
      }
    }
  }
  return keep;
}

/** The keep-masks of the targets for the weights given, at a sparsity or as m:n blocks. */
export function targetMasks(
  weights: Map<string, Tensor>,
  targets: readonly PruneTarget[],
  rule: { sparsity: number; scope: 'layer' | 'global' } | { mByN: [number, number] },
): Uint8Array[] {
  const values = targets.map((t) => weights.get(t.name)!.data as Float32Array);
  if ('mByN' in rule) return values.map((v, k) => mByNMask(v, targets[k]!.view, rule.mByN[0], rule.mByN[1]));
  return magnitudeMasks(values, rule.sparsity, rule.scope);
}

/** Validates an m:n pair: m zeros in blocks of n, 0 < m < n. */
export function checkMByN(value: unknown): [number, number] {
  const ok = Array.isArray(value) && value.length === 2 && value.every((v) => Number.isInteger(v)) && value[0] > 0 && value[0] < value[1];
  if (!ok) throw new KilnError('INVALID_ARGUMENT', `sparsityMByN must be [m, n] with integers 0 < m < n (m zeros in every n weights, e.g. [2, 4]), got ${JSON.stringify(value)}`);
  return value as [number, number];
}
