import { writeFile } from 'node:fs/promises';
import { KilnError, formatShape } from '../errors.js';
import { type AnyTypedArray, type DType, Tensor, type TypedArrayOf, sizeOf, typedArrayOver } from '../tensor.js';
import { readBytes } from './files.js';

/**
 * NumPy's .npy format: the magic "\x93NUMPY", a version, the header length (2 bytes in 1.0, 4 in
 * 2.0 and 3.0), then a Python dict literal describing dtype, order and shape, then the raw data.
 */
const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** Little-endian descriptors; one-byte types have no byte order, marked "|". */
const DESCR_TO_DTYPE: Readonly<Record<string, DType>> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '<i4': 'int32',
  '<i8': 'int64',
  '|u1': 'uint8',
  '|i1': 'int8',
  '|b1': 'bool',
};

const DTYPE_TO_DESCR: Readonly<Record<DType, string>> = {
  float32: '<f4',
  float64: '<f8',
  int32: '<i4',
  int64: '<i8',
  uint8: '|u1',
  int8: '|i1',
  bool: '|b1',
};

const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  int32: 4,
  int64: 8,
  uint8: 1,
  int8: 1,
  bool: 1,
};

function corrupt(fileName: string, message: string): KilnError {
  return new KilnError('CORRUPT_FILE', `${fileName}: ${message}`);
}

function dtypeOfDescr(descr: string, fileName: string): DType {
  // Byte order means nothing for one-byte types, and writers differ in which mark they use.
  const oneByte = /^[|<>=]([uib]1)$/.exec(descr);
  const dtype = DESCR_TO_DTYPE[oneByte ? `|${oneByte[1]}` : descr];
  if (dtype === undefined) {
    throw new KilnError(
      'INVALID_DATA',
      `${fileName}: unsupported npy dtype '${descr}'; expected one of ${Object.keys(DESCR_TO_DTYPE).join(', ')}`,
    );
  }
  return dtype;
}

interface NpyHeader {
  dtype: DType;
  shape: number[];
  dataOffset: number;
}

function parseNpyHeader(bytes: Uint8Array, fileName: string): NpyHeader {
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) {
    const found = Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw corrupt(fileName, `expected the npy magic 93 4e 55 4d 50 59 ("\\x93NUMPY"), found ${found || 'an empty file'}`);
  }
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw corrupt(fileName, `truncated npy ${major}.0 preamble: expected 12 bytes, found ${bytes.length}`);
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw corrupt(fileName, `expected npy format version 1.0, 2.0 or 3.0, found ${major}.${bytes[7]}`);
  }
  const dataOffset = headerStart + headerLength;
  if (bytes.length < dataOffset) {
    throw corrupt(fileName, `truncated npy header: expected ${headerLength} header bytes, found ${bytes.length - headerStart}`);
  }
  const header = new TextDecoder().decode(bytes.subarray(headerStart, dataOffset));

  if (/'descr'\s*:\s*\[/.test(header)) {
    throw new KilnError('INVALID_DATA', `${fileName}: unsupported npy dtype: structured arrays are not supported (header ${header.trim()})`);
  }
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortranOrder = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortranOrder || !shape) {
    throw corrupt(fileName, `expected an npy header with 'descr', 'fortran_order' and 'shape', found ${header.trim()}`);
  }
  if (fortranOrder[1] === 'True') {
    throw new KilnError(
      'INVALID_DATA',
      `${fileName}: expected a C-order (row-major) array, found fortran_order True; save it with np.ascontiguousarray first`,
    );
  }
  const dims = shape[1]!
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '')
    .map((d) => {
      // Python 2 wrote long integers with an "L" suffix.
      const match = /^(\d+)L?$/.exec(d);
      if (!match) throw corrupt(fileName, `expected non-negative integers in the npy shape, found (${shape[1]})`);
      return Number(match[1]);
    });
  return { dtype: dtypeOfDescr(descr[1]!, fileName), shape: dims, dataOffset };
}

/** Decodes the bytes of a .npy file; `fileName` is for messages. */
export function decodeNpy(bytes: Uint8Array, fileName = '<npy bytes>'): Tensor {
  const { dtype, shape, dataOffset } = parseNpyHeader(bytes, fileName);
  const count = sizeOf(shape);
  const expectedBytes = count * BYTES_PER_ELEMENT[dtype];
  const foundBytes = bytes.length - dataOffset;
  if (foundBytes !== expectedBytes) {
    throw corrupt(
      fileName,
      `${foundBytes < expectedBytes ? 'truncated' : 'trailing bytes'}: shape ${formatShape(shape)} of ${dtype} ` +
        `needs ${expectedBytes} data bytes, found ${foundBytes}`,
    );
  }
  // Copying puts the data at offset 0 of its own buffer, so typed-array alignment holds.
  const buffer = bytes.buffer.slice(bytes.byteOffset + dataOffset, bytes.byteOffset + dataOffset + expectedBytes);
  const data = typedArrayOver(dtype, buffer as ArrayBuffer);
  return new Tensor(data as TypedArrayOf<DType>, shape, dtype);
}

/** Encodes a tensor as a version 1.0 .npy file (version 2.0 when the header needs it). */
export function encodeNpy(tensor: Tensor): Uint8Array {
  const shapeText = tensor.shape.length === 1 ? `(${tensor.shape[0]},)` : `(${tensor.shape.join(', ')})`;
  const dict = `{'descr': '${DTYPE_TO_DESCR[tensor.dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // NumPy pads the header with spaces and a newline so the data starts 64-byte aligned.
  const unpaddedLength = dict.length + 1;
  const paddedLength = (preamble: number): number => Math.ceil((preamble + unpaddedLength) / 64) * 64 - preamble;
  // Version 1.0 stores the header length in 16 bits; only huge shapes need 2.0.
  const version = paddedLength(10) <= 0xffff ? 1 : 2;
  const preamble = version === 1 ? 10 : 12;
  const headerLength = paddedLength(preamble);
  const header = dict.padEnd(headerLength - 1, ' ') + '\n';
  const data = tensor.data as AnyTypedArray;
  const out = new Uint8Array(preamble + headerLength + data.byteLength);
  out.set(NPY_MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLength, true);
  else view.setUint32(8, headerLength, true);
  out.set(new TextEncoder().encode(header), preamble);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), preamble + headerLength);
  return out;
}

/** Reads a NumPy .npy file (C order; dtypes <f4 <f8 <i4 <i8 |u1 |i1 |b1) into a tensor. */
export async function npy(path: string): Promise<Tensor> {
  return decodeNpy(await readBytes(path, 'npy file'), path);
}

/** Writes a tensor as a NumPy .npy file that `np.load` reads. */
export async function saveNpy(path: string, tensor: Tensor): Promise<void> {
  try {
    await writeFile(path, encodeNpy(tensor));
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new KilnError('IO_ERROR', `cannot write npy file ${path}: ${reason}`, { cause });
  }
}
