// Owns fit()'s and evaluate()'s arguments: what FitArgs may hold, the checks on them (in the order
// their errors are raised, which tests and users rely on), and the labels in the form the compiled
// step reads them.
import { KilnError, formatShape } from '../errors.js';
import { Tensor, type AnyTypedArray } from '../tensor.js';
import type { AugmentOptions } from '../data/augment.js';
import type { InputRows, ModelInputs } from '../model/input-rows.js';
import type { Callback } from './callbacks.js';
import type { Loss } from './losses.js';
import { sparseLabels } from './sparse-labels.js';
import { autoReplicas } from './replicas.js';
import type { PrivacyOptions } from './privacy/dp-sgd.js';
import type { CompiledTraining } from './training-step.js';

/** What `fit()` takes besides the data, as Keras' `fit` does. */
export interface FitArgs {
  /** Passes over the training data (default 1). */
  epochs?: number;
  /** Examples per training step (default 32, Keras'). */
  batchSize?: number;
  /** Shuffle the training examples before each epoch (default true), with the seeded generator. */
  shuffle?: boolean;
  /** Fraction of the data (taken from the end, before shuffling, as Keras does) held out for validation. */
  validationSplit?: number;
  /** Data to evaluate on after each epoch (`val_loss`, `val_accuracy`), instead of `validationSplit`. */
  validationData?: [ModelInputs, Tensor];
  /** Hooks called during training (`callbacks.earlyStopping`, `callbacks.modelCheckpoint`, your own). */
  callbacks?: Callback[];
  /** 0 silent, 1 progress bar (one line per epoch when not a terminal), 2 one line per epoch. */
  verbose?: 0 | 1 | 2;
  /** Seed for shuffling (default: the model's seed). */
  seed?: number;
  /** Continue from a training checkpoint written by `saveCheckpoint` / `checkpointEvery`. */
  resumeFrom?: string;
  /** Write a training checkpoint (weights, optimizer state, epoch, RNG) here after every epoch. */
  checkpointPath?: string;
  /**
   * Augment each training batch as it is drawn (images `[N, H, W, C]`): random crop after zero padding,
   * horizontal flip, cutout (see AugmentOptions). Drawn from fit's seeded generator, so a seed gives the same augmented batches and a
   * resumed run continues the same sequence. Validation data is never augmented.
   */
  augment?: AugmentOptions;
  /**
   * Extra per-batch inputs of the training step (see TrainingStepOptions.extraInputs), given the batch's
   * example indices and its (augmented) images; may be async (e.g. a teacher model run on the batch).
   */
  extraFeeds?: (indices: Int32Array, x: Tensor) => Record<string, Tensor> | Promise<Record<string, Tensor>>;
  /** Where progress goes (default: the platform's standard output, process.stdout under Node, the console in a browser). */
  stream?: NodeJS.WritableStream & {
    /** A terminal gets a redrawn progress bar; anything else one line per epoch. */
    isTTY?: boolean;
    /** Width of the terminal, for the bar. */
    columns?: number;
  };
  /**
   * Data parallelism on this machine: each batch is split across this many runtime workers, which
   * step their shares at once and apply the averaged gradient (as tf.distribute.MirroredStrategy
   * does across devices). Default: one replica per core (at most 4) while each gets at least 32 rows
   * of a batch (so 2 on a 2-core machine from batch 64 on), where the step allows it (not with batch
   * normalization, whose statistics would be per replica, under a pruning mask, or with layer-output
   * hooks such as quantization-aware training's). 1 turns it off. The replicas compute the same
   * update up to float rounding (sums in another order), but Dropout draws its masks per replica: a
   * seeded run that must repeat exactly on a machine with another core count should set this.
   */
  replicas?: number;
  /**
   * Train with DP-SGD (Abadi et al., 2016; as Opacus and TF Privacy): each example's gradient is
   * clipped to `l2NormClip`, Gaussian noise of standard deviation σ·C is added to the batch's sum, and
   * the ε spent (RDP accountant, at `delta`) is logged per epoch as 'epsilon'. Steps are shuffled
   * fixed-size batches accounted with sampling rate batchSize / examples. Runs on one replica; not with
   * batch normalization, pruning masks, quantization-aware training or distillation.
   */
  privacy?: PrivacyOptions;
}

/** fit()'s data once checked: the training part, its labels, the validation pair, and the loop's sizes. */
export interface FitData {
  trainX: InputRows;
  labels: Tensor;
  validation: [InputRows, Tensor] | undefined;
  epochs: number;
  batchSize: number;
  /** Training examples (after the validation split). */
  n: number;
}

/** The model's own input check (shapes, types, layout), which fit() runs on x and on validationData's x: x keyed as the steps take it. */
export type InputCheck = (x: ModelInputs, what?: string) => InputRows;

/**
 * Checks fit()'s data and sizes and splits off the validation data. Input shapes come before sizes,
 * labels before finiteness, as they always have: the first error a user sees stays the same.
 */
export function checkFitArgs(x: ModelInputs, y: Tensor, args: FitArgs, loss: Loss, outputShape: number[], checkInput: InputCheck): FitData {
  const rows = checkInput(x);
  const epochs = args.epochs ?? 1;
  const batchSize = args.batchSize ?? 32;
  if (!Number.isInteger(epochs) || epochs < 1) throw new KilnError('INVALID_ARGUMENT', `epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new KilnError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${batchSize}`);
  let labels = prepareLabels(y, loss, outputShape, rows.n);
  checkFiniteRows(rows, 'x');
  let trainX = rows;
  let validation: [InputRows, Tensor] | undefined;
  if (args.validationData) {
    const validationRows = checkInput(args.validationData[0], 'validationData x');
    // Checked like x: a NaN here would only show up as a NaN val_loss.
    checkFiniteRows(validationRows, 'validationData x');
    validation = [validationRows, prepareLabels(args.validationData[1], loss, outputShape, validationRows.n)];
  } else if (args.validationSplit) {
    if (!(args.validationSplit > 0 && args.validationSplit < 1)) throw new KilnError('INVALID_ARGUMENT', `validationSplit must be in (0, 1), got ${args.validationSplit}`);
    const n = rows.n;
    const cut = Math.floor(n * (1 - args.validationSplit));
    validation = [rows.slice(cut, n), labels.slice(cut, n)];
    trainX = rows.slice(0, cut);
    labels = labels.slice(0, cut);
  }
  const n = trainX.n;
  if (n === 0) throw new KilnError('INVALID_DATA', 'no training examples');
  if (args.augment && (rows.primary.rank !== 4 || rows.several)) throw new KilnError('INVALID_SHAPE', `augment works on images [N, H, W, C] fed as a model's one input; x is ${rows.several ? `${Object.keys(rows.feeds).length} inputs` : formatShape(rows.primary.shape)}`);
  // A label per pixel moves with its image under a crop or flip: the label map must be the image's grid.
  const grid = rows.primary.shape.slice(0, 3);
  // (y as given: the loss may have flattened pixel labels to its output's shape.)
  const onGrid = labels.rank === 3 && labels.shape.every((d, i) => d === grid[i] || i === 0);
  if (args.augment && (args.augment.cropPadding || args.augment.horizontalFlip) && (y.rank > 2 || labels.rank > 2) && !onGrid) {
    throw new KilnError(
      'INVALID_ARGUMENT',
      `augment's cropPadding and horizontalFlip move an image's pixels; labels ${formatShape(y.shape)}${labels.rank !== y.rank ? ` (the loss reads them as ${formatShape(labels.shape)})` : ''} are not one per pixel of the images ${formatShape(rows.primary.shape)} (channels last), so they cannot move with them: use cutout alone, or augment images and labels together before fit`,
    );
  }
  return { trainX, labels, validation, epochs, batchSize, n };
}

/** checkFinite on every float input of x (token ids and masks are integers: nothing to check). */
export function checkFiniteRows(rows: InputRows, what: string): void {
  for (const [name, t] of Object.entries(rows.feeds)) if (t.dtype === 'float32' || t.dtype === 'float64') checkFinite(t, rows.several && name !== rows.primaryName ? `${what} (${name})` : what);
}

/** How many replicas fit() steps on: FitArgs.replicas, or as many as the cores and batch make worth it. */
export function checkReplicas(args: FitArgs, training: CompiledTraining, data: FitData, cores: number): number {
  const replicas = args.replicas ?? autoReplicas(training, Math.min(data.batchSize, data.n), cores);
  if (!Number.isInteger(replicas) || replicas < 1) throw new KilnError('INVALID_ARGUMENT', `replicas must be a positive integer, got ${replicas}`);
  if (replicas > 1 && training.notReplicable) throw new KilnError('INVALID_ARGUMENT', `${replicas} replicas cannot be used: ${training.notReplicable}; train with 1 replica`);
  return replicas;
}

/** Labels as the compiled step reads them: int64 class indices or float32 targets. */
export function prepareLabels(y: Tensor, loss: Loss, outputShape: number[], n: number): Tensor {
  if (y.shape[0] !== n) throw new KilnError('INVALID_DATA', `x has ${n} examples but y has ${y.shape[0]}: they must match`);
  const spec = loss.labelSpec(outputShape);
  if (spec.dtype === 'int64') {
    // Class indices: one per example ([N]), or one per position of an output with more axes ([N, T]).
    const sparse = sparseLabels(loss, outputShape.length + 1)!;
    const classes = outputShape[sparse.classAxis - 1]!;
    const ignored = sparse.ignoreClass;
    const perExample = spec.shape.length === 0;
    const expected = [n, ...spec.shape];
    if (perExample ? y.rank !== 1 && !(y.rank === 2 && y.shape[1] === 1) : y.rank !== expected.length || y.shape.some((d, i) => d !== expected[i])) {
      throw new KilnError(
        'INVALID_SHAPE',
        perExample
          ? `${loss.name} expects integer labels of shape [N], got ${formatShape(y.shape)} (one-hot labels go with categoricalCrossentropy)`
          : `${loss.name} expects integer labels of shape ${formatShape(expected)} (a class for each position of the output ${formatShape([n, ...outputShape])}, its class axis ${sparse.classAxis} removed), got ${formatShape(y.shape)}`,
      );
    }
    const out = new BigInt64Array(y.size);
    const src = y.data as ArrayLike<number | bigint>;
    for (let i = 0; i < out.length; i++) {
      const v = Number(src[i]);
      if (!Number.isInteger(v) || ((v < 0 || v >= classes) && v !== ignored)) {
        const where = perExample ? `${i}` : flatIndexAt(i, expected).join(', ');
        const hint = v < 0 && ignored === undefined ? `; a label that marks positions to leave out is the loss's ignoreClass (kiln train, evaluate and distill: --ignore-class ${v}; a model they save remembers it for the other commands)` : '';
        throw new KilnError('INVALID_DATA', `label y[${where}] is ${v}, expected an integer class in [0, ${classes})${ignored !== undefined ? ` or ${ignored} (the ignored class)` : ''} for a model with ${classes} outputs${hint}`);
      }
      out[i] = BigInt(v);
    }
    return new Tensor(out, perExample ? [n] : expected, 'int64');
  }
  const expected = [n, ...spec.shape];
  if (y.size !== expected.reduce((a, b) => a * b, 1)) {
    throw new KilnError('INVALID_SHAPE', `${loss.name} expects labels of shape ${formatShape(expected)}, got ${formatShape(y.shape)}`);
  }
  const data = y.dtype === 'float32' ? (y.data as Float32Array) : Float32Array.from(y.data as ArrayLike<number>, Number);
  const targets = new Tensor(data, expected, 'float32');
  // A NaN target would otherwise surface later as a misleading NAN_LOSS ("try a lower learning rate").
  checkFinite(targets, 'y');
  return targets;
}

export function checkFinite(x: Tensor, what: string): void {
  const d = x.data as AnyTypedArray;
  if (!(d instanceof Float32Array || d instanceof Float64Array)) return;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i]!)) throw new KilnError('INVALID_DATA', `${what} contains ${d[i]} at flat index ${i}; inputs must be finite`);
  }
}

/** The index along each axis of `shape` of the element at flat (row-major) index `i`. */
function flatIndexAt(i: number, shape: number[]): number[] {
  const index = new Array<number>(shape.length);
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    index[axis] = i % shape[axis]!;
    i = Math.floor(i / shape[axis]!);
  }
  return index;
}
