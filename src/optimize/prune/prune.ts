import { KilnError } from '../../errors.js';
import { GraphModel } from '../../train/graph-model.js';
import type { Sequential } from '../../train/sequential.js';
import { graphStructuredPrune, type GraphPruneResult, type GraphStructuredPruneOptions } from './graph-structured.js';
import { checkEvaluation } from './report.js';
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
/** An imported graph (GraphModel): magnitude pruning of any of its weights; the result saves as the original graph. */
export function prune(model: GraphModel, options: PruneOptions): Promise<PruneResult<GraphModel>>;
export function prune(model: Sequential, options: PruneOptions): Promise<PruneResult>;
export function prune(model: Sequential | GraphModel, options: PruneOptions | GraphStructuredPruneOptions): Promise<PruneResult<Sequential | GraphModel> | GraphPruneResult> {
  if (!options || typeof options !== 'object') return Promise.reject(new KilnError('INVALID_ARGUMENT', 'prune: give options, e.g. {sparsity: 0.8} or {structured: {ratio: 0.5}}'));
  const magnitude = options as PruneOptions;
  if (magnitude.structured !== undefined) {
    const mixed = (['sparsity', 'schedule', 'sparsityMByN', 'scope'] as const).filter((k) => magnitude[k] !== undefined);
    if (mixed.length) return Promise.reject(new KilnError('INVALID_ARGUMENT', `prune: structured pruning removes whole filters; ${mixed.join(', ')} belong to magnitude pruning — give one or the other`));
  }
  // The test data is checked before any fine-tuning: a shape the model cannot take (a test split padded
  // to another length) would otherwise surface only after the whole training.
  if (options.evaluation && model && typeof (model as { inputRows?: unknown }).inputRows === 'function') {
    try {
      checkEvaluation(model, options.evaluation);
    } catch (err) {
      return Promise.reject(err);
    }
  }
  if (model instanceof GraphModel) {
    // An imported graph: its channel groups come from the graph; magnitude pruning takes any of its weights.
    return magnitude.structured !== undefined ? graphStructuredPrune(model, options as GraphStructuredPruneOptions) : magnitudePrune(model, magnitude);
  }
  if (!model || !Array.isArray((model as { layers?: unknown }).layers) || !(model.weights instanceof Map)) {
    return Promise.reject(new KilnError('INVALID_ARGUMENT', 'prune: the first argument must be a trainable Kiln model: a Sequential (kiln.sequential(...)) or an imported graph (GraphModel), as kiln.loadModel(file) returns them'));
  }
  return magnitude.structured !== undefined ? structuredPrune(model, options as StructuredPruneOptions) : magnitudePrune(model, magnitude);
}
