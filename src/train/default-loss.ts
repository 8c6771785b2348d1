/**
 * The loss training uses when the caller names none. One rule for reading a model's output: from its
 * logits unless a Kiln model ends in softmax, over the class axis the model and labels imply — for
 * `kiln train`, `kiln evaluate`, `kiln export-trainer` and federated local training (class labels:
 * classifierCrossentropy) and pruning's fine-tuning (the model's saved loss first: defaultLoss).
 */
import type { Tensor } from '../tensor.js';
import { GraphModel } from './graph-model.js';
import { resolveLoss, sparseCategoricalCrossentropy, type Loss } from './losses.js';
import { recordedTraining, type TrainableModel } from './model.js';
import { Sequential } from './sequential.js';

/**
 * Sparse categorical cross-entropy for a classifier: from the logits where the model has them — an
 * imported graph always (GraphModel's step cuts a final Softmax off and trains from what it
 * normalizes), a Kiln model unless its last layer past Flatten and Dropout ends in softmax — with the
 * classes on the axis `model.defaultClassAxis(labels)` names, leaving out `ignoreClass`.
 */
export function classifierCrossentropy(model: TrainableModel, options: { labels?: Tensor; ignoreClass?: number } = {}): Loss {
  const fromLogits = model instanceof GraphModel || !(model instanceof Sequential && model.outputsProbabilities);
  const axis = model.defaultClassAxis(options.labels);
  const { ignoreClass } = options;
  return sparseCategoricalCrossentropy({ fromLogits, ...(axis !== undefined ? { axis } : {}), ...(ignoreClass !== undefined ? { ignoreClass } : {}) });
}

/**
 * The model's saved loss (what it was last compiled with, as Keras' load_model restores it; a token
 * classifier's ignoreClass with it), else classifierCrossentropy. A damaged training record only
 * loses the saved choice.
 */
export function defaultLoss(model: TrainableModel, labels?: Tensor): Loss {
  const saved = recordedTraining(model.metadata)?.loss;
  if (saved?.name) return resolveLoss(saved);
  return classifierCrossentropy(model, { labels });
}
