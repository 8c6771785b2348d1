// Owns loading MNIST-style data sets over HTTP (fetch and the platform's DecompressionStream), which
// is how a browser page gets data: the same four IDX files mnist.ts reads from a directory.
import { KilnError } from '../errors.js';
import { isGzip } from './gzip.js';
import { FASHION_MNIST_CLASS_NAMES, labeledImagesFromIdx } from './mnist-format.js';
import type { ImageDataset } from './types.js';

async function fetchBytes(url: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (cause) {
    throw new KilnError('IO_ERROR', `could not fetch ${url}: ${(cause as Error).message}`, { cause });
  }
  if (response.status === 404) throw new KilnError('FILE_NOT_FOUND', `data file not found: ${url} (HTTP 404)`);
  if (!response.ok) throw new KilnError('IO_ERROR', `could not fetch ${url}: HTTP ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The bytes, or their decompression when they are a gzip stream (the magic decides, not the name). */
async function gunzipped(bytes: Uint8Array, url: string): Promise<Uint8Array> {
  if (!isGzip(bytes)) return bytes;
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (cause) {
    throw new KilnError('CORRUPT_FILE', `${url}: expected a complete gzip stream, found a damaged one (${(cause as Error).message})`, { cause });
  }
}

/**
 * An MNIST-style data set served at `baseUrl`: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
 * t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (the names Kiln's embedded subset and the
 * original sets use), relative URLs resolved against the page.
 */
export async function idxDatasetFromUrl(baseUrl: string, classNames: readonly string[] = FASHION_MNIST_CLASS_NAMES): Promise<ImageDataset> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const file = async (name: string) => {
    const url = `${base}${name}`;
    return { bytes: await gunzipped(await fetchBytes(url), url), name: url };
  };
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all(
    ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map(file),
  );
  return {
    train: labeledImagesFromIdx(trainImages!, trainLabels!, classNames.length),
    test: labeledImagesFromIdx(testImages!, testLabels!, classNames.length),
    classNames: [...classNames],
  };
}
