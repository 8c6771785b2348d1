import { KilnError } from '../errors.js';

/** Keras' padding modes: 'valid' (none) or 'same' (output size = input size / stride, rounded up). */
export type Padding = 'valid' | 'same';

export function checkPadding(p: unknown, where: string): Padding {
  if (p === undefined) return 'valid';
  if (p === 'valid' || p === 'same') return p;
  throw new KilnError('INVALID_ARGUMENT', `${where}: padding must be 'valid' or 'same', got ${JSON.stringify(p)}`);
}

/** A number or a pair, as Keras accepts for kernelSize, strides and poolSize. */
export function pair(v: unknown, name: string, where: string): [number, number] {
  const arr = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 2 || arr.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new KilnError('INVALID_ARGUMENT', `${where}: ${name} must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
  }
  return [arr[0], arr[1]];
}

/** Output size along one axis, as Keras computes it. */
export function outputLength(size: number, k: number, s: number, padding: Padding): number {
  return padding === 'same' ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1;
}

/**
 * ONNX pads [top, left, bottom, right] reproducing TensorFlow's 'same' padding: the total is split with
 * the extra row/column at the end.
 */
export function onnxPads(h: number, w: number, k: [number, number], s: [number, number], padding: Padding): number[] {
  if (padding === 'valid') return [0, 0, 0, 0];
  const total = (size: number, kk: number, ss: number) => Math.max((Math.ceil(size / ss) - 1) * ss + kk - size, 0);
  const th = total(h, k[0], s[0]);
  const tw = total(w, k[1], s[1]);
  return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
}
