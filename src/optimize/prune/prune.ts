import { KilnError } from '../../errors.js';
import { GraphModel } from '../../train/graph-model.js';
import type { Sequential } from '../../train/sequential.js';
import { graphStructuredPrune, type GraphPruneResult, type GraphStructuredPruneOptions } from './graph-structured.js';
import { magnitudePrune, type MagnitudePruneOptions, type PruneResult } from './magnitude.js';
import { structuredPrune, type StructuredPruneArgs, type StructuredPruneOptions } from './structured.js';

/** Options of `prune`: magnitude pruning (sparsity / schedule / sparsityMByN) or `structured`. */
export interface PruneOptions extends MagnitudePruneOptions {
  /** Structured pruning instead: remove whole filters and units (give no magnitude option with it). */
  structured?: StructuredPruneArgs;
}

/**
 * Prunes a copy of the model and reports what it bought. Unstructured (`sparsity`, `schedule`,
 * `sparsityMByN`): the smallest weights become exact zeros, which gzip compresses. Structured
 * (`structured: {ratio}`): whole filters and units go, so the model gets smaller and faster; on an
 * imported graph (GraphModel) the channel dependency groups come from the graph (graph-structured.ts).
 */
export function prune(model: GraphModel, options: GraphStructuredPruneOptions): Promise<GraphPruneResult>;
export function prune(model: Sequential, options: PruneOptions): Promise<PruneResult>;
export function prune(model: Sequential | GraphModel, options: PruneOptions | GraphStructuredPruneOptions): Promise<PruneResult | GraphPruneResult> {
  if (model instanceof GraphModel && options?.structured !== undefined) return graphStructuredPrune(model, options as GraphStructuredPruneOptions);
  if (!model || !Array.isArray((model as { layers?: unknown }).layers) || !(model.weights instanceof Map)) {
    return Promise.reject(new KilnError('INVALID_ARGUMENT', 'prune: the first argument must be a Kiln Sequential model (kiln.sequential(...) or kiln.loadModel(file))'));
  }
  if (!options || typeof options !== 'object') return Promise.reject(new KilnError('INVALID_ARGUMENT', 'prune: give options, e.g. {sparsity: 0.8} or {structured: {ratio: 0.5}}'));
  const magnitude = options as PruneOptions;
  if (magnitude.structured !== undefined) {
    const mixed = (['sparsity', 'schedule', 'sparsityMByN', 'scope'] as const).filter((k) => magnitude[k] !== undefined);
    if (mixed.length) return Promise.reject(new KilnError('INVALID_ARGUMENT', `prune: structured pruning removes whole filters; ${mixed.join(', ')} belong to magnitude pruning — give one or the other`));
    return structuredPrune(model as Sequential, options as StructuredPruneOptions);
  }
  return magnitudePrune(model as Sequential, magnitude);
}
