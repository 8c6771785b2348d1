import { formatShape } from '../errors.js';
import { allocate, type AnyTypedArray, type DType, type Tensor } from '../tensor.js';
import { badRequest } from './errors.js';
import { NumberList } from './number-lists.js';

/*
 * Element types under each protocol's name, and the conversion of JSON values (flat or nested, as the
 * protocols allow) to typed arrays and back. Every check says which tensor, which element, what was
 * expected and what was found.
 */

/** Per ONNX element type (as describeModel names it): KServe v2 datatype and TF DataType. */
const NAMES: Record<string, { kserve: string; tf: string }> = {
  float32: { kserve: 'FP32', tf: 'DT_FLOAT' },
  float64: { kserve: 'FP64', tf: 'DT_DOUBLE' },
  float16: { kserve: 'FP16', tf: 'DT_HALF' },
  bfloat16: { kserve: 'BF16', tf: 'DT_BFLOAT16' },
  int8: { kserve: 'INT8', tf: 'DT_INT8' },
  int16: { kserve: 'INT16', tf: 'DT_INT16' },
  int32: { kserve: 'INT32', tf: 'DT_INT32' },
  int64: { kserve: 'INT64', tf: 'DT_INT64' },
  uint8: { kserve: 'UINT8', tf: 'DT_UINT8' },
  uint16: { kserve: 'UINT16', tf: 'DT_UINT16' },
  uint32: { kserve: 'UINT32', tf: 'DT_UINT32' },
  uint64: { kserve: 'UINT64', tf: 'DT_UINT64' },
  bool: { kserve: 'BOOL', tf: 'DT_BOOL' },
  string: { kserve: 'BYTES', tf: 'DT_STRING' },
};

/** Every datatype the KServe v2 protocol defines (a request naming another one is malformed). */
export const KSERVE_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BF16', 'BYTES'] as const;

/** Element types Kiln's runtime feeds and fetches. */
const SERVABLE = new Set<string>(['float32', 'float64', 'int8', 'int32', 'int64', 'uint8', 'bool']);

export function isServableType(onnxType: string): onnxType is DType {
  return SERVABLE.has(onnxType);
}

/** The Kiln element type of a KServe v2 datatype, for those Kiln tensors carry. */
export function dtypeOfDatatype(datatype: string): DType | undefined {
  for (const [dtype, names] of Object.entries(NAMES)) if (names.kserve === datatype) return isServableType(dtype) ? dtype : undefined;
  return undefined;
}

export function kserveDatatype(onnxType: string): string {
  return NAMES[onnxType]?.kserve ?? onnxType.toUpperCase();
}

export function tfDatatype(onnxType: string): string {
  return NAMES[onnxType]?.tf ?? 'DT_INVALID';
}

/** The largest rank a request may describe; deeper nesting is refused before it is walked. */
export const MAX_RANK = 16;
const MAX_DIM = 2 ** 31 - 1;

/**
 * What one request may still carry, in elements over all its tensors: each tensor's size is taken from
 * it before the tensor is allocated, so a request cannot make the server allocate more than the limit.
 */
export class ElementBudget {
  private used = 0;
  constructor(readonly limit: number) {}

  take(size: number, what: string, shape: readonly number[]): void {
    if (this.used + size > this.limit) {
      const others = this.used > 0 ? ` (${this.used + size} with the request's other tensors)` : '';
      throw badRequest(`${what}: shape ${formatShape(shape)} has ${size} elements${others}, more than the ${this.limit} this server accepts in one request`);
    }
    this.used += size;
  }
}

/** Checks a client-given shape: a list of at most MAX_RANK integers in [0, 2^31), within the request's element budget. */
export function checkShape(shape: readonly number[], what: string, budget: ElementBudget): number {
  if (shape.length > MAX_RANK) throw badRequest(`${what}: shape has rank ${shape.length}, at most ${MAX_RANK} is accepted`);
  let size = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0 || d > MAX_DIM) {
      throw badRequest(`${what}: shape ${formatShape(shape)} must hold integers in [0, ${MAX_DIM}], found ${d}`);
    }
    size *= d;
  }
  budget.take(size, what, shape);
  return size;
}

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number') return String(v);
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

type Write = (out: AnyTypedArray, index: number, v: unknown) => boolean;

const INT_RANGES: Partial<Record<DType, readonly [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int32: [-2147483648, 2147483647],
  int64: [-(2 ** 63), 2 ** 63 - 1],
};

/** A writer that stores one JSON value into the typed array, returning false when the value does not fit. */
function writerFor(dtype: DType): { write: Write; expected: string } {
  if (dtype === 'float32' || dtype === 'float64') {
    return { expected: 'a number', write: (out, i, v) => typeof v === 'number' && (((out as Float32Array)[i] = v), true) };
  }
  if (dtype === 'bool') {
    return { expected: 'true or false', write: (out, i, v) => typeof v === 'boolean' && (((out as Uint8Array)[i] = v ? 1 : 0), true) };
  }
  const [lo, hi] = INT_RANGES[dtype]!;
  if (dtype === 'int64') {
    return {
      expected: `an integer in [-2^63, 2^63)`,
      write: (out, i, v) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v < 2 ** 63 && (((out as BigInt64Array)[i] = BigInt(v)), true),
    };
  }
  return {
    expected: `an integer in [${lo}, ${hi}]`,
    write: (out, i, v) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi && (((out as Int32Array)[i] = v), true),
  };
}

/**
 * Converts JSON data to a typed array of the given shape. `data` may be flat (row-major, `size`
 * scalars, or a NumberList read from the body) or nested to the shape, as KServe v2 allows;
 * `nestedOnly` refuses the flat form (TF Serving).
 */
export function decodeElements(data: unknown, shape: readonly number[], dtype: DType, what: string, nestedOnly = false): AnyTypedArray {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data instanceof NumberList) {
    const asShaped = data.shape.length === shape.length && data.shape.every((d, k) => d === shape[k]);
    const asFlat = !nestedOnly && shape.length > 0 && data.shape.length === 1 && data.length === size;
    if (dtype === 'float32' && (asShaped || asFlat)) return data.toFloat32(new Float32Array(size));
    // Every other case (and every error message) as for the lists JSON.parse would have given.
    data = data.toJson();
  }
  const { write, expected } = writerFor(dtype);
  const out = allocate(dtype, size);
  const fail = (where: string, v: unknown): never => {
    throw badRequest(`${what}: element ${where} is ${describeValue(v)}, expected ${expected}`);
  };
  if (shape.length === 0) {
    const v = Array.isArray(data) && data.length === 1 && !nestedOnly ? data[0] : data;
    if (!write(out, 0, v)) fail('[]', v);
    return out;
  }
  if (!Array.isArray(data)) throw badRequest(`${what}: data must be an array for shape ${formatShape(shape)}, found ${describeValue(data)}`);
  const flat = shape.length === 1 || (!nestedOnly && data.length === size && (size === 0 || !Array.isArray(data[0])));
  if (flat) {
    if (data.length !== size) {
      throw badRequest(`${what}: shape ${formatShape(shape)} needs ${size} elements, data has ${data.length}`);
    }
    for (let i = 0; i < size; i++) if (!write(out, i, data[i])) fail(String(i), data[i]);
    return out;
  }
  let offset = 0;
  const path: number[] = [];
  const walk = (values: unknown, axis: number): void => {
    if (axis === shape.length) {
      if (!write(out, offset++, values)) fail(`[${path.join(', ')}]`, values);
      return;
    }
    if (!Array.isArray(values) || values.length !== shape[axis]) {
      const at = path.length ? ` at [${path.join(', ')}]` : '';
      throw badRequest(
        `${what}: data${at} should be a list of ${shape[axis]} (shape ${formatShape(shape)}, flat or nested), found ${describeValue(values)}` +
          (axis === 0 && Array.isArray(values) && !nestedOnly ? ` (a flat list needs ${size})` : ''),
      );
    }
    for (let i = 0; i < values.length; i++) {
      path.push(i);
      walk(values[i], axis + 1);
      path.pop();
    }
  };
  walk(data, 0);
  return out;
}

/** The shape of a nested JSON list, read along its first elements (ragged lists fail later, in decodeElements). */
export function nestedShape(value: unknown, what: string): number[] {
  if (value instanceof NumberList) {
    if (value.shape.length > MAX_RANK) throw badRequest(`${what}: value is nested deeper than ${MAX_RANK} levels`);
    return [...value.shape];
  }
  const shape: number[] = [];
  let cur = value;
  while (Array.isArray(cur)) {
    if (shape.length === MAX_RANK) throw badRequest(`${what}: value is nested deeper than ${MAX_RANK} levels`);
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0];
  }
  return shape;
}

/** A tensor's elements as JSON values (row-major), and whether any is NaN or infinite. */
export function flatValues(t: Tensor): { values: (number | boolean)[]; nonFinite: boolean } {
  const data = t.data as AnyTypedArray;
  const n = data.length;
  const values = new Array<number | boolean>(n);
  let nonFinite = false;
  if (t.dtype === 'bool') for (let i = 0; i < n; i++) values[i] = data[i] !== 0;
  else if (t.dtype === 'int64') for (let i = 0; i < n; i++) values[i] = Number((data as BigInt64Array)[i]);
  else {
    for (let i = 0; i < n; i++) {
      const v = (data as Float32Array)[i]!;
      values[i] = v;
      if (v - v !== 0) nonFinite = true;
    }
  }
  return { values, nonFinite };
}

/** Row-major values nested to the shape (a scalar for rank 0). */
export function nest<T>(values: readonly T[], shape: readonly number[], offset = 0): unknown {
  if (shape.length === 0) return values[offset];
  const build = (start: number, axis: number): unknown[] => {
    const n = shape[axis]!;
    if (axis === shape.length - 1) return values.slice(start, start + n);
    let stride = 1;
    for (let k = axis + 1; k < shape.length; k++) stride *= shape[k]!;
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = build(start + i * stride, axis + 1);
    return out;
  };
  return build(offset, 0);
}
