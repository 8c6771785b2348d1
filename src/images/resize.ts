/*
 * Resizing decoded pixels to a model's input size: bilinear with antialiasing, the convention of PIL's
 * `Image.resize(size, BILINEAR)` and of torchvision's `resize(..., antialias=True)` (what TorchServe's
 * image handlers and most PyTorch pipelines run), computed in floating point:
 *
 * - pixel centres at half-integers (output pixel i samples the input at (i + 0.5) · in / out, in input
 *   pixel units where input pixel j covers [j, j + 1)): "half-pixel", not "align corners";
 * - a triangle (tent) filter of radius max(1, in / out) input pixels: when enlarging it is ordinary
 *   bilinear interpolation between the two nearest pixels (equal to ONNX Resize linear / half_pixel,
 *   OpenCV INTER_LINEAR and TF2 tf.image.resize bilinear); when shrinking it widens so that every input
 *   pixel contributes (no aliasing), as PIL does;
 * - at the borders the weights of taps that fall outside the image are dropped and the rest
 *   renormalised (equal to repeating the edge pixel when enlarging);
 * - separable: rows first, then columns, in float64, rounded to float32 once at the end. PIL rounds to
 *   8 bits after each pass, so its results differ from these by at most about 1 in 255.
 *
 * An optional crop box (in input pixels) is resized instead of the whole image.
 */

/** The region of the input that is resized, in whole input pixels. */
export interface CropBox {
  /** The first column of the region, in input pixels. */
  left: number;
  /** The first row of the region, in input pixels. */
  top: number;
  /** Width of the region, in input pixels. */
  width: number;
  /** Height of the region, in input pixels. */
  height: number;
}

/** For each output index along one axis: the first input index it reads and its normalised weights. */
interface AxisPlan {
  first: Int32Array;
  /** Input samples each output reads (its taps inside the image). */
  count: Int32Array;
  taps: number;
  /** out × taps, zero-padded past each output's own tap count. */
  weights: Float64Array;
}

/** The triangle filter's weights for resizing [offset, offset + span) of an axis to `out` samples. */
export function axisPlan(offset: number, span: number, size: number, out: number): AxisPlan {
  const scale = span / out;
  const radius = Math.max(1, scale);
  const taps = Math.ceil(radius) * 2 + 1;
  const first = new Int32Array(out);
  const count = new Int32Array(out);
  const weights = new Float64Array(out * taps);
  for (let i = 0; i < out; i++) {
    const centre = offset + (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - radius + 0.5));
    const hi = Math.min(size, Math.floor(centre + radius + 0.5));
    let total = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - centre) / radius));
      weights[i * taps + (j - lo)] = w;
      total += w;
    }
    for (let k = 0; k < hi - lo; k++) weights[i * taps + k]! /= total;
    first[i] = lo;
    count[i] = hi - lo;
  }
  return { first, count, taps, weights };
}

/**
 * Interleaved pixels [height, width, channels] (the crop box of them) resized to [outHeight, outWidth,
 * channels], values kept on their own scale (0–255 in, 0–255 out, not rounded).
 */
export function resizeBilinear(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  box: CropBox = { left: 0, top: 0, width, height },
): Float32Array {
  const columns = axisPlan(box.left, box.width, width, outWidth);
  const rows = axisPlan(box.top, box.height, height, outHeight);
  // The input rows the vertical pass reads, so the horizontal pass computes only those.
  let rowLo = height;
  let rowHi = 0;
  for (let i = 0; i < outHeight; i++) {
    rowLo = Math.min(rowLo, rows.first[i]!);
    rowHi = Math.max(rowHi, rows.first[i]! + rows.count[i]!);
  }
  const across = new Float64Array((rowHi - rowLo) * outWidth * channels);
  const { first, count, weights, taps } = columns;
  for (let y = rowLo; y < rowHi; y++) {
    const src = y * width * channels;
    const dst = (y - rowLo) * outWidth * channels;
    // RGB and grey, the cases images take, with the channels unrolled: each tap reads one pixel's samples together.
    if (channels === 3) {
      for (let x = 0; x < outWidth; x++) {
        let at = src + first[x]! * 3;
        const w = x * taps;
        const n = count[x]!;
        let r = 0;
        let g = 0;
        let b = 0;
        for (let k = 0; k < n; k++, at += 3) {
          const weight = weights[w + k]!;
          r += weight * pixels[at]!;
          g += weight * pixels[at + 1]!;
          b += weight * pixels[at + 2]!;
        }
        across[dst + 3 * x] = r;
        across[dst + 3 * x + 1] = g;
        across[dst + 3 * x + 2] = b;
      }
    } else {
      for (let x = 0; x < outWidth; x++) {
        const from = src + first[x]! * channels;
        const w = x * taps;
        const n = count[x]!;
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let k = 0; k < n; k++) sum += weights[w + k]! * pixels[from + k * channels + c]!;
          across[dst + x * channels + c] = sum;
        }
      }
    }
  }
  // Columns: each output row is a weighted sum of whole rows of `across`, accumulated row by row.
  const out = new Float32Array(outHeight * outWidth * channels);
  const rowLength = outWidth * channels;
  const sum = new Float64Array(rowLength);
  for (let y = 0; y < outHeight; y++) {
    const start = (rows.first[y]! - rowLo) * rowLength;
    const w = y * rows.taps;
    const n = rows.count[y]!;
    sum.fill(0);
    for (let k = 0; k < n; k++) {
      const weight = rows.weights[w + k]!;
      const from = start + k * rowLength;
      for (let i = 0; i < rowLength; i++) sum[i]! += weight * across[from + i]!;
    }
    out.set(sum, y * rowLength);
  }
  return out;
}
