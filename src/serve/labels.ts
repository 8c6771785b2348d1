import { KilnError, formatShape } from '../errors.js';
import type { ModelProto } from '../graph/proto.js';
import { CLASS_NAMES_METADATA_KEY, parseClassNames } from '../model/class-names.js';
import type { ModelDescription } from '../model/onnx-model.js';
import type { Tensor } from '../tensor.js';
import type { ModelConfig } from './config.js';
import { badRequest, ServeError } from './errors.js';
import type { Signature, TensorSpec } from './signature.js';

/*
 * A served classifier's class names and its answers in each protocol's terms. The names come, first
 * found, from the model's repository directory (labels.txt, one name per line, or config.json
 * "labels"), then from the model's metadata ('kiln.labels', written when Kiln trains on a data set that
 * names its classes); their number must equal the classes the first output scores, or the version
 * fails to load, saying so. Top-k answers: KServe v2's classification extension ("score:index:label",
 * as Triton writes it), TF Serving's :classify ([label, score] pairs) and TorchServe's image classifier
 * (label → probability for the top 5, probabilities by softmax unless the model ends in one).
 */

export interface Classifier {
  /** The output that scores the classes, [N, classes]. */
  output: TensorSpec;
  classes: number | undefined;
  labels: string[] | undefined;
  /** Where the labels came from, for messages. */
  labelsFrom: string | undefined;
  /** The output already holds probabilities (the graph ends in Softmax). */
  probabilities: boolean;
}

/** labels.txt: one class name per line, in class order; a final newline and Windows line ends are fine, blank lines are not. */
export function parseLabelsFile(text: string, shown: string): string[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw new KilnError('INVALID_ARGUMENT', `${shown} is empty; it should hold one class name per line`);
  const blank = lines.findIndex((l) => l.trim() === '');
  if (blank >= 0) throw new KilnError('INVALID_ARGUMENT', `${shown}: line ${blank + 1} is blank; every line names one class, in class order`);
  return lines;
}

/** Whether the node producing `output` is a Softmax (through Identity, Reshape, Flatten or Squeeze). */
function endsInSoftmax(proto: ModelProto, output: string): boolean {
  const producer = new Map<string, { opType?: string; input?: string[] }>();
  for (const node of proto.graph?.node ?? []) for (const o of node.output ?? []) producer.set(o, node);
  let name = output;
  for (let hops = 0; hops < 8; hops++) {
    const node = producer.get(name);
    if (!node) return false;
    if (node.opType === 'Softmax') return true;
    if (!['Identity', 'Reshape', 'Flatten', 'Squeeze'].includes(node.opType ?? '')) return false;
    name = node.input?.[0] ?? '';
  }
  return false;
}

/**
 * The classifier view of a version: its scores output (the signature's first: the one a Kiln-saved
 * model of several records, else the file's first) if that is [N, classes], with class names checked
 * against it.
 */
export function classifierOf(proto: ModelProto | undefined, description: ModelDescription, signature: Signature, config: ModelConfig, previous?: Classifier): Classifier | undefined {
  const output = signature.outputs[0];
  if (!output || output.shape?.length !== 2) return undefined;
  const classes = output.shape[1]! > 0 ? output.shape[1]! : undefined;
  const fromMetadata = parseClassNames(description.metadata[CLASS_NAMES_METADATA_KEY], `the model's metadata`);
  const labels = config.labels ?? fromMetadata;
  const labelsFrom = config.labels ? 'labels.txt or config.json "labels"' : fromMetadata ? `the model's metadata '${CLASS_NAMES_METADATA_KEY}'` : undefined;
  if (labels && classes !== undefined && labels.length !== classes) {
    throw badRequest(`the class labels (${labelsFrom}) name ${labels.length} classes, but output '${output.name}' ${formatShape(output.shape)} scores ${classes}`);
  }
  return { output, classes, labels, labelsFrom, probabilities: proto ? endsInSoftmax(proto, output.onnxName) : (previous?.probabilities ?? false) };
}

/** Why a new config's labels do not fit a version already loaded (their count against its classes), or undefined. */
export function labelsMisfit(config: ModelConfig, versions: Iterable<{ classifier: Classifier | undefined; what: string }>): string | undefined {
  if (!config.labels) return undefined;
  for (const v of versions) {
    const classes = v.classifier?.classes;
    if (classes !== undefined && classes !== config.labels.length) {
      return `the class labels (labels.txt or config.json "labels") name ${config.labels.length} classes, but ${v.what} scores ${classes}`;
    }
  }
  return undefined;
}

/** Scores [N, classes] → per row, the k best classes (score descending, the lower index first on ties). */
export function topK(scores: Tensor, k: number, what: string): { index: number; score: number }[][] {
  if (scores.rank !== 2) throw badRequest(`${what} has shape ${formatShape(scores.shape)}; class scores need [batch, classes]`);
  const [n, classes] = scores.shape as [number, number];
  const data = scores.data as ArrayLike<number>;
  const take = Math.min(k, classes);
  return Array.from({ length: n }, (_, r) => {
    const row = Array.from({ length: classes }, (_, c) => ({ index: c, score: Number(data[r * classes + c]) }));
    row.sort((a, b) => b.score - a.score || a.index - b.index);
    return row.slice(0, take);
  });
}

/** The label of a class: its name when the model has names, else its index. */
export function labelOf(classifier: Classifier | undefined, index: number): string {
  const labels = classifier?.labels;
  if (labels && index >= labels.length) throw new ServeError(500, `the model scored class ${index}, but its labels (${classifier!.labelsFrom}) name only ${labels.length} classes`);
  return labels ? labels[index]! : String(index);
}

/** Triton's classification string: score (C's %f, six decimals), index, and the label when there is one. */
export function classificationString(classifier: Classifier | undefined, index: number, score: number): string {
  const label = classifier?.labels ? `:${labelOf(classifier, index)}` : '';
  return `${Number.isFinite(score) ? score.toFixed(6) : String(score).toLowerCase()}:${index}${label}`;
}

/** Probabilities of a row of scores: as they are when the model ends in Softmax, else softmax of them. */
export function probabilities(row: readonly number[], alreadyProbabilities: boolean): number[] {
  if (alreadyProbabilities) return [...row];
  const max = Math.max(...row);
  const exps = row.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
