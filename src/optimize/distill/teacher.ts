import { KilnError, formatShape } from '../../errors.js';
import { Model } from '../../model/model.js';
import { OnnxModel } from '../../model/onnx-model.js';
import { adaptInput } from '../../model/input-adapter.js';
import { parseOnnx } from '../../model/read-model.js';
import { Tensor } from '../../tensor.js';

/** A teacher (or any classifier to score): a model file, its bytes, a loaded ONNX model or a Kiln model (layers or imported). */
export type ClassifierSource = string | Uint8Array | OnnxModel | Model;

/** What a classifier's first output holds; 'auto' tells them apart by looking at the values. */
export type ClassifierOutputKind = 'logits' | 'probabilities';

/** Any classifier as an OnnxModel, so Kiln-made and foreign models run the same way. */
export async function asOnnxModel(source: ClassifierSource): Promise<OnnxModel> {
  if (source instanceof OnnxModel) return source;
  if (typeof source === 'string') return OnnxModel.load(source);
  const bytes = source instanceof Model ? source.toOnnx() : source;
  return new OnnxModel(bytes, parseOnnx(bytes));
}

/** True when every row is a probability distribution (non-negative, summing to 1). */
export function looksLikeProbabilities(scores: Float32Array, classes: number): boolean {
  if (classes < 2) return false;
  for (let r = 0; r < scores.length / classes; r++) {
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const v = scores[r * classes + c]!;
      if (!(v >= 0 && v <= 1)) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

/** Options of `classifierScores` and `teacherLogits`. */
export interface ClassifierScoresOptions {
  /** Examples per ONNX Runtime call (default 256). */
  batchSize?: number;
}

/**
 * Runs a single-output classifier over x in batches: `[N, C]` scores as the model produces them.
 * Batching keeps memory flat (one call over 60,000 images would hold every activation at once).
 */
export async function classifierScores(model: OnnxModel, x: Tensor, options: ClassifierScoresOptions = {}): Promise<Tensor<'float32'>> {
  if (model.inputs.length !== 1) {
    throw new KilnError('INVALID_ARGUMENT', `a classifier needs exactly one input; this model has ${model.inputs.length} (${model.inputs.map((i) => i.name).join(', ')})`);
  }
  const batchSize = options.batchSize ?? 256;
  const n = x.shape[0]!;
  const inputName = model.inputs[0]!.name;
  const outputName = model.outputs[0]!.name;
  let out: Float32Array | undefined;
  let classes = 0;
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const result = (await model.run({ [inputName]: adaptInput(x.slice(start, end), model.inputs[0]!, model.preprocessing) }))[outputName]!;
    const rows = result.shape[0];
    const perRow = result.size / Math.max(1, end - start);
    if (rows !== end - start || !Number.isInteger(perRow) || result.rank < 2 || perRow !== result.shape.slice(1).reduce((a, b) => a * b, 1)) {
      throw new KilnError('INVALID_SHAPE', `a classifier must output [N, classes]; '${outputName}' has shape ${formatShape(result.shape)} for ${end - start} inputs`);
    }
    if (!out) {
      classes = perRow;
      out = new Float32Array(n * classes);
    }
    out.set(result.dtype === 'float32' ? (result.data as Float32Array) : Float32Array.from(result.data as ArrayLike<number>, Number), start * classes);
  }
  return new Tensor(out ?? new Float32Array(0), [n, classes], 'float32');
}

/** A teacher's logits for every example, as `teacherLogits` computes them. */
export interface TeacherLogits {
  /** `[N, classes]` logits (log-probabilities for a teacher that outputs probabilities). */
  logits: Tensor<'float32'>;
  /** What the teacher outputs: logits as they are, or probabilities turned into log-probabilities. */
  outputKind: ClassifierOutputKind;
}

/**
 * The teacher's logits for every example of x. A teacher that ends in softmax gives probabilities;
 * their logarithms are logits up to a per-row constant, which softmax(z / T) ignores, so both kinds
 * distill the same way.
 */
export async function teacherLogits(teacher: OnnxModel, x: Tensor, options: ClassifierScoresOptions & { outputKind?: ClassifierOutputKind | 'auto' } = {}): Promise<TeacherLogits> {
  const scores = await classifierScores(teacher, x, options);
  const classes = scores.shape[1]!;
  const requested = options.outputKind ?? 'auto';
  const outputKind: ClassifierOutputKind = requested === 'auto' ? (looksLikeProbabilities(scores.data, classes) ? 'probabilities' : 'logits') : requested;
  if (outputKind === 'probabilities') {
    const d = scores.data;
    // A probability that underflowed to 0 becomes a very negative logit rather than −∞.
    for (let i = 0; i < d.length; i++) d[i] = Math.log(Math.max(d[i]!, 1e-30));
  }
  return { logits: scores, outputKind };
}
