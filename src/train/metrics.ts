/**
 * Classification metrics computed in plain TypeScript over a model's predictions. They run once per
 * evaluation over at most a few hundred thousand rows, so clarity wins over speed here: nothing in
 * this file belongs inside a training step.
 *
 * The input forms every function accepts (labels, scores, predicted labels) and their checks are in
 * metric-inputs.ts, which documents the conventions.
 *
 * Zero division (a precision with no predictions of the class, a recall with no samples of it) counts
 * as 0, which is what scikit-learn returns by default (it also warns).
 */
import { KilnError } from '../errors.js';
import {
  argmaxRows,
  checkLabelRange,
  checkNumClasses,
  checkSameLength,
  labelsFromScores,
  positionRows,
  toLabelArray,
  toLabelPair,
  toScoreMatrix,
  type Labels,
  type Predictions,
  type ScoreMatrix,
  type ScoreOptions,
  type Scores,
} from './metric-inputs.js';

export type { Labels, Predictions, ScoreOptions, Scores } from './metric-inputs.js';
export { labelledPositions, type LabelledPositions } from './metric-inputs.js';

/** How per-class precision / recall / F1 are combined into one number, or 'none' for the per-class array. */
export type Average = 'macro' | 'micro' | 'none';

/** Options of `precision`, `recall` and `f1`. */
export interface AveragedMetricOptions extends ScoreOptions {
  /** 'macro' (default): unweighted mean over classes that occur in yTrue or in the predictions. */
  average?: Average;
}

function fractionEqual(a: Int32Array, b: Int32Array): number {
  let hits = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) hits++;
  return hits / a.length;
}

/** The predicted class of each row: argmax of `[N, C]` scores, or `[N]` probabilities cut at `threshold`. */
export function predictedLabels(yPred: Scores, options: ScoreOptions = {}): Int32Array {
  return labelsFromScores(toScoreMatrix(yPred, 'yPred', options.numClasses), options.threshold ?? 0.5);
}

/** Class labels from one-hot (or label-smoothed, or probability) targets `[N, C]`, by argmax. */
export function labelsFromOneHot(oneHot: Scores, options: Pick<ScoreOptions, 'numClasses'> = {}): Int32Array {
  const matrix = toScoreMatrix(oneHot, 'yTrue', options.numClasses);
  if (matrix.cols < 2) {
    throw new KilnError('INVALID_SHAPE', `one-hot targets need [N, C] with C >= 2, got ${matrix.cols} column(s)`);
  }
  return argmaxRows(matrix);
}

/** Fraction of samples whose predicted class equals the label (Keras `sparse_categorical_accuracy`). */
export function accuracy(yTrue: Labels, yPred: Predictions, options: ScoreOptions = {}): number {
  const { trueLabels, predictedLabels } = toLabelPair(yTrue, yPred, options);
  return fractionEqual(trueLabels, predictedLabels);
}

/** Accuracy against one-hot targets `[N, C]` (Keras `categorical_accuracy`: argmax of both sides). */
export function categoricalAccuracy(yTrueOneHot: Scores, yPred: Scores, options: Pick<ScoreOptions, 'numClasses'> = {}): number {
  const truth = toScoreMatrix(yTrueOneHot, 'yTrue', options.numClasses);
  const scores = toScoreMatrix(yPred, 'yPred', options.numClasses);
  if (truth.cols < 2 || truth.cols !== scores.cols) {
    throw new KilnError(
      'INVALID_SHAPE',
      `categoricalAccuracy needs one-hot yTrue and yPred of the same shape [N, C] with C >= 2, got [${truth.rows}, ${truth.cols}] and [${scores.rows}, ${scores.cols}]`,
    );
  }
  checkSameLength(truth.rows, scores.rows, 'rows');
  return fractionEqual(argmaxRows(truth), argmaxRows(scores));
}

/** Fraction of binary labels (0 or 1) matched by `[N]` / `[N, 1]` probabilities cut at `threshold` (default 0.5). */
export function binaryAccuracy(yTrue: Labels, yPred: Scores, options: Pick<ScoreOptions, 'threshold'> = {}): number {
  const scores = toScoreMatrix(yPred, 'yPred');
  if (scores.cols !== 1) {
    throw new KilnError(
      'INVALID_SHAPE',
      `binaryAccuracy needs [N] or [N, 1] probabilities, got ${scores.cols} score columns (use accuracy for [N, C] scores)`,
    );
  }
  const trueLabels = toLabelArray(yTrue, 'yTrue');
  checkSameLength(trueLabels.length, scores.rows, 'rows');
  checkLabelRange(trueLabels, 2, 'yTrue');
  return fractionEqual(trueLabels, labelsFromScores(scores, options.threshold ?? 0.5));
}

/**
 * Fraction of samples whose label is among the k highest scores (Keras `sparse_top_k_categorical_accuracy`,
 * default k = 5). A label counts as a hit when fewer than k classes score strictly higher, so classes tied
 * at the boundary all count as in the top k (TensorFlow's `in_top_k` rule); the result does not depend on
 * the order of tied classes.
 */
export function topKAccuracy(yTrue: Labels, yPred: Scores, k = 5, options: Pick<ScoreOptions, 'numClasses'> = {}): number {
  if (!Number.isInteger(k) || k < 1) throw new KilnError('INVALID_ARGUMENT', `k must be a positive integer, got ${k}`);
  [yTrue, yPred] = positionRows(yTrue, yPred);
  const scores = toScoreMatrix(yPred, 'yPred', options.numClasses);
  if (scores.cols < 2) {
    throw new KilnError('INVALID_SHAPE', `topKAccuracy needs [N, C] class scores with C >= 2, got ${scores.cols} column(s)`);
  }
  const trueLabels = toLabelArray(yTrue, 'yTrue');
  checkSameLength(trueLabels.length, scores.rows, 'rows');
  checkLabelRange(trueLabels, scores.cols, 'yTrue');
  let hits = 0;
  for (let r = 0; r < scores.rows; r++) {
    const base = r * scores.cols;
    const target = scores.values[base + trueLabels[r]!]!;
    let higher = 0;
    for (let c = 0; c < scores.cols; c++) if (scores.values[base + c]! > target) higher++;
    if (higher < k) hits++;
  }
  return hits / scores.rows;
}

/**
 * Counts of (true class, predicted class) pairs: `matrix[t][p]`, rows are true classes and columns
 * predicted classes, as in Keras and scikit-learn. The diagonal holds the correct predictions.
 */
export function confusionMatrix(yTrue: Labels, yPredLabels: Labels, numClasses: number): number[][] {
  checkNumClasses(numClasses, 'numClasses');
  const trueLabels = toLabelArray(yTrue, 'yTrue');
  const predicted = toLabelArray(yPredLabels, 'yPred');
  checkSameLength(trueLabels.length, predicted.length, 'labels');
  checkLabelRange(trueLabels, numClasses, 'yTrue');
  checkLabelRange(predicted, numClasses, 'yPred');
  return countPairs(trueLabels, predicted, numClasses);
}

function countPairs(trueLabels: Int32Array, predicted: Int32Array, numClasses: number): number[][] {
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < trueLabels.length; i++) matrix[trueLabels[i]!]![predicted[i]!]!++;
  return matrix;
}

function safeDivide(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

function harmonicMean(p: number, r: number): number {
  return safeDivide(2 * p * r, p + r);
}

/** Per-class precision, recall, F1 and support read off a confusion matrix (rows true, columns predicted). */
export interface PerClassScores {
  /** Of the samples predicted as each class, the fraction that are. */
  precision: number[];
  /** Of the samples of each class, the fraction predicted as it. */
  recall: number[];
  /** Harmonic mean of precision and recall, per class. */
  f1: number[];
  /** Samples of each class in yTrue. */
  support: number[];
}

function perClassScores(confusion: number[][]): PerClassScores & { predictedCount: number[] } {
  const n = confusion.length;
  const support = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  const predictedCount = Array.from({ length: n }, (_, c) => confusion.reduce((sum, row) => sum + row[c]!, 0));
  const precision = confusion.map((row, c) => safeDivide(row[c]!, predictedCount[c]!));
  const recall = confusion.map((row, c) => safeDivide(row[c]!, support[c]!));
  const f1 = precision.map((p, c) => harmonicMean(p, recall[c]!));
  return { precision, recall, f1, support, predictedCount };
}

type ScoreKind = 'precision' | 'recall' | 'f1';

function averagedScore(confusion: number[][], kind: ScoreKind, average: Average): number | number[] {
  const perClass = perClassScores(confusion);
  if (average === 'none') return perClass[kind];
  if (average === 'micro') {
    // Pooled over classes, each misclassified sample is one false positive (for the predicted class) and
    // one false negative (for its true class), so precision, recall and F1 all equal accuracy.
    const truePositives = confusion.reduce((sum, row, c) => sum + row[c]!, 0);
    const total = perClass.support.reduce((a, b) => a + b, 0);
    return safeDivide(truePositives, total);
  }
  if (average !== 'macro') {
    throw new KilnError('INVALID_ARGUMENT', `average must be 'macro', 'micro' or 'none', got '${String(average)}'`);
  }
  // Like scikit-learn without `labels=`: a class absent from both yTrue and the predictions carries no
  // evidence either way, so it is left out instead of pulling the mean down with a zero-division 0.
  const present = perClass.support.map((s, c) => s > 0 || perClass.predictedCount[c]! > 0);
  const values = perClass[kind].filter((_, c) => present[c]);
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * Precision: of the samples predicted as a class, the fraction that belong to it.
 * `average` 'macro' (default) is the unweighted mean over classes present in yTrue or in the predictions;
 * 'micro' pools all samples (equal to accuracy for single-label problems); 'none' returns one value per
 * class. A class never predicted has precision 0 (zero division counts as 0).
 */
export function precision(yTrue: Labels, yPred: Predictions, options: AveragedMetricOptions & { average: 'none' }): number[];
export function precision(yTrue: Labels, yPred: Predictions, options?: AveragedMetricOptions & { average?: 'macro' | 'micro' }): number;
export function precision(yTrue: Labels, yPred: Predictions, options?: AveragedMetricOptions): number | number[];
export function precision(yTrue: Labels, yPred: Predictions, options: AveragedMetricOptions = {}): number | number[] {
  return scoreFromPredictions(yTrue, yPred, options, 'precision');
}

/**
 * Recall: of the samples of a class, the fraction predicted as it. Averaging as in `precision`; a class
 * with no samples in yTrue has recall 0 (zero division counts as 0).
 */
export function recall(yTrue: Labels, yPred: Predictions, options: AveragedMetricOptions & { average: 'none' }): number[];
export function recall(yTrue: Labels, yPred: Predictions, options?: AveragedMetricOptions & { average?: 'macro' | 'micro' }): number;
export function recall(yTrue: Labels, yPred: Predictions, options?: AveragedMetricOptions): number | number[];
export function recall(yTrue: Labels, yPred: Predictions, options: AveragedMetricOptions = {}): number | number[] {
  return scoreFromPredictions(yTrue, yPred, options, 'recall');
}

/**
 * F1: the harmonic mean of precision and recall per class, then averaged as in `precision` ('macro'
 * averages the per-class F1 values, as scikit-learn does). F1 is 0 where precision and recall are both 0.
 */
export function f1(yTrue: Labels, yPred: Predictions, options: AveragedMetricOptions & { average: 'none' }): number[];
export function f1(yTrue: Labels, yPred: Predictions, options?: AveragedMetricOptions & { average?: 'macro' | 'micro' }): number;
export function f1(yTrue: Labels, yPred: Predictions, options?: AveragedMetricOptions): number | number[];
export function f1(yTrue: Labels, yPred: Predictions, options: AveragedMetricOptions = {}): number | number[] {
  return scoreFromPredictions(yTrue, yPred, options, 'f1');
}

function scoreFromPredictions(
  yTrue: Labels,
  yPred: Predictions,
  options: AveragedMetricOptions,
  kind: ScoreKind,
): number | number[] {
  const pair = toLabelPair(yTrue, yPred, options);
  return averagedScore(countPairs(pair.trueLabels, pair.predictedLabels, pair.numClasses), kind, options.average ?? 'macro');
}

/**
 * Area under the ROC curve from ranks: the probability that a random positive scores above a random
 * negative, ties counting one half (Mann-Whitney U / (positives * negatives)). Ties get the average of
 * their ranks, which makes this equal to the trapezoidal area scikit-learn's `roc_auc_score` computes.
 * Returns null when there are no positives or no negatives, where the area is undefined.
 */
function rankAuc(scores: Float64Array, isPositive: (i: number) => boolean): number | null {
  const n = scores.length;
  let positives = 0;
  for (let i = 0; i < n; i++) if (isPositive(i)) positives++;
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  /*
   * Every score sorted, and the positives' scores sorted, by the typed arrays' native numeric sort (NaN
   * last): a segmentation model's evaluation ranks millions of pixels per class, where sorting indices
   * with a comparator took tens of seconds. Walking the runs of equal scores in both at once gives each
   * positive the mean rank of its run. Compared rather than subtracted: logits may be ±Infinity.
   */
  const all = Float64Array.from(scores).sort();
  const positiveScores = new Float64Array(positives);
  for (let i = 0, k = 0; i < n; i++) if (isPositive(i)) positiveScores[k++] = scores[i]!;
  positiveScores.sort();
  const same = (a: number, b: number) => a === b || (a !== a && b !== b);
  let positiveRankSum = 0;
  for (let start = 0, p = 0; start < n; ) {
    let end = start + 1;
    while (end < n && same(all[end]!, all[start]!)) end++;
    // Ranks are 1-based; the tied run start..end-1 shares the mean of ranks start+1..end.
    const sharedRank = (start + 1 + end) / 2;
    while (p < positives && same(positiveScores[p]!, all[start]!)) {
      positiveRankSum += sharedRank;
      p++;
    }
    start = end;
  }
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

function onlyOneClassError(labels: Int32Array): KilnError {
  return new KilnError(
    'INVALID_DATA',
    `ROC AUC is undefined when only one class is present in yTrue: all ${labels.length} samples are class ${labels[0]}`,
  );
}

/**
 * ROC AUC. For `[N]` / `[N, 1]` scores yTrue must be 0/1 and this is the binary AUC of the scores; for
 * `[N, C]` scores it is the one-vs-rest macro average: the binary AUC of column c for "class c vs the rest",
 * averaged over the classes that have both positives and negatives in yTrue. A class absent from yTrue is
 * skipped (scikit-learn raises instead). Throws INVALID_DATA when yTrue holds a single class, where no AUC
 * is defined.
 */
export function aucRoc(yTrue: Labels, yPred: Scores, options: Pick<ScoreOptions, 'numClasses'> = {}): number {
  [yTrue, yPred] = positionRows(yTrue, yPred);
  const trueLabels = toLabelArray(yTrue, 'yTrue');
  const scores = toScoreMatrix(yPred, 'yPred', options.numClasses);
  checkSameLength(trueLabels.length, scores.rows, 'rows');
  const auc = aucFromLabelsAndScores(trueLabels, scores);
  if (auc === null) throw onlyOneClassError(trueLabels);
  return auc;
}

function aucFromLabelsAndScores(trueLabels: Int32Array, scores: ScoreMatrix): number | null {
  if (scores.cols === 1) {
    checkLabelRange(trueLabels, 2, 'yTrue');
    return rankAuc(scores.values, (i) => trueLabels[i] === 1);
  }
  checkLabelRange(trueLabels, scores.cols, 'yTrue');
  const column = new Float64Array(scores.rows);
  const perClass: number[] = [];
  for (let c = 0; c < scores.cols; c++) {
    for (let r = 0; r < scores.rows; r++) column[r] = scores.values[r * scores.cols + c]!;
    const auc = rankAuc(column, (i) => trueLabels[i] === c);
    if (auc !== null) perClass.push(auc);
  }
  return perClass.length === 0 ? null : perClass.reduce((a, b) => a + b, 0) / perClass.length;
}

/** Everything a classification report prints, from one pass over labels and scores. */
export interface ClassifierEvaluation {
  /** Samples scored. */
  numSamples: number;
  /** Classes (columns of the scores; 2 for binary probabilities). */
  numClasses: number;
  /** Fraction of samples whose predicted class is the label. */
  accuracy: number;
  /** Unweighted mean F1 over the classes present. */
  macroF1: number;
  /** F1 over all samples pooled (equal to accuracy for single-label problems). */
  microF1: number;
  /** ROC AUC as `aucRoc` computes it, or null where it is undefined (yTrue holds a single class). */
  aucRoc: number | null;
  /** Rows are true classes, columns predicted classes. */
  confusion: number[][];
  /** Precision, recall, F1 and support per class. */
  perClass: PerClassScores;
}

/**
 * Accuracy, macro and micro F1, ROC AUC, the confusion matrix and per-class scores in one call, for
 * `[N, C]` class scores or `[N]` / `[N, 1]` binary probabilities (cut at `threshold` for the label-based
 * metrics). Unlike `aucRoc` it does not throw when AUC is undefined: the report still has the rest.
 */
export function evaluateClassifier(yTrue: Labels, yPred: Scores, options: ScoreOptions = {}): ClassifierEvaluation {
  [yTrue, yPred] = positionRows(yTrue, yPred);
  const trueLabels = toLabelArray(yTrue, 'yTrue');
  const scores = toScoreMatrix(yPred, 'yPred', options.numClasses);
  checkSameLength(trueLabels.length, scores.rows, 'rows');
  const numClasses = scores.cols === 1 ? 2 : scores.cols;
  checkLabelRange(trueLabels, numClasses, 'yTrue');
  const predicted = labelsFromScores(scores, options.threshold ?? 0.5);
  const confusion = countPairs(trueLabels, predicted, numClasses);
  const perClass = perClassScores(confusion);
  return {
    numSamples: trueLabels.length,
    numClasses,
    accuracy: fractionEqual(trueLabels, predicted),
    macroF1: averagedScore(confusion, 'f1', 'macro') as number,
    microF1: averagedScore(confusion, 'f1', 'micro') as number,
    aucRoc: aucFromLabelsAndScores(trueLabels, scores),
    confusion,
    perClass: { precision: perClass.precision, recall: perClass.recall, f1: perClass.f1, support: perClass.support },
  };
}
