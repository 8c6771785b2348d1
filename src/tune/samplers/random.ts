/**
 * Random search (Bergstra & Bengio 2012): every active parameter drawn independently, uniformly over
 * its choices or range (in log space for log-scaled ranges). The baseline every other sampler must beat,
 * and TPE's start-up phase.
 */
import type { Random } from '../../random.js';
import type { ParamSpec, ParamValue, Params, SearchSpace } from '../space.js';
import type { Sampler } from './sampler.js';

/** One value of one parameter, uniform over its domain. */
export function sampleUniform(spec: ParamSpec, rng: Random): ParamValue {
  if (spec.kind === 'choice') return spec.values[rng.int(spec.values.length)]!;
  if (spec.kind === 'float') return spec.log ? Math.exp(rng.uniform(Math.log(spec.low), Math.log(spec.high))) : rng.uniform(spec.low, spec.high);
  // Integers: each value owns the interval of width 1 around it (in log space for log ranges), so the
  // end values are as likely as the others.
  const x = spec.log ? Math.exp(rng.uniform(Math.log(spec.low - 0.5), Math.log(spec.high + 0.5))) : rng.uniform(spec.low - 0.5, spec.high + 0.5);
  return Math.min(spec.high, Math.max(spec.low, Math.round(x)));
}

/** Draws the active parameters in order: a conditional one only once its parent's value is known. */
export function sampleActive(space: SearchSpace, draw: (name: string, spec: ParamSpec) => ParamValue): Params {
  const params: Params = {};
  for (const name of space.names) if (space.isActive(name, params)) params[name] = draw(name, space.spec(name));
  return params;
}

/** Random search: every active parameter drawn independently and uniformly over its domain. */
export class RandomSampler implements Sampler {
  /** The sampler's name: 'random'. */
  readonly name = 'random';

  /** The next trial's parameters, uniform and ignoring the history. */
  sample(space: SearchSpace, _history: unknown, _direction: unknown, rng: Random): Params {
    return sampleActive(space, (_name, spec) => sampleUniform(spec, rng));
  }
}
