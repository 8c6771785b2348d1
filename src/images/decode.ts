import type { OutputInfo, Sharp, SharpOptions } from 'sharp';
import { KilnError } from '../errors.js';
import { ImageError, readImageHeader, type ImageLimits } from './header.js';

/*
 * Decoding JPEG and PNG files to 8-bit pixels with sharp (libvips, libjpeg-turbo, libspng: prebuilt
 * native binaries from npm). The choice was measured (bench/serve/image-decode.ts; bench/README.md):
 * sharp decodes on libuv's thread pool, so a server's event loop spends a few microseconds per image
 * where a pure-JavaScript decoder blocks it for the whole decode, and at most the pool's size of
 * images (4 by default) are decoded at once, which bounds the memory decoded pixels take.
 *
 * The header is read and checked first (header.ts): only JPEG and PNG reach libvips, and only within
 * the pixel limit. Colour handling is PIL's `convert('RGB')` / `convert('L')` start: alpha is dropped
 * (not composited), palettes are expanded, 16-bit samples become 8-bit, CMYK and embedded colour
 * profiles become sRGB; EXIF orientation is not applied (as PIL, Keras and torchvision do not by
 * default).
 */

type SharpFactory = (input?: Uint8Array, options?: SharpOptions) => Sharp;
let loading: Promise<SharpFactory> | undefined;

/**
 * sharp, loaded on first use: its native library takes a few hundred milliseconds to load, which
 * commands that never see an image should not pay; and a platform without a prebuilt binary loses
 * image decoding only, with a message that says so.
 */
function sharpModule(): Promise<SharpFactory> {
  loading ??= import('sharp').then(
    (m) => m.default as unknown as SharpFactory,
    (err: Error) => {
      loading = undefined;
      throw new KilnError('RUNTIME_ERROR', `decoding images needs sharp's native library, which did not load on this platform (${process.platform}-${process.arch}): ${err.message}`, { cause: err });
    },
  );
  return loading;
}

/** A decoded image: its 8-bit pixels and their size. */
export interface DecodedImage {
  /** Interleaved 8-bit samples [height, width, channels]. */
  pixels: Uint8Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 1 for a grey source, else 3 (RGB). */
  channels: 1 | 3;
}

/** Decodes a JPEG or PNG file; throws an ImageError naming `what` for anything else, or for a file that does not decode. */
export async function decodeImage(bytes: Uint8Array, limits: ImageLimits = {}, what = 'the image'): Promise<DecodedImage> {
  const header = readImageHeader(bytes, limits, what);
  const name = header.format === 'jpeg' ? 'JPEG' : 'PNG';
  const sharp = await sharpModule();
  let pipeline = sharp(bytes, {
    // A truncated or corrupt file fails instead of decoding to grey padding; warnings alone do not.
    failOn: 'error',
    limitInputPixels: header.width * header.height,
    sequentialRead: true,
  }).removeAlpha();
  if (header.colorChannels === 1) pipeline = pipeline.toColourspace('b-w');
  let result: { data: Buffer; info: OutputInfo };
  try {
    result = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    const reason = ((err as Error).message ?? String(err)).split('\n')[0]!.replace(/^Input buffer has corrupt header: /, '');
    throw new ImageError('corrupt', `${what} is a ${name} file that cannot be decoded (corrupt or truncated): ${reason}`, { cause: err });
  }
  const { data, info } = result;
  if (info.width !== header.width || info.height !== header.height || (info.channels !== 1 && info.channels !== 3)) {
    throw new ImageError('corrupt', `${what} is a ${name} file whose header declares ${header.width} × ${header.height} pixels but whose data decodes to ${info.width} × ${info.height} × ${info.channels}`);
  }
  return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: info.channels };
}

/** An 8-bit grey or RGB image as a PNG file (the demo writes its test images so). */
export async function encodePng(image: DecodedImage): Promise<Uint8Array> {
  const sharp = await sharpModule();
  const png = await sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: image.channels } })
    .toColourspace(image.channels === 1 ? 'b-w' : 'srgb')
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}
