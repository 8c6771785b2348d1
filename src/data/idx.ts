import { KilnError } from '../errors.js';

/**
 * The IDX format of MNIST and its relatives: two zero bytes, an element-type byte, a dimension
 * count, one big-endian int32 per dimension, then the elements in row-major order. Kiln reads only
 * uint8 elements, which is what every image/label set in this format uses.
 */
export const IDX_UINT8 = 0x08;
/** Magic number of uint8 image files: type 0x08, 3 dimensions (count, rows, columns). */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of uint8 label files: type 0x08, 1 dimension (count). */
export const IDX_LABELS_MAGIC = 0x00000801;

export interface IdxHeader {
  magic: number;
  dims: number[];
  /** Where the elements start. */
  headerBytes: number;
}

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

function describeMagic(magic: number): string {
  if (magic === IDX_IMAGES_MAGIC) return 'uint8 images, 3 dimensions';
  if (magic === IDX_LABELS_MAGIC) return 'uint8 labels, 1 dimension';
  return `type 0x${((magic >>> 8) & 0xff).toString(16).padStart(2, '0')}, ${magic & 0xff} dimensions`;
}

/**
 * Parses the header and checks it is the `expectedMagic` kind of file (e.g. IDX_IMAGES_MAGIC).
 * `bytes` needs to hold only the header; `fileName` is for messages.
 */
export function parseIdxHeader(bytes: Uint8Array, fileName: string, expectedMagic: number): IdxHeader {
  if (bytes.length < 4) {
    throw new KilnError('CORRUPT_FILE', `${fileName}: expected an IDX header of at least 4 bytes, found ${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  if (magic !== expectedMagic) {
    throw new KilnError(
      'CORRUPT_FILE',
      `${fileName}: expected IDX magic number ${hex32(expectedMagic)} (${describeMagic(expectedMagic)}), found ${hex32(magic)}`,
    );
  }
  const rank = magic & 0xff;
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new KilnError(
      'CORRUPT_FILE',
      `${fileName}: truncated IDX header: expected ${headerBytes} bytes for ${rank} dimensions, found ${bytes.length}`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i));
  return { magic, dims, headerBytes };
}

export function idxElementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Parses a whole (already decompressed) IDX file and checks its size matches its header. */
export function parseIdx(bytes: Uint8Array, fileName: string, expectedMagic: number): IdxArray {
  const header = parseIdxHeader(bytes, fileName, expectedMagic);
  const expectedBytes = header.headerBytes + idxElementCount(header.dims);
  if (bytes.length !== expectedBytes) {
    const what = bytes.length < expectedBytes ? 'truncated' : 'has trailing bytes';
    throw new KilnError(
      'CORRUPT_FILE',
      `${fileName}: ${what}: header declares dimensions [${header.dims.join(', ')}], ` +
        `expected ${expectedBytes} bytes, found ${bytes.length}`,
    );
  }
  return { dims: header.dims, data: bytes.subarray(header.headerBytes) };
}

/** Encodes uint8 elements of the given dimensions as an IDX file. */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  if (idxElementCount(dims) !== data.length) {
    throw new KilnError(
      'INVALID_ARGUMENT',
      `encodeIdx: dimensions [${dims.join(', ')}] need ${idxElementCount(dims)} elements, got ${data.length}`,
    );
  }
  const headerBytes = 4 + 4 * dims.length;
  const out = new Uint8Array(headerBytes + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, (IDX_UINT8 << 8) | dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, headerBytes);
  return out;
}
