/**
 * Just enough of a PNG decoder to look at a screenshot: 8-bit greyscale, RGB or RGBA, not interlaced
 * (what Chromium writes), the five row filters undone.
 */
import { inflateSync } from 'node:zlib';

export interface Image {
  width: number;
  height: number;
  /** Channels per pixel (1, 3 or 4). */
  channels: number;
  pixels: Uint8Array;
}

export function decodePng(file: Uint8Array): Image {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG file');
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at < buf.length; ) {
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [bitDepth, colorType, , , interlace] = [data[8], data[9], data[10], data[11], data[12]];
      channels = ({ 0: 1, 2: 3, 6: 4 } as Record<number, number>)[colorType!] ?? 0;
      if (bitDepth !== 8 || channels === 0 || interlace !== 0) throw new Error(`unsupported PNG: bit depth ${bitDepth}, colour type ${colorType}, interlace ${interlace}`);
    } else if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = y * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? pixels[row + i - channels]! : 0;
      const b = y > 0 ? pixels[row - stride + i]! : 0;
      const c = y > 0 && i >= channels ? pixels[row - stride + i - channels]! : 0;
      let predicted = 0;
      if (filter === 1) predicted = a;
      else if (filter === 2) predicted = b;
      else if (filter === 3) predicted = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[row + i] = (src[i]! + predicted) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** Fraction of pixels that are not (near) white, and how many distinct colours the image has. */
export function inkStatistics(image: Image): { inked: number; colours: number } {
  let inked = 0;
  const colours = new Set<number>();
  const n = image.width * image.height;
  for (let p = 0; p < n; p++) {
    const o = p * image.channels;
    const [r, g, b] = image.channels === 1 ? [image.pixels[o]!, image.pixels[o]!, image.pixels[o]!] : [image.pixels[o]!, image.pixels[o + 1]!, image.pixels[o + 2]!];
    if (r < 240 || g < 240 || b < 240) inked++;
    colours.add((r << 16) | (g << 8) | b);
  }
  return { inked: inked / n, colours: colours.size };
}
