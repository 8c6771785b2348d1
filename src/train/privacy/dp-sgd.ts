/**
 * DP-SGD as an option of `fit()`: what `FitArgs.privacy` holds, its checks, the noise multiplier it
 * settles on (given, or computed for a target ε over the planned steps) and the accounting of the
 * steps taken. The clipped, noised gradient itself is built in dp-sgd-step.ts.
 *
 * Sampling: fit() draws shuffled batches of fixed size (the last one of an epoch smaller), and each
 * step is accounted as a sampled Gaussian mechanism with q = batchSize / examples — what Opacus' and TF
 * Privacy's tutorials do. The RDP analysis assumes Poisson sampling (each example in each step
 * independently with probability q); shuffled fixed-size batches are the common approximation of it,
 * not the same mechanism.
 */
import { KilnError } from '../../errors.js';
import { noiseMultiplierFor, RdpAccountant } from './rdp-accountant.js';

/** DP-SGD settings of `fit({ privacy })`: clip each example's gradient, add noise, count ε. */
export interface PrivacyOptions {
  /** C: each example's gradient (all parameters together) is scaled down to at most this L2 norm. */
  l2NormClip: number;
  /** σ: the noise added to the sum of clipped gradients has standard deviation σ·C. Give this or `targetEpsilon`. */
  noiseMultiplier?: number;
  /** Instead of σ: the ε the fit() call may spend over its epochs; σ is the smallest that meets it (Opacus' search). */
  targetEpsilon?: number;
  /** δ of the (ε, δ) guarantee; below 1 / (training examples) to mean anything. */
  delta: number;
}

/** What a model's private fit() calls have spent so far (`TrainableModel.privacySpent`). */
export interface PrivacySpentReport {
  /** ε spent at `delta`, by the RDP accountant over every step counted. */
  epsilon: number;
  /** δ of the guarantee. */
  delta: number;
  /** σ of the latest steps. */
  noiseMultiplier: number;
  /** C of the latest steps. */
  l2NormClip: number;
  /** DP-SGD steps counted. */
  steps: number;
}

/** The DP-SGD settings of one fit() call once resolved. */
export interface ResolvedPrivacy {
  l2NormClip: number;
  noiseMultiplier: number;
  delta: number;
  /** Probability an example takes part in a step (batch size / training examples). */
  samplingRate: number;
}

/** Checks `privacy` and settles σ: the one given, or the one for `targetEpsilon` over `plannedSteps` at q = batchSize / n. */
export function resolvePrivacy(privacy: PrivacyOptions, batchSize: number, n: number, plannedSteps: number): ResolvedPrivacy {
  const { l2NormClip, noiseMultiplier, targetEpsilon, delta } = privacy;
  if (!(l2NormClip > 0) || !Number.isFinite(l2NormClip)) throw new KilnError('INVALID_ARGUMENT', `privacy.l2NormClip must be a finite number > 0, got ${l2NormClip}`);
  if (!(delta > 0 && delta < 1)) throw new KilnError('INVALID_ARGUMENT', `privacy.delta must be in (0, 1), got ${delta}`);
  if ((noiseMultiplier === undefined) === (targetEpsilon === undefined)) {
    throw new KilnError('INVALID_ARGUMENT', `privacy needs exactly one of noiseMultiplier and targetEpsilon, got ${noiseMultiplier === undefined ? 'neither' : 'both'}`);
  }
  const samplingRate = Math.min(1, batchSize / n);
  let sigma: number;
  if (noiseMultiplier !== undefined) {
    if (!(noiseMultiplier >= 0) || !Number.isFinite(noiseMultiplier)) throw new KilnError('INVALID_ARGUMENT', `privacy.noiseMultiplier must be a finite number >= 0, got ${noiseMultiplier}`);
    sigma = noiseMultiplier;
  } else {
    sigma = noiseMultiplierFor({ targetEpsilon: targetEpsilon!, delta, samplingRate, steps: plannedSteps });
  }
  return { l2NormClip, noiseMultiplier: sigma, delta, samplingRate };
}

/** Counts a model's DP-SGD steps (across fit() calls) and reports the ε spent so far at their δ. */
export class PrivacyLedger {
  /** The accountant behind the figures (its RDP composes over every step recorded). */
  readonly accountant = new RdpAccountant();
  constructor(
    /** The settings of the latest steps recorded. */
    public settings: ResolvedPrivacy,
  ) {}

  /** Records `steps` DP-SGD steps taken with `settings` (default: the latest); returns ε spent so far. */
  record(steps: number, settings: ResolvedPrivacy = this.settings): number {
    this.settings = settings;
    this.accountant.step({ samplingRate: settings.samplingRate, noiseMultiplier: settings.noiseMultiplier, steps });
    return this.accountant.epsilon(settings.delta);
  }
}

/** DP-SGD clips and noises the whole batch's gradient in one session: it runs on one replica. */
export function checkPrivateReplicas(replicas: number | undefined): number {
  if (replicas !== undefined && replicas !== 1) {
    throw new KilnError('INVALID_ARGUMENT', `fit's privacy (DP-SGD) runs on 1 replica (the whole batch's clipped sum gets one noise draw), got replicas ${replicas}`);
  }
  return 1;
}
