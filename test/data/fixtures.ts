/**
 * Builders for data files in their real on-disk formats, written byte by byte here rather than
 * with the library's own encoders, so the tests check the readers against the formats themselves.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KilnError, type KilnErrorCode } from '../../src/errors.js';

export async function makeTempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-data-test-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Asserts a KilnError with this code whose message contains every fragment (e.g. the file name). */
export async function assertRejectsWith(
  promise: Promise<unknown> | (() => unknown),
  code: KilnErrorCode,
  ...fragments: string[]
): Promise<void> {
  await assert.rejects(
    async () => (typeof promise === 'function' ? promise() : promise),
    (error: unknown) => {
      assert.ok(error instanceof KilnError, `expected a KilnError, got ${String(error)}`);
      assert.equal(error.code, code, `code of: ${error.message}`);
      for (const fragment of fragments) {
        assert.ok(error.message.includes(fragment), `message "${error.message}" should mention "${fragment}"`);
      }
      return true;
    },
  );
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A distinct byte for every (image, channel, row, column), so layout mistakes show. */
export function cifarPixel(image: number, channel: number, row: number, column: number): number {
  return (image * 7 + channel * 50 + row * 3 + column) % 256;
}

/** One CIFAR-10 binary record: label byte, then the R, G and B 32x32 planes, row-major. */
export function cifarRecord(label: number, image: number): Uint8Array {
  const record = new Uint8Array(3073);
  record[0] = label;
  for (let channel = 0; channel < 3; channel++) {
    for (let row = 0; row < 32; row++) {
      for (let column = 0; column < 32; column++) {
        record[1 + channel * 1024 + row * 32 + column] = cifarPixel(image, channel, row, column);
      }
    }
  }
  return record;
}

/** A big-endian IDX file: 0, 0, type byte, rank, dims as int32, then the data. */
export function idxFile(magic: number, dims: number[], data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(Array.from(data), 4 + 4 * dims.length);
  return out;
}

/** A .npy file with the given header dict text and data bytes (header padded as NumPy does). */
export function npyFile(dict: string, data: Uint8Array, major: 1 | 2 = 1): Uint8Array {
  const preamble = major === 1 ? 10 : 12;
  const length = Math.ceil((preamble + dict.length + 1) / 64) * 64 - preamble;
  const header = new TextEncoder().encode(dict.padEnd(length - 1, ' ') + '\n');
  const out = new Uint8Array(preamble + length + data.length);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, length, true);
  else view.setUint32(8, length, true);
  out.set(header, preamble);
  out.set(data, preamble + length);
  return out;
}

export function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

export interface TarFile {
  name: string;
  data?: Uint8Array;
  /** '0' regular file (default), '5' directory, 'L' GNU long name, 'x' pax header. */
  type?: string;
  /** The ustar prefix field, for names over 100 bytes. */
  prefix?: string;
}

function putString(block: Uint8Array, offset: number, text: string): void {
  block.set(new TextEncoder().encode(text), offset);
}

/** One 512-byte ustar header with a correct checksum. */
export function tarHeader(file: TarFile): Uint8Array {
  const size = file.data?.length ?? 0;
  const block = new Uint8Array(512);
  putString(block, 0, file.name);
  putString(block, 100, '0000644\0');
  putString(block, 108, '0000000\0');
  putString(block, 116, '0000000\0');
  putString(block, 124, size.toString(8).padStart(11, '0') + '\0');
  putString(block, 136, '00000000000\0');
  putString(block, 148, '        ');
  putString(block, 156, file.type ?? '0');
  putString(block, 257, 'ustar\0');
  putString(block, 263, '00');
  if (file.prefix) putString(block, 345, file.prefix);
  const sum = block.reduce((a, b) => a + b, 0);
  putString(block, 148, sum.toString(8).padStart(6, '0') + '\0 ');
  return block;
}

/** A tar archive: header, data padded to 512 bytes, for each file; then two zero blocks. */
export function tarArchive(files: TarFile[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const file of files) {
    parts.push(tarHeader(file));
    const data = file.data ?? new Uint8Array(0);
    parts.push(data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  return concat(...parts);
}
