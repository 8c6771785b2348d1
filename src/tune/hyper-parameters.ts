/**
 * The values one trial hands the model-building function (KerasTuner's `hp`), and the record of which
 * of them the builder read: a parameter in the search space that the builder never reads would be
 * searched for nothing, so the study refuses it by name.
 */
import { KilnError } from '../errors.js';
import type { ParamValue, Params, SearchSpace } from './space.js';

/** One trial's parameter values as the model builder reads them (`hp`), recording which it read. */
export class HyperParameters {
  private readonly reads = new Set<string>();

  constructor(
    private readonly space: SearchSpace,
    /** The trial's active parameters. */
    readonly values: Readonly<Params>,
    /** The trial's number in the study (0-based). */
    readonly trial: number,
    /** The study's seed: the seed for the trial's initial weights, so trials differ by their parameters only. */
    readonly seed: number,
  ) {}

  /** Whether the parameter is in the space and active in this trial (its condition holds). */
  has(name: string): boolean {
    return this.space.has(name) && name in this.values;
  }

  /** A parameter's value in this trial; an unknown or inactive parameter is an error naming why. */
  get(name: string): ParamValue {
    if (!this.space.has(name)) throw new KilnError('INVALID_ARGUMENT', `the model builder reads '${name}', which is not in the search space (${this.space.names.join(', ')})`);
    if (!(name in this.values)) {
      throw new KilnError('INVALID_ARGUMENT', `the model builder reads '${name}', which is not active in trial ${this.trial}: it applies only when ${this.space.activeWhen(name)} (check hp.has('${name}') first)`);
    }
    this.reads.add(name);
    return this.values[name]!;
  }

  /** A parameter's value as a number; an error when it is not one (or unknown, or inactive). */
  number(name: string): number {
    const v = this.get(name);
    if (typeof v !== 'number') throw new KilnError('INVALID_ARGUMENT', `parameter '${name}' is ${JSON.stringify(v)}, the model builder reads it as a number`);
    return v;
  }

  /** A parameter's value as a string; an error when it is not one (or unknown, or inactive). */
  string(name: string): string {
    const v = this.get(name);
    if (typeof v !== 'string') throw new KilnError('INVALID_ARGUMENT', `parameter '${name}' is ${JSON.stringify(v)}, the model builder reads it as a string`);
    return v;
  }

  /** The value when the parameter is searched and active, else `fallback` (a preset's default). */
  numberOr(name: string, fallback: number): number {
    return this.has(name) ? this.number(name) : fallback;
  }

  /** The string value when the parameter is searched and active, else `fallback` (a preset's default). */
  stringOr(name: string, fallback: string): string {
    return this.has(name) ? this.string(name) : fallback;
  }

  /** Active parameters the builder has not read (so far). */
  unread(): string[] {
    return Object.keys(this.values).filter((n) => !this.reads.has(n));
  }
}
