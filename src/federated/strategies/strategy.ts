// Owns what a federated strategy is — the coordinator's rule for turning the round's client updates
// into the next global weights — and the example-weighted average (FedAvg's rule) the others start
// from, with the checks every update passes before it counts (shape, finiteness, example count).
import { KilnError } from '../../errors.js';
import { checkCompatible, checkFiniteWeights, type ModelWeights } from '../weights.js';

/** One client's result for a round: its locally trained weights and how many examples it trained on. */
export interface ClientUpdate {
  /** The client's weights after local training (not the difference). */
  weights: ModelWeights;
  /** Examples the client trained on this round: FedAvg's weight. */
  numExamples: number;
}

/**
 * A coordinator's aggregation rule, as Flower's Strategy.aggregate_fit: takes the global weights the
 * round started from and the clients' updates, returns the next global weights. Strategies with
 * server state (momentum, moments) expose it through `state`/`restore`, so a coordinator can
 * checkpoint after a round and resume.
 */
export interface Strategy {
  /** 'fedavg', 'fedprox', 'fedavgm' or 'fedadam'. */
  readonly name: string;
  /**
   * The next global weights. Rejects (KilnError) an update of another shape, with NaN/Inf values or
   * a non-positive example count, and leaves its own state untouched when it does.
   */
  aggregate(global: ModelWeights, updates: ClientUpdate[], round: number): ModelWeights;
  /** The server state to checkpoint (JSON-serializable; float arrays as number lists). */
  state?(): unknown;
  /** Restores what `state()` returned. */
  restore?(state: unknown): void;
  /** FedProx's μ: clients add μ/2‖w − w_global‖² to their loss (0 or absent: plain local training). */
  readonly proximalMu?: number;
}

/** Checks every update against the global weights' names and shapes, finiteness and example counts. */
export function checkUpdates(global: ModelWeights, updates: ClientUpdate[]): void {
  if (updates.length === 0) throw new KilnError('INVALID_ARGUMENT', 'aggregate: no client updates to aggregate');
  updates.forEach((u, i) => {
    if (!Number.isFinite(u.numExamples) || u.numExamples <= 0) {
      throw new KilnError('INVALID_ARGUMENT', `aggregate: update ${i} reports ${u.numExamples} examples; expected a positive number`);
    }
    checkCompatible(global, u.weights, `aggregate: update ${i}`);
    checkFiniteWeights(u.weights, `aggregate: update ${i}`);
  });
}

/**
 * The example-weighted average of the clients' weights (McMahan et al. 2017; Flower's `aggregate`):
 * Σ nₖ wₖ / Σ nₖ, accumulated in float64.
 */
export function weightedAverage(global: ModelWeights, updates: ClientUpdate[]): ModelWeights {
  checkUpdates(global, updates);
  const total = updates.reduce((a, u) => a + u.numExamples, 0);
  return global.map((w, k) => {
    const acc = new Float64Array(w.data.length);
    for (const u of updates) {
      const share = u.numExamples / total;
      const d = u.weights[k]!.data;
      for (let i = 0; i < acc.length; i++) acc[i] += share * d[i]!;
    }
    return { name: w.name, dims: [...w.dims], data: Float32Array.from(acc) };
  });
}

/** Float arrays of a strategy's state as plain number lists (JSON), and back. */
export function weightsToJson(w: ModelWeights | undefined): unknown {
  return w?.map((x) => ({ name: x.name, dims: x.dims, data: Array.from(x.data) }));
}

/** Reads back what `weightsToJson` wrote (undefined stays undefined). */
export function weightsFromJson(v: unknown, what: string): ModelWeights | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new KilnError('CORRUPT_FILE', `${what}: expected a list of weights`);
  return v.map((x: { name?: unknown; dims?: unknown; data?: unknown }) => {
    if (typeof x?.name !== 'string' || !Array.isArray(x.dims) || !Array.isArray(x.data)) throw new KilnError('CORRUPT_FILE', `${what}: a weight lacks its name, dims or data`);
    return { name: x.name, dims: x.dims as number[], data: Float32Array.from(x.data as number[]) };
  });
}
