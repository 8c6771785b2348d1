import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { readIdxPair } from '../../src/data/mnist.js';
import { streamCifar10, streamIdx } from '../../src/data/streaming.js';
import type { StreamingDataset } from '../../src/data/streaming.js';
import { assertRejectsWith, cifarPixel, cifarRecord, concat, idxFile, makeTempDir } from './fixtures.js';

const IMAGES = 0x00000803;
const LABELS = 0x00000801;

async function collect(dataset: StreamingDataset): Promise<{ labels: number[]; pixels: number[]; sizes: number[] }> {
  const out = { labels: [] as number[], pixels: [] as number[], sizes: [] as number[] };
  for await (const batch of dataset) {
    out.sizes.push(batch.y.size);
    for (const label of batch.y.data) out.labels.push(label);
    for (const value of batch.x.data) out.pixels.push(value);
  }
  return out;
}

describe('streaming data sets', () => {
  let root: string;
  let remove: () => Promise<void>;
  // More records than one read fetches, so reads cross record and chunk boundaries.
  const cifarCounts = [300, 7];
  const idxCount = 600;
  const idxLabels = Array.from({ length: idxCount }, (_, i) => (i * 7) % 10);
  const idxPixels = Array.from({ length: idxCount * 12 }, (_, i) => (i * 13) % 256);
  let cifarFiles: string[];

  before(async () => {
    ({ dir: root, remove } = await makeTempDir());
    cifarFiles = [];
    let image = 0;
    for (const [f, count] of cifarCounts.entries()) {
      const records = [];
      for (let r = 0; r < count; r++, image++) records.push(cifarRecord(image % 10, image));
      const path = join(root, `data_batch_${f + 1}.bin`);
      await writeFile(path, concat(...records));
      cifarFiles.push(path);
    }
    await writeFile(join(root, 'images'), idxFile(IMAGES, [idxCount, 4, 3], idxPixels));
    await writeFile(join(root, 'labels'), idxFile(LABELS, [idxCount], idxLabels));
    await writeFile(join(root, 'images.gz'), gzipSync(idxFile(IMAGES, [idxCount, 4, 3], idxPixels)));
    await writeFile(join(root, 'labels.gz'), gzipSync(idxFile(LABELS, [idxCount], idxLabels)));
  });
  after(() => remove());

  it('streams CIFAR-10 batch files in file order as channel-last batches', async () => {
    const dataset = await streamCifar10(cifarFiles, { batchSize: 64 });
    assert.equal(dataset.size, 307);
    assert.deepEqual(dataset.imageShape, [32, 32, 3]);
    let seen = 0;
    for await (const batch of dataset) {
      assert.deepEqual(batch.x.shape, [batch.y.size, 32, 32, 3]);
      for (let row = 0; row < batch.y.size; row++, seen++) {
        assert.equal(batch.y.data[row], seen % 10);
        const at = row * 3072 + (7 * 32 + 30) * 3 + 2;
        assert.equal(batch.x.data[at], Math.fround(cifarPixel(seen, 2, 7, 30) / 255));
      }
    }
    assert.equal(seen, 307);
  });

  it('streams raw and gzipped IDX files with the values the in-memory loader gives', async () => {
    const whole = await readIdxPair(join(root, 'images'), join(root, 'labels'), 10);
    for (const suffix of ['', '.gz']) {
      const dataset = await streamIdx(join(root, `images${suffix}`), join(root, `labels${suffix}`), { batchSize: 100 });
      assert.equal(dataset.size, idxCount);
      assert.deepEqual(dataset.imageShape, [4, 3, 1]);
      const { labels, pixels, sizes } = await collect(dataset);
      assert.deepEqual(sizes, [100, 100, 100, 100, 100, 100]);
      assert.deepEqual(labels, Array.from(whole.labels.data));
      assert.deepEqual(pixels, Array.from(whole.images.data));
    }
  });

  it('shuffles through a buffer: every example once, reproducible, different each pass', async () => {
    const options = { batchSize: 32, shuffleBuffer: 128, seed: 3 };
    const dataset = await streamIdx(join(root, 'images.gz'), join(root, 'labels.gz'), options);
    const first = await collect(dataset);
    const second = await collect(dataset);
    const again = await collect(await streamIdx(join(root, 'images.gz'), join(root, 'labels.gz'), options));
    assert.notDeepEqual(first.labels, idxLabels);
    assert.deepEqual([...first.labels].sort(), [...idxLabels].sort());
    assert.equal(first.pixels.length, idxPixels.length);
    assert.deepEqual(again.labels, first.labels);
    assert.notDeepEqual(second.labels, first.labels);
  });

  it('applies augmentation and drops the remainder when asked', async () => {
    const dataset = await streamCifar10(cifarFiles, { batchSize: 100, dropRemainder: true, augment: { cropPadding: 4 } });
    const { sizes, pixels } = await collect(dataset);
    assert.deepEqual(sizes, [100, 100, 100]);
    assert.ok(pixels.some((v) => v === 0));
  });

  it('can stop mid-pass and start again', async () => {
    const dataset = await streamIdx(join(root, 'images.gz'), join(root, 'labels.gz'), { batchSize: 10 });
    for await (const batch of dataset) {
      assert.equal(batch.y.size, 10);
      break;
    }
    assert.equal((await collect(dataset)).labels.length, idxCount);
  });

  describe('rejects malformed files', () => {
    it('a CIFAR-10 file that is not whole records', async () => {
      const path = join(root, 'ragged.bin');
      await writeFile(path, new Uint8Array(3073 * 2 + 10));
      await assertRejectsWith(streamCifar10(path, { batchSize: 8 }), 'CORRUPT_FILE', path, '3073', '10 bytes over');
    });

    it('a CIFAR-10 label out of range, when its record is reached', async () => {
      const path = join(root, 'bad-label.bin');
      await writeFile(path, concat(cifarRecord(1, 0), cifarRecord(11, 1)));
      await assertRejectsWith(collect(await streamCifar10(path, { batchSize: 8 })), 'INVALID_DATA', path, 'found 11');
    });

    it('IDX label and image counts that differ', async () => {
      const labels = join(root, 'labels-short');
      await writeFile(labels, idxFile(LABELS, [5], [0, 1, 2, 3, 4]));
      await assertRejectsWith(streamIdx(join(root, 'images'), labels, { batchSize: 8 }), 'INVALID_DATA', labels, `expected ${idxCount}`, 'found 5');
    });

    it('an IDX file with the wrong magic number', async () => {
      await assertRejectsWith(streamIdx(join(root, 'labels'), join(root, 'labels'), { batchSize: 8 }), 'CORRUPT_FILE', join(root, 'labels'), '0x00000803');
    });

    it('an IDX image file shorter than its header says', async () => {
      const images = join(root, 'images-truncated.gz');
      await writeFile(images, gzipSync(idxFile(IMAGES, [idxCount, 4, 3], idxPixels.slice(0, 4000))));
      const dataset = await streamIdx(images, join(root, 'labels'), { batchSize: 50 });
      await assertRejectsWith(collect(dataset), 'CORRUPT_FILE', images, 'truncated');
    });

    it('a gzip stream cut short', async () => {
      const images = join(root, 'images-cut.gz');
      const gz = gzipSync(idxFile(IMAGES, [idxCount, 4, 3], idxPixels));
      await writeFile(images, gz.subarray(0, gz.length - 200));
      const dataset = await streamIdx(images, join(root, 'labels'), { batchSize: 50 });
      await assertRejectsWith(collect(dataset), 'CORRUPT_FILE', images, 'gzip');
    });

    it('a missing file', async () => {
      const path = join(root, 'absent.bin');
      await assertRejectsWith(streamCifar10([cifarFiles[0]!, path], { batchSize: 8 }), 'FILE_NOT_FOUND', path);
    });
  });
});
