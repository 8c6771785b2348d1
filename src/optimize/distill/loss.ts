import { KilnError } from '../../errors.js';
import type { Graph, Value } from '../../graph/graph.js';
import { sparseCategoricalCrossentropy, type Loss } from '../../train/losses.js';
import { labelledMask, labelledMean, sparseClassAxis } from '../../train/sparse-labels.js';

/** Options of `distillationLoss`. */
export interface DistillationLossOptions {
  /** Softens both distributions: p = softmax(logits / T). Hinton et al. use 2–20; Kiln's default is 4. */
  temperature: number;
  /** Weight of the hard-label cross-entropy; 1 − alpha goes to the teacher term. */
  alpha: number;
  /** The hard-label loss on the student's logits (default: sparse categorical cross-entropy from logits). */
  hardLoss?: Loss;
}

export function checkDistillationOptions(options: { temperature: number; alpha: number }): void {
  const { temperature, alpha } = options;
  if (!(Number.isFinite(temperature) && temperature > 0)) {
    throw new KilnError('INVALID_ARGUMENT', `temperature must be a positive number, got ${temperature}`);
  }
  if (!(Number.isFinite(alpha) && alpha >= 0 && alpha <= 1)) {
    throw new KilnError('INVALID_ARGUMENT', `alpha must be in [0, 1] (the weight of the hard-label loss), got ${alpha}`);
  }
}

/**
 * Emits the knowledge-distillation loss (Hinton, Vinyals & Dean, 2015), averaged over the batch:
 *
 *     α · CE(y, student) + (1 − α) · T² · KL(softmax(teacher / T) ‖ softmax(student / T))
 *
 * with KL per example = Σ_c p_t · (log p_t − log p_s), classes on the last axis. For a class per
 * position (a token classifier's [N, T, classes]) the KL is per position and averaged as the hard
 * loss averages: over every position, or over the labelled ones when it ignores a class (padding's
 * -100 then carries neither term). The soft term's gradient with respect to a
 * student logit is (p_s − p_t) / T, and p_s − p_t itself shrinks roughly as 1/T, so without the T²
 * the teacher's share of the gradient would fade as T grows; with it α weighs the two terms alike at
 * any temperature.
 *
 * Only ops with gradient rules are used; the teacher's branch depends on no parameter, so the
 * autodiff walk leaves it alone.
 */
export function distillationLoss(graph: Graph, studentLogits: Value, teacherLogits: Value, labels: Value, options: DistillationLossOptions): Value {
  checkDistillationOptions(options);
  const { temperature, alpha } = options;
  const hardLoss = options.hardLoss ?? sparseCategoricalCrossentropy({ fromLogits: true });
  const hard = hardLoss.build(graph, studentLogits, labels);
  const t = graph.scalar(temperature);
  // The soft targets are over the classes the hard loss reads: the last axis, or its `axis` (1 of a segmentation model's [N, C, H, W]).
  const axis = sparseClassAxis(hardLoss.config.axis as number | undefined, studentLogits.shape?.length ?? 2);
  const logStudent = graph.op1('LogSoftmax', [graph.op1('Div', [studentLogits, t])], { axis }, 'distill/log_p_student');
  const logTeacher = graph.op1('LogSoftmax', [graph.op1('Div', [teacherLogits, t])], { axis }, 'distill/log_p_teacher');
  const teacherProbs = graph.op1('Exp', [logTeacher], {}, 'distill/p_teacher');
  const perPosition = graph.op1('ReduceSum', [graph.op1('Mul', [teacherProbs, graph.op1('Sub', [logTeacher, logStudent])]), graph.int64s([axis], 'axes')], { keepdims: 0 }, 'distill/kl');
  const ignoreClass = hardLoss.config.ignoreClass as number | undefined;
  const kl = ignoreClass === undefined ? graph.op1('ReduceMean', [perPosition], { keepdims: 0 }) : labelledMean(graph, perPosition, labelledMask(graph, labels, ignoreClass));
  const weightedHard = graph.op1('Mul', [hard, graph.scalar(alpha)]);
  const weightedSoft = graph.op1('Mul', [kl, graph.scalar((1 - alpha) * temperature * temperature)]);
  return graph.op1('Add', [weightedHard, weightedSoft], {}, 'distill/loss');
}

