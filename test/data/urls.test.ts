import assert from 'node:assert/strict';
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { startStaticServer } from '../../src/browser/static-server.js';
import { embedded, embeddedDatasetDir } from '../../src/data/embedded.js';
import { idxDatasetFromUrl } from '../../src/data/urls.js';
import { KilnError } from '../../src/errors.js';
import { makeTempDir } from '../model/helpers.js';

/* idxDatasetFromUrl is how a browser page loads the embedded subset: fetch + DecompressionStream. */

test('the embedded subset fetched over HTTP equals the one read from disk', async () => {
  const server = await startStaticServer({ folders: [{ prefix: '/data/', dir: embeddedDatasetDir() }] });
  try {
    const [fetched, read] = await Promise.all([idxDatasetFromUrl(`${server.url}/data`), embedded()]);
    assert.deepEqual(fetched.classNames, read.classNames);
    for (const split of ['train', 'test'] as const) {
      assert.deepEqual(fetched[split].images.shape, read[split].images.shape);
      assert.deepEqual(fetched[split].images.data, read[split].images.data);
      assert.deepEqual(fetched[split].labels.data, read[split].labels.data);
    }
  } finally {
    await server.close();
  }
});

test('a missing file and a damaged gzip stream are named by URL', async () => {
  const { dir, remove } = await makeTempDir();
  for (const f of ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz']) await copyFile(path.join(embeddedDatasetDir(), f), path.join(dir, f));
  const server = await startStaticServer({ folders: [{ prefix: '/d/', dir }] });
  try {
    await assert.rejects(idxDatasetFromUrl(`${server.url}/d/`), (e: unknown) => e instanceof KilnError && e.code === 'FILE_NOT_FOUND' && /t10k-labels-idx1-ubyte\.gz \(HTTP 404\)/.test(e.message));
    await writeFile(path.join(dir, 't10k-labels-idx1-ubyte.gz'), Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3));
    await assert.rejects(idxDatasetFromUrl(`${server.url}/d/`), (e: unknown) => e instanceof KilnError && e.code === 'CORRUPT_FILE' && /t10k-labels-idx1-ubyte\.gz: expected a complete gzip stream/.test(e.message));
  } finally {
    await server.close();
    await remove();
  }
});
