/** Kiln's data layer, exported as the public `datasets` namespace. */
export type { Batch, ImageDataset, LabeledImages } from './types.js';

export { CIFAR10_CLASS_NAMES, cifar10 } from './cifar10.js';
export { DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_CLASS_NAMES, MNIST_CLASS_NAMES, fashionMnist, mnist } from './mnist.js';
export { decodeNpy, encodeNpy, npy, saveNpy } from './npy.js';
export { embedded, embeddedDatasetDir, fashionMnistSubset } from './embedded.js';
export { encodeIdx } from './idx.js';
export { readTar, type TarEntry } from './tar.js';

export { shuffle } from './shuffle.js';
export type { SeedOrRandom } from './seeded.js';
export { trainValidationSplit, type TrainValidationSplit, type TrainValidationSplitOptions } from './split.js';
export { channelStatistics, normalize, type ChannelStatistics } from './normalize.js';
export { oneHot } from './one-hot.js';
export { augmentImages, augmentImagesAndLabels, randomCrop, randomCutout, randomHorizontalFlip, type AugmentOptions, type AugmentedWithLabels } from './augment.js';
export { batches, type Augmentation, type BatchOptions } from './batches.js';
export { streamCifar10, streamIdx, type StreamOptions, type StreamingDataset } from './streaming.js';
export { DATASET_NAMES, loadDataset } from './by-name.js';
export { arrayDataset, arrayTestSplit, isArrayDataset, type ArrayDataset, type LabeledArrays } from './arrays.js';
export { DATASET_SOURCES, FETCHABLE_DATASETS, defaultDatasetDir, fetchDataset, isFetchableDataset, type DatasetFile, type DatasetSource, type FetchOptions, type FetchProgress, type FetchResult, type FetchableDataset } from './fetch.js';
