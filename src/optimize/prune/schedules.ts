import { KilnError } from '../../errors.js';

/**
 * When to prune and to what sparsity, as a function of the training step (0-based, counted in
 * batches from the start of fine-tuning) — TF-MOT's `PruningSchedule`, with its names and semantics.
 */
export interface PruningSchedule {
  /** The schedule's TF-MOT name. */
  readonly name: 'constantSparsity' | 'polynomialDecay';
  /** Its arguments, as reports record them. */
  readonly config: Record<string, number>;
  /** The sparsity the schedule ends at (what the model has once pruning is over). */
  readonly finalSparsity: number;
  /** Whether the masks are recomputed at this step. */
  shouldPrune(step: number): boolean;
  /** The fraction of weights the mask zeroes at this step. */
  sparsityAt(step: number): number;
}

/** A sparsity in [0, 1): 1 would remove every weight. */
export function checkSparsity(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
    throw new KilnError('INVALID_ARGUMENT', `${what} must be a number in [0, 1) (the fraction of weights set to zero), got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkStep(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new KilnError('INVALID_ARGUMENT', `${what} must be a non-negative integer step, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkFrequency(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new KilnError('INVALID_ARGUMENT', `${what} must be a positive integer number of steps, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** TF-MOT's `_should_prune_in_step`: inside [begin, end] (end −1: no end) and on a multiple of frequency from begin. */
function pruningTurn(step: number, beginStep: number, endStep: number, frequency: number): boolean {
  const inRange = step >= beginStep && (endStep === -1 || step <= endStep);
  return inRange && (step - beginStep) % frequency === 0;
}

/** Arguments of `constantSparsity` (TF-MOT's ConstantSparsity). */
export interface ConstantSparsityArgs {
  /** Fraction of each kernel set to zero, in [0, 1). */
  targetSparsity: number;
  /** First step at which the masks are computed (default 0). */
  beginStep?: number;
  /** Last step at which they may be recomputed; −1 (default) for no end. */
  endStep?: number;
  /** Steps between mask updates (default 100). */
  frequency?: number;
}

/** Prunes to `targetSparsity` at `beginStep` and every `frequency` steps after, as TF-MOT's ConstantSparsity. */
export function constantSparsity(args: ConstantSparsityArgs): PruningSchedule {
  const targetSparsity = checkSparsity(args?.targetSparsity, 'constantSparsity: targetSparsity');
  const beginStep = checkStep(args.beginStep ?? 0, 'constantSparsity: beginStep');
  const endStep = args.endStep === undefined || args.endStep === -1 ? -1 : checkStep(args.endStep, 'constantSparsity: endStep');
  const frequency = checkFrequency(args.frequency ?? 100, 'constantSparsity: frequency');
  if (endStep !== -1 && endStep < beginStep) {
    throw new KilnError('INVALID_ARGUMENT', `constantSparsity: endStep (${endStep}) precedes beginStep (${beginStep}); it must be >= beginStep, or -1 for no end`);
  }
  return {
    name: 'constantSparsity',
    config: { targetSparsity, beginStep, endStep, frequency },
    finalSparsity: targetSparsity,
    shouldPrune: (step) => pruningTurn(step, beginStep, endStep, frequency),
    sparsityAt: () => targetSparsity,
  };
}

/** Arguments of `polynomialDecay` (TF-MOT's PolynomialDecay). */
export interface PolynomialDecayArgs {
  /** Sparsity at beginStep (default 0). */
  initialSparsity?: number;
  /** Sparsity reached at endStep and kept after it, in [0, 1). */
  finalSparsity: number;
  /** First step at which masks are computed. Default 0. */
  beginStep?: number;
  /** Step at which finalSparsity is reached (and the last mask update). */
  endStep: number;
  /** Exponent of the decay (default 3: prune fast early, gently near the end). */
  power?: number;
  /** Steps between mask updates (default 100). */
  frequency?: number;
}

/**
 * Sparsity rising from `initialSparsity` at `beginStep` to `finalSparsity` at `endStep` along TF-MOT's
 * PolynomialDecay: final + (initial − final)·(1 − p)^power with p = (step − begin)/(end − begin)
 * clamped to [0, 1]; masks are recomputed on every `frequency`-th step from begin up to end.
 */
export function polynomialDecay(args: PolynomialDecayArgs): PruningSchedule {
  const initialSparsity = checkSparsity(args?.initialSparsity ?? 0, 'polynomialDecay: initialSparsity');
  const finalSparsity = checkSparsity(args.finalSparsity, 'polynomialDecay: finalSparsity');
  const beginStep = checkStep(args.beginStep ?? 0, 'polynomialDecay: beginStep');
  const endStep = checkStep(args.endStep, 'polynomialDecay: endStep');
  const power = args.power ?? 3;
  const frequency = checkFrequency(args.frequency ?? 100, 'polynomialDecay: frequency');
  if (endStep <= beginStep) {
    throw new KilnError('INVALID_ARGUMENT', `polynomialDecay: endStep (${endStep}) must come after beginStep (${beginStep})`);
  }
  if (typeof power !== 'number' || !(power > 0) || !Number.isFinite(power)) {
    throw new KilnError('INVALID_ARGUMENT', `polynomialDecay: power must be a positive number, got ${JSON.stringify(power)}`);
  }
  return {
    name: 'polynomialDecay',
    config: { initialSparsity, finalSparsity, beginStep, endStep, power, frequency },
    finalSparsity,
    shouldPrune: (step) => pruningTurn(step, beginStep, endStep, frequency),
    sparsityAt(step) {
      const p = Math.min(1, Math.max(0, (step - beginStep) / (endStep - beginStep)));
      return finalSparsity + (initialSparsity - finalSparsity) * Math.pow(1 - p, power);
    },
  };
}

/** Rebuilds a schedule from its name and config (the form reports and CLI flags carry). */
export function scheduleFromConfig(s: { name: string; config: Record<string, number> }): PruningSchedule {
  if (s.name === 'constantSparsity') return constantSparsity(s.config as unknown as ConstantSparsityArgs);
  if (s.name === 'polynomialDecay') return polynomialDecay(s.config as unknown as PolynomialDecayArgs);
  throw new KilnError('INVALID_ARGUMENT', `unknown pruning schedule '${s.name}'; expected constantSparsity or polynomialDecay`);
}
