// Owns the strategies' public names and the lookup by the name `--strategy` takes.
import { KilnError } from '../../errors.js';
import { FedAdam, type FedAdamArgs } from './fedadam.js';
import { FedAvg } from './fedavg.js';
import { FedAvgM, type FedAvgMArgs } from './fedavgm.js';
import { FedProx } from './fedprox.js';
import type { Strategy } from './strategy.js';

export { FedAvg, fedAvg } from './fedavg.js';
export { FedProx, fedProx, type FedProxArgs } from './fedprox.js';
export { FedAvgM, fedAvgM, type FedAvgMArgs } from './fedavgm.js';
export { FedAdam, fedAdam, type FedAdamArgs } from './fedadam.js';
export { checkUpdates, weightedAverage, type ClientUpdate, type Strategy } from './strategy.js';

/** The names `--strategy` takes. */
export const STRATEGY_NAMES = ['fedavg', 'fedprox', 'fedavgm', 'fedadam'] as const;

/** Settings for `strategyByName`: each strategy reads its own. */
export interface StrategySettings extends FedAvgMArgs, FedAdamArgs {
  /** FedProx's μ (default 0.01). */
  proximalMu?: number;
}

/** A strategy by its name with the given settings (others' defaults where unset). */
export function strategyByName(name: string, settings: StrategySettings = {}): Strategy {
  switch (name) {
    case 'fedavg':
      return new FedAvg();
    case 'fedprox':
      return new FedProx({ proximalMu: settings.proximalMu ?? 0.01 });
    case 'fedavgm':
      return new FedAvgM({ serverLearningRate: settings.serverLearningRate, serverMomentum: settings.serverMomentum ?? 0.9 });
    case 'fedadam':
      return new FedAdam(settings);
  }
  throw new KilnError('INVALID_ARGUMENT', `unknown strategy '${name}'; expected one of ${STRATEGY_NAMES.join(', ')}`);
}
