import { Random } from '../random.js';

/** A seed or a generator to continue; passing a generator lets epochs differ yet stay reproducible. */
export type SeedOrRandom = number | Random;

export function randomFrom(seed: SeedOrRandom | undefined, defaultSeed = 42): Random {
  return seed instanceof Random ? seed : new Random(seed ?? defaultSeed);
}
