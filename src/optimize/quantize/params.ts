import { readFileSync } from 'node:fs';
import { KilnError, formatShape } from '../../errors.js';
import { Tensor } from '../../tensor.js';

/*
 * The arithmetic of linear quantization, in one place, as ONNX defines it:
 *
 *   QuantizeLinear:   q = saturate(round_half_even(x / scale) + zero_point)
 *   DequantizeLinear: x ≈ (q − zero_point) · scale
 *
 * and the choice of scale and zero point from a value range, as ONNX Runtime's quantizer makes it
 * (onnxruntime/python/tools/quantization/quant_utils.py compute_scale_zp): the range is widened to
 * hold 0 (so zero padding and ReLU zeros are exact), symmetric ranges are centred on 0, and
 * scale = (rmax − rmin) / (qmax − qmin), zero_point = round_half_even(qmin − rmin / scale).
 */

/** The 8-bit integer types quantized tensors use. */
export type QuantType = 'int8' | 'uint8';

/** ONNX's linear quantization parameters: x ≈ (q − zeroPoint) · scale. */
export interface QuantParams {
  /** The step between adjacent integer levels. */
  scale: number;
  /** The integer that stands for 0.0. */
  zeroPoint: number;
}

/** A value range observed on (calibration) data. */
export interface Range {
  /** Smallest value seen. */
  min: number;
  /** Largest value seen. */
  max: number;
}

/**
 * Round half to even, as ONNX QuantizeLinear rounds (and numpy.round): 2.5 → 2, 3.5 → 4, −2.5 → −2.
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // half up
  // Exactly halfway and rounded to an odd number: step back to the even neighbour.
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Integer range of a quantized type. `symmetric` int8 uses [−127, 127] so that the scale is the same
 * both ways (ONNX Runtime's choice for weights); `bits` below 8 narrows the range (reduce_range is
 * 7 bits: it keeps u8·s8 products of AVX2's VPMADDUBSW from saturating 16-bit sums).
 */
export function quantRangeOf(type: QuantType, options: { symmetric?: boolean; bits?: number } = {}): [number, number] {
  const bits = options.bits ?? 8;
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new KilnError('INVALID_ARGUMENT', `quantization bits must be an integer in [2, 8], got ${bits}`);
  if (type === 'uint8') return [0, 2 ** bits - 1];
  const half = 2 ** (bits - 1);
  return options.symmetric ? [-(half - 1), half - 1] : [-half, half - 1];
}

/** Scale and zero point for a range, as ONNX Runtime computes them (the scale is a float32). */
export function computeQuantParams(range: Range, qmin: number, qmax: number, symmetric = false): QuantParams {
  if (!Number.isFinite(range.min) || !Number.isFinite(range.max)) {
    throw new KilnError('INVALID_DATA', `cannot quantize a range [${range.min}, ${range.max}]: it must be finite (NaN or infinite values in the data?)`);
  }
  let rmin = Math.min(range.min, 0);
  let rmax = Math.max(range.max, 0);
  if (symmetric) {
    const absMax = Math.max(Math.abs(rmin), Math.abs(rmax));
    rmin = -absMax;
    rmax = absMax;
  }
  const scale = Math.fround((rmax - rmin) / (qmax - qmin));
  // An all-zero tensor: any scale represents it; 1 avoids dividing by zero downstream.
  if (!(scale > 0) || !Number.isFinite(scale)) return { scale: 1, zeroPoint: symmetric ? Math.round((qmin + qmax) / 2) : qmin };
  // Symmetric ranges centre on the middle of the integer range (0 for signed types).
  const zeroPoint = symmetric ? Math.round((qmin + qmax) / 2) : roundHalfEven(qmin - rmin / scale);
  return { scale, zeroPoint: Math.max(qmin, Math.min(qmax, zeroPoint)) };
}

/** The quantization formula: q = saturate(round_half_even(x / scale) + zero_point), into [qmin, qmax]. */
export function quantizeValue(x: number, scale: number, zeroPoint: number, qmin: number, qmax: number): number {
  // ONNX Runtime divides in float32; so does this (x / scale rounded to float32 before rounding to int).
  const q = roundHalfEven(Math.fround(x / scale)) + zeroPoint;
  return q < qmin ? qmin : q > qmax ? qmax : q;
}

/** The inverse of quantizeValue: (q − zeroPoint) · scale. */
export function dequantizeValue(q: number, scale: number, zeroPoint: number): number {
  return Math.fround((q - zeroPoint) * scale);
}

/** Quantizes a float32 tensor with one scale (per-tensor) into a typed int8/uint8 tensor. */
export function quantizeTensor(x: Tensor, params: QuantParams, type: QuantType, range?: [number, number]): Tensor<'int8' | 'uint8'> {
  const [qmin, qmax] = range ?? quantRangeOf(type);
  const src = x.data as Float32Array;
  const out = type === 'int8' ? new Int8Array(src.length) : new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = quantizeValue(src[i]!, params.scale, params.zeroPoint, qmin, qmax);
  return new Tensor(out as never, x.shape, type) as Tensor<'int8' | 'uint8'>;
}

/** A weight tensor quantized symmetrically to int8, with its scales. */
export interface QuantizedWeight {
  /** The int8 values. */
  values: Tensor<'int8'>;
  /** One scale per channel along `axis` (or one in total, per-tensor). */
  scales: Float32Array;
  /** null: per-tensor. */
  axis: number | null;
}

/**
 * Symmetric int8 quantization of a weight, per channel along `axis` (Conv kernels: axis 0, the output
 * channels; Gemm/MatMul B [K, N]: axis 1, the output columns) or per tensor. Zero points are 0, so
 * ONNX Runtime's integer kernels need no zero-point correction for weights.
 */
export function quantizeWeight(w: Tensor, options: { axis: number | null; bits?: number }): QuantizedWeight {
  if (w.dtype !== 'float32') throw new KilnError('INVALID_ARGUMENT', `weights to quantize must be float32, got ${w.dtype}`);
  const [qmin, qmax] = quantRangeOf('int8', { symmetric: true, bits: options.bits });
  const src = w.data as Float32Array;
  const out = new Int8Array(src.length);
  const shape = w.shape;
  if (options.axis === null) {
    let absMax = 0;
    for (let i = 0; i < src.length; i++) absMax = Math.max(absMax, Math.abs(src[i]!));
    const { scale } = computeQuantParams({ min: -absMax, max: absMax }, qmin, qmax, true);
    for (let i = 0; i < src.length; i++) out[i] = quantizeValue(src[i]!, scale, 0, qmin, qmax);
    return { values: new Tensor(out, shape, 'int8'), scales: Float32Array.of(scale), axis: null };
  }
  const axis = options.axis;
  if (axis < 0 || axis >= shape.length) throw new KilnError('INVALID_ARGUMENT', `quantization axis ${axis} is outside weight shape ${formatShape(shape)}`);
  const channels = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const absMax = new Float64Array(channels);
  for (let i = 0; i < src.length; i++) {
    const c = channelOf(i);
    absMax[c] = Math.max(absMax[c]!, Math.abs(src[i]!));
  }
  const scales = Float32Array.from(absMax, (m) => computeQuantParams({ min: -m, max: m }, qmin, qmax, true).scale);
  for (let i = 0; i < src.length; i++) out[i] = quantizeValue(src[i]!, scales[channelOf(i)]!, 0, qmin, qmax);
  return { values: new Tensor(out, shape, 'int8'), scales, axis };
}

/**
 * A bias for an integer Conv/Gemm: int32 with scale input_scale · weight_scale[c] and zero point 0,
 * which is what ONNX Runtime's QLinearConv / QGemm fusions require.
 */
export function quantizeBias(
  b: Tensor,
  inputScale: number,
  weightScales: Float32Array,
): {
  /** The int32 bias. */
  values: Tensor<'int32'>;
  /** Its scale per channel (one for a per-tensor weight). */
  scales: Float32Array;
} {
  const src = b.data as Float32Array;
  const perChannel = weightScales.length > 1;
  const scales = Float32Array.from({ length: perChannel ? src.length : 1 }, (_, c) => Math.fround(inputScale * weightScales[perChannel ? c : 0]!));
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const s = scales[perChannel ? i : 0]!;
    out[i] = quantizeValue(src[i]!, s, 0, -2147483648, 2147483647);
  }
  return { values: new Tensor(out, b.shape, 'int32'), scales };
}

let saturates: boolean | undefined;

/**
 * Whether ONNX Runtime's u8·s8 integer kernels on this CPU add adjacent products in saturating 16-bit
 * arithmetic (x86-64 AVX2/AVX-512 without VNNI: VPMADDUBSW), where 8-bit weights can overflow and
 * 7-bit weights (reduce_range) cannot: 2 · 255 · 64 < 32,768. Measured on such a CPU, a small CNN's
 * int8 outputs were up to 2.0 off the exact QDQ result with 8-bit weights, 0.02 with 7-bit ones.
 * ARM and VNNI CPUs accumulate in 32 bits.
 */
export function integerKernelsSaturate(): boolean {
  if (saturates !== undefined) return saturates;
  if (process.arch !== 'x64' && process.arch !== 'ia32') return (saturates = false);
  try {
    saturates = !/\b(avx512_vnni|avx_vnni|amx_int8)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    saturates = true; // no /proc/cpuinfo (macOS, Windows): assume the common case, no VNNI
  }
  return saturates;
}
