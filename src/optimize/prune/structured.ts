import { KilnError } from '../../errors.js';
import { Activation, layerFromConfig, type Layer } from '../../layers/index.js';
import { Tensor } from '../../tensor.js';
import type { Sequential } from '../../train/sequential.js';
import { checkParametersFraction, keptUnits, ratioForBudget } from './budget.js';
import { checkFineTune, compileForFineTune, fitFineTune, rebuildModel, type FineTuneArgs } from './fine-tune.js';
import { takeAxes } from './graph-shrink.js';
import { kernelLayers, namedKernelLayers, requireTrainableWeights } from './masks.js';
import type { PruneResult } from './magnitude.js';
import { layerReports, snapshots, weightSparsity, type PruneReport, type SnapshotOptions } from './report.js';

/** What ranks filters and units for removal: their weights' L1 or L2 norm, or the following BatchNorm's |gamma|. */
export type FilterCriterion = 'l1' | 'l2' | 'bnScale';

/** How much structured pruning removes, where, and how filters are ranked. */
export interface StructuredPruneArgs {
  /** Fraction of filters/units removed from each pruned layer, in [0, 1). */
  ratio?: number;
  /**
   * Fraction of the model's parameters to remove, instead of `ratio`: the ratio (for the layers `ratio`
   * would cover) that removes the fewest units while keeping at most (1 − parameters) of them
   * (budget.ts); `perLayer` ratios stay as given.
   * Removing half of every layer's filters removes ~75% of a convolution network's parameters (each
   * kernel loses half its outputs and half its inputs), so "50% of the parameters" is a gentler cut.
   */
  parameters?: number;
  /** Ratios by layer name (these layers only, unless `ratio` covers the rest). */
  perLayer?: Record<string, number>;
  /**
   * What ranks filters: the L1 or L2 norm of a filter's (unit's) weights, or the |gamma| of the batch
   * normalization that follows it (network slimming). Default 'l1'.
   */
  criterion?: FilterCriterion;
  /** Iterative mode: remove the ratio in this many equal rounds, fine-tuning after each (default 1). */
  iterations?: number;
}

/** Options of structured pruning: what to remove, which layers, and the fine-tuning. */
export interface StructuredPruneOptions extends SnapshotOptions {
  /** How much to remove and how filters are ranked. */
  structured: StructuredPruneArgs;
  /** Layers `ratio` applies to (default: every Conv2D, Conv2DTranspose and Dense layer but the last, whose units are the outputs). */
  layers?: string[];
  /** Train after removing (after each round when iterative). Without it the model is pruned once. */
  fineTune?: FineTuneArgs;
}

/** Layers that only carry channels through (channel c in → channel c out). */
const CHANNELWISE = new Set(['MaxPooling2D', 'AveragePooling2D', 'Dropout', 'Activation']);

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Which axis of a layer's kernel holds its filters/units and which its inputs: Conv2D [filters,
 * channels, kH, kW], Conv2DTranspose [channels, filters, kH, kW] (ONNX ConvTranspose's order), Dense
 * [inputs, units].
 */
function kernelAxes(layer: Layer): { units: 0 | 1; inputs: 0 | 1 } {
  return layer.className === 'Conv2D' ? { units: 0, inputs: 1 } : { units: 1, inputs: 0 };
}

function outputUnits(model: Sequential, layer: Layer): number {
  return model.weights.get(`${layer.name}/kernel`)!.shape[kernelAxes(layer).units]!;
}

/** One score per filter (Conv2D, Conv2DTranspose) or unit (Dense): larger means more important. */
export function filterScores(model: Sequential, layer: Layer, criterion: FilterCriterion): Float64Array {
  const index = model.layers.indexOf(layer);
  if (criterion === 'bnScale') {
    for (const next of model.layers.slice(index + 1)) {
      if (next.className === 'BatchNormalization') {
        const gamma = model.weights.get(`${next.name}/gamma`)!.data as Float32Array;
        return Float64Array.from(gamma, Math.abs);
      }
      if (!CHANNELWISE.has(next.className)) break;
    }
    throw new KilnError('INVALID_ARGUMENT', `structured pruning: criterion 'bnScale' ranks filters by the batch normalization after a layer, and layer '${layer.name}' (${layer.className}) is not followed by one; use 'l1' or 'l2'`);
  }
  const kernel = model.weights.get(`${layer.name}/kernel`)!;
  const data = kernel.data as Float32Array;
  const units = outputUnits(model, layer);
  const scores = new Float64Array(units);
  // Element i belongs to the unit its index along the units axis gives.
  const inner = kernel.shape.slice(kernelAxes(layer).units + 1).reduce((p, d) => p * d, 1);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    scores[Math.floor(i / inner) % units] += criterion === 'l2' ? v * v : Math.abs(v);
  }
  if (criterion === 'l2') for (let u = 0; u < units; u++) scores[u] = Math.sqrt(scores[u]!);
  return scores;
}

/** The `keep` highest-scoring indices, in ascending order (ties: the lower index stays). */
export function topIndices(scores: ArrayLike<number>, keep: number): number[] {
  return range(scores.length)
    .sort((a, b) => scores[b]! - scores[a]! || a - b)
    .slice(0, keep)
    .sort((a, b) => a - b);
}

/**
 * Removes filters/units: a new Sequential whose pruned layers have only the kept ones (`keep`: original
 * indices by layer name), with the removal carried into what reads them — batch-norm parameters,
 * through pooling and dropout, across Flatten (channel c owns features c·H·W … (c+1)·H·W − 1 in the
 * channel-first order the graph flattens) and into the next Conv2D's or Conv2DTranspose's input channels or Dense's rows.
 * The result computes what the original computes with those channels' contributions zeroed.
 */
export function removeFilters(model: Sequential, keep: ReadonlyMap<string, number[]>): Sequential {
  const shapes = model.layerShapes();
  const weights = new Map<string, Tensor>();
  const sizes = new Map<string, number>();
  /** Kept indices (original numbering) along the current tensor's channel/feature axis; null: all. */
  let channels: number[] | null = null;
  model.layers.forEach((layer, i) => {
    const own = (param: string) => model.weights.get(`${layer.name}/${param}`)!;
    const put = (param: string, t: Tensor) => weights.set(`${layer.name}/${param}`, t);
    const inShape = shapes[i]!;
    switch (layer.className) {
      case 'Conv2D':
      case 'Conv2DTranspose':
      case 'Dense': {
        const kernel = own('kernel');
        const axes = kernelAxes(layer);
        const outKeep = keep.get(layer.name!) ?? range(kernel.shape[axes.units]!);
        // The kept units on their axis, the kept input channels on theirs, every kernel position.
        const keeps: (number[] | null)[] = kernel.shape.map(() => null);
        keeps[axes.units] = outKeep;
        keeps[axes.inputs] = channels;
        put('kernel', takeAxes(kernel, keeps));
        const bias = model.weights.get(`${layer.name}/bias`);
        if (bias) put('bias', takeAxes(bias, [outKeep]));
        sizes.set(layer.name!, outKeep.length);
        channels = keep.has(layer.name!) ? outKeep : null;
        return;
      }
      case 'BatchNormalization':
        for (const p of ['gamma', 'beta', 'moving_mean', 'moving_variance']) {
          const t = own(p);
          put(p, channels ? takeAxes(t, [channels]) : t);
        }
        return;
      case 'Flatten':
        if (channels && inShape.length === 3) {
          const hw = inShape[0]! * inShape[1]!;
          channels = channels.flatMap((c) => range(hw).map((j) => c * hw + j));
        }
        return;
      case 'GlobalAveragePooling2D':
        return;
      default:
        // Softmax mixes channels, so removing one is not the same as zeroing it.
        if (channels && (!CHANNELWISE.has(layer.className) || (layer instanceof Activation && layer.activation === 'softmax'))) {
          throw new KilnError('UNSUPPORTED_OP', `structured pruning cannot carry removed channels through layer '${layer.name}' (${layer.className})`);
        }
        for (const [name, t] of model.weights) if (name.startsWith(`${layer.name}/`)) weights.set(name, t);
    }
  });
  return rebuildModel(model, weights, (className, name, config) => {
    const size = sizes.get(name);
    if (size === undefined) return config;
    return className === 'Dense' ? { ...config, units: size } : { ...config, filters: size };
  });
}

function checkRatio(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
    throw new KilnError('INVALID_ARGUMENT', `${what} must be a number in [0, 1) (the fraction of filters/units removed), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The layers whose filters or units structured pruning removes. */
const removesFilters = (layer: Layer): boolean => layer.className === 'Conv2D' || layer.className === 'Conv2DTranspose' || layer.className === 'Dense';

/** The removal ratio of each pruned layer, validated against the model; with `parameters`, those of `open` layers are found later (0 here). */
function layerRatios(model: Sequential, options: StructuredPruneOptions): { ratios: Map<string, number>; open: string[] } {
  const s = options.structured;
  const all = kernelLayers(model);
  const last = all.at(-1);
  const ratios = new Map<string, number>();
  if (s.ratio === undefined && s.parameters === undefined && s.perLayer === undefined) throw new KilnError('INVALID_ARGUMENT', 'structured pruning needs ratio (e.g. structured: {ratio: 0.5}), a parameters fraction or perLayer ratios');
  checkParametersFraction(s);
  if (s.ratio !== undefined || s.parameters !== undefined) {
    const ratio = s.ratio === undefined ? 0 : checkRatio(s.ratio, 'structured.ratio');
    const layers = options.layers !== undefined ? namedKernelLayers(model, options.layers, 'structured pruning') : all.slice(0, -1).filter(removesFilters);
    for (const l of layers) ratios.set(l.name!, ratio);
  }
  const open = s.parameters === undefined ? [] : [...ratios.keys()].filter((name) => s.perLayer?.[name] === undefined);
  if (s.perLayer !== undefined) {
    if (typeof s.perLayer !== 'object' || s.perLayer === null) throw new KilnError('INVALID_ARGUMENT', 'structured.perLayer must map layer names to ratios, e.g. {conv2d_1: 0.5}');
    const named = namedKernelLayers(model, Object.keys(s.perLayer), 'structured pruning (perLayer)');
    for (const l of named) ratios.set(l.name!, checkRatio(s.perLayer[l.name!], `structured.perLayer['${l.name}']`));
  }
  for (const name of ratios.keys()) {
    const layer = model.layers.find((l) => l.name === name)!;
    if (!removesFilters(layer)) throw new KilnError('UNSUPPORTED_OP', `structured pruning removes Conv2D and Conv2DTranspose filters and Dense units; layer '${name}' is a ${layer.className}, whose kernel it does not shrink`);
  }
  if (last && ratios.has(last.name!) && (ratios.get(last.name!)! > 0 || open.includes(last.name!))) {
    throw new KilnError('INVALID_ARGUMENT', `structured pruning cannot remove units of '${last.name}': it is the last layer with weights, and its units are the model's outputs`);
  }
  if (ratios.size === 0) throw new KilnError('INVALID_ARGUMENT', `structured pruning: the model has no layer to prune besides its output layer (${all.map((l) => l.name).join(', ')})`);
  if (s.parameters !== undefined && open.length === 0) throw new KilnError('INVALID_ARGUMENT', 'structured.parameters: every pruned layer has a perLayer ratio, so no ratio is left to find');
  return { ratios, open };
}

/** Parameters of the model with `units` filters/units in the named layers, counted from the layers' shapes (no weights built). */
function parametersWithUnits(model: Sequential, units: ReadonlyMap<string, number>): number {
  let shape = model.inputShape;
  let parameters = 0;
  for (const l of model.layers) {
    const size = units.get(l.name!);
    const s = l.serialize();
    const layer = size === undefined ? l : layerFromConfig({ className: s.className, config: { ...s.config, ...(s.className === 'Dense' ? { units: size } : { filters: size }) } });
    parameters += layer.countParams(shape);
    shape = layer.computeOutputShape(shape);
  }
  return parameters;
}

/** The ratio for the `open` layers that removes at least `fraction` of the parameters (budget.ts); perLayer ratios stay. */
function ratioForParameters(model: Sequential, ratios: ReadonlyMap<string, number>, open: readonly string[], fraction: number): number {
  const units = new Map([...ratios.keys()].map((name) => [name, outputUnits(model, model.layers.find((l) => l.name === name)!)]));
  const total = parametersWithUnits(model, new Map());
  return ratioForBudget({
    parametersAt: (ratio) => parametersWithUnits(model, new Map([...ratios].map(([name, r]) => [name, keptUnits(units.get(name)!, open.includes(name) ? ratio : r)]))),
    units: open.map((name) => units.get(name)!),
    total,
    fraction,
    shortfall: (fewest) => `structured.parameters ${fraction}: keeping one filter/unit in each pruned layer removes only ${(100 * (1 - fewest / total)).toFixed(1)}% of the ${total} parameters (the rest is in layers not pruned)`,
  });
}

/**
 * Structured pruning: removes whole Conv2D and Conv2DTranspose filters and Dense units with the lowest scores, giving a
 * smaller dense model (fewer parameters and FLOPs, really faster), then fine-tunes it. With
 * `iterations` > 1 the removal happens in rounds, each followed by fine-tuning.
 */
export async function structuredPrune(model: Sequential, options: StructuredPruneOptions): Promise<PruneResult> {
  requireTrainableWeights(model);
  const s = options.structured;
  if (typeof s !== 'object' || s === null) throw new KilnError('INVALID_ARGUMENT', 'structured must be an object, e.g. structured: {ratio: 0.5, criterion: "l1"}');
  const criterion = s.criterion ?? 'l1';
  if (!['l1', 'l2', 'bnScale'].includes(criterion)) throw new KilnError('INVALID_ARGUMENT', `structured.criterion must be 'l1', 'l2' or 'bnScale', got ${JSON.stringify(criterion)}`);
  const iterations = s.iterations ?? 1;
  if (!Number.isInteger(iterations) || iterations < 1) throw new KilnError('INVALID_ARGUMENT', `structured.iterations must be a positive integer, got ${JSON.stringify(s.iterations)}`);
  if (options.fineTune) checkFineTune(options.fineTune);
  const { ratios, open } = layerRatios(model, options);
  // Checked before any work: every pruned layer must have a score under this criterion.
  for (const name of ratios.keys()) filterScores(model, model.layers.find((l) => l.name === name)!, criterion);
  const found = s.parameters === undefined ? undefined : ratioForParameters(model, ratios, open, s.parameters);
  if (found !== undefined) for (const name of open) ratios.set(name, found);
  const original = new Map([...ratios.keys()].map((name) => [name, outputUnits(model, model.layers.find((l) => l.name === name)!)]));

  // Original index of each remaining filter/unit, composed across rounds.
  const originalIndex = new Map([...original].map(([name, n]) => [name, range(n)]));
  let current: Sequential = model;
  let pruned: Sequential | undefined;
  const history: Record<string, number[]>[] = [];
  for (let round = 1; round <= iterations; round++) {
    const keep = new Map<string, number[]>();
    for (const [name, ratio] of ratios) {
      const layer = current.layers.find((l) => l.name === name)!;
      const target = keptUnits(original.get(name)!, round === iterations ? ratio : (ratio * round) / iterations);
      const kept = topIndices(filterScores(current, layer, criterion), target);
      keep.set(name, kept);
      originalIndex.set(name, kept.map((k) => originalIndex.get(name)![k]!));
    }
    pruned = removeFilters(current, keep);
    if (options.fineTune) {
      compileForFineTune(pruned, options.fineTune);
      history.push((await fitFineTune(pruned, options.fineTune)).history);
    }
    current = pruned;
  }

  const [before, after] = await snapshots(model, pruned!, options);
  const weights = weightSparsity(pruned!);
  const elements = weights.reduce((n, w) => n + w.elements, 0);
  const report: PruneReport = {
    method: 'structured',
    before,
    after,
    layers: layerReports(model, pruned!, new Set(ratios.keys())).map((l) => (originalIndex.has(l.name) ? { ...l, keptUnits: originalIndex.get(l.name)! } : l)),
    weights,
    sparsity: weights.reduce((n, w) => n + w.zeros, 0) / Math.max(1, elements),
    ...(found !== undefined ? { ratio: found } : {}),
    ...(history.length ? { history } : {}),
  };
  return { model: pruned!, report };
}
