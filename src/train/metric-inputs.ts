/**
 * The input forms the classification metrics accept, and their conversion into the two forms the
 * metrics compute on: integer label arrays and dense score matrices. Every check on the inputs (shapes,
 * NaN scores, label ranges, matching lengths) lives here, so metrics.ts holds only the arithmetic.
 *
 * Conventions:
 * - `yTrue` holds one integer class label in [0, C) per sample (`[N]` or `[N, 1]`).
 * - `yPred` holds `[N, C]` class scores (probabilities or logits; the predicted class is the argmax,
 *   the first maximum on ties as in NumPy/Keras) or, for binary problems, `[N]` / `[N, 1]`
 *   positive-class probabilities (the predicted class is 1 when the score is above `threshold`,
 *   0.5 by default, strictly above as in Keras' `binary_accuracy`).
 * - Where a function takes predicted labels, an `Int32Array` or an int32/int64 tensor of rank 1 is read
 *   as labels rather than scores.
 * - A label per position: yPred `[N, T, ..., C]` scores (classes last, a token classifier's) with yTrue
 *   `[N, T, ...]` tensors count each labelled position as a sample; negative labels (Hugging Face's -100
 *   on padding) mark positions with no class and are left out (`positionRows`).
 */
import { KilnError, formatShape } from '../errors.js';
import { Tensor } from '../tensor.js';
import { scoresClassAxis } from './sparse-labels.js';

/** Class labels, one integer in [0, C) per sample. */
export type Labels = Tensor | Int32Array | readonly number[];

/**
 * Model outputs: `[N, C]` class scores (a Tensor, nested rows, or a flat Float32Array/Float64Array with
 * `numClasses` columns), or `[N]` / `[N, 1]` positive-class probabilities for a binary problem.
 */
export type Scores = Tensor | Float32Array | Float64Array | readonly number[] | readonly (readonly number[])[];

/**
 * Scores, or already-decided labels given as an Int32Array or an integer tensor of rank 1. A plain
 * `number[]` is read as binary probabilities, so pass predicted labels as `Int32Array.from(labels)`.
 */
export type Predictions = Scores | Int32Array;

/** How to read scores: their column count and the binary threshold. */
export interface ScoreOptions {
  /** Columns per row when `yPred` is a flat array holding `[N, C]` scores; otherwise a check on C. */
  numClasses?: number;
  /** Probability above which a binary `[N]` / `[N, 1]` prediction counts as class 1 (default 0.5). */
  threshold?: number;
}

/** Scores as a dense row-major matrix; `cols === 1` marks binary positive-class probabilities. */
export interface ScoreMatrix {
  readonly values: Float64Array;
  readonly rows: number;
  readonly cols: number;
}

/** What every label-vs-label metric starts from: both sides decoded, checked and given a class count. */
export interface LabelPair {
  readonly trueLabels: Int32Array;
  readonly predictedLabels: Int32Array;
  readonly numClasses: number;
}

const INTEGER_DTYPES = new Set(['int32', 'int64', 'int8', 'uint8']);

function numbersOf(data: ArrayLike<number | bigint>): Float64Array {
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]!);
  return out;
}

export function checkNumClasses(numClasses: number, what: string): void {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new KilnError('INVALID_ARGUMENT', `${what} must be a positive integer, got ${numClasses}`);
  }
}

function isNestedRows(values: readonly unknown[]): values is readonly (readonly number[])[] {
  return values.length > 0 && Array.isArray(values[0]);
}

export function toScoreMatrix(yPred: Scores, name: string, numClasses?: number): ScoreMatrix {
  if (numClasses !== undefined) checkNumClasses(numClasses, 'numClasses');
  let matrix: ScoreMatrix;
  if (yPred instanceof Tensor) {
    if (yPred.rank !== 1 && yPred.rank !== 2) {
      throw new KilnError(
        'INVALID_SHAPE',
        `${name} must be [N, C] scores or [N] probabilities, got shape ${formatShape(yPred.shape)}`,
      );
    }
    matrix = {
      values: numbersOf(yPred.data as ArrayLike<number | bigint>),
      rows: yPred.shape[0]!,
      cols: yPred.rank === 2 ? yPred.shape[1]! : 1,
    };
  } else if (!ArrayBuffer.isView(yPred) && isNestedRows(yPred)) {
    const cols = yPred[0]!.length;
    const values = new Float64Array(yPred.length * cols);
    yPred.forEach((row, r) => {
      if (row.length !== cols) {
        throw new KilnError('INVALID_SHAPE', `${name} rows must all have ${cols} scores, row ${r} has ${row.length}`);
      }
      for (let c = 0; c < cols; c++) values[r * cols + c] = row[c]!;
    });
    matrix = { values, rows: yPred.length, cols };
  } else {
    // A flat array is [N] probabilities unless numClasses says how to fold it into rows.
    const flat = yPred as ArrayLike<number>;
    const cols = numClasses !== undefined && numClasses > 1 ? numClasses : 1;
    if (flat.length % cols !== 0) {
      throw new KilnError(
        'INVALID_SHAPE',
        `${name} has ${flat.length} values, which is not a whole number of rows of numClasses = ${cols}`,
      );
    }
    matrix = { values: numbersOf(flat), rows: flat.length / cols, cols };
  }
  if (matrix.cols === 0) {
    throw new KilnError('INVALID_SHAPE', `${name} must have at least one score per row, got 0 columns`);
  }
  const binaryWithTwoClasses = matrix.cols === 1 && numClasses === 2;
  if (numClasses !== undefined && matrix.cols !== numClasses && !binaryWithTwoClasses) {
    throw new KilnError('INVALID_SHAPE', `${name} has ${matrix.cols} score columns but numClasses is ${numClasses}`);
  }
  const nanAt = matrix.values.findIndex((v) => Number.isNaN(v));
  if (nanAt >= 0) {
    const where = matrix.cols === 1 ? `[${nanAt}]` : `[${Math.floor(nanAt / matrix.cols)}][${nanAt % matrix.cols}]`;
    throw new KilnError('INVALID_DATA', `${name}${where} is NaN; scores must be numbers`);
  }
  return matrix;
}

/** Decodes and checks integer labels; the range check against C happens once C is known. */
export function toLabelArray(labels: Labels, name: string): Int32Array {
  let values: ArrayLike<number | bigint>;
  if (labels instanceof Tensor) {
    const isColumn = labels.rank === 2 && labels.shape[1] === 1;
    if (labels.rank !== 1 && !isColumn) {
      throw new KilnError(
        'INVALID_SHAPE',
        `${name} must hold class labels of shape [N] or [N, 1], got shape ${formatShape(labels.shape)}` +
          (labels.rank === 2 ? ' (one-hot targets: use categoricalAccuracy or labelsFromOneHot)' : ''),
      );
    }
    values = labels.data as ArrayLike<number | bigint>;
  } else {
    if (!ArrayBuffer.isView(labels) && isNestedRows(labels as readonly unknown[])) {
      throw new KilnError(
        'INVALID_SHAPE',
        `${name} must be a flat array of class labels, got nested rows (one-hot targets: use categoricalAccuracy or labelsFromOneHot)`,
      );
    }
    values = labels;
  }
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]!);
    if (!Number.isInteger(v) || v < 0) {
      throw new KilnError('INVALID_DATA', `${name}[${i}] is ${v}, expected a non-negative integer class label`);
    }
    out[i] = v;
  }
  return out;
}

/** Labelled positions as the rows of a classifier's metrics (`labelledPositions`). */
export interface LabelledPositions {
  /** Each labelled position's class, in order. */
  truth: Int32Array;
  /** Its class scores: `[positions, classes]`. */
  scores: Tensor<'float32'>;
}

/**
 * The rows a classifier's metrics count in an output of any rank: each labelled position's class
 * scores (`scores` of `shape`, classes along `classAxis`) and its label, in order, leaving out labels
 * equal to `ignoreClass` and negative ones (no class: Hugging Face's -100 on padding). A `[N, C]`
 * output with nothing left out gives its own rows back.
 */
export function labelledPositions(scores: Float32Array, shape: readonly number[], classAxis: number, labels: ArrayLike<bigint | number>, ignoreClass?: number): LabelledPositions {
  const classes = shape[classAxis]!;
  const inner = shape.slice(classAxis + 1).reduce((a, b) => a * b, 1);
  const positions = shape.filter((_, i) => i !== classAxis);
  if (labels.length !== positions.reduce((a, b) => a * b, 1) || scores.length !== positions.reduce((a, b) => a * b, classes)) {
    throw new KilnError('INVALID_SHAPE', `labels for scores of shape ${formatShape(shape)} (classes on axis ${classAxis}) must be one per position, ${formatShape(positions)}; got ${labels.length} labels for ${scores.length} scores`);
  }
  const kept: number[] = [];
  for (let p = 0; p < labels.length; p++) if (Number(labels[p]) !== ignoreClass && Number(labels[p]) >= 0) kept.push(p);
  if (classAxis === shape.length - 1 && kept.length === labels.length) {
    return { truth: Int32Array.from(labels, Number), scores: new Tensor(scores, [labels.length, classes], 'float32') };
  }
  const truth = new Int32Array(kept.length);
  const rows = new Float32Array(kept.length * classes);
  kept.forEach((p, r) => {
    truth[r] = Number(labels[p]);
    const outer = Math.floor(p / inner);
    const within = p % inner;
    for (let c = 0; c < classes; c++) rows[r * classes + c] = scores[(outer * classes + c) * inner + within]!;
  });
  return { truth, scores: new Tensor(rows, [kept.length, classes], 'float32') };
}

/** Every position's class scores as rows `[positions, classes]`: scores of any rank, classes along `classAxis`. */
export function positionScores(scores: Tensor<'float32'>, classAxis: number): Tensor<'float32'> {
  if (classAxis === scores.rank - 1) return new Tensor(scores.data, [scores.size / scores.shape[classAxis]!, scores.shape[classAxis]!], 'float32');
  return labelledPositions(scores.data, scores.shape, classAxis, new Int32Array(scores.size / scores.shape[classAxis]!)).scores;
}

/**
 * A label per position — yPred `[N, T, ..., C]` scores, classes on the last axis as a token
 * classifier's logits, or on the one other axis yTrue leaves out (PyTorch's segmentation logits
 * `[N, C, H, W]` with yTrue `[N, H, W]`) — as the metrics' rows: one per labelled position
 * (`labelledPositions`). Anything else passes unchanged.
 */
export function positionRows<P extends Predictions>(yTrue: Labels, yPred: P): [Labels, P | Tensor<'float32'>] {
  if (!(yPred instanceof Tensor && yTrue instanceof Tensor) || yPred.rank < 3 || yTrue.rank !== yPred.rank - 1) return [yTrue, yPred];
  const classAxis = scoresClassAxis(yPred.shape, yTrue.shape);
  if (yTrue.shape.some((d, i) => d !== yPred.shape[i < classAxis ? i : i + 1])) return [yTrue, yPred];
  const floats = yPred.dtype === 'float32' ? (yPred.data as Float32Array) : Float32Array.from(yPred.data as ArrayLike<number>, Number);
  const { truth, scores } = labelledPositions(floats, yPred.shape, classAxis, yTrue.data as ArrayLike<number | bigint>);
  return [truth, scores];
}

export function checkLabelRange(labels: Int32Array, numClasses: number, name: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= numClasses) {
      throw new KilnError(
        'INVALID_DATA',
        `${name}[${i}] is ${labels[i]}, expected a class label in [0, ${numClasses})`,
      );
    }
  }
}

export function checkSameLength(trueCount: number, predCount: number, predWhat: string): void {
  if (trueCount !== predCount) {
    throw new KilnError('INVALID_DATA', `yTrue has ${trueCount} labels but yPred has ${predCount} ${predWhat}`);
  }
  if (trueCount === 0) {
    throw new KilnError('INVALID_DATA', 'metrics need at least one sample, got 0');
  }
}

export function argmaxRows(scores: ScoreMatrix): Int32Array {
  const out = new Int32Array(scores.rows);
  for (let r = 0; r < scores.rows; r++) {
    const base = r * scores.cols;
    let best = 0;
    for (let c = 1; c < scores.cols; c++) {
      if (scores.values[base + c]! > scores.values[base + best]!) best = c;
    }
    out[r] = best;
  }
  return out;
}

export function labelsFromScores(scores: ScoreMatrix, threshold: number): Int32Array {
  if (scores.cols > 1) return argmaxRows(scores);
  return Int32Array.from(scores.values, (p) => (p > threshold ? 1 : 0));
}

function isLabelPrediction(yPred: Predictions): yPred is Int32Array | Tensor {
  if (yPred instanceof Int32Array) return true;
  return yPred instanceof Tensor && yPred.rank === 1 && INTEGER_DTYPES.has(yPred.dtype);
}

function maxLabel(...arrays: Int32Array[]): number {
  let max = -1;
  for (const a of arrays) for (const v of a) if (v > max) max = v;
  return max;
}

export function toLabelPair(yTrue: Labels, yPred: Predictions, options: ScoreOptions): LabelPair {
  [yTrue, yPred] = positionRows(yTrue, yPred);
  const trueLabels = toLabelArray(yTrue, 'yTrue');
  let predictedLabels: Int32Array;
  let numClasses: number;
  if (isLabelPrediction(yPred)) {
    predictedLabels = toLabelArray(yPred, 'yPred');
    checkSameLength(trueLabels.length, predictedLabels.length, 'labels');
    if (options.numClasses !== undefined) checkNumClasses(options.numClasses, 'numClasses');
    numClasses = options.numClasses ?? Math.max(1, maxLabel(trueLabels, predictedLabels) + 1);
    checkLabelRange(predictedLabels, numClasses, 'yPred');
  } else {
    const scores = toScoreMatrix(yPred, 'yPred', options.numClasses);
    checkSameLength(trueLabels.length, scores.rows, 'rows');
    predictedLabels = labelsFromScores(scores, options.threshold ?? 0.5);
    numClasses = scores.cols === 1 ? 2 : scores.cols;
  }
  checkLabelRange(trueLabels, numClasses, 'yTrue');
  return { trueLabels, predictedLabels, numClasses };
}
