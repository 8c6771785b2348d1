import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { FASHION_MNIST_CLASS_NAMES, MNIST_CLASS_NAMES, fashionMnist, mnist } from '../../src/data/mnist.js';
import { assertRejectsWith, idxFile, makeTempDir } from './fixtures.js';

const IMAGES = 0x00000803;
const LABELS = 0x00000801;
const ROWS = 4;
const COLUMNS = 3;

function pixels(count: number, offset: number): number[] {
  return Array.from({ length: count * ROWS * COLUMNS }, (_, i) => (i * 5 + offset) % 256);
}

interface SplitFiles {
  images?: Uint8Array;
  labels?: Uint8Array;
}

/** Writes the four files, gzipped or raw; overrides replace a file's bytes. */
async function writeIdxSet(
  dir: string,
  options: { gzip: boolean; train?: SplitFiles; test?: SplitFiles } = { gzip: false },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const files: [string, Uint8Array][] = [
    ['train-images-idx3-ubyte', options.train?.images ?? idxFile(IMAGES, [6, ROWS, COLUMNS], pixels(6, 0))],
    ['train-labels-idx1-ubyte', options.train?.labels ?? idxFile(LABELS, [6], [0, 1, 2, 3, 9, 5])],
    ['t10k-images-idx3-ubyte', options.test?.images ?? idxFile(IMAGES, [2, ROWS, COLUMNS], pixels(2, 1))],
    ['t10k-labels-idx1-ubyte', options.test?.labels ?? idxFile(LABELS, [2], [7, 8])],
  ];
  for (const [name, bytes] of files) {
    if (options.gzip) await writeFile(join(dir, `${name}.gz`), gzipSync(bytes));
    else await writeFile(join(dir, name), bytes);
  }
}

describe('mnist and fashionMnist', () => {
  let root: string;
  let remove: () => Promise<void>;
  before(async () => ({ dir: root, remove } = await makeTempDir()));
  after(() => remove());

  for (const gzip of [false, true]) {
    it(`reads ${gzip ? 'gzipped' : 'raw'} IDX files into [N, H, W, 1] images in [0, 1] and int32 labels`, async () => {
      const dir = join(root, gzip ? 'gz' : 'raw');
      await writeIdxSet(dir, { gzip });
      const dataset = await mnist(dir);
      assert.deepEqual(dataset.train.images.shape, [6, ROWS, COLUMNS, 1]);
      assert.equal(dataset.train.images.dtype, 'float32');
      assert.deepEqual(Array.from(dataset.train.images.data), pixels(6, 0).map((p) => Math.fround(p / 255)));
      assert.deepEqual(dataset.train.labels.shape, [6]);
      assert.equal(dataset.train.labels.dtype, 'int32');
      assert.deepEqual(Array.from(dataset.train.labels.data), [0, 1, 2, 3, 9, 5]);
      assert.deepEqual(dataset.test.images.shape, [2, ROWS, COLUMNS, 1]);
      assert.deepEqual(Array.from(dataset.test.images.data), pixels(2, 1).map((p) => Math.fround(p / 255)));
      assert.deepEqual(Array.from(dataset.test.labels.data), [7, 8]);
      assert.deepEqual(dataset.classNames, MNIST_CLASS_NAMES);
    });
  }

  it('detects gzip by its magic bytes, not by the file name', async () => {
    const dir = join(root, 'misnamed');
    await writeIdxSet(dir);
    await writeFile(join(dir, 'train-labels-idx1-ubyte'), gzipSync(idxFile(LABELS, [6], [1, 1, 1, 1, 1, 1])));
    assert.deepEqual(Array.from((await mnist(dir)).train.labels.data), [1, 1, 1, 1, 1, 1]);
  });

  it('gives Fashion-MNIST its class names', async () => {
    const dir = join(root, 'fashion');
    await writeIdxSet(dir, { gzip: true });
    const dataset = await fashionMnist(dir);
    assert.deepEqual(dataset.classNames, FASHION_MNIST_CLASS_NAMES);
    assert.equal(dataset.classNames[0], 'T-shirt/top');
    assert.equal(dataset.classNames[9], 'Ankle boot');
  });

  describe('rejects malformed data', () => {
    it('an image file with the label magic number', async () => {
      const dir = join(root, 'wrong-magic');
      await writeIdxSet(dir, { gzip: false, train: { images: idxFile(LABELS, [6], [0, 0, 0, 0, 0, 0]) } });
      await assertRejectsWith(mnist(dir), 'CORRUPT_FILE', 'train-images-idx3-ubyte', '0x00000803', 'found 0x00000801');
    });

    it('a label file with a foreign magic number', async () => {
      const dir = join(root, 'foreign-magic');
      await writeIdxSet(dir, { gzip: true, test: { labels: new TextEncoder().encode('PK\x03\x04 not idx at all') } });
      await assertRejectsWith(mnist(dir), 'CORRUPT_FILE', 't10k-labels-idx1-ubyte.gz', '0x00000801', 'found 0x504b0304');
    });

    it('a truncated image file', async () => {
      const dir = join(root, 'truncated');
      const images = idxFile(IMAGES, [6, ROWS, COLUMNS], pixels(6, 0));
      await writeIdxSet(dir, { gzip: true, train: { images: images.subarray(0, images.length - 5) } });
      await assertRejectsWith(mnist(dir), 'CORRUPT_FILE', 'train-images-idx3-ubyte.gz', 'truncated', `expected ${images.length} bytes`);
    });

    it('a truncated header', async () => {
      const dir = join(root, 'short-header');
      await writeIdxSet(dir, { gzip: false, test: { images: idxFile(IMAGES, [2, ROWS, COLUMNS], []).subarray(0, 9) } });
      await assertRejectsWith(mnist(dir), 'CORRUPT_FILE', 't10k-images-idx3-ubyte', 'header', 'found 9');
    });

    it('an image file with trailing bytes', async () => {
      const dir = join(root, 'trailing');
      await writeIdxSet(dir, { gzip: false, test: { images: idxFile(IMAGES, [2, ROWS, COLUMNS], pixels(3, 1)) } });
      await assertRejectsWith(mnist(dir), 'CORRUPT_FILE', 't10k-images-idx3-ubyte', 'trailing');
    });

    it('more labels than images', async () => {
      const dir = join(root, 'count-mismatch');
      await writeIdxSet(dir, { gzip: false, train: { labels: idxFile(LABELS, [7], [0, 1, 2, 3, 4, 5, 6]) } });
      await assertRejectsWith(mnist(dir), 'INVALID_DATA', 'train-labels-idx1-ubyte', 'expected 6 labels', 'found 7');
    });

    it('a label outside 0..9', async () => {
      const dir = join(root, 'label-range');
      await writeIdxSet(dir, { gzip: false, test: { labels: idxFile(LABELS, [2], [3, 12]) } });
      await assertRejectsWith(mnist(dir), 'INVALID_DATA', 't10k-labels-idx1-ubyte', '0..9', 'found 12', 'index 1');
    });

    it('a damaged gzip stream', async () => {
      const dir = join(root, 'bad-gzip');
      await writeIdxSet(dir, { gzip: true });
      const gz = gzipSync(idxFile(LABELS, [2], [7, 8]));
      gz.fill(0xff, 10, gz.length - 8);
      await writeFile(join(dir, 't10k-labels-idx1-ubyte.gz'), gz);
      await assertRejectsWith(mnist(dir), 'CORRUPT_FILE', 't10k-labels-idx1-ubyte.gz', 'gzip');
    });

    it('a missing file', async () => {
      const dir = join(root, 'incomplete');
      await mkdir(dir);
      await writeFile(join(dir, 'train-images-idx3-ubyte'), idxFile(IMAGES, [1, 1, 1], [0]));
      await assertRejectsWith(mnist(dir), 'FILE_NOT_FOUND', dir, 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte');
    });

    it('a directory that does not exist', async () => {
      const dir = join(root, 'absent');
      await assertRejectsWith(fashionMnist(dir), 'FILE_NOT_FOUND', dir);
    });
  });
});
