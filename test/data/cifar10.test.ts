import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CIFAR10_CLASS_NAMES, cifar10 } from '../../src/data/cifar10.js';
import type { ImageDataset } from '../../src/data/types.js';
import { assertRejectsWith, cifarPixel, cifarRecord, concat, makeTempDir, tarArchive } from './fixtures.js';

const TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
const RECORDS_PER_TRAIN_FILE = 2;
const TEST_RECORDS = 3;
const META = 'alpha\nbeta\ngamma\ndelta\nepsilon\nzeta\neta\ntheta\niota\nkappa\n\n';

/** Every record gets a distinct image number; training labels cycle through 0..9. */
function batchFiles(): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  let image = 0;
  TRAIN_FILES.forEach((name) => {
    const records = [];
    for (let r = 0; r < RECORDS_PER_TRAIN_FILE; r++, image++) records.push(cifarRecord(image % 10, image));
    files.set(name, concat(...records));
  });
  files.set('test_batch.bin', concat(cifarRecord(9, 100), cifarRecord(0, 101), cifarRecord(5, 102)));
  return files;
}

async function writeBatches(dir: string, overrides: Record<string, Uint8Array | null> = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of batchFiles()) {
    const override = overrides[name];
    if (override === null) continue;
    await writeFile(join(dir, name), override ?? bytes);
  }
}

function assertPixelsMatch(dataset: ImageDataset): void {
  const { images } = dataset.train;
  const imageLength = 32 * 32 * 3;
  for (const image of [0, 3, 9]) {
    for (const [row, column] of [[0, 0], [5, 17], [31, 31]] as const) {
      for (let channel = 0; channel < 3; channel++) {
        const at = image * imageLength + (row * 32 + column) * 3 + channel;
        assert.equal(images.data[at], Math.fround(cifarPixel(image, channel, row, column) / 255), `image ${image} (${row}, ${column}, ${channel})`);
      }
    }
  }
  const test = dataset.test.images;
  assert.equal(test.data[2 * imageLength + (4 * 32 + 6) * 3 + 1], Math.fround(cifarPixel(102, 1, 4, 6) / 255));
}

function assertShapes(dataset: ImageDataset): void {
  const trainCount = TRAIN_FILES.length * RECORDS_PER_TRAIN_FILE;
  assert.deepEqual(dataset.train.images.shape, [trainCount, 32, 32, 3]);
  assert.equal(dataset.train.images.dtype, 'float32');
  assert.deepEqual(dataset.train.labels.shape, [trainCount]);
  assert.equal(dataset.train.labels.dtype, 'int32');
  assert.deepEqual(Array.from(dataset.train.labels.data), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(dataset.test.images.shape, [TEST_RECORDS, 32, 32, 3]);
  assert.deepEqual(Array.from(dataset.test.labels.data), [9, 0, 5]);
}

describe('cifar10', () => {
  let root: string;
  let remove: () => Promise<void>;
  before(async () => ({ dir: root, remove } = await makeTempDir()));
  after(() => remove());

  it('reads a directory of binary batches, converting colour planes to channel-last pixels', async () => {
    const dir = join(root, 'plain');
    await writeBatches(dir);
    await writeFile(join(dir, 'batches.meta.txt'), META);
    const dataset = await cifar10(dir);
    assertShapes(dataset);
    assertPixelsMatch(dataset);
    assert.deepEqual(dataset.classNames, ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa']);
  });

  it('falls back to the standard class names without batches.meta.txt', async () => {
    const dir = join(root, 'no-meta');
    await writeBatches(dir);
    assert.deepEqual((await cifar10(dir)).classNames, CIFAR10_CLASS_NAMES);
  });

  it('accepts the folder that holds cifar-10-batches-bin/', async () => {
    const dir = join(root, 'parent');
    await writeBatches(join(dir, 'cifar-10-batches-bin'));
    assertShapes(await cifar10(dir));
  });

  it('reads the cifar-10-binary.tar.gz archive, and a plain .tar', async () => {
    const entries = [
      { name: 'cifar-10-batches-bin/', type: '5' },
      ...[...batchFiles()].map(([name, data]) => ({ name: `cifar-10-batches-bin/${name}`, data })),
      { name: 'cifar-10-batches-bin/batches.meta.txt', data: new TextEncoder().encode(META) },
      { name: 'cifar-10-batches-bin/readme.html', data: new TextEncoder().encode('<html></html>') },
    ];
    const tar = tarArchive(entries);
    const gzPath = join(root, 'cifar-10-binary.tar.gz');
    await writeFile(gzPath, gzipSync(tar));
    const fromGzip = await cifar10(gzPath);
    assertShapes(fromGzip);
    assertPixelsMatch(fromGzip);
    assert.equal(fromGzip.classNames[9], 'kappa');

    const tarPath = join(root, 'cifar-10-binary.tar');
    await writeFile(tarPath, tar);
    assertShapes(await cifar10(tarPath));
  });

  describe('rejects malformed data', () => {
    it('a batch whose size is not a multiple of 3073 bytes', async () => {
      const dir = join(root, 'ragged');
      await writeBatches(dir, { 'data_batch_2.bin': concat(cifarRecord(1, 0), new Uint8Array(100)) });
      await assertRejectsWith(cifar10(dir), 'CORRUPT_FILE', 'data_batch_2.bin', '3073', '3173 bytes');
    });

    it('a label outside 0..9', async () => {
      const dir = join(root, 'bad-label');
      await writeBatches(dir, { 'test_batch.bin': concat(cifarRecord(3, 0), cifarRecord(10, 1)) });
      await assertRejectsWith(cifar10(dir), 'INVALID_DATA', 'test_batch.bin', '0..9', 'found 10', 'record 1');
    });

    it('a missing batch file', async () => {
      const dir = join(root, 'missing');
      await writeBatches(dir, { 'data_batch_3.bin': null });
      await assertRejectsWith(cifar10(dir), 'FILE_NOT_FOUND', 'data_batch_3.bin', dir);
    });

    it('a source that does not exist', async () => {
      const path = join(root, 'nowhere');
      await assertRejectsWith(cifar10(path), 'FILE_NOT_FOUND', path);
    });

    it('a class-name file without ten names', async () => {
      const dir = join(root, 'short-meta');
      await writeBatches(dir);
      await writeFile(join(dir, 'batches.meta.txt'), 'cat\ndog\n');
      await assertRejectsWith(cifar10(dir), 'INVALID_DATA', 'batches.meta.txt', 'expected 10', 'found 2');
    });

    it('a truncated gzip archive', async () => {
      const path = join(root, 'truncated.tar.gz');
      const gz = gzipSync(tarArchive([...batchFiles()].map(([name, data]) => ({ name, data }))));
      await writeFile(path, gz.subarray(0, gz.length >> 1));
      await assertRejectsWith(cifar10(path), 'CORRUPT_FILE', path, 'gzip');
    });

    it('an archive that is not a tar', async () => {
      const path = join(root, 'not-a-tar.tar.gz');
      await writeFile(path, gzipSync(new Uint8Array(2048).fill(7)));
      await assertRejectsWith(cifar10(path), 'CORRUPT_FILE', path, 'checksum');
    });

    it('an archive without the batch files', async () => {
      const path = join(root, 'empty.tar.gz');
      await writeFile(path, gzipSync(tarArchive([{ name: 'cifar-10-batches-bin/readme.html', data: new Uint8Array(3) }])));
      await assertRejectsWith(cifar10(path), 'FILE_NOT_FOUND', 'data_batch_1.bin', path);
    });
  });
});
