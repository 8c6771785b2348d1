// Owns a client's work in a round: start from the global weights, train on the local data with
// Kiln's compiled step (fresh optimizer state every round), and hand back the new weights. FedProx's
// proximal term μ/2‖w − w_global‖² is part of that compiled step: the global weights enter it as one
// flat per-batch input, so the term and its gradient μ(w − w_global) run in ONNX Runtime with the
// rest of the backward pass. With `privacy` the local epochs are fit()'s DP-SGD (example-level DP on
// clients, example-privacy.ts); FedProx's term is refused there, as fit()'s private step clips the
// plain loss's per-example gradients and takes no extra inputs.
import { KilnError } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';
import { Tensor } from '../tensor.js';
import type { Loss } from '../train/losses.js';
import { classifierCrossentropy } from '../train/default-loss.js';
import type { TrainableModel } from '../train/model.js';
import { resolveOptimizer } from '../train/optimizers.js';
import type { PrivacyOptions } from '../train/privacy/index.js';
import type { TrainingStepOptions } from '../train/training-step.js';
import { refuseProximalTerm } from './example-privacy.js';
import { countValues, flattenWeights, getWeights, setWeights, type ModelWeights } from './weights.js';

/** The name of the training step's input holding the round's global weights (FedProx). */
export const GLOBAL_WEIGHTS_INPUT = 'federated/global_weights';

/** A client's local data: inputs `[N, ...inputShape]` and labels `[N]` (class indices). */
export interface LocalDataset {
  /** Inputs, batch first. */
  x: Tensor;
  /** Labels (class indices for the default loss). */
  y: Tensor;
}

/** How a client trains in a round. */
export interface LocalTrainingOptions {
  /** Passes over the local data per round (default 1). */
  epochs?: number;
  /** Examples per step (default 32). */
  batchSize?: number;
  /** The local optimizer's name: 'sgd', 'adam', ... (default 'sgd'); its state starts fresh every round. */
  optimizer?: string;
  /** The local optimizer's learning rate (default: the optimizer's Keras default). */
  learningRate?: number;
  /** FedProx's μ: adds μ/2‖w − w_global‖² to the training loss (default 0: none). */
  proximalMu?: number;
  /** Seed for shuffling the local data. */
  seed?: number;
  /**
   * The loss (default: sparse categorical cross-entropy, from the logits unless a Kiln model ends in
   * softmax: train/default-loss.ts's classifierCrossentropy, as the command line takes it).
   */
  loss?: Loss;
  /**
   * DP-SGD for the local epochs (fit()'s `privacy` with σ given: clip C per example, noise σC per
   * batch); the caller counts ε (`ClientPrivacy`). Not with FedProx's μ > 0.
   */
  privacy?: PrivacyOptions;
}

/** What a client sends back after a round. */
export interface LocalTrainingResult {
  /** The weights after local training. */
  weights: ModelWeights;
  /** Local examples trained on (FedAvg's weight). */
  numExamples: number;
  /** The mean training loss of the last local epoch (with the proximal term, when μ > 0). */
  loss: number;
}

/** What each model was last compiled with here, so rounds with the same settings reuse the compiled step. */
const compiledFor = new WeakMap<TrainableModel, string>();

/**
 * μ/2 Σ‖w − w_global‖² over the trainable parameters, reading the global values out of the flat input
 * (laid out as the compiled step's flat parameter vector, which is `flattenWeights`' order).
 */
export function proximalPenalty(mu: number, totalSize: number): NonNullable<TrainingStepOptions['penalty']> {
  return (graph: Graph, params: { name: string; value: Value }[]): Value => {
    const global = graph.value(GLOBAL_WEIGHTS_INPUT);
    let offset = 0;
    let sum: Value | undefined;
    for (const p of params) {
      const shape = graph.staticShape(p.value);
      const size = shape.reduce((a, b) => a * b, 1);
      const piece = graph.op1('Slice', [global, graph.int64s([offset], 'starts'), graph.int64s([offset + size], 'ends')]);
      const diff = graph.op1('Sub', [graph.op1('Reshape', [p.value, graph.int64s([-1], 'shape')]), piece]);
      const squares = graph.op1('ReduceSum', [graph.op1('Mul', [diff, diff])], { keepdims: 0 });
      sum = sum ? graph.op1('Add', [sum, squares]) : squares;
      offset += size;
    }
    if (!sum || offset !== totalSize) throw new KilnError('INVALID_ARGUMENT', `proximal term: the parameters hold ${offset} values, the global weights ${totalSize}`);
    return graph.op1('Mul', [sum, graph.scalar(mu / 2)]);
  };
}

/**
 * Compiles the model for local training with `options` (sparse cross-entropy and accuracy, the
 * optimizer, FedProx's term when μ > 0) unless it already is, and starts the optimizer afresh.
 */
export function prepareLocalTraining(model: TrainableModel, options: LocalTrainingOptions = {}): void {
  const mu = options.proximalMu ?? 0;
  if (!(Number.isFinite(mu) && mu >= 0)) throw new KilnError('INVALID_ARGUMENT', `proximalMu must be a finite number >= 0, got ${mu}`);
  const optimizerName = options.optimizer ?? 'sgd';
  const lr = options.learningRate;
  if (lr !== undefined && !(lr > 0 && Number.isFinite(lr))) throw new KilnError('INVALID_ARGUMENT', `learningRate must be > 0, got ${lr}`);
  const loss = options.loss ?? classifierCrossentropy(model);
  const key = JSON.stringify({ optimizerName, lr, mu, loss: [loss.name, loss.config] });
  if (compiledFor.get(model) !== key) {
    const optimizer = resolveOptimizer({ name: optimizerName, config: lr !== undefined ? { learningRate: lr } : {} });
    const totalSize = countValues(getWeights(model));
    const step: TrainingStepOptions =
      mu > 0 ? { extraInputs: [{ name: GLOBAL_WEIGHTS_INPUT, dtype: 'float32', shape: [totalSize] }], penalty: proximalPenalty(mu, totalSize) } : {};
    model.compile({ optimizer, loss, metrics: ['accuracy'] }, step);
    compiledFor.set(model, key);
  }
  model.resetOptimizerState();
}

/**
 * One client's round: sets `globalWeights` on the model, trains it on `dataset` for `epochs` with a
 * fresh optimizer (through fit(), in the runtime worker), and returns the trained weights, the
 * number of examples and the last epoch's loss. The model keeps the trained weights.
 */
export async function trainLocally(model: TrainableModel, globalWeights: ModelWeights, dataset: LocalDataset, options: LocalTrainingOptions = {}): Promise<LocalTrainingResult> {
  const n = dataset.x.shape[0] ?? 0;
  if (n === 0) throw new KilnError('INVALID_DATA', 'trainLocally: the local data set is empty');
  const mu = options.proximalMu ?? 0;
  if (options.privacy) refuseProximalTerm(mu, '');
  if (options.privacy && options.privacy.noiseMultiplier === undefined) {
    throw new KilnError('INVALID_ARGUMENT', "trainLocally: privacy needs the noise multiplier σ (a client's ε is counted over rounds by ClientPrivacy, not per call)");
  }
  prepareLocalTraining(model, options);
  setWeights(model, globalWeights);
  const global = mu > 0 ? new Tensor(flattenWeights(globalWeights), [countValues(globalWeights)], 'float32') : undefined;
  const history = await model.fit(dataset.x, dataset.y, {
    epochs: options.epochs ?? 1,
    batchSize: options.batchSize ?? 32,
    seed: options.seed,
    verbose: 0,
    ...(global ? { extraFeeds: () => ({ [GLOBAL_WEIGHTS_INPUT]: global }) } : {}),
    ...(options.privacy ? { privacy: options.privacy } : {}),
  });
  return { weights: getWeights(model), numExamples: n, loss: history.history.loss!.at(-1)! };
}
