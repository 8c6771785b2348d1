import type { DType, Tensor } from '../tensor.js';
import { checkSameLength } from './check.js';
import { type SeedOrRandom, randomFrom } from './seeded.js';

/** The same permutation applied to inputs and targets (copies; the originals are untouched). */
export function shuffle<X extends DType, Y extends DType>(
  x: Tensor<X>,
  y: Tensor<Y>,
  seed?: SeedOrRandom,
): {
  /** The inputs, shuffled. */
  x: Tensor<X>;
  /** The targets, in the same order. */
  y: Tensor<Y>;
} {
  const order = randomFrom(seed).permutation(checkSameLength(x, y, 'shuffle'));
  return { x: x.gather(order), y: y.gather(order) };
}
