/**
 * fetchDataset against local HTTP servers on 127.0.0.1 only: these tests never touch the network.
 * Each server serves test bytes whose checksums the test computes itself, through the `sources`
 * override of the built-in table.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { main } from '../../src/cli/main.js';
import { loadDataset } from '../../src/data/by-name.js';
import { DATASET_SOURCES, defaultDatasetDir, fetchDataset, type DatasetFile, type DatasetSource, type FetchOptions, type FetchProgress } from '../../src/data/fetch.js';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from '../../src/data/idx.js';
import { assertRejectsWith, cifarRecord, concat, idxFile, makeTempDir, tarArchive } from './fixtures.js';

interface Served {
  url: string;
  /** Every request in order: its path and Range header. */
  requests: { path: string; range: string | undefined }[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, index: number) => void;

async function serve(handler: Handler): Promise<Served> {
  const requests: Served['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ path: req.url ?? '', range: req.headers.range });
    handler(req, res, requests.length - 1);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/files/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface FileServerOptions {
  /** Honour `Range: bytes=N-` with 206 (default true). */
  ranges?: boolean;
  /** For request `index`, send the body only up to this absolute byte offset, then close the connection. */
  dropAt?: (index: number) => number | undefined;
  /** For request `index`, send up to this offset, then go silent without closing. */
  stallAt?: (index: number) => number | undefined;
}

function fileServer(files: Record<string, Uint8Array>, options: FileServerOptions = {}): Handler {
  return (req, res, index) => {
    const name = (req.url ?? '').replace(/^\/files\//, '');
    const body = files[name];
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    const range = options.ranges === false ? null : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (range) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { 'content-length': body.length });
    }
    const drop = options.dropAt?.(index);
    const stall = options.stallAt?.(index);
    if (drop !== undefined) res.write(body.subarray(start, drop), () => req.socket.end());
    else if (stall !== undefined) res.write(body.subarray(start, stall));
    else res.end(body.subarray(start));
  };
}

function describeFile(name: string, bytes: Uint8Array): DatasetFile {
  return {
    name,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    md5: createHash('md5').update(bytes).digest('hex'),
  };
}

/** Bytes that differ at every offset, so a resumed file stitched at the wrong place fails its checksum. */
function testBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** gzip as a plain Uint8Array, so it compares equal to the bytes read back. */
function gzip(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(bytes));
}

/** Four gzipped IDX files in MNIST's layout: 6 training and 4 test images of 28x28, labels 0..9. */
function mnistFiles(): Record<string, Uint8Array> {
  const images = (n: number) => gzip(idxFile(IDX_IMAGES_MAGIC, [n, 28, 28], testBytes(n * 28 * 28, n)));
  const labels = (n: number) => gzip(idxFile(IDX_LABELS_MAGIC, [n], Array.from({ length: n }, (_, i) => i % 10)));
  return {
    'train-images-idx3-ubyte.gz': images(6),
    'train-labels-idx1-ubyte.gz': labels(6),
    't10k-images-idx3-ubyte.gz': images(4),
    't10k-labels-idx1-ubyte.gz': labels(4),
  };
}

function sourceOf(url: string, files: Record<string, Uint8Array>): DatasetSource {
  return { baseUrl: url, files: Object.entries(files).map(([name, bytes]) => describeFile(name, bytes)) };
}

/** Quick retries so the tests do not sit through the default back-off. */
const FAST: FetchOptions = { retryDelayMs: 0, connectTimeoutMs: 2000, idleTimeoutMs: 2000 };

/**
 * A resolver for made-up host names that counts its calls: each connection attempt resolves the
 * host once, so the count says how many attempts were made, whatever the machine's load, where a
 * stopwatch could only guess at retries from their back-off. It answers `address`, fails with
 * `error`, or (neither given) never answers.
 */
function countingLookup(answer: { address?: string; error?: string }): { lookup: FetchOptions['lookup']; calls: () => number } {
  let calls = 0;
  const lookup = (_host: string, options: { all?: boolean }, callback: (error: Error | null, address?: unknown, family?: number) => void) => {
    calls++;
    if (answer.error) callback(Object.assign(new Error(`getaddrinfo ${answer.error} example.invalid`), { code: answer.error }));
    else if (answer.address) {
      if (options?.all) callback(null, [{ address: answer.address, family: 4 }]);
      else callback(null, answer.address, 4);
    }
  };
  return { lookup: lookup as unknown as FetchOptions['lookup'], calls: () => calls };
}

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('fetchDataset', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  let count = 0;
  const freshDir = () => join(temp.dir, `set-${count++}`);
  before(async () => {
    temp = await makeTempDir();
  });
  after(async () => {
    await temp.remove();
  });

  it('downloads every file, verifies it, and leaves files the mnist loader reads', async () => {
    const files = mnistFiles();
    const server = await serve(fileServer(files));
    try {
      const dir = freshDir();
      const events: FetchProgress[] = [];
      const result = await fetchDataset('mnist', { ...FAST, dir, sources: { mnist: sourceOf(server.url, files) }, onProgress: (e) => events.push(e) });
      assert.deepEqual(result.downloaded, Object.keys(files));
      assert.equal(result.datasetSpec, `mnist:${dir}`);
      assert.deepEqual((await readdir(dir)).sort(), Object.keys(files).sort(), 'no .part files left behind');
      for (const [name, bytes] of Object.entries(files)) assert.deepEqual(new Uint8Array(await readFile(join(dir, name))), bytes);
      const verified = events.filter((e) => e.phase === 'verified');
      assert.deepEqual(verified.map((e) => e.file), Object.keys(files));
      const lastDownload = events.filter((e) => e.phase === 'download' && e.file === 'train-images-idx3-ubyte.gz').at(-1);
      assert.equal(lastDownload?.phase === 'download' && lastDownload.receivedBytes, files['train-images-idx3-ubyte.gz']!.length);

      const data = await loadDataset(result.datasetSpec);
      assert.deepEqual(data.train.images.shape, [6, 28, 28, 1]);
      assert.deepEqual(Array.from(data.test.labels.data), [0, 1, 2, 3]);
    } finally {
      await server.close();
    }
  });

  it('verifies files already in place without any request', async () => {
    const files = mnistFiles();
    const server = await serve(fileServer(files));
    try {
      const dir = freshDir();
      const sources = { mnist: sourceOf(server.url, files) };
      await fetchDataset('mnist', { ...FAST, dir, sources });
      const before = server.requests.length;
      const events: FetchProgress[] = [];
      const again = await fetchDataset('mnist', { ...FAST, dir, sources, onProgress: (e) => events.push(e) });
      assert.equal(server.requests.length, before);
      assert.deepEqual(again.downloaded, []);
      assert.ok(events.every((e) => e.phase === 'verified' && e.cached));
    } finally {
      await server.close();
    }
  });

  it('resumes a .part file with a Range request when the server answers 206', async () => {
    const body = testBytes(300_000);
    const files = { 'train-images-idx3-ubyte.gz': body };
    const server = await serve(fileServer(files));
    try {
      const dir = freshDir();
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'train-images-idx3-ubyte.gz.part'), body.subarray(0, 120_000));
      const events: FetchProgress[] = [];
      await fetchDataset('mnist', { ...FAST, dir, sources: { mnist: sourceOf(server.url, files) }, onProgress: (e) => events.push(e) });
      assert.deepEqual(server.requests.map((r) => r.range), ['bytes=120000-']);
      assert.deepEqual(new Uint8Array(await readFile(join(dir, 'train-images-idx3-ubyte.gz'))), body);
      const first = events.find((e) => e.phase === 'download');
      assert.equal(first?.phase === 'download' && first.resumedFrom, 120_000);
      assert.ok(!existsSync(join(dir, 'train-images-idx3-ubyte.gz.part')));
    } finally {
      await server.close();
    }
  });

  it('starts over from zero when the server ignores Range and answers 200', async () => {
    const body = testBytes(200_000, 7);
    const files = { 'train-labels-idx1-ubyte.gz': body };
    const server = await serve(fileServer(files, { ranges: false }));
    try {
      const dir = freshDir();
      await mkdir(dir, { recursive: true });
      // A stale prefix that does not even match: appending to it would corrupt the file.
      await writeFile(join(dir, 'train-labels-idx1-ubyte.gz.part'), testBytes(50_000, 99));
      await fetchDataset('mnist', { ...FAST, dir, sources: { mnist: sourceOf(server.url, files) } });
      assert.deepEqual(server.requests.map((r) => r.range), ['bytes=50000-']);
      assert.deepEqual(new Uint8Array(await readFile(join(dir, 'train-labels-idx1-ubyte.gz'))), body);
    } finally {
      await server.close();
    }
  });

  it('retries a connection dropped mid-file and resumes from what the .part file holds', async () => {
    const body = testBytes(400_000, 3);
    const files = { 't10k-images-idx3-ubyte.gz': body };
    const server = await serve(fileServer(files, { dropAt: (i) => (i === 0 ? 150_000 : undefined) }));
    try {
      const dir = freshDir();
      await fetchDataset('mnist', { ...FAST, dir, sources: { mnist: sourceOf(server.url, files) } });
      assert.equal(server.requests.length, 2);
      assert.equal(server.requests[0]!.range, undefined);
      // It resumes rather than restarts; a little short of 150,000 when the break discarded what was
      // still buffered in the paused response, which the next request simply asks for again.
      const resumedAt = Number(/^bytes=(\d+)-$/.exec(server.requests[1]!.range ?? '')?.[1]);
      assert.ok(resumedAt > 0 && resumedAt <= 150_000, `resumed with ${server.requests[1]!.range}`);
      assert.deepEqual(new Uint8Array(await readFile(join(dir, 't10k-images-idx3-ubyte.gz'))), body);
    } finally {
      await server.close();
    }
  });

  it('drops a stalled connection after the idle timeout and resumes', async () => {
    const body = testBytes(100_000, 5);
    const files = { 't10k-labels-idx1-ubyte.gz': body };
    const server = await serve(fileServer(files, { stallAt: (i) => (i === 0 ? 40_000 : undefined) }));
    try {
      const dir = freshDir();
      await fetchDataset('mnist', { ...FAST, idleTimeoutMs: 300, dir, sources: { mnist: sourceOf(server.url, files) } });
      assert.deepEqual(server.requests.map((r) => r.range), [undefined, 'bytes=40000-']);
      assert.deepEqual(new Uint8Array(await readFile(join(dir, 't10k-labels-idx1-ubyte.gz'))), body);
    } finally {
      await server.close();
    }
  });

  it('follows redirects to where the file really is', async () => {
    const body = testBytes(10_000, 11);
    const files = fileServer({ 'moved.gz': body });
    const server = await serve((req, res, i) => {
      if (req.url === '/files/train-images-idx3-ubyte.gz') res.writeHead(302, { location: '/files/moved.gz' }).end();
      else files(req, res, i);
    });
    try {
      const dir = freshDir();
      await fetchDataset('mnist', { ...FAST, dir, sources: { mnist: { baseUrl: server.url, files: [describeFile('train-images-idx3-ubyte.gz', body)] } } });
      assert.deepEqual(new Uint8Array(await readFile(join(dir, 'train-images-idx3-ubyte.gz'))), body);
    } finally {
      await server.close();
    }
  });

  it('rejects a file whose checksum is wrong and keeps neither the file nor its .part', async () => {
    const body = testBytes(20_000, 13);
    const server = await serve(fileServer({ 'train-images-idx3-ubyte.gz': body }));
    try {
      const dir = freshDir();
      const wrong = { ...describeFile('train-images-idx3-ubyte.gz', body), sha256: '0'.repeat(64) };
      await assertRejectsWith(
        fetchDataset('mnist', { ...FAST, dir, sources: { mnist: { baseUrl: server.url, files: [wrong] } } }),
        'CORRUPT_FILE',
        'train-images-idx3-ubyte.gz',
        `expected SHA-256 ${'0'.repeat(64)}`,
      );
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await server.close();
    }
  });

  it('checks the MD5 too when the table gives one', async () => {
    const body = testBytes(5_000, 17);
    const server = await serve(fileServer({ 'train-images-idx3-ubyte.gz': body }));
    try {
      const dir = freshDir();
      const wrong = { ...describeFile('train-images-idx3-ubyte.gz', body), md5: 'f'.repeat(32) };
      await assertRejectsWith(fetchDataset('mnist', { ...FAST, dir, sources: { mnist: { baseUrl: server.url, files: [wrong] } } }), 'CORRUPT_FILE', 'expected MD5');
      assert.ok(!existsSync(join(dir, 'train-images-idx3-ubyte.gz')));
    } finally {
      await server.close();
    }
  });

  it('refuses a file already in place that does not match, and leaves it alone', async () => {
    const body = testBytes(5_000, 19);
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'train-images-idx3-ubyte.gz'), 'something else');
    await assertRejectsWith(
      fetchDataset('mnist', { ...FAST, dir, sources: { mnist: { baseUrl: 'http://127.0.0.1:1/', files: [describeFile('train-images-idx3-ubyte.gz', body)] } } }),
      'CORRUPT_FILE',
      join(dir, 'train-images-idx3-ubyte.gz'),
      'Delete it',
    );
    assert.equal(await readFile(join(dir, 'train-images-idx3-ubyte.gz'), 'utf8'), 'something else');
  });

  it('fails fast on a refused connection, naming the directory and files to place by hand', async () => {
    const port = await closedPort();
    const dir = freshDir();
    const resolver = countingLookup({ address: '127.0.0.1' });
    await assertRejectsWith(
      fetchDataset('mnist', { dir, baseUrl: `http://mirror.invalid:${port}/mnist/`, lookup: resolver.lookup }),
      'IO_ERROR',
      'cannot reach mirror.invalid',
      'ECONNREFUSED',
      ...DATASET_SOURCES.mnist.files.map((f) => join(dir, f.name)),
      `http://mirror.invalid:${port}/mnist/train-images-idx3-ubyte.gz`,
      'kiln data fetch mnist',
    );
    assert.equal(resolver.calls(), 1, 'one attempt: no retries with back-off for an unreachable host');
    assert.ok(!existsSync(join(dir, 'train-images-idx3-ubyte.gz')));
  });

  it("mentions Debian's dataset-fashion-mnist package when Fashion-MNIST cannot be downloaded", async () => {
    const port = await closedPort();
    await assertRejectsWith(
      fetchDataset('fashion-mnist', { dir: freshDir(), baseUrl: `http://127.0.0.1:${port}/` }),
      'IO_ERROR',
      'apt-get install dataset-fashion-mnist',
      't10k-labels-idx1-ubyte.gz',
    );
  });

  it('fails at once when DNS cannot resolve the host', async () => {
    const resolver = countingLookup({ error: 'ENOTFOUND' });
    await assertRejectsWith(fetchDataset('cifar10', { dir: freshDir(), baseUrl: 'http://example.invalid/', lookup: resolver.lookup }), 'IO_ERROR', 'ENOTFOUND', 'cifar-10-binary.tar.gz');
    assert.equal(resolver.calls(), 1, 'one attempt, no retries');
  });

  it('gives up on a host that does not answer within the connect timeout', async () => {
    const resolver = countingLookup({});
    await assertRejectsWith(
      fetchDataset('mnist', { dir: freshDir(), baseUrl: 'http://unreachable.invalid/', lookup: resolver.lookup, connectTimeoutMs: 200 }),
      'IO_ERROR',
      'no connection within 200 ms',
    );
    assert.equal(resolver.calls(), 1, 'one attempt, no retries');
  });

  it('does not retry an HTTP 404, and says where to put the file instead', async () => {
    const server = await serve(fileServer({}));
    try {
      const dir = freshDir();
      await assertRejectsWith(
        fetchDataset('mnist', { ...FAST, dir, sources: { mnist: { baseUrl: server.url, files: [describeFile('train-images-idx3-ubyte.gz', testBytes(10))] } } }),
        'IO_ERROR',
        'HTTP 404',
        join(dir, 'train-images-idx3-ubyte.gz'),
      );
      assert.equal(server.requests.length, 1);
    } finally {
      await server.close();
    }
  });

  it('fetches the CIFAR-10 archive, unpacks it, and cifar10:<dir> loads it', async () => {
    const batch = (first: number) => concat(...Array.from({ length: 3 }, (_, r) => cifarRecord((first + r) % 10, first + r)));
    const archive = gzip(
      tarArchive([
        { name: 'cifar-10-batches-bin', type: '5' },
        ...[1, 2, 3, 4, 5].map((i) => ({ name: `cifar-10-batches-bin/data_batch_${i}.bin`, data: batch(3 * i) })),
        { name: 'cifar-10-batches-bin/test_batch.bin', data: batch(0) },
        { name: 'cifar-10-batches-bin/batches.meta.txt', data: new TextEncoder().encode('airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n') },
      ]),
    );
    const files = { 'cifar-10-binary.tar.gz': archive };
    const server = await serve(fileServer(files));
    try {
      const dir = freshDir();
      const events: FetchProgress[] = [];
      const result = await fetchDataset('cifar10', { ...FAST, dir, sources: { cifar10: sourceOf(server.url, files) }, onProgress: (e) => events.push(e) });
      assert.equal(result.datasetSpec, `cifar10:${dir}`);
      assert.ok(events.some((e) => e.phase === 'unpacked' && !e.cached && e.dir === join(dir, 'cifar-10-batches-bin')));
      assert.deepEqual((await readdir(join(dir, 'cifar-10-batches-bin'))).sort(), ['batches.meta.txt', 'data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin']);
      const data = await loadDataset(result.datasetSpec);
      assert.deepEqual(data.train.images.shape, [15, 32, 32, 3]);
      assert.deepEqual(Array.from(data.test.labels.data), [0, 1, 2]);

      const again: FetchProgress[] = [];
      await fetchDataset('cifar10', { ...FAST, dir, sources: { cifar10: sourceOf(server.url, files) }, onProgress: (e) => again.push(e) });
      assert.equal(server.requests.length, 1);
      assert.ok(again.some((e) => e.phase === 'unpacked' && e.cached));
    } finally {
      await server.close();
    }
  });

  it('rejects names it cannot fetch', async () => {
    await assertRejectsWith(fetchDataset('imagenet'), 'INVALID_ARGUMENT', 'cifar10, mnist, fashion-mnist');
  });

  it('keeps data sets under KILN_DATA_DIR when it is set, else under ~/.cache/kiln/datasets', () => {
    const saved = process.env.KILN_DATA_DIR;
    try {
      process.env.KILN_DATA_DIR = '/srv/kiln-data';
      assert.equal(defaultDatasetDir('mnist'), '/srv/kiln-data/mnist');
      delete process.env.KILN_DATA_DIR;
      assert.match(defaultDatasetDir('cifar10'), /[/\\]\.cache[/\\]kiln[/\\]datasets[/\\]cifar10$/);
    } finally {
      if (saved === undefined) delete process.env.KILN_DATA_DIR;
      else process.env.KILN_DATA_DIR = saved;
    }
  });

  it('carries a SHA-256 and an MD5 for every built-in file', () => {
    for (const [name, source] of Object.entries(DATASET_SOURCES)) {
      for (const file of source.files) {
        assert.match(file.sha256 ?? '', /^[0-9a-f]{64}$/, `${name} ${file.name}`);
        assert.match(file.md5 ?? '', /^[0-9a-f]{32}$/, `${name} ${file.name}`);
      }
    }
  });
});

describe('kiln data fetch', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  before(async () => {
    temp = await makeTempDir();
  });
  after(async () => {
    await temp.remove();
  });

  async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv, (l) => out.push(l), (l) => err.push(l));
    return { code, out, err };
  }

  it('reports an unreachable host as an error with the manual-placement hint', async () => {
    const port = await closedPort();
    const dir = join(temp.dir, 'mnist');
    const { code, out, err } = await run(['data', 'fetch', 'mnist', '--dir', dir, '--base-url', `http://127.0.0.1:${port}/`]);
    assert.equal(code, 1);
    assert.match(out[0]!, new RegExp(`Fetching mnist into ${dir.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}`));
    assert.match(err.join('\n'), /kiln data: error \[IO_ERROR\]: cannot download/);
    assert.ok(err.join('\n').includes(join(dir, 't10k-images-idx3-ubyte.gz')));
  });

  it('downloads with progress, then names the --dataset to train with', async () => {
    const files = mnistFiles();
    const server = await serve(fileServer(files));
    // The command has no sources option (users never need one), so the table itself points at the test server.
    const table = DATASET_SOURCES as Record<string, DatasetSource>;
    const saved = table.mnist!;
    table.mnist = sourceOf(server.url, files);
    try {
      const dir = join(temp.dir, 'mnist-ok');
      const { code, out } = await run(['data', 'fetch', 'mnist', '--dir', dir]);
      assert.equal(code, 0);
      assert.equal(out[0], `Fetching mnist into ${dir}`);
      assert.equal(out.filter((l) => / verified \(.*SHA-256 [0-9a-f]{64}\)$/.test(l)).length, 4);
      assert.equal(out.at(-2), `Done: 4 files in ${dir} (4 downloaded, 0 already present)`);
      assert.equal(out.at(-1), `Train with: kiln train --dataset mnist:${dir}`);
      const again = await run(['data', 'fetch', 'mnist', '--dir', dir]);
      assert.equal(again.out.filter((l) => l.includes('already present, verified')).length, 4);
    } finally {
      table.mnist = saved;
      await server.close();
    }
  });

  it('rejects a missing action, a missing name and an unknown name', async () => {
    assert.match((await run(['data'])).err.join('\n'), /expected the action 'fetch'/);
    assert.match((await run(['data', 'fetch'])).err.join('\n'), /expected one data set name/);
    const unknown = await run(['data', 'fetch', 'svhn']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err.join('\n'), /cannot fetch 'svhn'/);
  });

  it('is listed in the help', async () => {
    const { out } = await run(['--help']);
    assert.match(out.join('\n'), /data\s+Download a data set/);
  });
});
