import { KilnError } from '../errors.js';
import { BatchNormalization } from './batch-normalization.js';
import { Conv2D } from './conv2d.js';
import { Dense, Dropout, Flatten } from './core.js';
import type { Layer } from './layer.js';
import { GlobalAveragePooling2D, MaxPooling2D } from './pooling.js';

/**
 * The seed tutorial's CIFAR-10 CNN (Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10, logits out),
 * adapted to any image shape and class count.
 */
export function tutorialCnn(inputShape: number[], numClasses = 10): Layer[] {
  return [
    new Conv2D({ filters: 32, kernelSize: 3, activation: 'relu', inputShape }),
    new MaxPooling2D({ poolSize: 2 }),
    new Conv2D({ filters: 64, kernelSize: 3, activation: 'relu' }),
    new MaxPooling2D({ poolSize: 2 }),
    new Conv2D({ filters: 64, kernelSize: 3, activation: 'relu' }),
    new Flatten(),
    new Dense({ units: 64, activation: 'relu' }),
    new Dense({ units: numClasses }),
  ];
}

/** A small VGG-style network with batch normalization: stronger than the tutorial CNN, still CPU-sized. */
export function smallVgg(inputShape: number[], numClasses = 10): Layer[] {
  const block = (filters: number, first = false): Layer[] => [
    new Conv2D({ filters, kernelSize: 3, padding: 'same', useBias: false, ...(first ? { inputShape } : {}) }),
    new BatchNormalization(),
    new Conv2D({ filters, kernelSize: 3, padding: 'same', activation: 'relu' }),
    new MaxPooling2D({ poolSize: 2 }),
  ];
  return [...block(32, true), ...block(64), new GlobalAveragePooling2D(), new Dropout({ rate: 0.2 }), new Dense({ units: 128, activation: 'relu' }), new Dense({ units: numClasses })];
}

/** The presets by the name `kiln train --model` takes: 'tutorial-cnn' and 'small-vgg'. */
export const PRESETS: Record<string, (inputShape: number[], numClasses?: number) => Layer[]> = {
  'tutorial-cnn': tutorialCnn,
  'small-vgg': smallVgg,
};

/**
 * The layers of a preset by name, for an input shape and class count (fails naming the presets if unknown).
 */
export function preset(name: string, inputShape: number[], numClasses = 10): Layer[] {
  const make = PRESETS[name];
  if (!make) throw new KilnError('INVALID_ARGUMENT', `unknown model preset '${name}'; expected one of ${Object.keys(PRESETS).join(', ')}`);
  return make(inputShape, numClasses);
}
