// Owns the fixed-point ring secure aggregation adds in: reals scaled by 2^20 and rounded, held as
// uint32 modulo 2^32, so random masks cancel exactly (float sums would not). A value decodes as a
// two's-complement integer, so a sum is exact as long as the true sum lies in [−2048, 2048).
import { KilnError } from '../../errors.js';

/** Fractional bits: a step of 2^-20 ≈ 9.5e-7 per client. */
export const FIXED_POINT_BITS = 20;
const SCALE = 2 ** FIXED_POINT_BITS;
/** Largest magnitude a value, or the sum of all of them, may have: 2^31 / 2^20 = 2048. */
export const FIXED_POINT_RANGE = 2 ** (31 - FIXED_POINT_BITS);

/**
 * Encodes reals into the ring. A value outside ±FIXED_POINT_RANGE (or NaN/Inf) is refused: it would
 * wrap around and corrupt the sum silently, and after masking nobody else can see it.
 */
export function encodeFixedPoint(values: ArrayLike<number>, what: string): Uint32Array {
  const out = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v > -FIXED_POINT_RANGE && v < FIXED_POINT_RANGE)) {
      throw new KilnError('INVALID_DATA', `${what}: value ${v} at index ${i} is outside the secure-aggregation range (−${FIXED_POINT_RANGE}, ${FIXED_POINT_RANGE}); NaN, infinite and larger values cannot be masked`);
    }
    // ToUint32 of a negative integer is its two's complement modulo 2^32.
    out[i] = Math.round(v * SCALE) >>> 0;
  }
  return out;
}

/** Decodes ring elements (a sum of encodings) back to reals, reading each as a signed 32-bit integer. */
export function decodeFixedPoint(values: Uint32Array): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = (values[i]! | 0) / SCALE;
  return out;
}

/** acc += v (mod 2^32), in place. */
export function addInto(acc: Uint32Array, v: Uint32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i]! + v[i]!) >>> 0;
}

/** acc −= v (mod 2^32), in place. */
export function subtractInto(acc: Uint32Array, v: Uint32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i]! - v[i]!) >>> 0;
}
