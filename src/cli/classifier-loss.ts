/**
 * The loss `kiln train`, `kiln evaluate` and `kiln export-trainer` give a classifier (and the label
 * `kiln distill` ignores): sparse categorical
 * cross-entropy, from the logits where the model has them, leaving out the label --ignore-class names
 * (by default the one the model's saved loss left out), its classes on the axis the labels imply.
 */
import type { Command } from './command.js';
import { classifierCrossentropy } from '../train/default-loss.js';
import type { Loss } from '../train/losses.js';
import { recordedTraining, type TrainableModel } from '../train/model.js';
import type { Tensor } from '../tensor.js';

export const IGNORE_CLASS_OPTION: Command['options'][number] = {
  name: 'ignore-class',
  type: 'number',
  integer: true,
  description: "a label that marks positions to leave out of the loss and accuracy, e.g. -100 (Hugging Face's token labels on padding; PyTorch's ignore_index, Keras' ignore_class)",
};

export function classifierLoss(model: TrainableModel, options: Record<string, unknown>, labels?: Tensor): Loss {
  // The command line's data sets give class labels: a classifier's loss whatever the model was last
  // compiled with, but the label it was trained to leave out kept (train/default-loss.ts).
  return classifierCrossentropy(model, { labels, ignoreClass: ignoreClassOption(options, model.metadata) });
}

/**
 * --ignore-class, or else the label the first of `models` (their metadata) was trained to ignore (its
 * saved loss, kiln.training), if any.
 */
export function ignoreClassOption(options: Record<string, unknown>, ...models: ReadonlyMap<string, string>[]): number | undefined {
  if (options['ignore-class'] !== undefined) return Number(options['ignore-class']);
  for (const metadata of models) {
    const value = recordedTraining(metadata)?.loss?.config?.ignoreClass;
    if (Number.isInteger(value)) return value as number;
  }
  return undefined;
}
