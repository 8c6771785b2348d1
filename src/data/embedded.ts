import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KilnError } from '../errors.js';
import { FASHION_MNIST_CLASS_NAMES, loadIdxDataset } from './mnist.js';
import type { ImageDataset } from './types.js';

/** Where the shipped subset lives, relative to the package root. */
const EMBEDDED_RELATIVE_DIR = join('data', 'fashion-mnist-subset');

/**
 * The package root is found by walking up from this module rather than by a fixed number of
 * `..`: compiled code sits in dist/src/data/, but tools that run the TypeScript directly sit one
 * level less deep, and bundlers move files around.
 */
export function embeddedDatasetDir(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, EMBEDDED_RELATIVE_DIR);
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new KilnError(
    'FILE_NOT_FOUND',
    `embedded data set not found: expected ${EMBEDDED_RELATIVE_DIR} in the kiln package root above ${start}`,
  );
}

/**
 * The Fashion-MNIST subset shipped inside the package (10,000 training and 2,000 test images,
 * class-balanced), so examples and tests run with no download and no system package.
 */
export function embedded(): Promise<ImageDataset> {
  return loadIdxDataset(embeddedDatasetDir(), FASHION_MNIST_CLASS_NAMES);
}

/** Another name for `embedded()`. */
export const fashionMnistSubset = embedded;
