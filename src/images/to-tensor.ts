import { KilnError, formatShape } from '../errors.js';
import type { Preprocessing } from '../model/imported-graph.js';
import { parsePreprocessing, withRecognizedScale } from '../model/input-adapter.js';
import { Model } from '../model/model.js';
import { OnnxModel, type ModelDescription, type TensorDescription } from '../model/onnx-model.js';
import { checkScale, PREPROCESSING_METADATA_KEY } from '../model/imported-graph.js';
import { Tensor } from '../tensor.js';
import { decodeImage, type DecodedImage } from './decode.js';
import type { ImageLimits } from './header.js';
import { resizeBilinear, type CropBox } from './resize.js';

/*
 * An image file → the tensor a model's image input takes, one step after another: decode (decode.ts),
 * convert the channels to the model's (RGB → grey with PIL's ITU-R 601-2 luma, grey → RGB by
 * repeating), crop (optional), resize to the input's height and width (resize.ts: antialiased
 * half-pixel bilinear, PIL's and torchvision's), scale to [0, 1] (÷ 255; or leave 0–255 for a model
 * that takes raw pixels: scale 1, declared or its own Rescaling at its input), subtract the mean and
 * divide by the std the model declares per channel (metadata 'kiln.preprocessing', as `kiln train
 * --scale --mean --std` writes it), and lay the result out as the input wants it: [1, H, W, C], [1, C, H, W] or, for a
 * grey input without a channel axis, [1, H, W]. A uint8 input takes the resized pixels rounded, unscaled.
 */

export type ImageCrop = 'none' | 'center';

export interface ImageOptions extends ImageLimits {
  /**
   * 'none' (default): the whole image is resized to the input's size, its aspect ratio not kept (Keras's
   * `image_dataset_from_directory` default). 'center': the largest centred region with the input's
   * aspect ratio is resized (Keras's `smart_resize` / `crop_to_aspect_ratio=True`).
   */
  crop?: ImageCrop;
  /** [height, width] for a model whose input leaves them variable. */
  size?: [number, number];
  /** Overrides the preprocessing the model declares (layout, scale, mean, std). */
  preprocessing?: Preprocessing;
  /** Which input takes the image, for a model with several (default: its only input). */
  inputName?: string;
}

/** A model, as toTensor takes it: a loaded ONNX file, a Kiln model, or a model's description. */
export type ImageModel =
  | OnnxModel
  | Model
  | ModelDescription
  | {
      /** The model's description (inputs, outputs, metadata). */
      description: ModelDescription;
    };

/** How a model's image input wants its pixels. */
export interface ImageInputSpec {
  /** The input's name. */
  name: string;
  /** The input's element type: float32 takes scaled, normalised pixels; uint8 the resized pixels rounded, unscaled. */
  dtype: 'float32' | 'uint8';
  /** nhw: a grey image without a channel axis. */
  layout: 'nhwc' | 'nchw' | 'nhw';
  /** Undefined where the model leaves the size variable (options.size fills it). */
  height: number | undefined;
  /** Width in pixels; undefined where the model leaves it variable. */
  width: number | undefined;
  /** Colour channels the input takes: 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  /** What a 0–255 pixel value is multiplied by: 1/255 (pixels in [0, 1]) unless the model takes raw pixels (1). */
  scale: number;
  /** Mean subtracted from the scaled pixels: one per channel, or one for all; undefined for 0. */
  mean: number[] | undefined;
  /** Std that pixels are divided by after the mean is subtracted: one per channel, or one for all; undefined for 1. */
  std: number[] | undefined;
}

const fixed = (d: number | string | null | undefined): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);

/** The input and the preprocessing a model declares for it. */
function describe(model: ImageModel, inputName: string | undefined): { input: TensorDescription; preprocessing: Preprocessing; what: string } {
  let inputs: TensorDescription[];
  let preprocessing: Preprocessing;
  if (model instanceof Model) {
    // A Kiln model takes Kiln's images [N, ...inputShape] and applies any declared mean/std in its own graph.
    inputs = [{ name: 'input', dtype: 'float32', shape: [null, ...model.inputShape] }];
    preprocessing = {};
  } else {
    const description = model instanceof OnnxModel || 'description' in model ? model.description : model;
    inputs = description.inputs;
    preprocessing = withRecognizedScale(parsePreprocessing(description.metadata[PREPROCESSING_METADATA_KEY]), description.inputRescaling, description.metadata);
  }
  if (inputs.length === 0) throw new KilnError('INVALID_ARGUMENT', 'the model has no inputs');
  let input: TensorDescription | undefined;
  if (inputName !== undefined) {
    input = inputs.find((i) => i.name === inputName);
    if (!input) throw new KilnError('INVALID_ARGUMENT', `the model has no input '${inputName}' (inputs: ${inputs.map((i) => i.name).join(', ')})`);
  } else if (inputs.length > 1) {
    throw new KilnError('INVALID_ARGUMENT', `the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); say which one takes the image`);
  } else input = inputs[0]!;
  return { input, preprocessing, what: `the model's input '${input.name}'` };
}

/**
 * How the model's image input is laid out: a declared layout (metadata, or `options.preprocessing`),
 * else the axis of size 1 or 3 — the last one (channels-last) or, failing that, the first after the batch
 * (channels-first). Anything else is not an image input, and says so.
 */
export function imageInputSpec(model: ImageModel, options: Pick<ImageOptions, 'preprocessing' | 'inputName'> = {}): ImageInputSpec {
  const { input, preprocessing: declared, what } = describe(model, options.inputName);
  const preprocessing = { ...declared, ...options.preprocessing };
  const shape = input.shape;
  const notImage = (why: string) => new KilnError('INVALID_SHAPE', `${what} is not an image input: ${why}`);
  if (input.dtype !== 'float32' && input.dtype !== 'uint8') throw notImage(`its element type is ${input.dtype} (images feed float32 or uint8 inputs)`);
  if (!shape || (shape.length !== 3 && shape.length !== 4)) {
    throw notImage(`its shape is ${shape ? formatShape(shape) : 'unknown'}; an image input is [N, H, W, C], [N, C, H, W] or [N, H, W]`);
  }
  const batch = shape[0];
  if (typeof batch === 'number' && batch !== 1) throw notImage(`its batch dimension is fixed at ${batch}; one image makes a batch of 1`);
  let layout: ImageInputSpec['layout'];
  if (shape.length === 3) layout = 'nhw';
  else if (preprocessing.layout) layout = preprocessing.layout;
  else if (shape[3] === 1 || shape[3] === 3) layout = 'nhwc';
  else if (shape[1] === 1 || shape[1] === 3) layout = 'nchw';
  else throw notImage(`its shape ${formatShape(shape)} has no channel axis of size 1 (grey) or 3 (RGB) first or last`);
  const [h, w, c] = layout === 'nhw' ? [shape[1], shape[2], 1] : layout === 'nhwc' ? [shape[1], shape[2], shape[3]] : [shape[2], shape[3], shape[1]];
  if (c !== 1 && c !== 3) throw notImage(`its ${layout.toUpperCase()} shape ${formatShape(shape)} has ${c === null || typeof c === 'string' ? 'a variable number of' : c} channels (images give 1, grey, or 3, RGB)`);
  for (const [name, v] of [['mean', preprocessing.mean], ['std', preprocessing.std]] as const) {
    if (v && v.length !== 1 && v.length !== c) throw new KilnError('INVALID_ARGUMENT', `the ${name} for ${what} has ${v.length} values; its images have ${c} channels (give ${c} values, or one for all)`);
  }
  checkScale(preprocessing.scale);
  return { name: input.name, dtype: input.dtype, layout, height: fixed(h), width: fixed(w), channels: c, scale: preprocessing.scale ?? 1 / 255, mean: preprocessing.mean, std: preprocessing.std };
}

/** The centred region with the target's aspect ratio, as Keras's smart_resize computes it (sizes truncated). */
export function centerCropBox(width: number, height: number, outWidth: number, outHeight: number): CropBox {
  let cropHeight = Math.min(height, Math.trunc((width * outHeight) / outWidth));
  let cropWidth = Math.min(width, Math.trunc((height * outWidth) / outHeight));
  cropHeight = Math.max(1, cropHeight);
  cropWidth = Math.max(1, cropWidth);
  return { left: Math.trunc((width - cropWidth) / 2), top: Math.trunc((height - cropHeight) / 2), width: cropWidth, height: cropHeight };
}

/** RGB → grey as PIL's convert('L'): L = (19595 R + 38470 G + 7471 B + 32768) >> 16 (ITU-R 601-2 luma, rounded). */
export function rgbToGrey(rgb: Uint8Array): Uint8Array {
  const grey = new Uint8Array(rgb.length / 3);
  for (let i = 0; i < grey.length; i++) grey[i] = (19595 * rgb[3 * i]! + 38470 * rgb[3 * i + 1]! + 7471 * rgb[3 * i + 2]! + 32768) >>> 16;
  return grey;
}

/** Decoded pixels → the model input's tensor [1, ...] (the synchronous half of toTensor). */
export function pixelsToTensor(image: DecodedImage, spec: ImageInputSpec, options: Pick<ImageOptions, 'crop' | 'size'> = {}): Tensor {
  const [outHeight, outWidth] = targetSize(spec, options);
  let { pixels, channels } = image;
  if (channels === 3 && spec.channels === 1) [pixels, channels] = [rgbToGrey(pixels), 1];
  const crop = options.crop ?? 'none';
  if (crop !== 'none' && crop !== 'center') throw new KilnError('INVALID_ARGUMENT', `crop must be 'none' or 'center', got ${JSON.stringify(crop)}`);
  const box = crop === 'center' ? centerCropBox(image.width, image.height, outWidth, outHeight) : { left: 0, top: 0, width: image.width, height: image.height };
  const untouched = box.width === image.width && box.height === image.height && image.width === outWidth && image.height === outHeight;
  const values: ArrayLike<number> = untouched ? pixels : resizeBilinear(pixels, image.width, image.height, channels, outWidth, outHeight, box);
  const plane = outHeight * outWidth;
  const c = spec.channels;
  const size = plane * c;
  const data = spec.dtype === 'uint8' ? new Uint8Array(size) : new Float32Array(size);
  // Where channel k of pixel p goes, and what it holds: the source channel (0 for a grey source).
  const channelsFirst = spec.layout === 'nchw';
  const at = (p: number, k: number) => (channelsFirst ? k * plane + p : p * c + k);
  for (let k = 0; k < c; k++) {
    const source = channels === 1 ? 0 : k;
    const mean = spec.mean ? (spec.mean.length === 1 ? spec.mean[0]! : spec.mean[k]!) : 0;
    const std = spec.std ? (spec.std.length === 1 ? spec.std[0]! : spec.std[k]!) : 1;
    if (spec.dtype === 'uint8') for (let p = 0; p < plane; p++) data[at(p, k)] = Math.min(255, Math.max(0, Math.round(values[p * channels + source]!)));
    else for (let p = 0; p < plane; p++) data[at(p, k)] = (values[p * channels + source]! * spec.scale - mean) / std;
  }
  const shape = spec.layout === 'nhw' ? [1, outHeight, outWidth] : channelsFirst ? [1, c, outHeight, outWidth] : [1, outHeight, outWidth, c];
  return new Tensor(data as never, shape, spec.dtype);
}

function targetSize(spec: ImageInputSpec, options: Pick<ImageOptions, 'size'>): [number, number] {
  if (options.size) {
    const [h, w] = options.size;
    if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new KilnError('INVALID_ARGUMENT', `size must be [height, width] in whole pixels, got ${JSON.stringify(options.size)}`);
    if ((spec.height !== undefined && spec.height !== h) || (spec.width !== undefined && spec.width !== w)) {
      throw new KilnError('INVALID_ARGUMENT', `size [${h}, ${w}] disagrees with the model's input '${spec.name}', which takes ${spec.height ?? 'any'} × ${spec.width ?? 'any'} pixels`);
    }
    return [h, w];
  }
  if (spec.height === undefined || spec.width === undefined) {
    throw new KilnError('INVALID_ARGUMENT', `the model's input '${spec.name}' leaves its height or width variable; give the size to resize images to ([height, width])`);
  }
  return [spec.height, spec.width];
}

/**
 * A JPEG or PNG file as the tensor the model's image input takes ([1, H, W, C], [1, C, H, W] or [1, H, W]):
 * decoded, converted to the input's channels, optionally center-cropped, resized (antialiased bilinear),
 * scaled to [0, 1] and normalized by the model's declared mean/std. Throws a KilnError for a model input
 * that is not an image and an ImageError for a file that is not a JPEG or PNG, is corrupt or truncated,
 * or declares more than `maxPixels` pixels.
 */
export async function toTensor(bytes: Uint8Array, model: ImageModel, options: ImageOptions = {}): Promise<Tensor> {
  const spec = imageInputSpec(model, options);
  targetSize(spec, options);
  return pixelsToTensor(await decodeImage(bytes, options), spec, options);
}
