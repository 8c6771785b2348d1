import type { DType, Tensor } from '../tensor.js';

/** Images `[N, H, W, C]` scaled to [0, 1] and their class indices `[N]`. */
export interface LabeledImages {
  images: Tensor<'float32'>;
  labels: Tensor<'int32'>;
}

/** What every image loader returns: the two official splits and the name of each class index. */
export interface ImageDataset {
  train: LabeledImages;
  test: LabeledImages;
  classNames: string[];
}

/** One step's worth of examples: inputs `x` and targets `y` with the same first dimension. */
export interface Batch<X extends DType = 'float32', Y extends DType = 'int32'> {
  x: Tensor<X>;
  y: Tensor<Y>;
}
