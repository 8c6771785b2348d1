/**
 * kiln.images: an image file of known pixels becomes exactly the tensor the model's input takes —
 * decoded, channels converted, resized (antialiased half-pixel bilinear: hand-computed examples and
 * PIL's own output), scaled, normalized, laid out NHWC or NCHW — and a file that is not a JPEG or PNG,
 * is corrupt or truncated, or declares too many pixels is refused with a reason, before decoding.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { KilnError } from '../../src/errors.js';
import { decodeImage } from '../../src/images/decode.js';
import { ImageError, readImageHeader } from '../../src/images/header.js';
import { resizeBilinear } from '../../src/images/resize.js';
import { centerCropBox, imageInputSpec, rgbToGrey, toTensor } from '../../src/images/to-tensor.js';
import type { ModelDescription } from '../../src/model/onnx-model.js';
import { GIF, jpegHeaderOnly, png, pngHeaderOnly, WEBP } from './files.js';

/** A model description with one input of this shape (and optional kiln.preprocessing metadata). */
function model(shape: (number | string | null)[], preprocessing?: object, dtype = 'float32'): ModelDescription {
  return {
    inputs: [{ name: 'image', dtype, shape }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: [null, 10] }],
    metadata: preprocessing ? { 'kiln.preprocessing': JSON.stringify(preprocessing) } : {},
  } as unknown as ModelDescription;
}

/** 4 × 3 RGB pixels, every sample distinct: pixel (x, y) channel c = 20·(y·4 + x) + c·7 + 1. */
const W = 4;
const H = 3;
const RGB = Array.from({ length: W * H * 3 }, (_, i) => 20 * Math.floor(i / 3) + (i % 3) * 7 + 1);

const near = (got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number, what: string) => {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= tolerance, `${what}[${i}]: got ${got[i]}, want ${want[i]} (± ${tolerance})`);
};

const refused = (problem: string, message: RegExp) => (err: unknown) => err instanceof ImageError && err.problem === problem && message.test(err.message);

describe('toTensor: a PNG of known pixels at the model input size', () => {
  const file = png(RGB, W, H, 3);

  it('gives pixels / 255 in NHWC order for a channels-last input', async () => {
    const t = await toTensor(file, model([null, H, W, 3]));
    assert.deepEqual(t.shape, [1, H, W, 3]);
    assert.equal(t.dtype, 'float32');
    assert.deepEqual(Array.from(t.data as Float32Array), RGB.map((v) => Math.fround(v / 255)));
  });

  it('gives the same values in NCHW order for a channels-first input (PyTorch export)', async () => {
    const t = await toTensor(file, model(['N', 3, H, W]));
    assert.deepEqual(t.shape, [1, 3, H, W]);
    const want = [];
    for (let c = 0; c < 3; c++) for (let p = 0; p < W * H; p++) want.push(Math.fround(RGB[p * 3 + c]! / 255));
    assert.deepEqual(Array.from(t.data as Float32Array), want);
  });

  it("normalizes by the mean and std in the model's metadata, per channel, in either layout", async () => {
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const nhwc = await toTensor(file, model([null, H, W, 3], { mean, std }));
    assert.deepEqual(Array.from(nhwc.data as Float32Array), RGB.map((v, i) => Math.fround((v / 255 - mean[i % 3]!) / std[i % 3]!)));
    const nchw = await toTensor(file, model([null, 3, H, W], { layout: 'nchw', mean, std }));
    const want = [];
    for (let c = 0; c < 3; c++) for (let p = 0; p < W * H; p++) want.push(Math.fround((RGB[p * 3 + c]! / 255 - mean[c]!) / std[c]!));
    assert.deepEqual(Array.from(nchw.data as Float32Array), want);
  });

  it('reads an ambiguous shape ([N, 3, 3, 3]) channels-last unless the metadata declares NCHW', async () => {
    const square = png(RGB.slice(0, 27), 3, 3, 3);
    const plain = await toTensor(square, model([null, 3, 3, 3]));
    assert.deepEqual(Array.from(plain.data as Float32Array), RGB.slice(0, 27).map((v) => Math.fround(v / 255)));
    const declared = await toTensor(square, model([null, 3, 3, 3], { layout: 'nchw' }));
    const want = [];
    for (let c = 0; c < 3; c++) for (let p = 0; p < 9; p++) want.push(Math.fround(RGB[p * 3 + c]! / 255));
    assert.deepEqual(Array.from(declared.data as Float32Array), want);
  });

  it('feeds a uint8 input the pixels themselves', async () => {
    const t = await toTensor(file, model([null, H, W, 3], undefined, 'uint8'));
    assert.equal(t.dtype, 'uint8');
    assert.deepEqual(Array.from(t.data as Uint8Array), RGB);
  });

  it('converts RGB to grey as PIL does, and grey to RGB by repeating the channel', async () => {
    const grey = await toTensor(file, model([null, H, W, 1]));
    assert.deepEqual(grey.shape, [1, H, W, 1]);
    const luma = (r: number, g: number, b: number) => (19595 * r + 38470 * g + 7471 * b + 32768) >> 16;
    assert.deepEqual(Array.from(grey.data as Float32Array), Array.from({ length: W * H }, (_, p) => Math.fround(luma(RGB[3 * p]!, RGB[3 * p + 1]!, RGB[3 * p + 2]!) / 255)));
    const values = Array.from({ length: W * H }, (_, i) => i * 21);
    const rgb = await toTensor(png(values, W, H, 1), model([null, 3, H, W]));
    assert.deepEqual(Array.from(rgb.data as Float32Array), [...values, ...values, ...values].map((v) => Math.fround(v / 255)));
    // A grey input without a channel axis: [N, H, W].
    const plain = await toTensor(png(values, W, H, 1), model([null, H, W]));
    assert.deepEqual(plain.shape, [1, H, W]);
  });

  it("matches PIL's convert('L') on a spread of colours", () => {
    const fixture = JSON.parse(readFileSync('test/fixtures/images/pil-resize.json', 'utf8')) as { rgb: number[]; grey: number[] };
    assert.deepEqual(Array.from(rgbToGrey(Uint8Array.from(fixture.rgb))), fixture.grey);
  });

  it('drops an alpha channel (as PIL convert("RGB") does; no compositing)', async () => {
    const rgba = Array.from({ length: W * H * 4 }, (_, i) => (i % 4 === 3 ? (i * 37) % 256 : RGB[Math.floor(i / 4) * 3 + (i % 4)]!));
    const t = await toTensor(png(rgba, W, H, 4), model([null, H, W, 3]));
    assert.deepEqual(Array.from(t.data as Float32Array), RGB.map((v) => Math.fround(v / 255)));
  });
});

describe('toTensor: resizing', () => {
  it('shrinks a row as the tent filter of radius 2 gives, by hand: [0, 100, 200, 255] → [125/1.75, 366.25/1.75]', async () => {
    // Output 0: centre 1.0, taps at 0.5, 1.5, 2.5 weigh 0.75, 0.75, 0.25 → (0·0.75 + 100·0.75 + 200·0.25) / 1.75.
    // Output 1: centre 3.0, taps at 1.5, 2.5, 3.5 weigh 0.25, 0.75, 0.75 → (25 + 150 + 191.25) / 1.75.
    const t = await toTensor(png([0, 100, 200, 255], 4, 1, 1), model([null, 1, 2, 1]));
    near(t.data as Float32Array, [125 / 1.75 / 255, 366.25 / 1.75 / 255], 1e-7, 'shrunk');
  });

  it('enlarges a row as half-pixel bilinear does, edges repeated: [40, 200] → [40, 80, 160, 200]', async () => {
    // Output i samples at (i + 0.5) / 2 - 0.5 input pixels: -0.25 (clamped: 40), 0.25, 0.75, 1.25 (clamped: 200).
    const t = await toTensor(png([40, 200], 2, 1, 1), model([null, 1, 4, 1]));
    near(t.data as Float32Array, [40, 80, 160, 200].map((v) => v / 255), 1e-7, 'enlarged');
  });

  it("matches PIL's Image.resize(size, BILINEAR[, box]) in float mode: shrinking, enlarging, mixed, a crop box", () => {
    const fixture = JSON.parse(readFileSync('test/fixtures/images/pil-resize.json', 'utf8')) as {
      width: number;
      height: number;
      pixels: number[];
      cases: { width: number; height: number; box: number[] | null; values: number[] }[];
    };
    assert.equal(fixture.cases.length, 5);
    for (const c of fixture.cases) {
      const box = c.box ? { left: c.box[0]!, top: c.box[1]!, width: c.box[2]! - c.box[0]!, height: c.box[3]! - c.box[1]! } : undefined;
      const got = resizeBilinear(Uint8Array.from(fixture.pixels), fixture.width, fixture.height, 1, c.width, c.height, box);
      // PIL rounds to float32 between its two passes; Kiln keeps float64 until the end.
      near(got, c.values, 1e-4, `${fixture.width}×${fixture.height} → ${c.width}×${c.height}${c.box ? ` box ${c.box}` : ''}`);
    }
  });

  it("center crop takes the largest centred region with the input's aspect ratio (Keras smart_resize)", async () => {
    assert.deepEqual(centerCropBox(8, 4, 2, 2), { left: 2, top: 0, width: 4, height: 4 });
    assert.deepEqual(centerCropBox(5, 9, 3, 3), { left: 0, top: 2, width: 5, height: 5 });
    // An 8 × 4 image whose middle 4 × 4 is one grey and the sides another: cropped to 2 × 2 it sees only
    // the middle — save for PIL's box convention, where the filter reads one pixel past the box edge.
    const pixels = Array.from({ length: 32 }, (_, i) => (i % 8 >= 2 && i % 8 < 6 ? 100 : 0));
    const cropped = await toTensor(png(pixels, 8, 4, 1), model([null, 2, 2, 1]), { crop: 'center' });
    const expected = resizeBilinear(Uint8Array.from(pixels), 8, 4, 1, 2, 2, { left: 2, top: 0, width: 4, height: 4 });
    near(cropped.data as Float32Array, Array.from(expected, (v) => v / 255), 1e-7, 'cropped');
    const stretched = await toTensor(png(pixels, 8, 4, 1), model([null, 2, 2, 1]));
    assert.ok(Math.abs((stretched.data as Float32Array)[0]! - (cropped.data as Float32Array)[0]!) > 0.05, 'the crop changes the result');
  });

  it('takes the size from options when the model leaves it variable, and refuses to guess', async () => {
    const file = png(RGB, W, H, 3);
    const t = await toTensor(file, model([null, 3, 'H', 'W']), { size: [6, 8] });
    assert.deepEqual(t.shape, [1, 3, 6, 8]);
    await assert.rejects(toTensor(file, model([null, 3, 'H', 'W'])), /leaves its height or width variable; give the size/);
  });
});

describe('toTensor: JPEG', () => {
  it('decodes a grey JPEG of flat 8×8 blocks at quality 100 exactly', async () => {
    // Flat blocks carry only a DC coefficient, which quality 100 keeps exactly.
    const levels = [0, 37, 128, 255, 90, 200];
    const pixels = Buffer.alloc(24 * 16);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 24; x++) pixels[y * 24 + x] = levels[Math.floor(y / 8) * 3 + Math.floor(x / 8)]!;
    const jpeg = await sharp(pixels, { raw: { width: 24, height: 16, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 100 }).toBuffer();
    assert.equal(readImageHeader(jpeg).colorChannels, 1);
    const t = await toTensor(jpeg, model([null, 1, 16, 24]));
    assert.deepEqual(Array.from(t.data as Float32Array), Array.from(pixels, (v) => Math.fround(v / 255)));
  });

  it('decodes an RGB JPEG at quality 95 (4:4:4) to within 3/255 of its pixels, in both layouts', async () => {
    const width = 16;
    const height = 8;
    const pixels = Buffer.from(Array.from({ length: width * height * 3 }, (_, i) => (Math.floor(i / 3) % width) * 8 + (i % 3) * 30 + Math.floor(i / (3 * width)) * 4));
    const jpeg = await sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer();
    const nhwc = await toTensor(jpeg, model([null, height, width, 3]));
    near(nhwc.data as Float32Array, Array.from(pixels, (v) => v / 255), 3 / 255, 'NHWC');
    const nchw = await toTensor(jpeg, model([null, 3, height, width]));
    const want = [];
    for (let c = 0; c < 3; c++) for (let p = 0; p < width * height; p++) want.push((nhwc.data as Float32Array)[p * 3 + c]!);
    assert.deepEqual(Array.from(nchw.data as Float32Array), want);
  });
});

describe('refusals, before any pixel is decoded where the header tells', () => {
  const rgbModel = model([null, 8, 8, 3]);

  it('an image bomb: a PNG or JPEG declaring 50,000 × 50,000 pixels', async () => {
    const started = performance.now();
    await assert.rejects(toTensor(pngHeaderOnly(50_000, 50_000), rgbModel), refused('too-large', /declares 50000 × 50000 pixels \(2,500,000,000\), more than the limit of 16,777,216; refused before decoding/));
    await assert.rejects(toTensor(jpegHeaderOnly(50_000, 50_000), rgbModel), refused('too-large', /50000 × 50000/));
    await assert.rejects(toTensor(png(RGB, W, H, 3), rgbModel, { maxPixels: 11 }), refused('too-large', /4 × 3 pixels \(12\), more than the limit of 11/));
    assert.ok(performance.now() - started < 5_000);
  });

  it('an unsupported format, named: GIF, WebP; and bytes that are no image', async () => {
    await assert.rejects(toTensor(GIF, rgbModel), refused('unsupported', /is a GIF image; Kiln decodes JPEG and PNG only/));
    await assert.rejects(toTensor(WEBP, rgbModel), refused('unsupported', /is a WebP image/));
    await assert.rejects(toTensor(Buffer.from('{"instances": [1]}'), rgbModel), refused('unsupported', /is not a JPEG or PNG file \(it starts with bytes 7b 22 69/));
    await assert.rejects(toTensor(Buffer.alloc(0), rgbModel), refused('unsupported', /it is empty/));
  });

  it('a truncated or corrupt PNG or JPEG', async () => {
    const file = png(RGB, W, H, 3);
    await assert.rejects(toTensor(file.subarray(0, 20), rgbModel), refused('corrupt', /PNG file cut short/));
    await assert.rejects(toTensor(file.subarray(0, file.length - 20), rgbModel), refused('corrupt', /PNG file that cannot be decoded/));
    const broken = Buffer.from(file);
    broken.fill(0xab, 41, 50); // inside the compressed data
    await assert.rejects(toTensor(broken, rgbModel), refused('corrupt', /cannot be decoded/));
    const jpeg = await sharp(Buffer.alloc(64 * 64 * 3, 90), { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    await assert.rejects(toTensor(jpeg.subarray(0, jpeg.length - 100), rgbModel), refused('corrupt', /JPEG file that cannot be decoded \(corrupt or truncated\)/));
    await assert.rejects(toTensor(jpeg.subarray(0, 10), rgbModel), refused('corrupt', /JPEG file cut short before its frame header/));
    await assert.rejects(toTensor(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 2]), rgbModel), refused('corrupt', /a scan starts before any frame header/));
  });

  it('a model input that is not an image', () => {
    const notImage = (m: ModelDescription, message: RegExp) =>
      assert.throws(() => imageInputSpec(m), (e: unknown) => e instanceof KilnError && e.code === 'INVALID_SHAPE' && message.test(e.message));
    notImage(model([null, 784]), /'image' is not an image input: its shape is \[null, 784\]/);
    notImage(model([null, 28, 28, 5]), /no channel axis of size 1 \(grey\) or 3 \(RGB\)/);
    notImage(model([null, 28, 28, 3], undefined, 'int64'), /element type is int64/);
    notImage(model([8, 28, 28, 3]), /batch dimension is fixed at 8/);
    assert.throws(() => imageInputSpec(model([null, 3, 28, 28], { mean: [0.5, 0.5] })), /mean .* has 2 values; its images have 3 channels/);
  });

  it('decodeImage checks the header before handing the file to the decoder', async () => {
    await assert.rejects(decodeImage(pngHeaderOnly(40_000, 40_000), { maxPixels: 1 << 30 }), refused('too-large', /1,073,741,824/));
    const ok = await decodeImage(png(RGB, W, H, 3));
    assert.deepEqual([ok.width, ok.height, ok.channels, Array.from(ok.pixels)], [W, H, 3, RGB]);
  });
});
