import { join, posix } from 'node:path';
import { KilnError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { fileExists, gunzipIfNeeded, isDirectory, readBytes, scaleToUnit } from './files.js';
import { readTar } from './tar.js';
import type { ImageDataset, LabeledImages } from './types.js';

/** CIFAR-10's class names by index: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck. */
export const CIFAR10_CLASS_NAMES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

export const CIFAR10_IMAGE_SIZE = 32;
export const CIFAR10_PLANE_BYTES = CIFAR10_IMAGE_SIZE * CIFAR10_IMAGE_SIZE;
/** One label byte, then the red, green and blue 32x32 planes. */
export const CIFAR10_RECORD_BYTES = 1 + 3 * CIFAR10_PLANE_BYTES;

export const CIFAR10_TRAIN_FILES: readonly string[] = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const CIFAR10_TEST_FILE = 'test_batch.bin';
const META_FILE = 'batches.meta.txt';
/** The folder the official archive unpacks to. */
const ARCHIVE_FOLDER = 'cifar-10-batches-bin';

/** Records decoded to channel-last uint8 pixels `[count, 32, 32, 3]` and their labels. */
export interface CifarRecords {
  count: number;
  pixels: Uint8Array;
  labels: Int32Array;
}

/**
 * Decodes whole CIFAR-10 binary records. The file stores each image as three colour planes;
 * Kiln's images are channel-last, so each pixel's R, G, B are gathered next to each other.
 */
export function decodeCifarRecords(bytes: Uint8Array, fileName: string): CifarRecords {
  if (bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    throw new KilnError(
      'CORRUPT_FILE',
      `${fileName}: expected a whole number of ${CIFAR10_RECORD_BYTES}-byte CIFAR-10 records, ` +
        `found ${bytes.length} bytes (${Math.floor(bytes.length / CIFAR10_RECORD_BYTES)} records and ` +
        `${bytes.length % CIFAR10_RECORD_BYTES} bytes over)`,
    );
  }
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  const pixels = new Uint8Array(count * 3 * CIFAR10_PLANE_BYTES);
  const labels = new Int32Array(count);
  for (let r = 0; r < count; r++) {
    const record = r * CIFAR10_RECORD_BYTES;
    const label = bytes[record]!;
    if (label >= CIFAR10_CLASS_NAMES.length) {
      throw new KilnError(
        'INVALID_DATA',
        `${fileName}: expected labels in 0..${CIFAR10_CLASS_NAMES.length - 1}, found ${label} in record ${r}`,
      );
    }
    labels[r] = label;
    const image = r * 3 * CIFAR10_PLANE_BYTES;
    for (let channel = 0; channel < 3; channel++) {
      const plane = record + 1 + channel * CIFAR10_PLANE_BYTES;
      for (let p = 0; p < CIFAR10_PLANE_BYTES; p++) pixels[image + 3 * p + channel] = bytes[plane + p]!;
    }
  }
  return { count, pixels, labels };
}

/** One named file of the data set, read from wherever the source keeps it. */
interface CifarFile {
  path: string;
  bytes: Uint8Array;
}

type CifarFileReader = (name: string) => Promise<CifarFile | undefined>;

async function directoryReader(source: string): Promise<CifarFileReader> {
  // Accept the folder the archive unpacks into as well as the folder that holds it.
  const nested = join(source, ARCHIVE_FOLDER);
  const dir =
    !(await fileExists(join(source, CIFAR10_TEST_FILE))) && (await isDirectory(nested)) ? nested : source;
  return async (name) => {
    const path = join(dir, name);
    if (!(await fileExists(path))) return undefined;
    return { path, bytes: await readBytes(path, 'CIFAR-10 file') };
  };
}

async function archiveReader(source: string): Promise<CifarFileReader> {
  const archive = await gunzipIfNeeded(await readBytes(source, 'CIFAR-10 archive'), source);
  const entries = readTar(archive, source);
  return async (name) => {
    const entry =
      entries.find((e) => e.name === `${ARCHIVE_FOLDER}/${name}`) ?? entries.find((e) => posix.basename(e.name) === name);
    return entry && { path: `${source}:${entry.name}`, bytes: entry.data };
  };
}

async function readRequired(read: CifarFileReader, source: string, name: string): Promise<CifarFile> {
  const file = await read(name);
  if (file === undefined) {
    throw new KilnError('FILE_NOT_FOUND', `CIFAR-10 file not found: expected ${name} in ${source}`);
  }
  return file;
}

async function readSplit(read: CifarFileReader, source: string, names: readonly string[]): Promise<LabeledImages> {
  const parts: CifarRecords[] = [];
  for (const name of names) {
    const file = await readRequired(read, source, name);
    parts.push(decodeCifarRecords(file.bytes, file.path));
  }
  const count = parts.reduce((n, part) => n + part.count, 0);
  const images = new Float32Array(count * 3 * CIFAR10_PLANE_BYTES);
  const labels = new Int32Array(count);
  let at = 0;
  for (const part of parts) {
    images.set(scaleToUnit(part.pixels), at * 3 * CIFAR10_PLANE_BYTES);
    labels.set(part.labels, at);
    at += part.count;
  }
  return {
    images: new Tensor(images, [count, CIFAR10_IMAGE_SIZE, CIFAR10_IMAGE_SIZE, 3], 'float32'),
    labels: new Tensor(labels, [count], 'int32'),
  };
}

async function readClassNames(read: CifarFileReader): Promise<string[]> {
  const meta = await read(META_FILE);
  if (meta === undefined) return [...CIFAR10_CLASS_NAMES];
  const names = new TextDecoder()
    .decode(meta.bytes)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  if (names.length !== CIFAR10_CLASS_NAMES.length) {
    throw new KilnError(
      'INVALID_DATA',
      `${meta.path}: expected ${CIFAR10_CLASS_NAMES.length} class names, one per line, found ${names.length}`,
    );
  }
  return names;
}

/**
 * CIFAR-10, binary version: a directory holding data_batch_1.bin … data_batch_5.bin and
 * test_batch.bin (or the folder above `cifar-10-batches-bin/`), or the `cifar-10-binary.tar.gz`
 * archive itself. Images are `[N, 32, 32, 3]` in [0, 1].
 */
export async function cifar10(source: string): Promise<ImageDataset> {
  let read: CifarFileReader;
  if (await isDirectory(source)) read = await directoryReader(source);
  else if (await fileExists(source)) read = await archiveReader(source);
  else throw new KilnError('FILE_NOT_FOUND', `CIFAR-10 source not found: ${source} (expected a directory or a .tar.gz archive)`);
  const train = await readSplit(read, source, CIFAR10_TRAIN_FILES);
  const test = await readSplit(read, source, [CIFAR10_TEST_FILE]);
  return { train, test, classNames: await readClassNames(read) };
}
