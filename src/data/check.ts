import { KilnError, formatShape } from '../errors.js';
import type { Tensor } from '../tensor.js';

/** Inputs and targets must describe the same examples. */
export function checkSameLength(x: Tensor, y: Tensor, caller: string): number {
  const n = x.shape[0];
  if (x.rank === 0 || y.rank === 0 || n !== y.shape[0]) {
    throw new KilnError(
      'INVALID_SHAPE',
      `${caller}: expected x and y with the same first dimension, found x ${formatShape(x.shape)} and y ${formatShape(y.shape)}`,
    );
  }
  return n!;
}

export function checkPositiveInteger(value: number, name: string, caller: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new KilnError('INVALID_ARGUMENT', `${caller}: expected ${name} to be a positive integer, found ${value}`);
  }
}

/** Image batches are channel-last `[N, H, W, C]`. */
export function checkImageBatch(images: Tensor, caller: string): [number, number, number, number] {
  if (images.rank !== 4) {
    throw new KilnError('INVALID_SHAPE', `${caller}: expected images [N, H, W, C], found ${formatShape(images.shape)}`);
  }
  return images.shape as unknown as [number, number, number, number];
}
