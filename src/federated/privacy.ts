// Owns DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent Language Models";
// Flower's DifferentialPrivacyServerSideFixedClipping): every client update (its weights minus the
// global ones) is clipped to L2 norm C, the coordinator adds Gaussian noise of standard deviation σC
// to their sum and divides by the number of clients, and the wrapped strategy takes the noised mean
// as the round's one update. An RDP accountant (the privacy layer's, shared with DP-SGD) counts one
// sampled Gaussian mechanism step per round, at sampling rate clientsPerRound / numClients.
import { randomFillSync } from 'node:crypto';
import { KilnError } from '../errors.js';
import { Random } from '../random.js';
import { noiseMultiplierFor, RdpAccountant } from '../train/privacy/index.js';
import { checkUpdates, type ClientUpdate, type Strategy } from './strategies/strategy.js';
import { l2Norm, scaleWeights, subtractWeights, type ModelWeights } from './weights.js';

/** The accountant DP-FedAvg reports ε through (the RDP accountant's interface). */
export interface PrivacyAccountant {
  /** Records `steps` (default 1) sampled Gaussian mechanism steps. */
  step(args: { samplingRate: number; noiseMultiplier: number; steps?: number }): void;
  /** ε spent so far at δ. */
  epsilon(delta: number): number;
}

/** A client update after clipping, and its norm before. */
export interface ClippedUpdate {
  /** The update, scaled down to norm `clipNorm` if it was above it. */
  delta: ModelWeights;
  /** Its L2 norm before clipping. */
  norm: number;
}

/** A client update (its weights minus the global ones) scaled down to L2 norm at most `clipNorm`. */
export function clipUpdate(delta: ModelWeights, clipNorm: number): ClippedUpdate {
  if (!(clipNorm > 0 && Number.isFinite(clipNorm))) throw new KilnError('INVALID_ARGUMENT', `clip norm must be > 0, got ${clipNorm}`);
  const norm = l2Norm(delta);
  return { delta: norm > clipNorm ? scaleWeights(delta, clipNorm / norm) : delta, norm };
}

/** A source of standard normal draws: seeded for simulations, from the OS's CSPRNG otherwise. */
export type NormalSource = () => number;

/** Standard normal draws from node:crypto (Box-Muller over 53-bit uniforms), for real deployments. */
export function secureNormal(): NormalSource {
  const buf = new Uint32Array(4);
  return () => {
    randomFillSync(buf);
    const u = (buf[0]! * 2 ** 21 + (buf[1]! >>> 11) + 1) / (2 ** 53 + 1);
    const v = (buf[2]! * 2 ** 21 + (buf[3]! >>> 11)) / 2 ** 53;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

/** DP-FedAvg's settings. */
export interface DpFedAvgArgs {
  /** The strategy that takes the noised mean update (FedAvg for DP-FedAvg proper). */
  strategy: Strategy;
  /** C: each client update's L2 norm is clipped to this. */
  clipNorm: number;
  /** σ: the noise's standard deviation on the sum is σC. */
  noiseMultiplier: number;
  /** Clients sampled per round over all clients (q of the accountant). */
  samplingRate: number;
  /** Counts ε; absent: no accounting (ε is not reported). */
  accountant?: PrivacyAccountant;
  /** δ at which ε is reported (default 1e-5). */
  delta?: number;
  /** Where the noise comes from (default: node:crypto; simulations pass a seeded one). */
  normal?: NormalSource;
}

/**
 * Wraps a strategy with DP-FedAvg: clips each update to C, adds N(0, σ²C²) to the sum, divides by the
 * number of updates (not by the example counts, which would change the sensitivity) and hands the
 * result to the wrapped strategy as a single update; each aggregate() is one accountant step.
 */
export class DpFedAvg implements Strategy {
  /** 'dp-' and the wrapped strategy's name. */
  readonly name: string;
  /** The clip norm C. */
  readonly clipNorm: number;
  /** The noise multiplier σ. */
  readonly noiseMultiplier: number;
  /** The sampling rate q the accountant counts each round at. */
  readonly samplingRate: number;
  /** δ. */
  readonly delta: number;
  private readonly inner: Strategy;
  private readonly accountant: PrivacyAccountant | undefined;
  private readonly normal: NormalSource;
  private roundsCounted = 0;
  /** The norms of the last round's updates before clipping (for reports and tests). */
  lastNorms: number[] = [];

  constructor(args: DpFedAvgArgs) {
    if (!(args.noiseMultiplier >= 0 && Number.isFinite(args.noiseMultiplier))) throw new KilnError('INVALID_ARGUMENT', `noise multiplier must be >= 0, got ${args.noiseMultiplier}`);
    if (!(args.samplingRate > 0 && args.samplingRate <= 1)) throw new KilnError('INVALID_ARGUMENT', `sampling rate must be in (0, 1], got ${args.samplingRate}`);
    clipUpdate([], args.clipNorm);
    this.inner = args.strategy;
    this.name = `dp-${args.strategy.name}`;
    this.clipNorm = args.clipNorm;
    this.noiseMultiplier = args.noiseMultiplier;
    this.samplingRate = args.samplingRate;
    this.delta = args.delta ?? 1e-5;
    this.accountant = args.accountant;
    this.normal = args.normal ?? secureNormal();
  }

  /** FedProx's μ of the wrapped strategy, which clients still train with. */
  get proximalMu(): number | undefined {
    return this.inner.proximalMu;
  }

  /** Clip, sum, noise, divide; the wrapped strategy then steps on the noised mean. */
  aggregate(global: ModelWeights, updates: ClientUpdate[], round: number): ModelWeights {
    checkUpdates(global, updates);
    const sum = global.map((w) => ({ name: w.name, dims: [...w.dims], data: new Float64Array(w.data.length) }));
    const norms: number[] = [];
    for (const u of updates) {
      const { delta, norm } = clipUpdate(subtractWeights(u.weights, global), this.clipNorm);
      norms.push(norm);
      delta.forEach((d, k) => {
        const acc = sum[k]!.data;
        for (let i = 0; i < acc.length; i++) acc[i] += d.data[i]!;
      });
    }
    const std = this.noiseMultiplier * this.clipNorm;
    const mean: ModelWeights = global.map((w, k) => {
      const acc = sum[k]!.data;
      const out = new Float32Array(acc.length);
      for (let i = 0; i < acc.length; i++) out[i] = w.data[i]! + (acc[i]! + std * this.normal()) / updates.length;
      return { name: w.name, dims: [...w.dims], data: out };
    });
    const next = this.inner.aggregate(global, [{ weights: mean, numExamples: 1 }], round);
    this.lastNorms = norms;
    this.accountant?.step({ samplingRate: this.samplingRate, noiseMultiplier: this.noiseMultiplier });
    this.roundsCounted++;
    return next;
  }

  /** ε spent so far at δ (undefined without an accountant). */
  epsilon(): number | undefined {
    return this.accountant?.epsilon(this.delta);
  }

  /** The wrapped strategy's state and the rounds counted (the accountant is rebuilt from them on restore). */
  state(): unknown {
    return { inner: this.inner.state?.(), rounds: this.roundsCounted };
  }

  /** Restores the wrapped strategy and replays the accountant's steps. */
  restore(s: unknown): void {
    const o = (s ?? {}) as { inner?: unknown; rounds?: unknown };
    this.inner.restore?.(o.inner);
    const rounds = Number(o.rounds ?? 0);
    if (!Number.isInteger(rounds) || rounds < 0) throw new KilnError('CORRUPT_FILE', `DP-FedAvg state: rounds must be a non-negative integer, got ${o.rounds}`);
    if (rounds > 0) this.accountant?.step({ samplingRate: this.samplingRate, noiseMultiplier: this.noiseMultiplier, steps: rounds });
    this.roundsCounted = rounds;
  }
}

/** Standard normal draws from a seeded generator (simulations: the same seed, the same noise). */
export function seededNormal(seed: number): NormalSource {
  const rng = new Random(seed);
  return () => rng.normal();
}

/** A DP-FedAvg run planned to a privacy budget. */
export interface DpFedAvgPlan {
  /** The strategy that takes the noised mean update (FedAvg for DP-FedAvg proper). */
  strategy: Strategy;
  /** The ε the whole run may spend. */
  targetEpsilon: number;
  /** δ (default 1e-5). */
  delta?: number;
  /** C, the clip norm of each client update. */
  clipNorm: number;
  /** All clients. */
  clients: number;
  /** Clients sampled per round. */
  clientsPerRound: number;
  /** Planned rounds: the noise is calibrated so that they spend at most `targetEpsilon`. */
  rounds: number;
  /** Where the noise comes from (default: node:crypto). */
  normal?: NormalSource;
}

/**
 * DP-FedAvg calibrated to a budget: the noise multiplier σ is the smallest (within Opacus' tolerance)
 * for which `rounds` rounds at sampling rate clientsPerRound/clients spend at most ε at δ under the
 * RDP accountant, which then counts the rounds actually run. The guarantee is per client (a client's
 * whole data set is the unit), as McMahan et al. 2018 define it.
 */
export function dpFedAvg(plan: DpFedAvgPlan): DpFedAvg {
  if (!(plan.clientsPerRound >= 1 && plan.clientsPerRound <= plan.clients)) throw new KilnError('INVALID_ARGUMENT', `DP-FedAvg: clientsPerRound must be in [1, clients], got ${plan.clientsPerRound} of ${plan.clients}`);
  const delta = plan.delta ?? 1e-5;
  const samplingRate = plan.clientsPerRound / plan.clients;
  const noiseMultiplier = noiseMultiplierFor({ targetEpsilon: plan.targetEpsilon, delta, samplingRate, steps: plan.rounds });
  return new DpFedAvg({ strategy: plan.strategy, clipNorm: plan.clipNorm, noiseMultiplier, samplingRate, delta, accountant: new RdpAccountant(), normal: plan.normal });
}
