import { KilnError } from '../errors.js';
import type { DType, Tensor } from '../tensor.js';
import { checkSameLength } from './check.js';
import { randomFrom } from './seeded.js';

/** Options of `trainValidationSplit`. */
export interface TrainValidationSplitOptions {
  /** Share of the examples held out for validation, in (0, 1). Default 0.1. */
  validationFraction?: number;
  /** Shuffle before splitting, so the validation set is not just the file's last classes. Default true. */
  shuffle?: boolean;
  /** Seed of the shuffle (default 42). */
  seed?: number;
}

/** The two parts `trainValidationSplit` returns. */
export interface TrainValidationSplit<X extends DType, Y extends DType> {
  /** The examples to train on. */
  train: {
    /** Inputs. */
    x: Tensor<X>;
    /** Targets. */
    y: Tensor<Y>;
  };
  /** The examples held out. */
  validation: {
    /** Inputs. */
    x: Tensor<X>;
    /** Targets. */
    y: Tensor<Y>;
  };
}

/** Holds out a fraction of the examples for validation; without shuffling, the last ones (as Keras does). */
export function trainValidationSplit<X extends DType, Y extends DType>(
  x: Tensor<X>,
  y: Tensor<Y>,
  options: TrainValidationSplitOptions = {},
): TrainValidationSplit<X, Y> {
  const n = checkSameLength(x, y, 'trainValidationSplit');
  const fraction = options.validationFraction ?? 0.1;
  const validationCount = Math.round(n * fraction);
  if (!(fraction > 0 && fraction < 1) || validationCount === 0 || validationCount === n) {
    throw new KilnError(
      'INVALID_ARGUMENT',
      `trainValidationSplit: expected a validationFraction in (0, 1) leaving both parts non-empty, ` +
        `found ${fraction} of ${n} examples (${validationCount} for validation)`,
    );
  }
  const trainCount = n - validationCount;
  if (options.shuffle === false) {
    return {
      train: { x: x.slice(0, trainCount), y: y.slice(0, trainCount) },
      validation: { x: x.slice(trainCount, n), y: y.slice(trainCount, n) },
    };
  }
  const order = randomFrom(options.seed).permutation(n);
  const trainOrder = order.subarray(0, trainCount);
  const validationOrder = order.subarray(trainCount);
  return {
    train: { x: x.gather(trainOrder), y: y.gather(trainOrder) },
    validation: { x: x.gather(validationOrder), y: y.gather(validationOrder) },
  };
}
