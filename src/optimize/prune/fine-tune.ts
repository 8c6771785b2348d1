import { KilnError } from '../../errors.js';
import { layerFromConfig } from '../../layers/index.js';
import { examplesIn, type ModelInputs } from '../../model/input-rows.js';
import { Tensor } from '../../tensor.js';
import type { Callback } from '../../train/callbacks.js';
import type { Loss } from '../../train/losses.js';
import { defaultLoss } from '../../train/default-loss.js';
import type { FitArgs } from '../../train/fit-args.js';
import type { History } from '../../train/fit-loop.js';
import { recordedTraining, type TrainableModel } from '../../train/model.js';
import { Sequential } from '../../train/sequential.js';
import type { Optimizer } from '../../train/optimizers.js';
import type { TrainingStepOptions } from '../../train/training-step.js';

/** Training after pruning: the data and the usual fit() settings. */
export interface FineTuneArgs {
  /** Training inputs: a tensor, or tensors by input name for a model with several (as fit takes them). */
  x: ModelInputs;
  /** Training labels. */
  y: Tensor;
  /** Epochs of fine-tuning (iterative structured pruning: per round). Default 1. */
  epochs?: number;
  /** Examples per step (default 32). */
  batchSize?: number;
  /** Default: Adam with Keras' defaults. */
  optimizer?: string | Optimizer;
  /**
   * Default: the loss the model was trained with (saved Kiln models remember it), else sparse
   * categorical cross-entropy — from logits unless a Kiln model's last layer ends in softmax (an
   * imported graph ending in Softmax trains from the logits before it): train/default-loss.ts.
   */
  loss?: string | Loss;
  /** Validation data, as in `fit()`. */
  validationData?: [ModelInputs, Tensor];
  /** Fraction held out for validation, as in `fit()`. */
  validationSplit?: number;
  /** Hooks called during fine-tuning, as in `fit()`. */
  callbacks?: Callback[];
  /** 0 silent, 1 progress bar (default), 2 one line per epoch. */
  verbose?: 0 | 1 | 2;
  /** Seed for shuffling (default: the model's). */
  seed?: number;
  /** Where progress goes (default process.stdout). */
  stream?: FitArgs['stream'];
}

export function checkFineTune(args: FineTuneArgs): void {
  if (!args || typeof args !== 'object' || !args.x || !args.y) throw new KilnError('INVALID_ARGUMENT', 'fineTune needs training data: fineTune: {x, y, epochs}');
  const epochs = args.epochs ?? 1;
  if (!Number.isInteger(epochs) || epochs < 1) throw new KilnError('INVALID_ARGUMENT', `fineTune.epochs must be a positive integer, got ${JSON.stringify(args.epochs)}`);
  const batchSize = args.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new KilnError('INVALID_ARGUMENT', `fineTune.batchSize must be a positive integer, got ${JSON.stringify(args.batchSize)}`);
}

/** Optimizer steps fit() will take: batches per epoch (after any validation split) × epochs. */
export function fineTuneSteps(args: FineTuneArgs): number {
  const n = examplesIn(args.x);
  const kept = args.validationData || !args.validationSplit ? n : Math.floor(n * (1 - args.validationSplit));
  return Math.ceil(kept / (args.batchSize ?? 32)) * (args.epochs ?? 1);
}

export function compileForFineTune(model: TrainableModel, args: FineTuneArgs, stepOptions: TrainingStepOptions = {}): void {
  model.compile({ optimizer: args.optimizer ?? 'adam', loss: args.loss ?? defaultLoss(model, args.y), metrics: ['accuracy'] }, stepOptions);
}

export function fitFineTune(model: TrainableModel, args: FineTuneArgs, callbacks: Callback[] = []): Promise<History> {
  return model.fit(args.x, args.y, {
    epochs: args.epochs ?? 1,
    batchSize: args.batchSize ?? 32,
    validationData: args.validationData,
    validationSplit: args.validationSplit,
    callbacks: [...callbacks, ...(args.callbacks ?? [])],
    verbose: args.verbose,
    seed: args.seed,
    stream: args.stream,
  });
}

/**
 * A trainable copy of a model: the same layers (rebuilt from their configuration, names kept), copies
 * of its weights and its metadata. `configure` may change a layer's configuration (structured pruning
 * shrinks filters and units); the weights given then replace the copied ones.
 */
export function rebuildModel(
  model: Sequential,
  weights: Map<string, Tensor> = model.weights,
  configure: (className: string, name: string, config: Record<string, unknown>) => Record<string, unknown> = (_c, _n, config) => config,
): Sequential {
  const layers = model.layers.map((l) => {
    const s = l.serialize();
    return layerFromConfig({ className: s.className, config: configure(s.className, l.name!, { ...s.config }) });
  });
  const copy = new Sequential({ name: model.name, seed: model.seed, layers });
  const values = new Map<string, Tensor>();
  for (const [name, t] of weights) values.set(name, new Tensor((t.data as Float32Array).slice(), [...t.shape], 'float32'));
  copy.setWeights(values);
  for (const [k, v] of model.metadata) if (k !== 'kiln.history') copy.metadata.set(k, v);
  return copy;
}
