import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { KilnError } from '../errors.js';
import { cifar10 } from './cifar10.js';
import { embedded } from './embedded.js';
import { fashionMnist, mnist } from './mnist.js';
import type { ImageDataset } from './types.js';

/**
 * The names `loadDataset` and `--dataset` know (besides paths): 'embedded', 'fashion-mnist', 'mnist', 'cifar10'.
 */
export const DATASET_NAMES = ['embedded', 'fashion-mnist', 'mnist', 'cifar10'] as const;

/**
 * Resolves what a user types after --dataset: a name ('embedded', 'fashion-mnist'), a name with a
 * location ('cifar10:/data/cifar-10-binary.tar.gz', 'mnist:/data/mnist'), or a path whose contents
 * tell the format (CIFAR-10 binary batches, or IDX files).
 */
export async function loadDataset(spec: string): Promise<ImageDataset> {
  const [name, location] = spec.includes(':') ? [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)] : [spec, undefined];
  switch (name) {
    case 'embedded':
    case 'fashion-mnist-subset':
      return embedded();
    case 'fashion-mnist':
      return fashionMnist(location);
    case 'mnist':
      if (!location) throw new KilnError('INVALID_ARGUMENT', "mnist needs its directory: --dataset mnist:/path/to/mnist (IDX files, e.g. after 'kiln data fetch mnist')");
      return mnist(location);
    case 'cifar10':
      if (!location) throw new KilnError('INVALID_ARGUMENT', "cifar10 needs its location: --dataset cifar10:/path/to/cifar-10-batches-bin (or the .tar.gz)");
      return cifar10(location);
  }
  if (!existsSync(spec)) {
    throw new KilnError('FILE_NOT_FOUND', `dataset '${spec}' is neither a known name (${DATASET_NAMES.join(', ')}) nor an existing path`);
  }
  if (spec.endsWith('.tar.gz') || spec.endsWith('.tgz') || spec.endsWith('.tar')) return cifar10(spec);
  if (statSync(spec).isDirectory()) {
    const files = readdirSync(spec);
    if (files.some((f) => f.startsWith('data_batch_') || f === 'cifar-10-batches-bin')) return cifar10(spec);
    if (files.some((f) => f.includes('idx3-ubyte'))) return mnist(path.resolve(spec));
  }
  throw new KilnError('INVALID_DATA', `'${spec}' does not look like a data set Kiln reads: expected CIFAR-10 binary batches (data_batch_*.bin) or IDX files (*-idx3-ubyte[.gz])`);
}
