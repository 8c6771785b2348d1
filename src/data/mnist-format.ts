// Owns MNIST-style data with no files attached: the class names, and an IDX image file with its
// label file (as bytes) turned into labeled images. mnist.ts reads the bytes from disk, urls.ts
// fetches them (a browser page); both end here.
import { KilnError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parseIdx } from './idx.js';
import { scaleToUnit } from './normalize.js';
import type { LabeledImages } from './types.js';

/** MNIST's class names: the digits '0' to '9'. */
export const MNIST_CLASS_NAMES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/**
 * Fashion-MNIST's class names by index: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
 */
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** One decompressed IDX file and the name messages give it (its path or URL). */
export interface IdxFile {
  bytes: Uint8Array;
  name: string;
}

/**
 * An IDX image file and its label file as `[N, H, W, 1]` images in [0, 1] and int32 labels, checking
 * counts agree and every label names one of `numClasses` classes.
 */
export function labeledImagesFromIdx(imageFile: IdxFile, labelFile: IdxFile, numClasses: number): LabeledImages {
  const images = parseIdx(imageFile.bytes, imageFile.name, IDX_IMAGES_MAGIC);
  const labels = parseIdx(labelFile.bytes, labelFile.name, IDX_LABELS_MAGIC);
  const [count, rows, columns] = images.dims as [number, number, number];
  if (labels.dims[0] !== count) {
    throw new KilnError('INVALID_DATA', `${labelFile.name}: expected ${count} labels to match the images in ${imageFile.name}, found ${labels.dims[0]}`);
  }
  const labelData = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = labels.data[i]!;
    if (label >= numClasses) {
      throw new KilnError('INVALID_DATA', `${labelFile.name}: expected labels in 0..${numClasses - 1}, found ${label} at index ${i}`);
    }
    labelData[i] = label;
  }
  return {
    images: new Tensor(scaleToUnit(images.data), [count, rows, columns, 1], 'float32'),
    labels: new Tensor(labelData, [count], 'int32'),
  };
}
