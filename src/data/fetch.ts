import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join, posix, resolve } from 'node:path';
import type { LookupFunction } from 'node:net';
import { KilnError } from '../errors.js';
import { CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES } from './cifar10.js';
import { digestFile, type FileDigest } from './checksum.js';
import { downloadResumable, isNetworkFailure, isUnreachable } from './download.js';
import { fileExists, gunzipIfNeeded, readBytes } from './files.js';
import { DEBIAN_FASHION_MNIST_DIR } from './mnist.js';
import { DATASET_SOURCES, type DatasetFile, type DatasetSource, FETCHABLE_DATASETS, type FetchableDataset, fileUrl, isFetchableDataset } from './sources.js';
import { readTar } from './tar.js';

export { DATASET_SOURCES, FETCHABLE_DATASETS, isFetchableDataset, type DatasetFile, type DatasetSource, type FetchableDataset } from './sources.js';

/** What `onProgress` hears, one file at a time. */
export type FetchProgress =
  /** Bytes arriving; `resumedFrom` > 0 when an earlier run's .part file is being continued. */
  | {
      /** Which event this is. */
      phase: 'download';
      /** The file's name. */
      file: string;
      /** Where it comes from. */
      url: string;
      /** Bytes received so far, `resumedFrom` included. */
      receivedBytes: number;
      /** The file's size, when known. */
      totalBytes: number | undefined;
      /** Bytes an earlier, interrupted run had already received. */
      resumedFrom: number;
    }
  /** The file's checksums matched; `cached` when it was already in place and nothing was downloaded. */
  | {
      /** Which event this is. */
      phase: 'verified';
      /** The file's name. */
      file: string;
      /** Its absolute path. */
      path: string;
      /** Its size. */
      bytes: number;
      /** Its SHA-256, hex. */
      sha256: string;
      /** True when the file was already there and only checked. */
      cached: boolean;
    }
  /** An archive's contents written out (CIFAR-10); `cached` when they were already there. */
  | {
      /** Which event this is. */
      phase: 'unpacked';
      /** The archive's name. */
      file: string;
      /** The folder its contents went to. */
      dir: string;
      /** True when they were already there. */
      cached: boolean;
    };

/** Options of `fetchDataset` (`kiln data fetch`). */
export interface FetchOptions {
  /** The data set directory. Default `defaultDatasetDir(name)`. */
  dir?: string;
  /** Called as each file downloads, is verified or unpacked. */
  onProgress?: (event: FetchProgress) => void;
  /** A mirror to download from instead of the canonical address: the folder URL holding the same file names. */
  baseUrl?: string;
  /** Replaces entries of the built-in table of addresses, files and checksums (tests, private mirrors). */
  sources?: Partial<Record<FetchableDataset, DatasetSource>>;
  /** Give up on a host that has not accepted the connection after this long, DNS included. Default 10 s. */
  connectTimeoutMs?: number;
  /** Drop and resume a connection that delivers nothing for this long. Default 30 s. */
  idleTimeoutMs?: number;
  /** Further attempts per file after a dropped connection. Default 5. */
  retries?: number;
  /** Pause before the k-th retry is k times this. Default 1 s. */
  retryDelayMs?: number;
  /** Resolves host names (default: the system resolver). */
  lookup?: LookupFunction;
}

/** What `fetchDataset` did and where the files are. */
export interface FetchResult {
  /** The data set fetched. */
  name: FetchableDataset;
  /** The data set directory, absolute. */
  dir: string;
  /** Absolute paths of the verified files. */
  files: string[];
  /** Names of the files this call downloaded (the others were already in place). */
  downloaded: string[];
  /** What `loadDataset` and `kiln train --dataset` take to read the fetched files. */
  datasetSpec: string;
}

/** The folder CIFAR-10's archive unpacks to; the loader looks for it inside the directory it is given. */
const CIFAR10_FOLDER = 'cifar-10-batches-bin';

/**
 * Where `fetchDataset` keeps a data set unless told otherwise: `$KILN_DATA_DIR/<name>`, or
 * `~/.cache/kiln/datasets/<name>` when KILN_DATA_DIR is unset.
 */
export function defaultDatasetDir(name: string): string {
  const root = process.env.KILN_DATA_DIR || join(homedir(), '.cache', 'kiln', 'datasets');
  return resolve(root, name);
}

/** The error for a name outside FETCHABLE_DATASETS. */
export function unknownDatasetError(name: string): KilnError {
  return new KilnError(
    'INVALID_ARGUMENT',
    `cannot fetch '${name}': expected one of ${FETCHABLE_DATASETS.join(', ')} ('embedded' ships with Kiln and needs no download)`,
  );
}

/** How to do by hand what the download could not: the exact files, addresses and target paths. */
function manualInstructions(name: FetchableDataset, dir: string, source: DatasetSource, baseUrl: string): string {
  const lines = [
    `To install ${name} by hand, download each file to the path shown:`,
    ...source.files.map((f) => `  ${fileUrl(baseUrl, f.name)}  ->  ${join(dir, f.name)}`),
    `then run \`kiln data fetch ${name} --dir ${dir}\` (or call fetchDataset again) to check their checksums` +
      (name === 'cifar10' ? ` and unpack the archive into ${join(dir, CIFAR10_FOLDER)}.` : '.'),
  ];
  if (name === 'cifar10') {
    lines.push(`The archive can also be read as it is: --dataset cifar10:${join(dir, source.files[0]?.name ?? 'cifar-10-binary.tar.gz')}`);
  }
  if (name === 'fashion-mnist') {
    lines.push(
      `Or install Debian's package with \`apt-get install dataset-fashion-mnist\`: it puts the same files in ` +
        `${DEBIAN_FASHION_MNIST_DIR}, which --dataset fashion-mnist reads with no directory given.`,
    );
  }
  return lines.join('\n');
}

/** Compares a file's digest with every sum the table gives; undefined when all match. */
function mismatch(file: DatasetFile, digest: FileDigest): string | undefined {
  if (file.bytes !== undefined && digest.bytes !== file.bytes) return `expected ${file.bytes} bytes, found ${digest.bytes}`;
  if (file.sha256 !== undefined && digest.sha256 !== file.sha256.toLowerCase()) return `expected SHA-256 ${file.sha256}, found ${digest.sha256}`;
  if (file.md5 !== undefined && digest.md5 !== file.md5.toLowerCase()) return `expected MD5 ${file.md5}, found ${digest.md5}`;
  return undefined;
}

async function moveIntoPlace(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (cause) {
    throw new KilnError('IO_ERROR', `cannot move ${from} to ${to}: ${(cause as Error).message}`, { cause });
  }
}

/** Downloads one file to `<path>.part`, checks it, and only then renames it to `path`. */
async function fetchFile(file: DatasetFile, url: string, path: string, options: FetchOptions, onFailure: () => string): Promise<FileDigest> {
  const part = `${path}.part`;
  try {
    await downloadResumable(url, part, {
      expectedBytes: file.bytes,
      connectTimeoutMs: options.connectTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      retries: options.retries,
      retryDelayMs: options.retryDelayMs,
      lookup: options.lookup,
      onProgress: (receivedBytes, totalBytes, resumedFrom) =>
        options.onProgress?.({ phase: 'download', file: file.name, url, receivedBytes, totalBytes, resumedFrom }),
    });
  } catch (cause) {
    if (!isNetworkFailure(cause)) throw cause;
    const what = isUnreachable(cause) ? 'cannot download' : 'download failed for';
    throw new KilnError('IO_ERROR', `${what} ${url}: ${(cause as KilnError).message}\n${onFailure()}`, { cause });
  }
  const digest = await digestFile(part, 'downloaded file');
  const wrong = mismatch(file, digest);
  if (wrong !== undefined) {
    // A damaged .part must not be resumed next time, and must never become the real file.
    await rm(part, { force: true });
    throw new KilnError('CORRUPT_FILE', `${file.name} from ${url}: ${wrong}; the download was deleted, run the fetch again to retry`);
  }
  await moveIntoPlace(part, path);
  return digest;
}

/**
 * Writes the archive's batch files into `<dir>/cifar-10-batches-bin/`, each through a temporary
 * name, and leaves a complete folder alone: the loader reads that folder when given `dir`.
 */
async function unpackCifar10(archivePath: string, dir: string): Promise<boolean> {
  const target = join(dir, CIFAR10_FOLDER);
  const required = [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE];
  const present = await Promise.all(required.map((name) => fileExists(join(target, name))));
  if (present.every(Boolean)) return false;
  const entries = readTar(await gunzipIfNeeded(await readBytes(archivePath, 'CIFAR-10 archive'), archivePath), archivePath);
  // Only plain names inside the archive's one folder: an entry can never write outside it.
  const wanted = entries.filter((e) => posix.dirname(e.name).replace(/^\.\//, '') === CIFAR10_FOLDER && /^[\w.-]+$/.test(posix.basename(e.name)));
  const missing = required.filter((name) => !wanted.some((e) => posix.basename(e.name) === name));
  if (missing.length > 0) {
    throw new KilnError('CORRUPT_FILE', `${archivePath}: expected ${missing.join(', ')} in its ${CIFAR10_FOLDER}/ folder, found ${entries.map((e) => e.name).join(', ') || 'no files'}`);
  }
  await mkdir(target, { recursive: true });
  for (const entry of wanted) {
    const path = join(target, posix.basename(entry.name));
    try {
      await writeFile(`${path}.part`, entry.data);
    } catch (cause) {
      throw new KilnError('IO_ERROR', `cannot write ${path}.part: ${(cause as Error).message}`, { cause });
    }
    await moveIntoPlace(`${path}.part`, path);
  }
  return true;
}

/**
 * Downloads a data set from its canonical address into a cache directory, checking every file
 * against the published checksums before it takes its final name. Files already in place are
 * verified and kept; an interrupted download continues from its .part file. CIFAR-10's archive is
 * unpacked next to itself. The result's `datasetSpec` is what `loadDataset` takes.
 *
 * Offline, it fails within the connect timeout (at once when DNS fails) with a KilnError that lists
 * each file's address and the exact path to put it at by hand.
 */
export async function fetchDataset(name: string, options: FetchOptions = {}): Promise<FetchResult> {
  if (!isFetchableDataset(name)) throw unknownDatasetError(name);
  const dataset = name;
  const source = options.sources?.[dataset] ?? DATASET_SOURCES[dataset];
  const baseUrl = options.baseUrl ?? source.baseUrl;
  const dir = resolve(options.dir ?? defaultDatasetDir(dataset));
  for (const file of source.files) {
    if (file.sha256 === undefined && file.md5 === undefined) {
      throw new KilnError('INVALID_ARGUMENT', `${dataset}: ${file.name} has no SHA-256 or MD5 sum; Kiln does not install unverified files`);
    }
    if (basename(file.name) !== file.name || file.name === '..' || file.name === '.') {
      throw new KilnError('INVALID_ARGUMENT', `${dataset}: expected a plain file name, found '${file.name}'`);
    }
  }
  try {
    await mkdir(dir, { recursive: true });
  } catch (cause) {
    throw new KilnError('IO_ERROR', `cannot create the data set directory ${dir}: ${(cause as Error).message}`, { cause });
  }

  const files: string[] = [];
  const downloaded: string[] = [];
  for (const file of source.files) {
    const path = join(dir, file.name);
    const url = fileUrl(baseUrl, file.name);
    let digest: FileDigest;
    const cached = await fileExists(path);
    if (cached) {
      digest = await digestFile(path, `${dataset} file`);
      const wrong = mismatch(file, digest);
      if (wrong !== undefined) {
        throw new KilnError('CORRUPT_FILE', `${path} is not the published ${file.name}: ${wrong}. Delete it and fetch again`);
      }
    } else {
      digest = await fetchFile(file, url, path, options, () => manualInstructions(dataset, dir, source, baseUrl));
      downloaded.push(file.name);
    }
    options.onProgress?.({ phase: 'verified', file: file.name, path, bytes: digest.bytes, sha256: digest.sha256, cached });
    files.push(path);
  }

  if (dataset === 'cifar10') {
    const archive = files[0]!;
    const unpacked = await unpackCifar10(archive, dir);
    options.onProgress?.({ phase: 'unpacked', file: basename(archive), dir: join(dir, CIFAR10_FOLDER), cached: !unpacked });
  }
  return { name: dataset, dir, files, downloaded, datasetSpec: `${dataset}:${dir}` };
}
