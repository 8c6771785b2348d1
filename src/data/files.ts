import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { KilnError } from '../errors.js';
import { isGzip } from './gzip.js';

export { isGzip };

const gunzipAsync = promisify(gunzip);

/** Maps Node's file-system errors onto Kiln's codes, naming the file and what it was meant to be. */
export function fileError(path: string, what: string, cause: unknown): KilnError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new KilnError('FILE_NOT_FOUND', `${what} not found: ${path}`, { cause });
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new KilnError('IO_ERROR', `cannot read ${what} ${path}: ${reason}`, { cause });
}

export async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (cause) {
    throw fileError(path, what, cause);
  }
}

/** The bytes themselves, or their decompression when they are a gzip stream. */
export async function gunzipIfNeeded(bytes: Uint8Array, fileName: string): Promise<Uint8Array> {
  if (!isGzip(bytes)) return bytes;
  try {
    const inflated = await gunzipAsync(bytes);
    return new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new KilnError('CORRUPT_FILE', `${fileName}: expected a complete gzip stream, found a damaged one (${reason})`, {
      cause,
    });
  }
}

/** Reads a file that may or may not be gzipped; the gzip magic decides, not the name. */
export async function readMaybeGzipped(path: string, what: string): Promise<Uint8Array> {
  return gunzipIfNeeded(await readBytes(path, what), path);
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

export async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The first of `names` present in `dir`, as a full path; undefined when none is. */
export async function firstExisting(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    const path = join(dir, name);
    if (await fileExists(path)) return path;
  }
  return undefined;
}

export { scaleToUnit } from './normalize.js';
