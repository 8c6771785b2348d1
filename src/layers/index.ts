import { KilnError } from '../errors.js';
import { BatchNormalization, type BatchNormalizationArgs } from './batch-normalization.js';
import { Conv2D, type Conv2DArgs } from './conv2d.js';
import { Activation, Dense, Dropout, Flatten, type ActivationArgs, type DenseArgs, type DropoutArgs } from './core.js';
import type { Layer, LayerArgs, SerializedLayer } from './layer.js';
import { AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D, type Pooling2DArgs } from './pooling.js';

export { Layer } from './layer.js';
export type { LayerArgs, LayerShape, SerializedLayer, Weight } from './layer.js';
export { Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Dense, Flatten, Dropout, Activation, BatchNormalization };
export { ACTIVATIONS, type ActivationName } from './activations.js';
export { INITIALIZERS, type InitializerName } from './initializers.js';
export { PRESETS, preset, tutorialCnn, smallVgg, type PresetWidths } from './presets.js';

/* Factory functions with TensorFlow.js' names. */
export const conv2d = (args: Conv2DArgs) => new Conv2D(args);
export const maxPooling2d = (args: Pooling2DArgs = {}) => new MaxPooling2D(args);
export const averagePooling2d = (args: Pooling2DArgs = {}) => new AveragePooling2D(args);
export const globalAveragePooling2d = (args: LayerArgs = {}) => new GlobalAveragePooling2D(args);
export const dense = (args: DenseArgs) => new Dense(args);
export const flatten = (args: LayerArgs = {}) => new Flatten(args);
export const dropout = (args: DropoutArgs) => new Dropout(args);
export const activation = (args: ActivationArgs) => new Activation(args);
export const batchNormalization = (args: BatchNormalizationArgs = {}) => new BatchNormalization(args);

const CLASSES: Record<string, (config: never) => Layer> = {
  Conv2D: (c) => new Conv2D(c),
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
