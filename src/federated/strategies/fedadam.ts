// Owns FedAdam (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2) as Flower's FedAdam
// computes it: Δ = FedAvg(updates) − w, m ← β₁m + (1−β₁)Δ, v ← β₂v + (1−β₂)Δ², w ← w + η m/(√v + τ),
// with m and v starting at zero and no bias correction (as the paper); τ sets the adaptivity.
import { KilnError } from '../../errors.js';
import { cloneWeights, zerosLike, type ModelWeights } from '../weights.js';
import { weightedAverage, weightsFromJson, weightsToJson, type ClientUpdate, type Strategy } from './strategy.js';

/** FedAdam's settings (Flower's names and defaults). */
export interface FedAdamArgs {
  /** Server learning rate η (default 0.1). */
  eta?: number;
  /** First-moment decay β₁ (default 0.9). */
  beta1?: number;
  /** Second-moment decay β₂ (default 0.99). */
  beta2?: number;
  /** Adaptivity τ (default 1e-9, Flower's; Reddi et al. tune it in [1e-5, 1e-1]). */
  tau?: number;
}

/** FedAdam: server Adam on the pseudo-gradient. */
export class FedAdam implements Strategy {
  /** The strategy's name. */
  readonly name = 'fedadam';
  /** Server learning rate η. */
  readonly eta: number;
  /** First-moment decay β₁. */
  readonly beta1: number;
  /** Second-moment decay β₂. */
  readonly beta2: number;
  /** Adaptivity τ. */
  readonly tau: number;
  private m: ModelWeights | undefined;
  private v: ModelWeights | undefined;

  constructor(args: FedAdamArgs = {}) {
    this.eta = args.eta ?? 0.1;
    this.beta1 = args.beta1 ?? 0.9;
    this.beta2 = args.beta2 ?? 0.99;
    this.tau = args.tau ?? 1e-9;
    if (!(this.eta > 0 && Number.isFinite(this.eta))) throw new KilnError('INVALID_ARGUMENT', `FedAdam: eta must be > 0, got ${this.eta}`);
    for (const [k, b] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) if (!(b >= 0 && b < 1)) throw new KilnError('INVALID_ARGUMENT', `FedAdam: ${k} must be in [0, 1), got ${b}`);
    if (!(this.tau > 0)) throw new KilnError('INVALID_ARGUMENT', `FedAdam: tau must be > 0, got ${this.tau}`);
  }

  /** One server Adam step on Δ = FedAvg(updates) − w. */
  aggregate(global: ModelWeights, updates: ClientUpdate[], _round: number): ModelWeights {
    const avg = weightedAverage(global, updates);
    const m = cloneWeights(this.m ?? zerosLike(global));
    const v = cloneWeights(this.v ?? zerosLike(global));
    const { eta, beta1, beta2, tau } = this;
    const next = global.map((w, k) => {
      const a = avg[k]!.data;
      const mk = m[k]!.data;
      const vk = v[k]!.data;
      const out = new Float32Array(w.data.length);
      for (let i = 0; i < out.length; i++) {
        const delta = a[i]! - w.data[i]!;
        mk[i] = beta1 * mk[i]! + (1 - beta1) * delta;
        vk[i] = beta2 * vk[i]! + (1 - beta2) * delta * delta;
        out[i] = w.data[i]! + (eta * mk[i]!) / (Math.sqrt(vk[i]!) + tau);
      }
      return { name: w.name, dims: [...w.dims], data: out };
    });
    this.m = m;
    this.v = v;
    return next;
  }

  /** The moments m and v. */
  state(): unknown {
    return { m: weightsToJson(this.m), v: weightsToJson(this.v) };
  }

  /** Restores the moments. */
  restore(s: unknown): void {
    const o = (s ?? {}) as { m?: unknown; v?: unknown };
    this.m = weightsFromJson(o.m, 'FedAdam state m');
    this.v = weightsFromJson(o.v, 'FedAdam state v');
  }
}

/** FedAdam (see FedAdam). */
export function fedAdam(args: FedAdamArgs = {}): FedAdam {
  return new FedAdam(args);
}
