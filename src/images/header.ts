import { KilnError } from '../errors.js';

/*
 * What an image file says about itself before any pixel is decoded: its format (from the magic bytes,
 * whatever a client's Content-Type claims) and, for the formats Kiln decodes (JPEG and PNG), its width,
 * height and colour channels, read from the PNG IHDR chunk or the JPEG frame header. The size limit is
 * checked here, so an image bomb (a small file declaring 50,000 × 50,000 pixels) is refused before a
 * decoder allocates anything.
 */

/** The formats Kiln decodes. */
export type ImageFormat = 'jpeg' | 'png';

/** What a JPEG or PNG file's header declares, read before decoding. */
export interface ImageHeader {
  /** The file's format, from its magic bytes. */
  format: ImageFormat;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Colour channels the file declares, alpha excluded: 1 (grey) or 3 (colour; a palette counts as colour). */
  colorChannels: 1 | 3;
}

/** Limits an image must keep to before it is decoded. */
export interface ImageLimits {
  /** Most pixels (width × height) an image may declare (default 16,777,216: 4096 × 4096). */
  maxPixels?: number;
}

/** The default pixel limit (width × height): 16,777,216, i.e. 4096 × 4096. */
export const DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096;

/** Why an image was refused: a client's fault in every case, but servers answer 'unsupported' with 415. */
export type ImageProblem = 'unsupported' | 'too-large' | 'corrupt';

/** A refused image: what is wrong with it, in words and as a kind. */
export class ImageError extends KilnError {
  constructor(
    /** What kind of problem it is: 'unsupported', 'too-large' or 'corrupt'. */
    readonly problem: ImageProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('INVALID_DATA', message, options);
    this.name = 'ImageError';
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const startsWith = (bytes: Uint8Array, prefix: readonly number[], at = 0) => bytes.length >= at + prefix.length && prefix.every((b, i) => bytes[at + i] === b);
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

/** Formats recognised by their magic bytes only to name them when refusing them. */
const OTHER_FORMATS: [string, (b: Uint8Array) => boolean][] = [
  ['GIF', (b) => startsWith(b, ascii('GIF87a')) || startsWith(b, ascii('GIF89a'))],
  ['WebP', (b) => startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8)],
  ['BMP', (b) => startsWith(b, ascii('BM')) && b.length >= 26],
  ['TIFF', (b) => startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])],
  ['HEIF/AVIF', (b) => startsWith(b, ascii('ftyp'), 4) && ['heic', 'heix', 'mif1', 'msf1', 'avif', 'avis'].some((brand) => startsWith(b, ascii(brand), 8))],
  ['JPEG XL', (b) => startsWith(b, [0xff, 0x0a]) || startsWith(b, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20])],
  ['SVG', (b) => /^\s*(<\?xml[^>]*>\s*)?<svg[\s>]/i.test(Buffer.from(b.subarray(0, 256)).toString('latin1'))],
];

/** The format an image's first bytes announce: 'jpeg', 'png', the name of another image format, or undefined. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | string | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, PNG_SIGNATURE)) return 'png';
  return OTHER_FORMATS.find(([, test]) => test(bytes))?.[0];
}

/** Whether the bytes start like an image file of any format sniffImageFormat knows (so a body is an image, not JSON). */
export function looksLikeImage(bytes: Uint8Array): boolean {
  return sniffImageFormat(bytes) !== undefined;
}

/**
 * The header of a JPEG or PNG file, checked against the limits. Throws an ImageError naming `what`:
 * 'unsupported' for another format, 'too-large' past maxPixels, 'corrupt' for a header that is cut
 * short or inconsistent.
 */
export function readImageHeader(bytes: Uint8Array, limits: ImageLimits = {}, what = 'the image'): ImageHeader {
  const format = sniffImageFormat(bytes);
  if (format === undefined) {
    const shown = bytes.length === 0 ? 'it is empty' : `it starts with bytes ${Buffer.from(bytes.subarray(0, 8)).toString('hex').replace(/(..)/g, '$1 ').trim()}`;
    throw new ImageError('unsupported', `${what} is not a JPEG or PNG file (${shown})`);
  }
  if (format !== 'jpeg' && format !== 'png') throw new ImageError('unsupported', `${what} is a ${format} image; Kiln decodes JPEG and PNG only (convert it first)`);
  const header = format === 'png' ? pngHeader(bytes, what) : jpegHeader(bytes, what);
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_IMAGE_PIXELS;
  const pixels = header.width * header.height;
  if (pixels > maxPixels) {
    throw new ImageError('too-large', `${what} declares ${header.width} × ${header.height} pixels (${pixels.toLocaleString('en-US')}), more than the limit of ${maxPixels.toLocaleString('en-US')}; refused before decoding`);
  }
  return header;
}

const u32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
const u16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;

/** PNG: the IHDR chunk, which must come first (PNG specification, 5.6). */
function pngHeader(b: Uint8Array, what: string): ImageHeader {
  if (b.length < 33) throw new ImageError('corrupt', `${what} is a PNG file cut short (${b.length} bytes; its IHDR header alone takes 33)`);
  if (u32(b, 8) !== 13 || !startsWith(b, ascii('IHDR'), 12)) throw new ImageError('corrupt', `${what} is a corrupt PNG file: it does not start with an IHDR chunk`);
  const width = u32(b, 16);
  const height = u32(b, 20);
  const depth = b[24]!;
  const colorType = b[25]!;
  const allowed: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
  if (!allowed[colorType]?.includes(depth)) throw new ImageError('corrupt', `${what} is a corrupt PNG file: colour type ${colorType} with bit depth ${depth} is not a valid combination`);
  checkSize(width, height, what, 'PNG');
  return { format: 'png', width, height, colorChannels: colorType === 0 || colorType === 4 ? 1 : 3 };
}

/** JPEG: the first frame header (SOF0–SOF15 but DHT, JPG and DAC, which share the marker range), before the first scan. */
function jpegHeader(b: Uint8Array, what: string): ImageHeader {
  let at = 2;
  for (;;) {
    // Markers may be preceded by fill bytes (0xFF); a byte other than 0xFF where a marker belongs is corruption.
    if (at >= b.length) throw new ImageError('corrupt', `${what} is a JPEG file cut short before its frame header (${b.length} bytes)`);
    if (b[at] !== 0xff) throw new ImageError('corrupt', `${what} is a corrupt JPEG file: expected a marker at byte ${at}, found 0x${b[at]!.toString(16).padStart(2, '0')}`);
    while (b[at] === 0xff && at < b.length) at++;
    const marker = b[at++];
    if (marker === undefined) throw new ImageError('corrupt', `${what} is a JPEG file cut short before its frame header (${b.length} bytes)`);
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // TEM, RSTn: no length
    if (marker === 0xd9 || marker === 0xda) throw new ImageError('corrupt', `${what} is a corrupt JPEG file: ${marker === 0xda ? 'a scan starts' : 'the image ends'} before any frame header`);
    if (at + 2 > b.length) throw new ImageError('corrupt', `${what} is a JPEG file cut short before its frame header (${b.length} bytes)`);
    const length = u16(b, at);
    if (length < 2) throw new ImageError('corrupt', `${what} is a corrupt JPEG file: segment 0xff${marker.toString(16)} at byte ${at - 2} has length ${length}`);
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (at + 8 > b.length) throw new ImageError('corrupt', `${what} is a JPEG file cut short inside its frame header`);
      const height = u16(b, at + 3);
      const width = u16(b, at + 5);
      const components = b[at + 7]!;
      if (height === 0) throw new ImageError('unsupported', `${what} is a JPEG file whose height is given after the first scan (a DNL marker), which Kiln does not read`);
      if (components !== 1 && components !== 3 && components !== 4) throw new ImageError('corrupt', `${what} is a corrupt JPEG file: its frame declares ${components} colour components (expected 1, 3 or 4)`);
      checkSize(width, height, what, 'JPEG');
      return { format: 'jpeg', width, height, colorChannels: components === 1 ? 1 : 3 };
    }
    at += length;
  }
}

function checkSize(width: number, height: number, what: string, format: string): void {
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) throw new ImageError('corrupt', `${what} is a corrupt ${format} file: it declares ${width} × ${height} pixels`);
}
