/**
 * The browser's `datasets` namespace: the data tools that need no file system, and MNIST-style sets
 * fetched from URLs (idxDatasetFromUrl) in place of the Node package's directory readers.
 */
export type { Batch, ImageDataset, LabeledImages } from '../data/types.js';
export { FASHION_MNIST_CLASS_NAMES, MNIST_CLASS_NAMES } from '../data/mnist-format.js';
export { idxDatasetFromUrl } from '../data/urls.js';
export { encodeIdx } from '../data/idx.js';
export { shuffle } from '../data/shuffle.js';
export { trainValidationSplit, type TrainValidationSplit, type TrainValidationSplitOptions } from '../data/split.js';
export { channelStatistics, normalize, type ChannelStatistics } from '../data/normalize.js';
export { oneHot } from '../data/one-hot.js';
export { augmentImages, augmentImagesAndLabels, randomCrop, randomCutout, randomHorizontalFlip, type AugmentOptions, type AugmentedWithLabels } from '../data/augment.js';
export { batches, type Augmentation, type BatchOptions } from '../data/batches.js';
