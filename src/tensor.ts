import { KilnError, formatShape } from './errors.js';

/** The element types Kiln tensors carry (names as in ONNX Runtime's JS API). */
export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'bool';

/**
 * The typed array that holds elements of a dtype: Float32Array for 'float32', BigInt64Array for 'int64', Uint8Array for 'uint8' and 'bool', and so on.
 */
export type TypedArrayOf<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'int32'
      ? Int32Array
      : D extends 'int64'
        ? BigInt64Array
        : D extends 'int8'
          ? Int8Array
          : Uint8Array;

/** Any typed array a tensor can hold. */
export type AnyTypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

export const DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'int64', 'uint8', 'int8', 'bool'];

/** The typed array class holding each element type (bool: one byte per element, 0 or 1). */
const TYPED_ARRAYS: Record<DType, { new (length: number): AnyTypedArray; new (buffer: ArrayBuffer): AnyTypedArray }> = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  int64: BigInt64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export function allocate(dtype: DType, size: number): AnyTypedArray {
  return new TYPED_ARRAYS[dtype](size);
}

/** A typed array of `dtype` over the whole of `buffer`, without copying. */
export function typedArrayOver(dtype: DType, buffer: ArrayBuffer): AnyTypedArray {
  return new TYPED_ARRAYS[dtype](buffer);
}

function dtypeOfArray(data: AnyTypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A dense, row-major tensor: the data, its shape and its element type. It is only a container for
 * feeding and fetching ONNX Runtime; all arithmetic happens in the runtime.
 */
export class Tensor<D extends DType = DType> {
  /** The elements in row-major order (the last axis varies fastest). */
  readonly data: TypedArrayOf<D>;
  /** Size of each axis; `[]` for a scalar. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: D;

  constructor(data: TypedArrayOf<D>, shape: readonly number[], dtype: D) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new KilnError('INVALID_SHAPE', `tensor shape must hold non-negative integers, got ${formatShape(shape)}`);
      }
    }
    const expected = sizeOf(shape);
    if (data.length !== expected) {
      throw new KilnError(
        'INVALID_SHAPE',
        `tensor data has ${data.length} elements but shape ${formatShape(shape)} needs ${expected}`,
      );
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
  }

  /** Number of elements (the product of the shape). */
  get size(): number {
    return this.data.length;
  }

  /** Number of axes. */
  get rank(): number {
    return this.shape.length;
  }

  /** Same data, another shape of the same size (no copy). */
  reshape(shape: readonly number[]): Tensor<D> {
    const known = shape.filter((d) => d !== -1);
    const inferredCount = shape.length - known.length;
    if (inferredCount > 1) throw new KilnError('INVALID_SHAPE', `reshape accepts at most one -1, got ${formatShape(shape)}`);
    const full =
      inferredCount === 1 ? shape.map((d) => (d === -1 ? this.size / Math.max(1, sizeOf(known)) : d)) : [...shape];
    return new Tensor(this.data, full, this.dtype);
  }

  /** Rows [start, end) along the first axis, sharing memory with this tensor. */
  slice(start: number, end: number): Tensor<D> {
    const rowSize = sizeOf(this.shape.slice(1));
    const s = Math.max(0, Math.min(start, this.shape[0]!));
    const e = Math.max(s, Math.min(end, this.shape[0]!));
    const data = this.data.subarray(s * rowSize, e * rowSize) as TypedArrayOf<D>;
    return new Tensor(data, [e - s, ...this.shape.slice(1)], this.dtype);
  }

  /** Rows picked by index along the first axis (a copy). */
  gather(indices: ArrayLike<number>): Tensor<D> {
    const rowSize = sizeOf(this.shape.slice(1));
    const out = allocate(this.dtype, indices.length * rowSize) as TypedArrayOf<D>;
    const rows = this.shape[0] ?? 0;
    for (let i = 0; i < indices.length; i++) {
      const r = indices[i]!;
      if (!Number.isInteger(r) || r < 0 || r >= rows) {
        throw new KilnError('INVALID_ARGUMENT', `gather: index ${r} at position ${i} is outside [0, ${rows})`);
      }
      (out as AnyTypedArray).set((this.data as AnyTypedArray).subarray(r * rowSize, (r + 1) * rowSize) as never, i * rowSize);
    }
    return new Tensor(out, [indices.length, ...this.shape.slice(1)], this.dtype);
  }

  /** The values as (nested) plain arrays; int64 as numbers. */
  toArray(): unknown[] {
    const flat = Array.from(this.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v));
    if (this.shape.length === 0) return flat;
    const build = (offset: number, axis: number): unknown[] => {
      const n = this.shape[axis]!;
      if (axis === this.shape.length - 1) return flat.slice(offset, offset + n);
      const stride = sizeOf(this.shape.slice(axis + 1));
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) out.push(build(offset + i * stride, axis + 1));
      return out;
    };
    return build(0, 0);
  }
}

/** A scalar or an arbitrarily deep plain array of scalars, as `tensor()` takes it: `[[1, 2], [3, 4]]`. */
export type Nested = number | boolean | bigint | readonly Nested[];

function inferNestedShape(values: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = values;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as Nested;
  }
  return shape;
}

function flattenNested(values: Nested, shape: number[], axis: number, out: (number | bigint | boolean)[]): void {
  if (axis === shape.length) {
    if (Array.isArray(values)) throw new KilnError('INVALID_SHAPE', `ragged nested array: too deep at axis ${axis}`);
    out.push(values as number | bigint | boolean);
    return;
  }
  if (!Array.isArray(values) || values.length !== shape[axis]) {
    throw new KilnError(
      'INVALID_SHAPE',
      `ragged nested array: expected ${shape[axis]} elements at axis ${axis}, got ${Array.isArray(values) ? values.length : 'a scalar'}`,
    );
  }
  for (const v of values) flattenNested(v as Nested, shape, axis + 1, out);
}

/**
 * Builds a tensor from a typed array or a (nested) plain array. The shape is inferred from a nested
 * array when not given; the dtype from a typed array, else float32.
 */
export function tensor<D extends DType = 'float32'>(
  values: AnyTypedArray | Nested | readonly number[],
  shape?: readonly number[],
  dtype?: D,
): Tensor<D> {
  if (ArrayBuffer.isView(values)) {
    const arr = values as AnyTypedArray;
    const natural = dtypeOfArray(arr);
    const dt = (dtype ?? natural) as D;
    const data = dt === natural || (dt === 'bool' && natural === 'uint8') ? arr : convert(Array.from(arr as ArrayLike<number>), dt);
    return new Tensor(data as TypedArrayOf<D>, shape ?? [arr.length], dt);
  }
  const nestedShape = inferNestedShape(values as Nested);
  const flat: (number | bigint | boolean)[] = [];
  flattenNested(values as Nested, nestedShape, 0, flat);
  const dt = (dtype ?? 'float32') as D;
  const finalShape = shape ?? nestedShape;
  return new Tensor(convert(flat, dt) as TypedArrayOf<D>, finalShape, dt);
}

function convert(flat: ArrayLike<number | bigint | boolean>, dtype: DType): AnyTypedArray {
  const out = allocate(dtype, flat.length);
  if (dtype === 'int64') {
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i]!;
      (out as BigInt64Array)[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
    }
  } else {
    for (let i = 0; i < flat.length; i++) (out as Float32Array)[i] = Number(flat[i]);
  }
  return out;
}

/**
 * An int64 read as a JS number, as an int64 again. ONNX's int64 fields are decoded as numbers, which
 * round INT64_MAX (an open-ended Slice's end, as exporters write it) up to 2^63; BigInt64Array would
 * wrap that to INT64_MIN. The limits stay limits.
 */
export function int64FromNumber(x: number | bigint): bigint {
  if (typeof x === 'bigint') return x;
  return x >= 2 ** 63 ? 2n ** 63n - 1n : x <= -(2 ** 63) ? -(2n ** 63n) : BigInt(x);
}

/** Tensors of the same dtype and row shape, one after another along the first axis (batches' outputs joined). */
export function concatRows<D extends DType>(parts: readonly Tensor<D>[]): Tensor<D> {
  const first = parts[0];
  if (!first) throw new KilnError('INVALID_ARGUMENT', 'concatRows needs at least one tensor');
  const rows = parts.reduce((sum, p) => sum + p.shape[0]!, 0);
  const data = allocate(first.dtype, parts.reduce((sum, p) => sum + p.size, 0));
  const sameRow = (shape: readonly number[]) => shape.length === first.shape.length && shape.every((d, i) => i === 0 || d === first.shape[i]);
  let offset = 0;
  for (const p of parts) {
    if (p.dtype !== first.dtype || !sameRow(p.shape)) {
      throw new KilnError('INVALID_SHAPE', `concatRows joins tensors of one dtype and row shape: ${first.dtype} ${formatShape(first.shape)} and ${p.dtype} ${formatShape(p.shape)}`);
    }
    data.set(p.data as never, offset);
    offset += p.size;
  }
  return new Tensor(data as never, [rows, ...first.shape.slice(1)], first.dtype);
}

