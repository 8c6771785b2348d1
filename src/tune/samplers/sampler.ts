/**
 * What a sampler is: given the search space and the trials finished so far, the values of the next
 * trial's parameters. Samplers draw only from the generator they are handed, so a study seeded the
 * same way proposes the same trials.
 */
import type { Random } from '../../random.js';
import type { Params, SearchSpace } from '../space.js';

/** Whether the study maximizes or minimizes the objective. */
export type Direction = 'maximize' | 'minimize';

/** A trial a sampler may learn from: its values and how far it got. */
export interface ObservedTrial {
  /** The trial's number in the study. */
  id: number;
  /** The trial's parameter values. */
  params: Params;
  /** 'complete': trained its full budget; 'pruned': stopped early by ASHA at `epochs`. */
  state: 'complete' | 'pruned';
  /** The objective: final for a complete trial, the last one reported for a pruned trial. */
  value: number;
  /** Epochs trained when `value` was measured. */
  epochs: number;
}

/** Proposes each trial's parameters from the search space and the trials finished so far. */
export interface Sampler {
  /** The sampler's name, recorded in the study's result and report. */
  readonly name: string;
  /** The next trial's parameter values, drawn only from `rng`. */
  sample(space: SearchSpace, history: readonly ObservedTrial[], direction: Direction, rng: Random): Params;
}
