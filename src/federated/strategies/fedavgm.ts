// Owns FedAvgM (Hsu et al. 2019) as Flower defines it: the pseudo-gradient global − FedAvg(updates)
// drives server SGD with momentum, v ← βv + Δ (v = Δ on the first round), w ← w − η v.
import { KilnError } from '../../errors.js';
import { cloneWeights, type ModelWeights } from '../weights.js';
import { weightedAverage, weightsFromJson, weightsToJson, type ClientUpdate, type Strategy } from './strategy.js';

/** FedAvgM's settings (Flower's names and defaults). */
export interface FedAvgMArgs {
  /** Server learning rate η (default 1). */
  serverLearningRate?: number;
  /** Server momentum β (default 0, which is FedAvg when η = 1). */
  serverMomentum?: number;
}

/** FedAvgM: server momentum on the averaged update. */
export class FedAvgM implements Strategy {
  /** The strategy's name. */
  readonly name = 'fedavgm';
  /** Server learning rate η. */
  readonly serverLearningRate: number;
  /** Server momentum β. */
  readonly serverMomentum: number;
  private momentum: ModelWeights | undefined;

  constructor(args: FedAvgMArgs = {}) {
    this.serverLearningRate = args.serverLearningRate ?? 1;
    this.serverMomentum = args.serverMomentum ?? 0;
    if (!(this.serverLearningRate > 0 && Number.isFinite(this.serverLearningRate))) throw new KilnError('INVALID_ARGUMENT', `FedAvgM: serverLearningRate must be > 0, got ${this.serverLearningRate}`);
    if (!(this.serverMomentum >= 0 && this.serverMomentum < 1)) throw new KilnError('INVALID_ARGUMENT', `FedAvgM: serverMomentum must be in [0, 1), got ${this.serverMomentum}`);
  }

  /** w − η v with v ← βv + (w − FedAvg(updates)). */
  aggregate(global: ModelWeights, updates: ClientUpdate[], _round: number): ModelWeights {
    const avg = weightedAverage(global, updates);
    const eta = this.serverLearningRate;
    const beta = this.serverMomentum;
    const previous = this.momentum;
    const velocity = global.map((w, k) => {
      const out = new Float32Array(w.data.length);
      const a = avg[k]!.data;
      const v = previous?.[k]?.data;
      for (let i = 0; i < out.length; i++) out[i] = (beta > 0 && v ? beta * v[i]! : 0) + (w.data[i]! - a[i]!);
      return { name: w.name, dims: [...w.dims], data: out };
    });
    if (beta > 0) this.momentum = velocity;
    return global.map((w, k) => {
      const v = velocity[k]!.data;
      return { name: w.name, dims: [...w.dims], data: w.data.map((x, i) => x - eta * v[i]!) };
    });
  }

  /** The momentum buffer. */
  state(): unknown {
    return { momentum: weightsToJson(this.momentum) };
  }

  /** Restores the momentum buffer. */
  restore(s: unknown): void {
    const m = weightsFromJson((s as { momentum?: unknown } | null)?.momentum, 'FedAvgM state');
    this.momentum = m ? cloneWeights(m) : undefined;
  }
}

/** FedAvgM (see FedAvgM). */
export function fedAvgM(args: FedAvgMArgs = {}): FedAvgM {
  return new FedAvgM(args);
}
