import { KilnError, formatShape } from '../../errors.js';
import { encodeModel, type ModelProto } from '../../graph/proto.js';
import { definedPreprocessing, finalSoftmax, type Preprocessing } from '../../model/imported-graph.js';
import { Model } from '../../model/model.js';
import { batchable } from '../../model/fixed-batch.js';
import { OnnxModel } from '../../model/onnx-model.js';
import { checkFileInputs, fileFeeds } from '../../model/input-adapter.js';
import { examplesIn, inputsNamed, sliceInputs, type ModelInputs } from '../../model/input-rows.js';
import { parseOnnx } from '../../model/read-model.js';
import { Tensor } from '../../tensor.js';
import { positionScores } from '../../train/metric-inputs.js';
import { scoresClassAxis } from '../../train/sparse-labels.js';

/** A teacher (or any classifier to score): a model file, its bytes, a loaded ONNX model or a Kiln model (layers or imported). */
export type ClassifierSource = string | Uint8Array | OnnxModel | Model;

/** What a classifier's first output holds; 'auto' tells them apart by looking at the values. */
export type ClassifierOutputKind = 'logits' | 'probabilities';

/** Any classifier as an OnnxModel, so Kiln-made and foreign models run the same way (in batches of any size: see batchable). */
export async function asOnnxModel(source: ClassifierSource): Promise<OnnxModel> {
  if (source instanceof OnnxModel) return batchable(source);
  if (typeof source === 'string') return batchable(await OnnxModel.load(source), `'${source}'`);
  const bytes = source instanceof Model ? source.toOnnx() : source;
  return batchable(new OnnxModel(bytes, parseOnnx(bytes)));
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
  /** The value to read (default: the model's first output); another graph output. */
  output?: string;
  /** How x meets the model, key by key over what the file declares (layout, scale, mean/std: `kiln evaluate --scale 1`). */
  preprocessing?: Preprocessing;
}

/**
 * Runs a classifier over x in batches: `[N, C]` scores as the model produces them (`[N, T, C]` for a
 * class per token). x is a tensor, or,
 * for a model of several inputs (input_ids and attention_mask), tensors by its input names. Batching
 * keeps memory flat (one call over 60,000 images would hold every activation at once).
 */
export async function classifierScores(model: OnnxModel, given: ModelInputs, options: ClassifierScoresOptions = {}): Promise<Tensor<'float32'>> {
  const batchSize = options.batchSize ?? 256;
  checkFileInputs(given, model.inputs); // names, rows and integer types checked before any run
  // Only the model's own inputs are counted and sliced (a student's other inputs are left unread).
  const x = inputsNamed(given, model.inputs.map((i) => i.name));
  const n = examplesIn(x);
  const outputName = options.output ?? model.primaryOutput;
  const preprocessing = { ...model.preprocessing, ...definedPreprocessing(options.preprocessing ?? {}) };
  let out: Float32Array | undefined;
  // One example's scores: [classes], [T, classes] for a class per token, or [classes, H, W] for one per
  // pixel (where the labels say which axis holds the classes); the same for every batch.
  let row: number[] = [0];
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const result = (await model.run(fileFeeds(sliceInputs(x, start, end), model.inputs, preprocessing)))[outputName]!;
    const same = !out || (result.rank === row.length + 1 && result.shape.every((d, i) => i === 0 || d === row[i - 1]));
    if (result.rank < 2 || result.shape[0] !== end - start || (result.rank <= 3 && result.shape.at(-1)! < 2) || !same) {
      throw new KilnError(
        'INVALID_SHAPE',
        `a classifier must output [N, classes] scores (at least 2 classes), [N, T, classes] for a class per token, or a class per pixel; '${outputName}' has shape ${formatShape(result.shape)} for ${end - start} inputs${same ? '' : ` (earlier batches: ${formatShape(['N', ...row])})`}`,
      );
    }
    if (result.dtype !== 'float32' && result.dtype !== 'float64') {
      throw new KilnError('INVALID_ARGUMENT', `a classifier must output float scores (logits or probabilities); '${outputName}' is ${result.dtype}`);
    }
    if (!out) {
      row = result.shape.slice(1);
      out = new Float32Array(n * result.size / result.shape[0]!);
    }
    out.set(result.dtype === 'float32' ? (result.data as Float32Array) : Float32Array.from(result.data as ArrayLike<number>, Number), (start * result.size) / result.shape[0]!);
  }
  return new Tensor(out ?? new Float32Array(0), [n, ...row], 'float32');
}

/** A teacher's logits for every example, as `teacherLogits` computes them. */
export interface TeacherLogits {
  /** `[N, classes]` logits (log-probabilities for a teacher that outputs probabilities); `[N, T, classes]` or `[N, classes, H, W]` per position. */
  logits: Tensor<'float32'>;
  /** The axis of `logits` holding the classes: the last, or the one the labels leave out (1 of `[N, classes, H, W]`). */
  classAxis: number;
  /** What was read: logits (the output, or the input of a final Softmax), or probabilities turned into log-probabilities. */
  outputKind: ClassifierOutputKind;
  /** The graph value the logits come from: the first output, or the input of the Softmax the graph ends in. */
  readFrom: string;
}

/** A teacher ending in Softmax, with the Softmax's input as an extra output (an in-memory copy), by teacher. */
const logitsReaders = new WeakMap<OnnxModel, LogitsReader | null>();

/** A teacher copy that outputs its logits: see {@link logitsReader}. */
export interface LogitsReader {
  /** The in-memory copy of the teacher, with the Softmax's input added as an output. */
  model: OnnxModel;
  /** The name of that output (the Softmax's input). */
  output: string;
  /** The axis the Softmax normalizes (batch axis 0). */
  axis: number;
}

/**
 * The teacher as it runs for its logits: when its graph ends in a Softmax over the classes, a copy
 * that also outputs the Softmax's input, which is read instead of the probabilities; else null.
 */
export function logitsReader(teacher: OnnxModel): LogitsReader | null {
  let reader = logitsReaders.get(teacher);
  if (reader === undefined) {
    const scores = teacher.primaryOutput;
    // The classes the Softmax normalizes: the last axis of [N, classes] or [N, T, classes], or 1 of [N, C, H, W].
    const softmax = finalSoftmax(scores, teacher.proto, teacher.outputs.find((o) => o.name === scores)?.shape?.length ?? 2);
    if (softmax === undefined) reader = null;
    else if (teacher.outputs.some((o) => o.name === softmax.logits)) reader = { model: teacher, output: softmax.logits, axis: softmax.axis };
    else {
      const g = teacher.proto.graph!;
      const proto: ModelProto = { ...teacher.proto, graph: { ...g, output: [...(g.output ?? []), { name: softmax.logits }] } };
      reader = { model: new OnnxModel(encodeModel(proto), proto), output: softmax.logits, axis: softmax.axis };
    }
    logitsReaders.set(teacher, reader);
  }
  return reader;
}

/**
 * The teacher's logits for every example of x. A teacher whose graph ends in a Softmax is read before
 * it: its logits are the Softmax's input, taken as an extra output of an in-memory copy of the graph,
 * so temperature scaling sees them exactly (probabilities that rounded to 0 or 1 carry no logit).
 * Otherwise the output is read as it is; when it holds probabilities (`outputKind`, or 'auto' seeing
 * rows ≥ 0 that sum to 1) their logarithms are logits up to a per-row constant, which softmax(z / T)
 * ignores, so both kinds distill the same way.
 */
export async function teacherLogits(teacher: OnnxModel, x: ModelInputs, options: ClassifierScoresOptions & { outputKind?: ClassifierOutputKind | 'auto'; labelShape?: readonly number[] } = {}): Promise<TeacherLogits> {
  const named = options.output ?? teacher.primaryOutput;
  const reader = options.output === undefined ? logitsReader(teacher) : null;
  if (reader) {
    const logits = await classifierScores(reader.model, x, { ...options, output: reader.output });
    // Read before the Softmax only where it normalizes the classes the labels mean.
    if (teacherClassAxis(logits.shape, named, options.labelShape) === reader.axis) return { logits, classAxis: reader.axis, outputKind: 'logits', readFrom: reader.output };
  }
  const scores = await classifierScores(teacher, x, options);
  const classAxis = teacherClassAxis(scores.shape, named, options.labelShape);
  // Probabilities sum to 1 over the classes.
  const rows = classAxis === scores.rank - 1 ? scores.data : positionScores(scores, classAxis).data;
  const requested = options.outputKind ?? 'auto';
  const outputKind: ClassifierOutputKind = requested === 'auto' ? (looksLikeProbabilities(rows, scores.shape[classAxis]!) ? 'probabilities' : 'logits') : requested;
  if (outputKind === 'probabilities') {
    const d = scores.data;
    // A probability that underflowed to 0 becomes a very negative logit rather than −∞.
    for (let i = 0; i < d.length; i++) d[i] = Math.log(Math.max(d[i]!, 1e-30));
  }
  return { logits: scores, classAxis, outputKind, readFrom: named };
}

/**
 * The axis of a teacher's scores (of `shape`) holding the classes: 1 of [N, classes]; with labels of
 * `labelShape` a label per position, the axis they leave out (the last where it fits); the last of a
 * token classifier's [N, T, classes] otherwise. More axes with no labels to say which: refused.
 */
function teacherClassAxis(shape: readonly number[], output: string, labelShape?: readonly number[]): number {
  if (labelShape && labelShape.length === shape.length - 1) return scoresClassAxis(shape, labelShape);
  if (shape.length <= 3) return shape.length - 1;
  throw new KilnError('INVALID_SHAPE', `a teacher must output [N, classes] scores, [N, T, classes] for a class per token, or a class per pixel with labels that say which axis holds the classes ([N, C, H, W] with labels [N, H, W]); '${output}' has shape ${formatShape(shape)}`);
}
