/*
 * Image files of known pixels for the tests, written here rather than by the library under test: a
 * PNG writer (PNG specification: signature, IHDR, one zlib IDAT of filter-0 rows, IEND, each chunk with
 * its CRC-32), and hand-built headers for the refusals (an image bomb is a header with a huge size and
 * nothing behind it).
 */
import { crc32, deflateSync } from 'node:zlib';

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function ihdr(width: number, height: number, colorType: number, depth = 8): Buffer {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data[8] = depth;
  data[9] = colorType;
  return chunk('IHDR', data);
}

/** PNG colour types by channel count: grey, grey + alpha, RGB, RGBA. */
const COLOR_TYPE: Record<number, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };

/** An 8-bit PNG of interleaved samples [height, width, channels] (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA). */
export function png(pixels: ArrayLike<number>, width: number, height: number, channels: 1 | 2 | 3 | 4): Buffer {
  if (pixels.length !== width * height * channels) throw new Error(`png: ${pixels.length} samples for ${width} x ${height} x ${channels}`);
  const rows = Buffer.alloc(height * (1 + width * channels));
  for (let y = 0; y < height; y++) {
    rows[y * (1 + width * channels)] = 0; // filter: none
    for (let i = 0; i < width * channels; i++) rows[y * (1 + width * channels) + 1 + i] = pixels[y * width * channels + i]!;
  }
  return Buffer.concat([PNG_SIGNATURE, ihdr(width, height, COLOR_TYPE[channels]!), chunk('IDAT', deflateSync(rows)), chunk('IEND', new Uint8Array(0))]);
}

/** A PNG that declares width × height and holds nothing else: an image bomb's header. */
export function pngHeaderOnly(width: number, height: number): Buffer {
  return Buffer.concat([PNG_SIGNATURE, ihdr(width, height, 2), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', new Uint8Array(0))]);
}

/** A JPEG's start up to a baseline frame header declaring width × height (3 components), then nothing. */
export function jpegHeaderOnly(width: number, height: number): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, Buffer.from([0xff, 0xd9])]);
}

/** The first bytes of a GIF and of a WebP file (enough for the format to be recognised). */
export const GIF = Buffer.concat([Buffer.from('GIF89a', 'latin1'), Buffer.from([1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3b])]);
export const WEBP = Buffer.concat([Buffer.from('RIFF', 'latin1'), Buffer.from([26, 0, 0, 0]), Buffer.from('WEBPVP8L', 'latin1'), Buffer.from([13, 0, 0, 0, 0x2f, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0])]);
