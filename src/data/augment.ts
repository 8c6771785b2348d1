import { KilnError, formatShape } from '../errors.js';
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
  const [n] = checkImageBatch(images, 'randomCrop');
  return shiftImages(images, cropOffsets(n, padding, random, 'randomCrop'));
}

/** A random offset [dy, dx] per image, each in [-padding, padding], drawn dy then dx image by image. */
function cropOffsets(n: number, padding: number, random: Random, what: string): Int32Array {
  if (!Number.isInteger(padding) || padding < 0) {
    throw new KilnError('INVALID_ARGUMENT', `${what}: expected padding to be a non-negative integer, found ${padding}`);
  }
  const offsets = new Int32Array(2 * n);
  for (let i = 0; i < 2 * n; i++) offsets[i] = random.int(2 * padding + 1) - padding;
  return offsets;
}

/** Image i of `[N, H, W, C]` shifted by offsets [2i, 2i + 1] (dy, dx), the uncovered border set to `fill`. */
function shiftImages<D extends DType>(images: Tensor<D>, offsets: Int32Array, fill = 0): Tensor<D> {
  const [n, height, width, channels] = images.shape as [number, number, number, number];
  const source = images.data as AnyTypedArray;
  const out = allocate(images.dtype, source.length);
  if (fill !== 0) out.fill((images.dtype === 'int64' ? BigInt(fill) : fill) as never);
  const rowLength = width * channels;
  for (let i = 0; i < n; i++) {
    const dy = offsets[2 * i]!;
    const dx = offsets[2 * i + 1]!;
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
  const [n] = checkImageBatch(images, 'randomHorizontalFlip');
  return mirrorImages(images, flipChoices(n, random, probability));
}

/** Whether to mirror each of n images, drawn image by image. */
function flipChoices(n: number, random: Random, probability: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => (random.next() < probability ? 1 : 0));
}

/** The images of `[N, H, W, C]` whose choice is 1 mirrored left-right, the others copied. */
function mirrorImages<D extends DType>(images: Tensor<D>, flips: Uint8Array): Tensor<D> {
  const [n, height, width, channels] = images.shape as [number, number, number, number];
  const source = images.data as AnyTypedArray;
  const out = allocate(images.dtype, source.length);
  const imageLength = height * width * channels;
  for (let i = 0; i < n; i++) {
    const image = i * imageLength;
    if (!flips[i]) {
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

/** What augmentImagesAndLabels returns. */
export interface AugmentedWithLabels<D extends DType, L extends DType> {
  /** The augmented images, `[N, H, W, C]`. */
  images: Tensor<D>;
  /** Their labels, `[N, H, W]`, moved as the images were. */
  labels: Tensor<L>;
}

/**
 * augmentImages for images `[N, H, W, C]` with a label per pixel `[N, H, W]` (segmentation): a crop
 * or flip moves each label map exactly as its image, the uncovered border labelled `labelFill` (the
 * loss's ignored class, so it counts for nothing; else 0, torchvision's fill for masks); a cutout
 * blanks the image and keeps its labels (the object is still there). The same draws from `random`
 * as augmentImages, so the images come out as augmentImages gives them.
 */
export function augmentImagesAndLabels<D extends DType, L extends DType>(
  images: Tensor<D>,
  labels: Tensor<L>,
  options: AugmentOptions,
  random: Random,
  labelFill = 0,
): AugmentedWithLabels<D, L> {
  const [n, height, width] = checkImageBatch(images, 'augmentImagesAndLabels');
  if (labels.rank !== 3 || labels.shape[0] !== n || labels.shape[1] !== height || labels.shape[2] !== width) {
    throw new KilnError('INVALID_SHAPE', `augmentImagesAndLabels: labels must be one per pixel of the images, ${formatShape([n, height, width])}, got ${formatShape(labels.shape)}`);
  }
  const asImages = (t: Tensor<L>) => new Tensor(t.data, [n, height, width, 1], t.dtype);
  let x = images;
  let y = asImages(labels);
  if (options.cropPadding) {
    const offsets = cropOffsets(n, options.cropPadding, random, 'augmentImagesAndLabels');
    x = shiftImages(x, offsets);
    y = shiftImages(y, offsets, labelFill);
  }
  if (options.horizontalFlip) {
    const flips = flipChoices(n, random, 0.5);
    x = mirrorImages(x, flips);
    y = mirrorImages(y, flips);
  }
  if (options.cutout) x = randomCutout(x, options.cutout, random);
  return { images: x, labels: new Tensor(y.data, labels.shape, labels.dtype) };
}
