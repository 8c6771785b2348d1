import { KilnError } from '../errors.js';
import type { Random } from '../random.js';
import { type AnyTypedArray, type DType, Tensor, type TypedArrayOf, allocate } from '../tensor.js';
import { checkImageBatch } from './check.js';

/**
 * The usual image augmentations: shift by up to `cropPadding` pixels, mirror half the images, blank
 * out a random square.
 */
export interface AugmentOptions {
  /** Pad each side with this many zero pixels, then crop back to the original size at a random offset. */
  cropPadding?: number;
  /** Mirror each image left-right with probability 0.5. */
  horizontalFlip?: boolean;
  /** Zero a `cutout` x `cutout` square of every image at a random centre, clipped at the borders (Cutout, DeVries & Taylor 2017). */
  cutout?: number;
}

/**
 * Each image of `[N, H, W, C]` shifted by a random offset in [-padding, padding] on both axes, the
 * uncovered border filled with zeros: the same as zero-padding then cropping back to H x W.
 */
export function randomCrop<D extends DType>(images: Tensor<D>, padding: number, random: Random): Tensor<D> {
  const [n, height, width, channels] = checkImageBatch(images, 'randomCrop');
  if (!Number.isInteger(padding) || padding < 0) {
    throw new KilnError('INVALID_ARGUMENT', `randomCrop: expected padding to be a non-negative integer, found ${padding}`);
  }
  const source = images.data as AnyTypedArray;
  const out = allocate(images.dtype, source.length);
  const rowLength = width * channels;
  for (let i = 0; i < n; i++) {
    const dy = random.int(2 * padding + 1) - padding;
    const dx = random.int(2 * padding + 1) - padding;
    const image = i * height * rowLength;
    // Output pixel (y, x) shows source pixel (y + dy, x + dx) when that lies inside the image.
    const x0 = Math.max(0, -dx);
    const x1 = Math.min(width, width - dx);
    if (x1 <= x0) continue;
    for (let y = Math.max(0, -dy); y < Math.min(height, height - dy); y++) {
      const from = image + (y + dy) * rowLength + (x0 + dx) * channels;
      out.set(source.subarray(from, from + (x1 - x0) * channels) as never, image + y * rowLength + x0 * channels);
    }
  }
  return new Tensor(out as TypedArrayOf<D>, images.shape, images.dtype);
}

/** Each image of `[N, H, W, C]` mirrored left-right with the given probability. */
export function randomHorizontalFlip<D extends DType>(images: Tensor<D>, random: Random, probability = 0.5): Tensor<D> {
  const [n, height, width, channels] = checkImageBatch(images, 'randomHorizontalFlip');
  const source = images.data as AnyTypedArray;
  const out = allocate(images.dtype, source.length);
  const imageLength = height * width * channels;
  for (let i = 0; i < n; i++) {
    const image = i * imageLength;
    if (random.next() >= probability) {
      out.set(source.subarray(image, image + imageLength) as never, image);
      continue;
    }
    for (let y = 0; y < height; y++) {
      const row = image + y * width * channels;
      for (let x = 0; x < width; x++) {
        const from = row + (width - 1 - x) * channels;
        out.set(source.subarray(from, from + channels) as never, row + x * channels);
      }
    }
  }
  return new Tensor(out as TypedArrayOf<D>, images.shape, images.dtype);
}

/**
 * Each image of `[N, H, W, C]` with a `size` x `size` square set to zero, centred on a uniformly random
 * pixel, the part outside the image clipped (so squares near a border are smaller), as Cutout does.
 */
export function randomCutout<D extends DType>(images: Tensor<D>, size: number, random: Random): Tensor<D> {
  const [n, height, width, channels] = checkImageBatch(images, 'randomCutout');
  if (!Number.isInteger(size) || size < 1) throw new KilnError('INVALID_ARGUMENT', `randomCutout: expected size to be a positive integer, found ${size}`);
  const out = (images.data as AnyTypedArray).slice();
  const rowLength = width * channels;
  for (let i = 0; i < n; i++) {
    const cy = random.int(height);
    const cx = random.int(width);
    const top = cy - Math.floor(size / 2);
    const left = cx - Math.floor(size / 2);
    const x0 = Math.max(0, left) * channels;
    const x1 = Math.min(width, left + size) * channels;
    for (let y = Math.max(0, top); y < Math.min(height, top + size); y++) {
      const row = (i * height + y) * rowLength;
      out.fill(0 as never, row + x0, row + x1);
    }
  }
  return new Tensor(out as TypedArrayOf<D>, images.shape, images.dtype);
}

/** Applies the augmentations `options` asks for, in the order crop, flip, cutout, drawing from `random`. */
export function augmentImages<D extends DType>(images: Tensor<D>, options: AugmentOptions, random: Random): Tensor<D> {
  let out = images;
  if (options.cropPadding) out = randomCrop(out, options.cropPadding, random);
  if (options.horizontalFlip) out = randomHorizontalFlip(out, random);
  if (options.cutout) out = randomCutout(out, options.cutout, random);
  return out;
}
