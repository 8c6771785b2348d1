import { stat } from 'node:fs/promises';
import { KilnError } from '../errors.js';
import type { Random } from '../random.js';
import { Tensor } from '../tensor.js';
import { type Augmentation, applyAugmentation } from './batches.js';
import { type ByteStream, openByteStream } from './byte-stream.js';
import { CIFAR10_IMAGE_SIZE, CIFAR10_RECORD_BYTES, decodeCifarRecords } from './cifar10.js';
import { checkPositiveInteger } from './check.js';
import { fileError, scaleToUnit } from './files.js';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, type IdxHeader, parseIdxHeader } from './idx.js';
import { randomFrom } from './seeded.js';
import type { Batch } from './types.js';

/**
 * A data set read from disk batch by batch instead of loaded whole. Each `for await` over it is
 * one pass (epoch) that reopens the files; shuffling draws from one generator seeded once, so
 * successive passes differ but the whole run is reproducible.
 */
export interface StreamingDataset extends AsyncIterable<Batch> {
  /** Examples per pass. */
  readonly size: number;
  /** `[H, W, C]` of each image. */
  readonly imageShape: readonly [number, number, number];
  /** Examples per batch (the last one may be smaller). */
  readonly batchSize: number;
}

/** Options of `streamCifar10` and `streamIdx`. */
export interface StreamOptions {
  /** Examples per batch. */
  batchSize: number;
  /**
   * Examples held in memory to shuffle among (as tf.data's shuffle buffer): larger mixes better,
   * the data-set size gives a full shuffle. Default 0, file order.
   */
  shuffleBuffer?: number;
  /** Seed for shuffling and augmentation. Default 42. */
  seed?: number;
  /** Applied to each batch's images (the built-in augmentations, or a function of the batch and the generator). */
  augment?: Augmentation<'float32'>;
  /** Leave out a last batch smaller than batchSize. Default false. */
  dropRemainder?: boolean;
}

/** One image as uint8 channel-last pixels, and its class. */
interface Example {
  pixels: Uint8Array;
  label: number;
}

/** How many records one file access fetches: large enough to amortize the call, small next to memory. */
const RECORDS_PER_READ = 256;

/** MNIST and its look-alikes all have ten classes. */
const MNIST_CLASS_COUNT = 10;

async function* shuffleBuffered<T>(items: AsyncIterable<T>, capacity: number, random: Random): AsyncGenerator<T> {
  const buffer: T[] = [];
  for await (const item of items) {
    if (buffer.length < capacity) {
      buffer.push(item);
      continue;
    }
    const slot = random.int(capacity);
    yield buffer[slot]!;
    buffer[slot] = item;
  }
  for (const slot of random.permutation(buffer.length)) yield buffer[slot]!;
}

async function* batchExamples(
  examples: AsyncIterable<Example>,
  imageShape: readonly [number, number, number],
  options: StreamOptions,
  random: Random,
): AsyncGenerator<Batch> {
  const imageLength = imageShape[0] * imageShape[1] * imageShape[2];
  const pixels = new Uint8Array(options.batchSize * imageLength);
  const labels = new Int32Array(options.batchSize);
  let count = 0;
  const batch = (): Batch => {
    const x = new Tensor(scaleToUnit(pixels.subarray(0, count * imageLength)), [count, ...imageShape], 'float32');
    return { x: applyAugmentation(x, options.augment, random), y: new Tensor(labels.slice(0, count), [count], 'int32') };
  };
  for await (const example of examples) {
    pixels.set(example.pixels, count * imageLength);
    labels[count++] = example.label;
    if (count === options.batchSize) {
      yield batch();
      count = 0;
    }
  }
  if (count > 0 && !options.dropRemainder) yield batch();
}

function streamingDataset(
  size: number,
  imageShape: readonly [number, number, number],
  examples: () => AsyncGenerator<Example>,
  options: StreamOptions,
): StreamingDataset {
  checkPositiveInteger(options.batchSize, 'batchSize', 'streaming data set');
  const random = randomFrom(options.seed);
  const shuffleBuffer = options.shuffleBuffer ?? 0;
  return {
    size,
    imageShape,
    batchSize: options.batchSize,
    async *[Symbol.asyncIterator]() {
      const ordered = shuffleBuffer > 1 ? shuffleBuffered(examples(), shuffleBuffer, random) : examples();
      yield* batchExamples(ordered, imageShape, options, random);
    },
  };
}

async function* cifarExamples(files: readonly string[]): AsyncGenerator<Example> {
  for (const path of files) {
    const stream = await openByteStream(path, 'CIFAR-10 batch file');
    try {
      for (;;) {
        const bytes = await stream.read(RECORDS_PER_READ * CIFAR10_RECORD_BYTES);
        if (bytes.length === 0) break;
        const records = decodeCifarRecords(bytes, path);
        const imageLength = records.pixels.length / records.count;
        for (let r = 0; r < records.count; r++) {
          yield { pixels: records.pixels.subarray(r * imageLength, (r + 1) * imageLength), label: records.labels[r]! };
        }
      }
    } finally {
      await stream.close();
    }
  }
}

/**
 * Streams CIFAR-10 binary batch files (uncompressed `.bin`, e.g. data_batch_1.bin … 5) record by
 * record. The record count comes from the file sizes, so the files must not be gzipped.
 */
export async function streamCifar10(files: string | readonly string[], options: StreamOptions): Promise<StreamingDataset> {
  const paths = typeof files === 'string' ? [files] : [...files];
  let size = 0;
  for (const path of paths) {
    let bytes: number;
    try {
      bytes = (await stat(path)).size;
    } catch (cause) {
      throw fileError(path, 'CIFAR-10 batch file', cause);
    }
    if (bytes % CIFAR10_RECORD_BYTES !== 0) {
      throw new KilnError(
        'CORRUPT_FILE',
        `${path}: expected a whole number of ${CIFAR10_RECORD_BYTES}-byte CIFAR-10 records (uncompressed), ` +
          `found ${bytes} bytes (${bytes % CIFAR10_RECORD_BYTES} bytes over)`,
      );
    }
    size += bytes / CIFAR10_RECORD_BYTES;
  }
  return streamingDataset(size, [CIFAR10_IMAGE_SIZE, CIFAR10_IMAGE_SIZE, 3], () => cifarExamples(paths), options);
}

async function readIdxHeaderOf(path: string, what: string, magic: number): Promise<IdxHeader> {
  const stream = await openByteStream(path, what);
  try {
    return parseIdxHeader(await stream.read(4 + 4 * (magic & 0xff)), path, magic);
  } finally {
    await stream.close();
  }
}

function truncated(path: string, what: string, index: number, expected: number, found: number): KilnError {
  return new KilnError(
    'CORRUPT_FILE',
    `${path}: truncated: expected ${expected} more bytes of ${what} at item ${index}, found ${found}`,
  );
}

async function* idxExamples(
  imagesPath: string,
  imagesHeader: IdxHeader,
  labelsPath: string,
  labelsHeader: IdxHeader,
  numClasses: number,
): AsyncGenerator<Example> {
  const [count, rows, columns] = imagesHeader.dims as [number, number, number];
  const imageLength = rows * columns;
  const images = await openByteStream(imagesPath, 'IDX image file');
  let labels: ByteStream | undefined;
  try {
    labels = await openByteStream(labelsPath, 'IDX label file');
    await images.read(imagesHeader.headerBytes);
    await labels.read(labelsHeader.headerBytes);
    for (let done = 0; done < count; ) {
      const n = Math.min(RECORDS_PER_READ, count - done);
      const pixelBytes = await images.read(n * imageLength);
      if (pixelBytes.length < n * imageLength) throw truncated(imagesPath, 'images', done, n * imageLength, pixelBytes.length);
      const labelBytes = await labels.read(n);
      if (labelBytes.length < n) throw truncated(labelsPath, 'labels', done, n, labelBytes.length);
      for (let i = 0; i < n; i++) {
        const label = labelBytes[i]!;
        if (label >= numClasses) {
          throw new KilnError(
            'INVALID_DATA',
            `${labelsPath}: expected labels in 0..${numClasses - 1}, found ${label} at index ${done + i}`,
          );
        }
        yield { pixels: pixelBytes.subarray(i * imageLength, (i + 1) * imageLength), label };
      }
      done += n;
    }
  } finally {
    await images.close();
    await labels?.close();
  }
}

/**
 * Streams an IDX image file and its label file (raw or gzipped) in step, as `[B, H, W, 1]` batches.
 * `numClasses` bounds the labels (default 10).
 */
export async function streamIdx(
  imagesPath: string,
  labelsPath: string,
  options: StreamOptions & { numClasses?: number },
): Promise<StreamingDataset> {
  const imagesHeader = await readIdxHeaderOf(imagesPath, 'IDX image file', IDX_IMAGES_MAGIC);
  const labelsHeader = await readIdxHeaderOf(labelsPath, 'IDX label file', IDX_LABELS_MAGIC);
  const [count, rows, columns] = imagesHeader.dims as [number, number, number];
  if (labelsHeader.dims[0] !== count) {
    throw new KilnError(
      'INVALID_DATA',
      `${labelsPath}: expected ${count} labels to match the images in ${imagesPath}, found ${labelsHeader.dims[0]}`,
    );
  }
  const numClasses = options.numClasses ?? MNIST_CLASS_COUNT;
  return streamingDataset(
    count,
    [rows, columns, 1],
    () => idxExamples(imagesPath, imagesHeader, labelsPath, labelsHeader, numClasses),
    options,
  );
}
