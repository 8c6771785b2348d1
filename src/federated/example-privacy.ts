// Owns example-level differential privacy on clients ("local DP-SGD", as TensorFlow Federated and
// Flower + Opacus users run it): each client trains its local epochs with fit()'s DP-SGD (every
// example's gradient clipped to C inside the compiled step, Gaussian noise σC on the batch's sum),
// and counts, with the RDP accountant, every local step it has taken across rounds at sampling rate
// batch size / its examples. The clients' data sets are disjoint, so the federation's example-level
// guarantee is the largest ε over the clients (parallel composition), and the global model, built
// only from the clients' private outputs, is post-processing. Being sampled into a round is not
// counted as amplification (a client does not know the coordinator keeps the sample secret): a
// client's ε grows with every round it trains in. This is not DP-FedAvg's client-level guarantee
// (privacy.ts), where a client's whole data set is the unit.
import { KilnError } from '../errors.js';
import { computeRdp, epsilonFromRdp, noiseMultiplierFor, RdpAccountant } from '../train/privacy/index.js';
import type { PrivacyOptions } from '../train/privacy/index.js';

/** Example-level DP on clients: each client trains with DP-SGD and counts its own ε. */
export interface ExamplePrivacyOptions {
  /** The unit the guarantee protects: one training example ('example'; client-level DP is DP-FedAvg, `dpFedAvg`). */
  unit: 'example';
  /** C: each example's gradient (all parameters together) is scaled down to at most this L2 norm. */
  l2NormClip: number;
  /** The ε a client may spend over the planned rounds; σ is the smallest that meets it. Give this or `noiseMultiplier`. */
  targetEpsilon?: number;
  /** σ: the noise on each batch's sum of clipped gradients has standard deviation σC. Give this or `targetEpsilon`. */
  noiseMultiplier?: number;
  /** δ of the (ε, δ) guarantee (default 1e-5); below 1 / (training examples). */
  delta?: number;
}

/** What one client's local training looks like to the accountant. */
export interface ClientTrainingShape {
  /** The client's training examples. */
  examples: number;
  /** Local examples per step. */
  batchSize: number;
  /** Local epochs per round. */
  epochs: number;
}

/** Checks `options` and returns them with δ settled; `examples` bounds δ (δ < 1 / examples). */
export function checkExamplePrivacy(options: ExamplePrivacyOptions, examples: number): Required<Pick<ExamplePrivacyOptions, 'delta' | 'l2NormClip'>> & ExamplePrivacyOptions {
  if (options.unit !== 'example') {
    throw new KilnError('INVALID_ARGUMENT', `privacy.unit must be 'example' (each client trains with DP-SGD), got '${String(options.unit)}'; client-level DP is DP-FedAvg (dpFedAvg, --dp-unit client)`);
  }
  const { l2NormClip, targetEpsilon, noiseMultiplier } = options;
  const delta = options.delta ?? 1e-5;
  if (!(l2NormClip > 0 && Number.isFinite(l2NormClip))) throw new KilnError('INVALID_ARGUMENT', `privacy.l2NormClip must be a finite number > 0, got ${l2NormClip}`);
  if ((targetEpsilon === undefined) === (noiseMultiplier === undefined)) {
    throw new KilnError('INVALID_ARGUMENT', `example-level privacy needs exactly one of targetEpsilon and noiseMultiplier, got ${targetEpsilon === undefined ? 'neither' : 'both'}`);
  }
  if (targetEpsilon !== undefined && !(targetEpsilon > 0 && Number.isFinite(targetEpsilon))) throw new KilnError('INVALID_ARGUMENT', `privacy.targetEpsilon must be a finite number > 0, got ${targetEpsilon}`);
  if (noiseMultiplier !== undefined && !(noiseMultiplier > 0 && Number.isFinite(noiseMultiplier))) throw new KilnError('INVALID_ARGUMENT', `privacy.noiseMultiplier must be a finite number > 0, got ${noiseMultiplier}`);
  if (!(delta > 0 && delta < 1 / examples)) {
    throw new KilnError('INVALID_ARGUMENT', `privacy.delta must be in (0, 1/N) for N = ${examples} training examples (below ${(1 / examples).toPrecision(3)}), got ${delta}`);
  }
  return { ...options, delta, l2NormClip };
}

/**
 * Refuses FedProx's proximal term under example-level privacy: fit()'s private step clips the plain
 * loss's per-example gradients and takes no extra inputs. `where` names the caller in the message.
 */
export function refuseProximalTerm(proximalMu: number, where: string): void {
  if (proximalMu > 0) {
    throw new KilnError('INVALID_ARGUMENT', `${where}example-level privacy (DP-SGD on clients) cannot train with FedProx's proximal term (μ = ${proximalMu}): the private step clips the plain loss's per-example gradients; use fedavg, fedavgm or fedadam`);
  }
}

/** One round of a client's local DP-SGD as the accountant counts it. */
export interface LocalSteps {
  /** DP-SGD steps in the round: ⌈examples / batch size⌉ per epoch. */
  steps: number;
  /** q of each step: batch size / examples. */
  samplingRate: number;
}

/** The steps one round of local training takes and the sampling rate each is counted at (fit()'s batching). */
export function localSteps(shape: ClientTrainingShape): LocalSteps {
  return { steps: Math.ceil(shape.examples / shape.batchSize) * shape.epochs, samplingRate: Math.min(1, shape.batchSize / shape.examples) };
}

/**
 * σ for example-level DP on clients: the given one, or the smallest (within Opacus' tolerance) for
 * which every client, training in all `rounds` rounds, spends at most the target ε (the largest of
 * the clients' σ when their data sets differ in size).
 */
export function exampleNoiseMultiplier(options: ExamplePrivacyOptions, clients: readonly ClientTrainingShape[], rounds: number): number {
  if (options.noiseMultiplier !== undefined) return options.noiseMultiplier;
  const delta = options.delta ?? 1e-5;
  return Math.max(
    ...clients.map((c) => {
      const { steps, samplingRate } = localSteps(c);
      return noiseMultiplierFor({ targetEpsilon: options.targetEpsilon!, delta, samplingRate, steps: steps * rounds });
    }),
  );
}

/** One client's DP-SGD settings and its ε so far, over every local step it has taken. */
export class ClientPrivacy {
  /** C. */
  readonly l2NormClip: number;
  /** σ. */
  readonly noiseMultiplier: number;
  /** δ. */
  readonly delta: number;
  /** The ε this client may spend (Infinity when σ was given instead). */
  readonly targetEpsilon: number;
  private readonly accountant = new RdpAccountant();
  /** Rounds this client has trained in. */
  roundsTrained = 0;

  constructor(settings: { l2NormClip: number; noiseMultiplier: number; delta: number; targetEpsilon?: number }) {
    this.l2NormClip = settings.l2NormClip;
    this.noiseMultiplier = settings.noiseMultiplier;
    this.delta = settings.delta;
    this.targetEpsilon = settings.targetEpsilon ?? Infinity;
  }

  /** What fit() trains with: this client's C, σ and δ. */
  fitPrivacy(): PrivacyOptions {
    return { l2NormClip: this.l2NormClip, noiseMultiplier: this.noiseMultiplier, delta: this.delta };
  }

  /** ε spent so far at δ (0 before any round). */
  epsilon(): number {
    return this.accountant.steps === 0 ? 0 : this.accountant.epsilon(this.delta);
  }

  /** The ε this client would have spent after one more round of `shape` (the budget check before training). */
  epsilonAfterRound(shape: ClientTrainingShape): number {
    const { steps, samplingRate } = localSteps(shape);
    const round = computeRdp({ samplingRate, noiseMultiplier: this.noiseMultiplier, steps, orders: this.accountant.orders });
    const sofar = this.accountant.rdp;
    return epsilonFromRdp({ orders: this.accountant.orders, rdp: round.map((r, k) => r + sofar[k]!), delta: this.delta }).epsilon;
  }

  /**
   * Refuses a round that would take this client past its target ε (Opacus' tolerance of 1% allowed,
   * as the calibration has it): a coordinator running more rounds, or larger epochs, than planned.
   */
  checkBudget(shape: ClientTrainingShape): void {
    const after = this.epsilonAfterRound(shape);
    if (after > this.targetEpsilon * 1.01) {
      throw new KilnError('INVALID_ARGUMENT', `example-level privacy: another round (${localSteps(shape).steps} DP-SGD steps) would spend ε = ${after.toFixed(2)}, over this client's budget ε = ${this.targetEpsilon} at δ = ${this.delta} (ε spent so far ${this.epsilon().toFixed(2)} in ${this.roundsTrained} rounds)`);
    }
  }

  /** Counts one round of local DP-SGD steps of `shape`; returns ε spent so far. */
  recordRound(shape: ClientTrainingShape): number {
    const { steps, samplingRate } = localSteps(shape);
    this.accountant.step({ samplingRate, noiseMultiplier: this.noiseMultiplier, steps });
    this.roundsTrained++;
    return this.epsilon();
  }
}

/** Checks the options for a client with `shape` and plans its DP-SGD for `rounds` rounds. */
export function planClientPrivacy(options: ExamplePrivacyOptions, shape: ClientTrainingShape, rounds: number): ClientPrivacy {
  const checked = checkExamplePrivacy(options, shape.examples);
  return new ClientPrivacy({ l2NormClip: checked.l2NormClip, delta: checked.delta, noiseMultiplier: exampleNoiseMultiplier(checked, [shape], rounds), targetEpsilon: checked.targetEpsilon });
}
