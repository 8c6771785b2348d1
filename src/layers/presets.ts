import { KilnError } from '../errors.js';
import { BatchNormalization } from './batch-normalization.js';
import { Conv2D } from './conv2d.js';
import { Dense, Dropout, Flatten } from './core.js';
import type { Layer } from './layer.js';
import { GlobalAveragePooling2D, MaxPooling2D } from './pooling.js';

/**
 * A preset family's widths: `filters` of the first convolution (later ones double it, as the presets
 * do), `units` of the hidden Dense layer, and the `dropout` rate before the classifier (0: none).
 * Hyper-parameter search (`kiln tune`) varies them; left out, each preset's own values apply.
 */
export interface PresetWidths {
  /** Filters of the first convolution; later convolutions double it. */
  filters?: number;
  /** Units of the hidden Dense layer. */
  units?: number;
  /** Dropout rate before the classifier, 0 to 1 (0: no Dropout layer). */
  dropout?: number;
}

/**
 * The seed tutorial's CIFAR-10 CNN (Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10, logits out),
 * adapted to any image shape and class count.
 */
export function tutorialCnn(inputShape: number[], numClasses = 10, widths: PresetWidths = {}): Layer[] {
  const f = widths.filters ?? 32;
  const dropout = widths.dropout ?? 0;
  return [
    new Conv2D({ filters: f, kernelSize: 3, activation: 'relu', inputShape }),
    new MaxPooling2D({ poolSize: 2 }),
    new Conv2D({ filters: 2 * f, kernelSize: 3, activation: 'relu' }),
    new MaxPooling2D({ poolSize: 2 }),
    new Conv2D({ filters: 2 * f, kernelSize: 3, activation: 'relu' }),
    new Flatten(),
    new Dense({ units: widths.units ?? 64, activation: 'relu' }),
    ...(dropout > 0 ? [new Dropout({ rate: dropout })] : []),
    new Dense({ units: numClasses }),
  ];
}

/** A small VGG-style network with batch normalization: stronger than the tutorial CNN, still CPU-sized. */
export function smallVgg(inputShape: number[], numClasses = 10, widths: PresetWidths = {}): Layer[] {
  const f = widths.filters ?? 32;
  const dropout = widths.dropout ?? 0.2;
  const block = (filters: number, first = false): Layer[] => [
    new Conv2D({ filters, kernelSize: 3, padding: 'same', useBias: false, ...(first ? { inputShape } : {}) }),
    new BatchNormalization(),
    new Conv2D({ filters, kernelSize: 3, padding: 'same', activation: 'relu' }),
    new MaxPooling2D({ poolSize: 2 }),
  ];
  return [...block(f, true), ...block(2 * f), new GlobalAveragePooling2D(), ...(dropout > 0 ? [new Dropout({ rate: dropout })] : []), new Dense({ units: widths.units ?? 128, activation: 'relu' }), new Dense({ units: numClasses })];
}

/** The presets by the name `kiln train --model` takes: 'tutorial-cnn' and 'small-vgg'; `widths` overrides their filters/units (kiln tune searches them). */
export const PRESETS: Record<string, (inputShape: number[], numClasses?: number, widths?: PresetWidths) => Layer[]> = {
  'tutorial-cnn': tutorialCnn,
  'small-vgg': smallVgg,
};

/**
 * The layers of a preset by name, for an input shape and class count (fails naming the presets if unknown).
 */
export function preset(name: string, inputShape: number[], numClasses = 10, widths: PresetWidths = {}): Layer[] {
  const make = PRESETS[name];
  if (!make) throw new KilnError('INVALID_ARGUMENT', `unknown model preset '${name}'; expected one of ${Object.keys(PRESETS).join(', ')}`);
  return make(inputShape, numClasses, widths);
}
