/**
 * Asynchronous successive halving (ASHA; Li et al., "A System for Massively Parallel Hyperparameter
 * Tuning", MLSys 2020), with epochs as the resource, counted in training steps so that rungs may sit
 * inside an epoch (tune() scores a rung at r epochs after round(r · steps per epoch) steps). Rungs sit
 * at minEpochs · η^k below the trials' full budget; a trial reaching a rung continues only if its objective is among the best 1/η of all
 * values recorded at that rung so far (its own included). As Optuna's SuccessiveHalvingPruner does,
 * while a rung holds fewer than η values the best of them continues — nothing is ever paused waiting
 * for other trials, which is what makes it asynchronous and lets parallel trials run freely.
 */
import { KilnError } from '../errors.js';
import type { Direction } from './samplers/sampler.js';

/** Settings of ASHA early stopping. */
export interface AshaOptions {
  /**
   * The first rung (ASHA's minimum resource: Optuna's min_resource, Ray Tune's grace_period), in
   * epochs; fractions of an epoch are allowed and are scored after round(minEpochs · steps per epoch)
   * steps (default 1).
   */
  minEpochs?: number;
  /** η: the fraction 1/η of trials at a rung goes on to the next (default 3). */
  reductionFactor?: number;
}

/** The rungs (epochs) below `maxEpochs` at which trials are compared. */
export function ashaRungs(maxEpochs: number, options: AshaOptions = {}): number[] {
  const min = options.minEpochs ?? 1;
  const eta = options.reductionFactor ?? 3;
  if (!(min > 0)) throw new KilnError('INVALID_ARGUMENT', `ASHA's minEpochs must be > 0, got ${min}`);
  if (!(eta >= 2)) throw new KilnError('INVALID_ARGUMENT', `ASHA's reductionFactor must be at least 2, got ${eta}`);
  if (min >= maxEpochs) {
    throw new KilnError('INVALID_ARGUMENT', `the budget of ${maxEpochs} epochs per trial is too small for early stopping: ASHA's first rung is at ${min} epochs; give more epochs or a smaller minEpochs`);
  }
  const rungs: number[] = [];
  // Rounded to a millionth of an epoch, so that 1/9 · 3² lands on 1 and not on 1.0000000000000002.
  for (let k = 0; ; k++) {
    const r = k === 0 ? min : Math.round(min * eta ** k * 1e6) / 1e6;
    if (r >= maxEpochs - 1e-9) break;
    rungs.push(r);
  }
  return rungs;
}

/** Whether a trial with `value` at a rung goes on, given every value recorded there (its own among them). */
export function ashaPromotes(value: number, rungValues: readonly number[], reductionFactor: number, direction: Direction): boolean {
  const sorted = [...rungValues].sort((a, b) => (direction === 'maximize' ? b - a : a - b));
  const keep = Math.max(1, Math.floor(sorted.length / reductionFactor));
  const cutoff = sorted[keep - 1]!;
  return direction === 'maximize' ? value >= cutoff : value <= cutoff;
}
