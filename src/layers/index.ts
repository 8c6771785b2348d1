import { KilnError } from '../errors.js';
import { BatchNormalization, type BatchNormalizationArgs } from './batch-normalization.js';
import { Conv2D, type Conv2DArgs } from './conv2d.js';
import { Conv2DTranspose, type Conv2DTransposeArgs } from './conv2d-transpose.js';
import { Activation, Dense, Dropout, Flatten, type ActivationArgs, type DenseArgs, type DropoutArgs } from './core.js';
import type { Layer, LayerArgs, SerializedLayer } from './layer.js';
import { AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D, type Pooling2DArgs } from './pooling.js';

export { Layer } from './layer.js';
export type { LayerArgs, LayerShape, SerializedLayer, Weight } from './layer.js';
export type { ParamSpec, BuildContext } from './layer.js';
export type { ConvolutionArgs } from './convolution.js';
export { ConvolutionLayer } from './convolution.js';
export type { Conv2DArgs, Conv2DTransposeArgs, DenseArgs, ActivationArgs, DropoutArgs, Pooling2DArgs, BatchNormalizationArgs };
export type { Padding } from './padding.js';
export { Conv2D, Conv2DTranspose, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Dense, Flatten, Dropout, Activation, BatchNormalization };
export { ACTIVATIONS, type ActivationName } from './activations.js';
export { INITIALIZERS, type InitializerName } from './initializers.js';
export { PRESETS, preset, tutorialCnn, smallVgg, type PresetWidths } from './presets.js';

/* Factory functions with TensorFlow.js' names. */
/** A 2-D convolution layer (Keras' `Conv2D`): `conv2d({filters: 32, kernelSize: 3, activation: 'relu'})`. */
export const conv2d = (args: Conv2DArgs) => new Conv2D(args);
/** A transposed 2-D convolution, the upsampling layer of decoders (Keras' `Conv2DTranspose`): `conv2dTranspose({filters: 16, kernelSize: 3, strides: 2, padding: 'same'})`. */
export const conv2dTranspose = (args: Conv2DTransposeArgs) => new Conv2DTranspose(args);
/** Max pooling over windows of the image (Keras' `MaxPooling2D`, default 2×2). */
export const maxPooling2d = (args: Pooling2DArgs = {}) => new MaxPooling2D(args);
/** Average pooling over windows of the image (Keras' `AveragePooling2D`, default 2×2). */
export const averagePooling2d = (args: Pooling2DArgs = {}) => new AveragePooling2D(args);
/** The mean over height and width of each channel: `[H, W, C]` → `[C]`. */
export const globalAveragePooling2d = (args: LayerArgs = {}) => new GlobalAveragePooling2D(args);
/** A fully connected layer (Keras' `Dense`): `dense({units: 10})`. */
export const dense = (args: DenseArgs) => new Dense(args);
/** Flattens each example to one axis of features. */
export const flatten = (args: LayerArgs = {}) => new Flatten(args);
/** Dropout while training, nothing at inference (Keras' `Dropout`): `dropout({rate: 0.2})`. */
export const dropout = (args: DropoutArgs) => new Dropout(args);
/** An activation applied as a layer of its own: `activation({activation: 'softmax'})`. */
export const activation = (args: ActivationArgs) => new Activation(args);
/** Batch normalization over the channels (Keras' `BatchNormalization`). */
export const batchNormalization = (args: BatchNormalizationArgs = {}) => new BatchNormalization(args);

const CLASSES: Record<string, (config: never) => Layer> = {
  Conv2D: (c) => new Conv2D(c),
  Conv2DTranspose: (c) => new Conv2DTranspose(c),
  MaxPooling2D: (c) => new MaxPooling2D(c),
  AveragePooling2D: (c) => new AveragePooling2D(c),
  GlobalAveragePooling2D: (c) => new GlobalAveragePooling2D(c),
  Dense: (c) => new Dense(c),
  Flatten: (c) => new Flatten(c),
  Dropout: (c) => new Dropout(c),
  Activation: (c) => new Activation(c),
  BatchNormalization: (c) => new BatchNormalization(c),
};

/** Rebuilds a layer from its serialized form (model files, JSON model descriptions). */
export function layerFromConfig(s: SerializedLayer, where = 'layer'): Layer {
  const make = Object.hasOwn(CLASSES, s?.className) ? CLASSES[s.className] : undefined;
  if (!make) {
    throw new KilnError('UNKNOWN_LAYER', `${where}: unknown layer class ${JSON.stringify(s?.className)}; expected one of ${Object.keys(CLASSES).join(', ')}`);
  }
  return make((s.config ?? {}) as never);
}
