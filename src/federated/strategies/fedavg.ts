// Owns FedAvg (McMahan et al. 2017): the next global weights are the clients' weights averaged by
// their example counts.
import type { ModelWeights } from '../weights.js';
import { weightedAverage, type ClientUpdate, type Strategy } from './strategy.js';

/** FedAvg: the example-weighted average of the clients' weights; no server state. */
export class FedAvg implements Strategy {
  /** The strategy's name. */
  readonly name: string = 'fedavg';

  /** Σ nₖ wₖ / Σ nₖ over the round's updates. */
  aggregate(global: ModelWeights, updates: ClientUpdate[], _round: number): ModelWeights {
    return weightedAverage(global, updates);
  }
}

/** FedAvg (see FedAvg). */
export function fedAvg(): FedAvg {
  return new FedAvg();
}
