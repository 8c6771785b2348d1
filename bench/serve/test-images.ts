/*
 * The serve benches' test images: an embedded Fashion-MNIST test image (28×28 grey) and a smooth,
 * textured RGB picture of any size (a photo compresses like this, not like noise or flat colour),
 * encoded as JPEG (quality 90) or PNG with sharp.
 */
import sharp from 'sharp';
import { embedded } from '../../src/data/embedded.js';

/** Interleaved RGB samples [height, width, 3] of a deterministic picture. */
export function picture(width: number, height: number): Buffer {
  const pixels = Buffer.alloc(width * height * 3);
  let seed = 12345;
  const noise = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) % 24;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const v = 128 + 60 * Math.sin(x / (9 + 4 * c) + c) + 40 * Math.cos(y / 13 - c) + noise() - 12;
        pixels[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return pixels;
}

/** The first embedded Fashion-MNIST test image's 28×28 grey samples. */
export async function fashionImage(): Promise<Buffer> {
  const data = await embedded();
  return Buffer.from(Array.from(data.test.images.slice(0, 1).data as Float32Array, (v) => Math.round(v * 255)));
}

/** Raw samples as a JPEG (quality 90) or PNG file. */
export function encode(raw: Buffer, width: number, height: number, channels: 1 | 3, format: 'jpeg' | 'png'): Promise<Buffer> {
  const image = sharp(raw, { raw: { width, height, channels } }).toColourspace(channels === 1 ? 'b-w' : 'srgb');
  return (format === 'jpeg' ? image.jpeg({ quality: 90 }) : image.png()).toBuffer();
}
