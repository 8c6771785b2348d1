import { KilnError } from '../errors.js';

/** A learning rate as a function of the optimizer step (0-based), as Keras' LearningRateSchedule. */
export interface LearningRateSchedule {
  /** The schedule's name, as saved models record it. */
  readonly name: string;
  /** Its arguments, as saved models record them. */
  readonly config: Record<string, number | boolean>;
  /** The learning rate at a 0-based optimizer step. */
  at(step: number): number;
}

function positive(v: number, what: string): number {
  if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new KilnError('INVALID_ARGUMENT', `${what} must be a positive number, got ${v}`);
  return v;
}

/** lr · rate^(step / decaySteps), the exponent floored when staircase. */
export function exponentialDecay(args: { initialLearningRate: number; decaySteps: number; decayRate: number; staircase?: boolean }): LearningRateSchedule {
  positive(args.initialLearningRate, 'exponentialDecay.initialLearningRate');
  positive(args.decaySteps, 'exponentialDecay.decaySteps');
  positive(args.decayRate, 'exponentialDecay.decayRate');
  const staircase = args.staircase ?? false;
  return {
    name: 'exponentialDecay',
    config: { ...args, staircase },
    at(step) {
      const p = step / args.decaySteps;
      return args.initialLearningRate * Math.pow(args.decayRate, staircase ? Math.floor(p) : p);
    },
  };
}

/** lr · factor^floor(step / stepSize): the classic step decay. */
export function stepDecay(args: { initialLearningRate: number; stepSize: number; factor?: number }): LearningRateSchedule {
  positive(args.initialLearningRate, 'stepDecay.initialLearningRate');
  positive(args.stepSize, 'stepDecay.stepSize');
  const factor = args.factor ?? 0.1;
  return {
    name: 'stepDecay',
    config: { ...args, factor },
    at: (step) => args.initialLearningRate * Math.pow(factor, Math.floor(step / args.stepSize)),
  };
}

/** Keras' CosineDecay: lr · ((1 − alpha)·½(1 + cos(π·min(step, decaySteps)/decaySteps)) + alpha). */
export function cosineDecay(args: { initialLearningRate: number; decaySteps: number; alpha?: number }): LearningRateSchedule {
  positive(args.initialLearningRate, 'cosineDecay.initialLearningRate');
  positive(args.decaySteps, 'cosineDecay.decaySteps');
  const alpha = args.alpha ?? 0;
  return {
    name: 'cosineDecay',
    config: { ...args, alpha },
    at(step) {
      const p = Math.min(step, args.decaySteps) / args.decaySteps;
      return args.initialLearningRate * ((1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * p)) + alpha);
    },
  };
}

/** A schedule from its saved `{name, config}` form (as optimizers record it in saved models and checkpoints). */
export function scheduleFromConfig(s: { name: string; config: Record<string, unknown> }): LearningRateSchedule {
  const make: Record<string, (c: never) => LearningRateSchedule> = { exponentialDecay, stepDecay, cosineDecay };
  const f = make[s.name];
  if (!f) throw new KilnError('INVALID_ARGUMENT', `unknown learning-rate schedule '${s.name}'`);
  return f(s.config as never);
}
