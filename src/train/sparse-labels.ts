/**
 * What a sparse categorical cross-entropy's labels say about its output: which axis holds the classes,
 * which label is ignored, and whether the loss is one over positions (a label per token or pixel) —
 * what the compiled steps, the label checks and evaluate() read of the loss.
 */
import { KilnError } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';
import type { Loss } from './losses.js';

export interface SparseLabels {
  /** The output's class axis (the batch axis is 0). */
  classAxis: number;
  /** The label left out of the loss and the accuracy, if any. */
  ignoreClass?: number;
  /** Whether the loss is a mean over labelled positions rather than over examples: more axes than [N, classes], or an ignored class. */
  perPosition: boolean;
}

/** The class axis of a sparse cross-entropy's output of `rank` (batch axis included): `axis` or the last. */
export function sparseClassAxis(axis: number | undefined, rank: number): number {
  const a = axis ?? -1;
  const classAxis = a < 0 ? rank + a : a;
  if (classAxis < 1 || classAxis >= rank) {
    throw new KilnError('INVALID_ARGUMENT', `sparseCategoricalCrossentropy: axis ${a} is not a class axis of an output of rank ${rank} (axis 0 is the batch)`);
  }
  return classAxis;
}

/**
 * The class axis that labels of `labelShape` imply for an output of `outputShape` (both with the batch
 * axis): the axis whose removal leaves the labels' shape — the last where that fits (Keras' default,
 * a token classifier's [N, T, C]), else the only other that does (PyTorch's segmentation logits
 * [N, C, H, W] with labels [N, H, W]: 1). Undefined for a label per example, or where no axis or
 * several fit: the loss's default then stands, and its label check says what was expected.
 */
export function labelClassAxis(outputShape: readonly (number | string | null)[], labelShape: readonly number[]): number | undefined {
  const rank = outputShape.length;
  if (rank < 3 || labelShape.length !== rank - 1) return undefined;
  if (labelsFitAxis(outputShape, labelShape, rank - 1)) return undefined;
  const axes = Array.from({ length: rank - 2 }, (_, i) => i + 1).filter((axis) => labelsFitAxis(outputShape, labelShape, axis));
  return axes.length === 1 ? axes[0] : undefined;
}

/** The axis of scores of `outputShape` holding the classes for labels of `labelShape`: the one they leave out, else the last. */
export function scoresClassAxis(outputShape: readonly (number | string | null)[], labelShape: readonly number[]): number {
  return labelClassAxis(outputShape, labelShape) ?? outputShape.length - 1;
}

/** Whether labels of `labelShape` are one per position of an output of `outputShape` (batch axes included) with classes on `axis`. */
export function labelsFitAxis(outputShape: readonly (number | string | null)[], labelShape: readonly number[], axis: number): boolean {
  return labelShape.length === outputShape.length - 1 && outputShape.filter((_, i) => i !== axis).every((d, i) => i === 0 || typeof d !== 'number' || d === labelShape[i]);
}

/**
 * What a compiled step counts of a sparse cross-entropy's labels: the class axis, and the ignored
 * label. Undefined for any other loss.
 */
export function sparseLabels(loss: Loss, outputRank: number): SparseLabels | undefined {
  if (loss.name !== 'sparseCategoricalCrossentropy') return undefined;
  const ignoreClass = loss.config.ignoreClass as number | undefined;
  return { classAxis: sparseClassAxis(loss.config.axis as number | undefined, outputRank), ...(ignoreClass !== undefined ? { ignoreClass } : {}), perPosition: outputRank > 2 || ignoreClass !== undefined };
}

/** Where labels count (bool, the labels' shape): every label but `ignoreClass`. */
export function labelledMask(graph: Graph, labels: Value, ignoreClass: number): Value {
  return graph.op1('Not', [graph.op1('Equal', [labels, graph.scalar(ignoreClass, 'int64')])]);
}

/** The mean of `values` over the positions `mask` marks (the same shape); 0 when none is marked. */
export function labelledMean(graph: Graph, values: Value, mask: Value): Value {
  const weights = graph.op1('Cast', [mask], { to: 1 });
  const sum = graph.op1('ReduceSum', [graph.op1('Mul', [values, weights])], { keepdims: 0 });
  return graph.op1('Div', [sum, graph.op1('Max', [graph.op1('ReduceSum', [weights], { keepdims: 0 }), graph.scalar(1)])]);
}
