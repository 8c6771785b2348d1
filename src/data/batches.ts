import type { Random } from '../random.js';
import type { DType, Tensor } from '../tensor.js';
import { type AugmentOptions, augmentImages } from './augment.js';
import { checkPositiveInteger, checkSameLength } from './check.js';
import { randomFrom } from './seeded.js';
import type { Batch } from './types.js';

/** Either the built-in image augmentations or any function of a batch and the generator. */
export type Augmentation<X extends DType> = AugmentOptions | ((x: Tensor<X>, random: Random) => Tensor<X>);

/** Options of `batches`. */
export interface BatchOptions<X extends DType> {
  /** Examples per batch. */
  batchSize: number;
  /** Visit the examples in a seeded random order. Default true. */
  shuffle?: boolean;
  /** Seed for shuffling and augmentation. Default 42. Ignored when `random` is given. */
  seed?: number;
  /** A generator to draw from instead of a fresh one from `seed`, so successive epochs differ. */
  random?: Random;
  /** Applied to each batch's `x` (never to `y`). */
  augment?: Augmentation<X>;
  /** Leave out a last batch smaller than batchSize. Default false. */
  dropRemainder?: boolean;
}

/** Applies an augmentation, whichever of its two forms it is. */
export function applyAugmentation<X extends DType>(x: Tensor<X>, augment: Augmentation<X> | undefined, random: Random): Tensor<X> {
  if (augment === undefined) return x;
  return typeof augment === 'function' ? augment(x, random) : augmentImages(x, augment, random);
}

/** One epoch of `{x, y}` batches over in-memory inputs and targets. */
export function* batches<X extends DType, Y extends DType>(
  x: Tensor<X>,
  y: Tensor<Y>,
  options: BatchOptions<X>,
): Generator<Batch<X, Y>> {
  const n = checkSameLength(x, y, 'batches');
  checkPositiveInteger(options.batchSize, 'batchSize', 'batches');
  const random = options.random ?? randomFrom(options.seed);
  const order = options.shuffle === false ? undefined : random.permutation(n);
  for (let start = 0; start < n; start += options.batchSize) {
    const end = Math.min(n, start + options.batchSize);
    if (options.dropRemainder && end - start < options.batchSize) return;
    const rows = order?.subarray(start, end);
    const xBatch = rows ? x.gather(rows) : x.slice(start, end);
    const yBatch = rows ? y.gather(rows) : y.slice(start, end);
    yield { x: applyAugmentation(xBatch, options.augment, random), y: yBatch };
  }
}
