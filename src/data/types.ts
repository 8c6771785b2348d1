import type { DType, Tensor } from '../tensor.js';

/** Images `[N, H, W, C]` scaled to [0, 1] and their class indices `[N]`. */
export interface LabeledImages {
  /** `[N, H, W, C]` float32 pixels in [0, 1]. */
  images: Tensor<'float32'>;
  /** `[N]` class indices. */
  labels: Tensor<'int32'>;
}

/** What every image loader returns: the two official splits and the name of each class index. */
export interface ImageDataset {
  /** The training split. */
  train: LabeledImages;
  /** The test split. */
  test: LabeledImages;
  /** The name of each class index. */
  classNames: string[];
}

/** One step's worth of examples: inputs `x` and targets `y` with the same first dimension. */
export interface Batch<X extends DType = 'float32', Y extends DType = 'int32'> {
  /** Inputs. */
  x: Tensor<X>;
  /** Targets. */
  y: Tensor<Y>;
}
