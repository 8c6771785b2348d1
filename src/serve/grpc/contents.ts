import { bytesPerElement } from '../../graph/dtype.js';
import { allocate, type AnyTypedArray, type DType, type Tensor } from '../../tensor.js';
import { elementsFromBytes } from '../binary.js';
import { badRequest } from '../errors.js';
import { fromBigInt, toBigInt, type Int64, type TensorContents } from './messages.js';

/*
 * Tensor elements in a gRPC message: typed contents (InferTensorContents, one repeated field per
 * datatype family) or raw contents (the elements' little-endian bytes), both ways. Every refusal names
 * the tensor, the field, and what was expected against what was found.
 */

type ContentsField = keyof TensorContents;

/** The InferTensorContents field that carries each element type Kiln serves. */
const FIELD_OF: Record<DType, ContentsField> = {
  float32: 'fp32_contents',
  float64: 'fp64_contents',
  int8: 'int_contents',
  int32: 'int_contents',
  int64: 'int64_contents',
  uint8: 'uint_contents',
  bool: 'bool_contents',
};

const FIELDS: ContentsField[] = ['bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents'];

/** Integer ranges of the types that travel in a wider field (int_contents is int32, uint_contents uint32). */
const NARROW: Partial<Record<DType, readonly [number, number]>> = { int8: [-128, 127], uint8: [0, 255] };

/** `size` elements of `dtype` from a request tensor's typed contents (their field, and no other, filled). */
export function elementsFromContents(contents: TensorContents | null | undefined, dtype: DType, size: number, what: string, datatype: string): AnyTypedArray {
  const field = FIELD_OF[dtype];
  for (const other of FIELDS) {
    if (other !== field && (contents?.[other]?.length ?? 0) > 0) throw badRequest(`${what}: datatype ${datatype} takes its elements in contents.${field}, found contents.${other}`);
  }
  const values = (contents?.[field] ?? []) as ArrayLike<unknown>;
  if (values.length !== size) throw badRequest(`${what}: its shape needs ${size} elements, contents.${field} has ${values.length}`);
  const out = allocate(dtype, size);
  if (dtype === 'int64') {
    const o = out as BigInt64Array;
    for (let i = 0; i < size; i++) o[i] = toBigInt(values[i] as Int64);
    return out;
  }
  if (dtype === 'bool') {
    const o = out as Uint8Array;
    for (let i = 0; i < size; i++) o[i] = values[i] ? 1 : 0;
    return out;
  }
  const range = NARROW[dtype];
  if (range) {
    for (let i = 0; i < size; i++) {
      const v = values[i] as number;
      if (v < range[0] || v > range[1]) throw badRequest(`${what}: element ${i} of contents.${field} is ${v}, outside ${datatype}'s range [${range[0]}, ${range[1]}]`);
    }
  }
  (out as Float32Array).set(values as ArrayLike<number>);
  return out;
}

/** `size` elements of `dtype` from a request tensor's raw contents, which must hold exactly their bytes. */
export function elementsFromRaw(raw: Uint8Array, dtype: DType, size: number, what: string): AnyTypedArray {
  const expected = size * bytesPerElement(dtype);
  if (raw.length !== expected) throw badRequest(`${what}: its shape and datatype need ${expected} bytes of raw_input_contents, found ${raw.length}`);
  return elementsFromBytes(dtype, size, raw);
}

/** A tensor's elements as typed contents (the field of its element type). */
export function contentsOf(t: Tensor): TensorContents {
  const data = t.data as AnyTypedArray;
  const field = FIELD_OF[t.dtype];
  if (t.dtype === 'int64') return { int64_contents: Array.from(data as BigInt64Array, fromBigInt) };
  if (t.dtype === 'bool') return { bool_contents: Array.from(data as Uint8Array, (v) => v !== 0) };
  // protobufjs writes a repeated field by index, so a typed array goes in as it is.
  return { [field]: data as ArrayLike<number> };
}

/** A tensor's elements as raw contents: a view of its bytes (little-endian, as typed arrays are here). */
export function rawOf(t: Tensor): Uint8Array {
  const data = t.data as AnyTypedArray;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
