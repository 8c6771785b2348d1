import { KilnError } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';
import { Tensor, type DType } from '../tensor.js';
import { labelledMask, labelledMean, sparseClassAxis } from './sparse-labels.js';

/**
 * Losses as graph builders: given the model's output and the labels (graph values), emit the mean loss
 * over the batch as a scalar. Each uses only ops with gradient rules, so autodiff differentiates it.
 */
export interface Loss {
  /** The loss function's name, as saved models record it. */
  readonly name: string;
  /** Its arguments, as saved models record them. */
  readonly config: Record<string, unknown>;
  /** dtype and per-example shape of the labels this loss reads, given the model's output shape. */
  labelSpec(outputShape: number[]): {
    /** 'int64' for class indices, 'float32' for targets. */
    dtype: DType;
    /** Shape of one example's label (`[]` for a class index). */
    shape: number[];
  };
  /** Mean loss over the batch (scalar). */
  build(graph: Graph, output: Value, labels: Value): Value;
}

const EPSILON = 1e-7; // Keras' backend epsilon, used to keep log() away from 0 for probability inputs.

function mean(graph: Graph, v: Value): Value {
  return graph.op1('ReduceMean', [v], { keepdims: 0 });
}

function clipProbabilities(graph: Graph, p: Value): Value {
  return graph.op1('Clip', [p, graph.scalar(EPSILON), graph.scalar(1 - EPSILON)]);
}

/** Arguments of the cross-entropy losses. */
export interface CrossentropyArgs {
  /**
   * Whether the model outputs logits (true) or probabilities (false, the default, as in Keras): a model
   * ending in a plain Dense layer outputs logits.
   */
  fromLogits?: boolean;
}

/** Arguments of sparse categorical cross-entropy (Keras' SparseCategoricalCrossentropy, PyTorch's CrossEntropyLoss). */
export interface SparseCrossentropyArgs extends CrossentropyArgs {
  /**
   * The output's class axis: -1, the last (Keras' default), also for a token classifier's or a causal
   * language model's `[N, T, classes]`; 1 for PyTorch's `[N, classes, H, W]` (segmentation). The labels
   * are the output's shape without it: `[N]`, `[N, T]`, `[N, H, W]`.
   */
  axis?: number;
  /**
   * A label that marks a position to leave out of the loss and the accuracy, as Keras' `ignore_class`
   * and PyTorch's `ignore_index` (-100 in Hugging Face's token labels: padding and continued words).
   * The loss is the mean over the other positions.
   */
  ignoreClass?: number;
}

/**
 * Cross-entropy with integer class labels: `[N]` for a classifier's `[N, classes]`, or one label per
 * position (`[N, T]`, `[N, H, W]`) for an output with more axes; the mean over every labelled
 * position, as Keras and PyTorch average.
 */
export function sparseCategoricalCrossentropy(args: SparseCrossentropyArgs = {}): Loss {
  const fromLogits = args.fromLogits ?? false;
  const { axis, ignoreClass } = args;
  if (axis !== undefined && !Number.isInteger(axis)) throw new KilnError('INVALID_ARGUMENT', `sparseCategoricalCrossentropy: axis must be an integer, got ${axis}`);
  if (ignoreClass !== undefined && !Number.isInteger(ignoreClass)) throw new KilnError('INVALID_ARGUMENT', `sparseCategoricalCrossentropy: ignoreClass must be an integer, got ${ignoreClass}`);
  return {
    name: 'sparseCategoricalCrossentropy',
    // Only what was given: a saved classifier's config stays { fromLogits }.
    config: { fromLogits, ...(axis !== undefined ? { axis } : {}), ...(ignoreClass !== undefined ? { ignoreClass } : {}) },
    labelSpec: (outputShape) => {
      const classAxis = sparseClassAxis(axis, outputShape.length + 1);
      return { dtype: 'int64', shape: outputShape.filter((_, i) => i + 1 !== classAxis) };
    },
    build(graph, output, labels) {
      const rank = output.shape!.length;
      const classAxis = sparseClassAxis(axis, rank);
      const classes = output.shape![classAxis] as number;
      // Ignored labels become class 0 for OneHot (which would read -100 as class classes - 100); their
      // terms are then weighted 0.
      const counted = ignoreClass === undefined ? undefined : labelledMask(graph, labels, ignoreClass);
      const indices = counted ? graph.op1('Where', [counted, labels, graph.scalar(0, 'int64')]) : labels;
      // One-hot in the graph (OneHot has no gradient and needs none: labels are data).
      const oneHot = graph.op1('OneHot', [indices, graph.int64s([classes], 'depth'), graph.constant(new Tensor(Float32Array.of(0, 1), [2], 'float32'), 'onehot_values')], { axis: classAxis === rank - 1 ? -1 : classAxis });
      const perPosition = logLikelihoods(graph, output, oneHot, fromLogits, classAxis);
      if (!counted) return graph.op1('Neg', [mean(graph, perPosition)]);
      // An all-ignored batch has loss 0 (PyTorch gives NaN there, which would stop training).
      return graph.op1('Neg', [labelledMean(graph, perPosition, counted)]);
    },
  };
}

/** Each position's log-likelihood of its one-hot label (the class axis summed away). */
function logLikelihoods(graph: Graph, output: Value, oneHot: Value, fromLogits: boolean, classAxis: number): Value {
  const logProbs = fromLogits
    ? graph.op1('LogSoftmax', [output], { axis: classAxis })
    : graph.op1('Log', [clipProbabilities(graph, graph.op1('Div', [output, graph.op1('ReduceSum', [output, graph.int64s([classAxis], 'axes')], { keepdims: 1 })]))]);
  return graph.op1('ReduceSum', [graph.op1('Mul', [oneHot, logProbs]), graph.int64s([classAxis], 'axes')], { keepdims: 0 });
}

function categoricalFromOneHot(graph: Graph, output: Value, oneHot: Value, fromLogits: boolean): Value {
  return graph.op1('Neg', [mean(graph, logLikelihoods(graph, output, oneHot, fromLogits, 1))]);
}

/** Cross-entropy with one-hot (or soft) labels [N, C]. */
export function categoricalCrossentropy(args: CrossentropyArgs = {}): Loss {
  const fromLogits = args.fromLogits ?? false;
  return {
    name: 'categoricalCrossentropy',
    config: { fromLogits },
    labelSpec: (outputShape) => ({ dtype: 'float32', shape: outputShape }),
    build: (graph, output, labels) => categoricalFromOneHot(graph, output, labels, fromLogits),
  };
}

/** Binary cross-entropy with labels in {0, 1} shaped like the output. */
export function binaryCrossentropy(args: CrossentropyArgs = {}): Loss {
  const fromLogits = args.fromLogits ?? false;
  return {
    name: 'binaryCrossentropy',
    config: { fromLogits },
    labelSpec: (outputShape) => ({ dtype: 'float32', shape: outputShape }),
    build(graph, output, labels) {
      if (fromLogits) {
        // Stable form: max(x, 0) − x·z + log(1 + exp(−|x|))
        const x = output;
        // −|x| written as Min(x, −x): at x = 0 Abs' rule gives slope 0 (Sign(0)) and Relu's gives 0, so the
        // gradient came out as −z instead of σ(0) − z = 0.5 − z (every logit of a zero-initialized output
        // layer sits there). Min sends the tie to x (slope 1), which yields the 0.5.
        const negAbs = graph.op1('Min', [x, graph.op1('Neg', [x])]);
        const softplusNegAbs = graph.op1('Log', [graph.op1('Add', [graph.scalar(1), graph.op1('Exp', [negAbs])])]);
        const perElement = graph.op1('Add', [graph.op1('Sub', [graph.op1('Relu', [x]), graph.op1('Mul', [x, labels])]), softplusNegAbs]);
        return mean(graph, perElement);
      }
      const p = clipProbabilities(graph, output);
      const one = graph.scalar(1);
      const term = graph.op1('Add', [
        graph.op1('Mul', [labels, graph.op1('Log', [p])]),
        graph.op1('Mul', [graph.op1('Sub', [one, labels]), graph.op1('Log', [graph.op1('Sub', [one, p])])]),
      ]);
      return graph.op1('Neg', [mean(graph, term)]);
    },
  };
}

/** Mean of the squared differences between outputs and targets of the output's shape. */
export function meanSquaredError(): Loss {
  return {
    name: 'meanSquaredError',
    config: {},
    labelSpec: (outputShape) => ({ dtype: 'float32', shape: outputShape }),
    build(graph, output, labels) {
      const diff = graph.op1('Sub', [output, labels]);
      return mean(graph, graph.op1('Mul', [diff, diff]));
    },
  };
}

const BY_NAME: Record<string, () => Loss> = {
  mse: meanSquaredError,
  meanSquaredError,
  mean_squared_error: meanSquaredError,
  sparseCategoricalCrossentropy: () => sparseCategoricalCrossentropy(),
  sparse_categorical_crossentropy: () => sparseCategoricalCrossentropy(),
  categoricalCrossentropy: () => categoricalCrossentropy(),
  categorical_crossentropy: () => categoricalCrossentropy(),
  binaryCrossentropy: () => binaryCrossentropy(),
  binary_crossentropy: () => binaryCrossentropy(),
};

/**
 * A loss from its name (snake_case or camelCase: 'sparse_categorical_crossentropy', 'mse', ...) or a
 * saved `{name, config}`; a Loss object passes through.
 */
export function resolveLoss(loss: string | Loss | { name: string; config?: Record<string, unknown> }): Loss {
  if (typeof loss === 'string') {
    const make = BY_NAME[loss];
    if (!make) throw new KilnError('INVALID_ARGUMENT', `unknown loss '${loss}'; expected one of ${Object.keys(BY_NAME).join(', ')}`);
    return make();
  }
  if ('build' in loss) return loss;
  // A serialized loss (from a saved model's training config).
  const factories: Record<string, (c: never) => Loss> = { sparseCategoricalCrossentropy, categoricalCrossentropy, binaryCrossentropy, meanSquaredError };
  const f = factories[loss.name];
  if (!f) throw new KilnError('INVALID_ARGUMENT', `unknown loss '${loss.name}'`);
  return f((loss.config ?? {}) as never);
}
