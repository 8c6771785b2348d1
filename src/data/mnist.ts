import { KilnError } from '../errors.js';
import { firstExisting, isDirectory, readMaybeGzipped } from './files.js';
import { FASHION_MNIST_CLASS_NAMES, labeledImagesFromIdx, MNIST_CLASS_NAMES } from './mnist-format.js';
import type { ImageDataset, LabeledImages } from './types.js';

export { FASHION_MNIST_CLASS_NAMES, MNIST_CLASS_NAMES } from './mnist-format.js';

/** Where Debian's `dataset-fashion-mnist` package puts the four .gz files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The four files of an MNIST-style set; some mirrors spell them with a dot before "idx". */
function idxFileNames(stem: string, kind: 'idx3' | 'idx1'): string[] {
  return [`${stem}-${kind}-ubyte`, `${stem}-${kind}-ubyte.gz`, `${stem}.${kind}-ubyte`, `${stem}.${kind}-ubyte.gz`];
}

/** The paths of the four files, or an error that lists every one missing. */
async function findIdxFiles(dir: string): Promise<[string, string, string, string]> {
  const wanted: [string, 'idx3' | 'idx1'][] = [
    ['train-images', 'idx3'],
    ['train-labels', 'idx1'],
    ['t10k-images', 'idx3'],
    ['t10k-labels', 'idx1'],
  ];
  const found: string[] = [];
  const missing: string[] = [];
  for (const [stem, kind] of wanted) {
    const names = idxFileNames(stem, kind);
    const path = await firstExisting(dir, names);
    if (path === undefined) missing.push(`${names[0]}[.gz]`);
    else found.push(path);
  }
  if (missing.length > 0) {
    throw new KilnError('FILE_NOT_FOUND', `IDX files not found in ${dir}: expected ${missing.join(', ')}`);
  }
  return found as [string, string, string, string];
}

/**
 * Reads one IDX image file and its label file into `[N, H, W, 1]` images in [0, 1] and int32
 * labels, checking counts agree and every label names one of `numClasses` classes.
 */
export async function readIdxPair(imagesPath: string, labelsPath: string, numClasses: number): Promise<LabeledImages> {
  const [imageBytes, labelBytes] = await Promise.all([
    readMaybeGzipped(imagesPath, 'IDX image file'),
    readMaybeGzipped(labelsPath, 'IDX label file'),
  ]);
  return labeledImagesFromIdx({ bytes: imageBytes, name: imagesPath }, { bytes: labelBytes, name: labelsPath }, numClasses);
}

/** Loads an MNIST-style directory (train-* and t10k-* IDX files, raw or gzipped). */
export async function loadIdxDataset(dir: string, classNames: readonly string[]): Promise<ImageDataset> {
  if (!(await isDirectory(dir))) throw new KilnError('FILE_NOT_FOUND', `IDX data set directory not found: ${dir}`);
  const [trainImages, trainLabels, testImages, testLabels] = await findIdxFiles(dir);
  const [train, test] = await Promise.all([
    readIdxPair(trainImages, trainLabels, classNames.length),
    readIdxPair(testImages, testLabels, classNames.length),
  ]);
  return { train, test, classNames: [...classNames] };
}

/** MNIST handwritten digits from a directory holding its four IDX files. */
export function mnist(dir: string): Promise<ImageDataset> {
  return loadIdxDataset(dir, MNIST_CLASS_NAMES);
}

/**
 * Fashion-MNIST from a directory holding its four IDX files; without one, from Debian's
 * `dataset-fashion-mnist` package, because Kiln never downloads anything by itself.
 */
export async function fashionMnist(dir?: string): Promise<ImageDataset> {
  if (dir !== undefined) return loadIdxDataset(dir, FASHION_MNIST_CLASS_NAMES);
  if (!(await isDirectory(DEBIAN_FASHION_MNIST_DIR))) {
    throw new KilnError(
      'FILE_NOT_FOUND',
      `Fashion-MNIST not found: no directory was given and ${DEBIAN_FASHION_MNIST_DIR} does not exist. ` +
        'Install it with `apt-get install dataset-fashion-mnist`, or put train-images-idx3-ubyte.gz, ' +
        'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz ' +
        '(from https://github.com/zalandoresearch/fashion-mnist) in a directory and call fashionMnist(dir).',
    );
  }
  return loadIdxDataset(DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_CLASS_NAMES);
}
