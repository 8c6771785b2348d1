import { KilnError, formatShape } from '../errors.js';
import { dtypeFromOnnx } from '../graph/dtype.js';
import { Graph, type Attrs, type Dim, type Shape, type Value } from '../graph/graph.js';
import { modelToProto, nodeAttributes, tensorFromProto, tensorToProto } from '../graph/onnx-io.js';
import { dataInputs, encodeModel, type ModelProto, type NodeProto } from '../graph/proto.js';
import { OLDEST_UPGRADABLE_OPSET, UPGRADED_OPSET, defaultOpset, upgradeOpset } from '../graph/opset-upgrade.js';
import { describedByShapeRules } from './graph-from-proto.js';
import { freeFixedBatch } from './fixed-batch.js';
import { separateEqualInitializers } from './deduplicated-initializers.js';
import { dropoutSeed, inferenceForm, inferenceNodes, isOnnx, readValues } from './training-mode-nodes.js';
import { OUTPUT_METADATA_KEY, trainedOutput } from './trained-output.js';
import { batchNotFirst } from './input-rows.js';
import { isRecurrent, unrolledRecurrent, unrollProblem } from './recurrent-unrolled.js';
import { opDefinition } from '../ops/index.js';
import { Random } from '../random.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, type DType } from '../tensor.js';
import { INPUT_NAME, OUTPUT_NAME, type BuildOptions, type BuiltGraph, type ModelStructure, type OtherInput, type ParamInfo } from './model.js';

/*
 * The structure of a model another tool wrote (torch.onnx.export, tf2onnx, Optimum): its ONNX graph,
 * kept node for node, made trainable. What this file owns:
 * - the file as PyTorch's model has it: initializers the exporter merged because they start equal
 *   (a fresh network's BatchNorm ones and zeros behind Identity nodes) separated again
 *   (deduplicated-initializers.ts), and a batch size fixed by the export freed where that computes
 *   the same (fixed-batch.ts);
 * - the parameters: float initializers of rank >= 1 that reach the output through inputs gradients
 *   flow into; BatchNormalization's running statistics as non-trainable parameters; everything else
 *   (shape and index initializers, scalar constants, Constant nodes, the Shape→Gather→Concat→Reshape
 *   chains of dynamic shapes, float tensors holding ±∞ or NaN — a causal attention mask's −∞, which
 *   PyTorch registers as a buffer and no step could train) stays as it is;
 * - the shapes: measured, not inferred — the file is run once at two batch sizes with every
 *   intermediate value as an extra output, so ops Kiln has no shape rule for still import, and a
 *   dimension that follows the batch size becomes the symbolic 'N';
 * - the data inputs: the first takes images or vectors (float32) or token ids (int64 / int32); any
 *   others (a text model's attention_mask) are fed as they are, under their step names;
 * - the data adapter: a channels-first model fed from Kiln's channels-last images gets one Transpose in
 *   front, a model that takes raw 0–255 pixels (scale 1, declared or a Keras Rescaling layer at its
 *   input: model/input-rescaling.ts) gets Kiln's [0, 1] data ×255, and a declared per-channel mean/std
 *   is applied after that (torchvision's normalization);
 * - the training form: BatchNormalization computes batch statistics and updates its running ones as
 *   PyTorch's train() does (momentum from the node, unbiased variance for the running estimate);
 * - the constants in fact: values computed from neither the data nor a float initializer and equal at
 *   both measured batch sizes (the exporters' shape arithmetic) become constants, so gradient rules
 *   see static slice bounds and reshape targets;
 * - the saved form: the original file with new initializer values and Kiln's metadata added, every
 *   name, node, opset and other property kept. Opsets 13–18 train; step graphs are written at the
 *   model's opset (17 at least).
 */

/** Metadata key of the declared input preprocessing (layout, mean/std) in a saved model. */
export const PREPROCESSING_METADATA_KEY = 'kiln.preprocessing';

/** How an image model's input is laid out: channels first (PyTorch) or channels last (Keras, TF). */
export type InputLayout = 'nchw' | 'nhwc';

/**
 * A channels-first input's example shape fed channels last: [H, W, C] for an image [C, H, W],
 * [D, H, W, C] for a volume [C, D, H, W], [H, W, 1] for a single-channel image whose channel axis the
 * model leaves out ([H, W]: the rows of PyTorch's MNIST-LSTM tutorials); undefined for an input of
 * another rank (vectors, token ids), which has no channel axis to move.
 */
export function channelsLastShape(own: readonly number[]): number[] | undefined {
  if (own.length === 2) return [...own, 1];
  return own.length === 3 || own.length === 4 ? [...own.slice(1), own[0]!] : undefined;
}

/**
 * What an imported model does to Kiln's channels-last, /255-scaled images before its own graph
 * (`--layout`, `--scale`, `--mean`, `--std`); stored in the saved file under 'kiln.preprocessing'.
 */
export interface Preprocessing {
  /** Layout of the model's own image input; Kiln's data sets are channels-last. */
  layout?: InputLayout;
  /**
   * What the model takes per unit of a 0–255 pixel value, as Keras' Rescaling layer's `scale`: 1/255
   * (the default: pixels in [0, 1], what Kiln's image data sets give and torchvision's ToTensor makes)
   * or 1 (raw pixels: a Keras model with its own Rescaling layer, which is recognized when this is not
   * given). Kiln's [0, 1] data are multiplied by 255 × scale, before mean and std.
   */
  scale?: number;
  /** Per-channel mean subtracted from the scaled data, then divided by std. */
  mean?: number[];
  /** Per-channel standard deviation the centred data is divided by (all > 0). */
  std?: number[];
}

/** The fields of a Preprocessing that are set: merged over stored preprocessing, an undefined field overrides nothing. */
export function definedPreprocessing(p: Preprocessing): Preprocessing {
  const { layout, scale, mean, std } = p;
  return Object.fromEntries(Object.entries({ layout, scale, mean, std }).filter(([, v]) => v !== undefined));
}

/** Whether a value can be a Preprocessing.scale: a finite number above 0. */
export function isPixelScale(scale: unknown): scale is number {
  return typeof scale === 'number' && Number.isFinite(scale) && scale > 0;
}

/** A Preprocessing.scale must be a finite number above 0 (1/255 the default). */
export function checkScale(scale: unknown): void {
  if (scale !== undefined && !isPixelScale(scale)) {
    throw new KilnError('INVALID_ARGUMENT', `--scale must be a number above 0 (1/255 for pixels in [0, 1], 1 for raw 0–255 pixels), got ${JSON.stringify(scale)}`);
  }
}

/** What Kiln's [0, 1] data are multiplied by for a model that takes pixels × `scale` (1 when it takes [0, 1]). */
export function dataFactor(scale: number | undefined): number {
  if (scale === undefined) return 1;
  const factor = 255 * scale;
  // 1/255 as the user writes it (0.00392156862745098) lands within rounding of 1.
  return Math.abs(factor - 1) < 1e-9 ? 1 : factor;
}

/** A node between the weights and the output that Kiln has no gradient rule for. */
export interface UntrainableOp {
  /** Its op type ('Einsum', ...). */
  op: string;
  /** The node's name in the graph. */
  node: string;
  /** Why an op Kiln trains in some forms cannot train in this one (a recurrent layer it cannot unroll). */
  why?: string;
}

/** A node reading a parameter: which input it is, and the node's op, name, attributes and place in the graph. */
export interface ParameterUse {
  /** The parameter's initializer name. */
  parameter: string;
  /** The node's name (exporters name every node; an unnamed one is `#<index>`). */
  node: string;
  /** The node's operator type (Conv, Gemm, MatMul, ...). */
  op: string;
  /** The node's input the parameter arrives at. */
  input: number;
  /** The node's attributes. */
  attrs: Attrs;
  /** The node's index in the graph (nodes are in topological order: lower is nearer the input). */
  order: number;
}

interface ValueInfo {
  dtype: DType;
  shape: Shape;
}

const FLOAT_TYPES: ReadonlySet<DType> = new Set(['float32']);

/**
 * Opsets Kiln trains: from 13 (axes and split sizes as inputs, as Kiln's gradient rules write them) to
 * 18 (Reduce* axes as inputs, Split's num_outputs, Pad's axes); opsets 6–12 are upgraded to 13 as
 * they load (graph/opset-upgrade.ts). Step graphs are written at the model's opset, 17 at least
 * (LayerNormalization), so every imported node keeps its meaning.
 */
const MIN_OPSET = 13;
const MAX_OPSET = 21;
const KILN_OPSET = 17;

/**
 * Names Kiln's training and evaluation graphs give their own values (inputs fed, outputs fetched): an
 * imported value named so is renamed, or the step could not declare them.
 */
const STEP_NAMES = ['output', 'labels', 'lr', 'step', 'loss', 'correct', 'counted', 'predictions', 'grad'];
const STEP_PREFIXES = ['state/', 'new/', 'grad/', 'share/'];

/** An initializer that copies a weight, as `GraphModel.tiedWeights()` lists them. */
export interface TiedWeight {
  /** The copy's initializer name. */
  name: string;
  /** The weight (a parameter) it copies. */
  source: string;
  /** Whether it holds the weight's transpose (a rank-2 copy) rather than the same values. */
  transpose: boolean;
}

/** The name an imported value asks for: its own, unless that is one of Kiln's step names (then prefixed). */
function importedName(name: string): string {
  const ours = STEP_NAMES.includes(name) || STEP_PREFIXES.some((p) => name.startsWith(p));
  return ours ? `model/${name}` : name;
}

export class ImportedGraph implements ModelStructure {
  readonly inputShape: number[];
  readonly outputShape: number[];
  /** The model's own input: name and per-example shape. */
  readonly modelInput: { name: string; shape: number[] };
  /** What the data input holds: float32 (images, vectors) or int64 / int32 (token ids of a text model). */
  readonly inputDtype: DType;
  /** The graph's data inputs after the first (an attention mask), each fed as itself. */
  readonly otherInputs: readonly OtherInput[];
  readonly modelOutput: { name: string; shape: number[] };
  /** Whether the graph ends in Softmax (it outputs probabilities; the training step cuts it off). */
  readonly endsInSoftmax: boolean;
  /** The axis (batch axis 0) the final Softmax is over: its classes (the last, or 1 of a segmentation model's [N, C, H, W]). */
  readonly softmaxAxis: number | undefined;
  /** The Softmax's input, when the graph ends in one (through Identity nodes exporters add). */
  private readonly logitsName: string | undefined;
  private readonly params: ParamInfo[];
  private readonly constants = new Map<string, Tensor>();
  /**
   * Initializers that are copies of a parameter, by name: its transpose, under a name the exporter's
   * constant folding gave (`initializerFacts`) — a tied weight written twice
   * (GPT-2's head, embed.weight.T). They follow the parameter rather than train apart from it, as in PyTorch.
   */
  private readonly tied = new Map<string, { source: string; transpose: boolean }>();
  /** BatchNormalization running statistics among the parameters (updated by training, never trained). */
  private readonly statistics = new Set<string>();
  private readonly nodes: { proto: NodeProto; attrs: Attrs }[];
  /** The node computing each value, by value name. */
  private readonly producers = new Map<string, { proto: NodeProto; attrs: Attrs }>();
  private readonly values: Map<string, ValueInfo>;
  /** Values some node reads or the graph outputs (an inference form keeps them). */
  private readonly read: ReadonlySet<string>;

  private constructor(
    readonly proto: ModelProto,
    readonly file: string,
    values: Map<string, ValueInfo>,
    /** Values that are constants in fact (shape arithmetic, Constant nodes), measured: see foldConstants. */
    private readonly folded: ReadonlyMap<string, Tensor>,
    readonly preprocessing: Preprocessing,
    /** The model's ai.onnx opset, which its step graphs are written at (17 at least). */
    readonly opset: number,
    /** Which parameters train (transfer learning); the rest keep their values. Default: all. */
    readonly trains: ((name: string) => boolean) | null = null,
    /** The graph output trained, evaluated and predicted (the first, unless chosen). */
    output: string = proto.graph!.output![0]!.name ?? '',
  ) {
    const g = proto.graph!;
    this.values = values;
    this.nodes = (g.node ?? []).map((n) => ({ proto: n, attrs: nodeAttributes(n, `'${file}'`) }));
    for (const n of this.nodes) for (const o of n.proto.output ?? []) if (o) this.producers.set(o, n);
    this.read = readValues(g.node ?? [], (g.output ?? []).map((o) => o.name ?? ''));
    const inputs = realInputs(proto);
    const input = inputs[0]!;
    const modelInputShape = values.get(input)!.shape.slice(1) as number[];
    this.modelInput = { name: input, shape: modelInputShape };
    this.inputDtype = values.get(input)!.dtype;
    this.otherInputs = inputs.slice(1).map((name) => ({ name, stepName: `${INPUT_NAME}/${name}`, shape: values.get(name)!.shape.slice(1) as number[], dtype: values.get(name)!.dtype }));
    const outName = output;
    const outDtype = values.get(outName)?.dtype;
    if (outDtype !== undefined && outDtype !== 'float32') {
      // An argmax's class or a flag: nothing a loss can differentiate; the file still runs.
      const floats = (g.output ?? []).map((o) => o.name ?? '').filter((o) => values.get(o)?.dtype === 'float32');
      const hint = floats.length > 0 ? ` (its float outputs: ${floats.map((o) => `'${o}'`).join(', ')}; --model-output / { output } names the one to train)` : '';
      throw new KilnError('INVALID_ARGUMENT', `'${file}': output '${outName}' is ${outDtype}: Kiln trains a float32 output (logits or scores)${hint}`);
    }
    this.modelOutput = { name: outName, shape: (values.get(outName)?.shape ?? []).slice(1).map((d) => (typeof d === 'number' ? d : -1)) };
    this.outputShape = this.modelOutput.shape;
    this.inputShape = (preprocessing.layout === 'nchw' && channelsLastShape(modelInputShape)) || modelInputShape;
    const rank = values.get(outName)?.shape.length ?? 0;
    const softmax = rank >= 2 ? finalSoftmax(outName, (v) => this.producers.get(v)?.proto, rank) : undefined;
    this.logitsName = softmax?.logits;
    this.softmaxAxis = softmax?.axis;
    this.endsInSoftmax = this.logitsName !== undefined;
    this.params = this.findParams();
  }

  /**
   * Reads a foreign model: checks what Kiln can train, measures every value's shape with ONNX Runtime
   * and finds the parameters. `preprocessing.layout` (when set) says how the model's image input is
   * laid out; otherwise the model is fed as its input is declared until `withLayout` says otherwise.
   */
  static async open(given: ModelProto, file: string, runtime: Runtime, preprocessing: Preprocessing = {}, dimensions: Readonly<Record<string, number>> = {}, output?: string): Promise<ImportedGraph> {
    let proto = await freeFixedBatch(separateEqualInitializers(withFreeDimensions(given, dimensions, file)), file, runtime);
    let opset = defaultOpset(proto);
    if (opset < OLDEST_UPGRADABLE_OPSET || opset > MAX_OPSET) {
      const remedy = opset > MAX_OPSET ? `export it again with opset_version ${MAX_OPSET} or lower` : `convert it to opset ${UPGRADED_OPSET} or later with onnx.version_converter`;
      throw new KilnError('UNSUPPORTED_OP', `'${file}' uses ONNX opset ${opset}; Kiln trains models of opsets ${OLDEST_UPGRADABLE_OPSET} to ${MAX_OPSET} (those before ${MIN_OPSET} upgraded to ${UPGRADED_OPSET} as they load): ${remedy}`);
    }
    if (opset < MIN_OPSET) {
      // The upgrade needs some values' ranks and types (Softmax's input, Clip's bounds): measured on
      // the file as it is, which ONNX Runtime runs at its own opset — or, where it has no kernels for
      // the file's operators (opset 6's Add, say), as Kiln's shape rules give them.
      let describe: (name: string) => { rank: number; dtype: DType } | undefined;
      try {
        const measured = await measureValues(proto, declaredInputs(proto, file), runtime, file);
        describe = (name) => {
          const v = measured.values.get(name);
          return v && { rank: v.shape.length, dtype: v.dtype };
        };
      } catch (err) {
        if (!(err instanceof KilnError && /does not load in ONNX Runtime/.test(err.message))) throw err;
        describe = describedByShapeRules(proto);
      }
      proto = upgradeOpset(proto, { file, describe });
      opset = UPGRADED_OPSET;
    }
    refuseWeightsAsInputs(proto, file);
    const inputs = declaredInputs(proto, file);
    let measured: Awaited<ReturnType<typeof measureValues>>;
    try {
      measured = await measureValues(proto, inputs, runtime, file);
    } catch (err) {
      // A graph that does not run at the sizes given (a position table shorter than the length) says so.
      if (Object.keys(dimensions).length > 0 && err instanceof KilnError) throw notAtSizes(file, dimensions, err);
      throw err;
    }
    const { values, samples } = measured;
    const chosen = trainedOutput(proto, file, output);
    const graph = new ImportedGraph(proto, file, values, foldConstants(proto, inputs.map((i) => i.name), samples), {}, Math.max(opset, KILN_OPSET), null, chosen);
    return graph.withPreprocessing(preprocessing);
  }

  /** The same graph fed through another layout or normalization (no new measurement needed). */
  withPreprocessing(given: Preprocessing): ImportedGraph {
    const own = this.modelInput.shape;
    const image = channelsLastShape(own) !== undefined;
    if (this.inputDtype !== 'float32' && (given.layout !== undefined || given.scale !== undefined || given.mean !== undefined || given.std !== undefined)) {
      throw new KilnError('INVALID_ARGUMENT', `'${this.file}': input '${this.modelInput.name}' takes ${this.inputDtype} token ids: a layout, --scale or --mean/--std applies to image and vector inputs only`);
    }
    checkScale(given.scale);
    if (given.layout !== undefined && given.layout !== 'nchw' && given.layout !== 'nhwc') {
      throw new KilnError('INVALID_ARGUMENT', `layout must be 'nchw' or 'nhwc', got ${JSON.stringify(given.layout)}`);
    }
    if (given.layout && !image) {
      throw new KilnError('INVALID_SHAPE', `'${this.file}': layout ${given.layout} needs an image input [batch, C, H, W] or [batch, H, W, C] (or a volume [batch, C, D, H, W] or [batch, D, H, W, C]), the model's is ${formatShape([null, ...own])}`);
    }
    const preprocessing = { ...given };
    const counts = [given.mean?.length, given.std?.length].filter((n): n is number => n !== undefined && n > 1);
    if (image && counts.length > 0 && !preprocessing.layout) {
      // Per-channel values need the channel axis: the end of the input that has that many channels.
      const [first, last] = [own[0], own.at(-1)];
      if (counts.every((n) => n === first) && !counts.every((n) => n === last)) preprocessing.layout = 'nchw';
      else if (counts.every((n) => n === last) && !counts.every((n) => n === first)) preprocessing.layout = 'nhwc';
      else {
        throw new KilnError('INVALID_ARGUMENT', `per-channel --mean/--std for input ${formatShape([null, ...own])}: say which axis holds the channels with --layout nchw (channels first) or --layout nhwc (channels last)`);
      }
    }
    // An image [H, W] has one channel, left out.
    const channels = own.length === 2 && preprocessing.layout !== 'nhwc' ? 1 : !image || preprocessing.layout === 'nhwc' ? own.at(-1) : own[0];
    for (const key of ['mean', 'std'] as const) {
      const v = preprocessing[key];
      if (v === undefined) continue;
      if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
        throw new KilnError('INVALID_ARGUMENT', `--${key} must be finite numbers, got ${JSON.stringify(v)}`);
      }
      if (v.length !== 1 && v.length !== channels) {
        throw new KilnError('INVALID_ARGUMENT', `--${key} has ${v.length} values; the model's input ${formatShape([null, ...own])} has ${channels} channels (give ${channels} values, or one for all; --layout says which axis holds them)`);
      }
      if (key === 'std' && v.some((s) => !(s > 0))) throw new KilnError('INVALID_ARGUMENT', `--std values must be > 0, got ${v.join(', ')}`);
    }
    return new ImportedGraph(this.proto, this.file, this.values, this.folded, preprocessing, this.opset, this.trains, this.modelOutput.name);
  }

  /** The same graph training only the parameters `trains` accepts (null: all of them). */
  withTrainable(trains: ((name: string) => boolean) | null): ImportedGraph {
    return new ImportedGraph(this.proto, this.file, this.values, this.folded, this.preprocessing, this.opset, trains, this.modelOutput.name);
  }

  /** Every value computed from `name` (directly or not). */
  valuesAfter(name: string): Set<string> {
    const after = new Set<string>([name]);
    for (const { proto: n } of this.nodes) if ((n.input ?? []).some((i) => after.has(i))) for (const o of n.output ?? []) if (o) after.add(o);
    after.delete(name);
    return after;
  }

  /**
   * Every node reading a parameter, directly or through Identity nodes (PyTorch's exporter puts equal
   * initializers behind Identity), in graph order: what the parameter is to the graph (a Conv's kernel,
   * a Gemm's weight or bias, a BatchNormalization's statistic).
   */
  parameterUses(): ParameterUse[] {
    const origin = new Map<string, string>(this.params.map((p) => [p.name, p.name]));
    const uses: ParameterUse[] = [];
    this.nodes.forEach(({ proto: n, attrs }, order) => {
      if (n.opType === 'Identity' && (!n.domain || n.domain === 'ai.onnx') && origin.has(n.input?.[0] ?? '')) {
        origin.set(n.output![0]!, origin.get(n.input![0]!)!);
        return;
      }
      (n.input ?? []).forEach((name, input) => {
        const parameter = origin.get(name);
        if (parameter) uses.push({ parameter, node: n.name || `#${order}`, op: n.domain ? `${n.domain}.${n.opType}` : (n.opType ?? '?'), input, attrs, order });
      });
    });
    return uses;
  }

  paramInfos(): ParamInfo[] {
    return this.params;
  }

  /** The initializers that are copies of a parameter (tied weights), each with the parameter it follows. */
  tiedWeights(): TiedWeight[] {
    return [...this.tied].map(([name, t]) => ({ name, ...t }));
  }

  /** The initial weights: every parameter's initializer, decoded. */
  initialWeights(): Map<string, Tensor> {
    const byName = new Map((this.proto.graph!.initializer ?? []).map((t) => [t.name ?? '', t]));
    return new Map(this.params.map((p) => [p.name, tensorFromProto(byName.get(p.name)!)]));
  }

  /**
   * Every op on a path from a trainable parameter to the output that has no gradient rule in Kiln:
   * what stops the model from training (empty when it trains).
   */
  untrainableOps(): UntrainableOp[] {
    const onPath = this.pathNodes();
    return this.nodes
      .filter((n, k) => onPath.has(k) && !this.trainingForm(n.proto) && !this.unrolls(n.proto, n.attrs) && !opDefinition(n.proto.opType ?? '')?.gradient)
      .map((n) => {
        const problem = isRecurrent(n.proto) ? unrollProblem(n.proto, n.attrs, this.sequenceLength(n.proto, n.attrs)) : undefined;
        return {
          op: n.proto.domain ? `${n.proto.domain}.${n.proto.opType}` : (n.proto.opType ?? '?'),
          node: n.proto.name || '(unnamed)',
          ...(problem ? { why: `Kiln trains it unrolled over its steps, and cannot unroll one with ${problem}` } : {}),
        };
      });
  }

  /**
   * The classifier's last layer: the Gemm or MatMul nearest the output (through Softmax, Identity,
   * Flatten, Reshape and a bias Add), with its weight initializer, its bias and whether the weight is
   * stored [classes, features] (Gemm transB=1, as nn.Linear exports) or [features, classes]. The output
   * is a class vector [N, classes], or a class vector per token [N, T, classes] (a token classifier's
   * Linear on every position, exported as MatMul and Add).
   */
  classifierHead(): { weight: string; bias?: string; transposed: boolean } {
    if (this.outputShape.length !== 1 && this.outputShape.length !== 2) {
      throw new KilnError(
        'INVALID_ARGUMENT',
        `'${this.file}': output '${this.modelOutput.name}' has shape ${formatShape(['N', ...this.outputShape])}, not a class vector [N, classes] or one per token [N, T, classes]: there is no classifier head to replace`,
      );
    }
    const found = this.headSearch();
    if (found.tied) {
      const tie = this.tied.get(found.tied)!;
      throw new KilnError('INVALID_ARGUMENT', `'${this.file}': the head's weight '${found.tied}' is tied to '${tie.source}' (the exporter's copy of it${tie.transpose ? ', transposed' : ''}, as a language model's head is its token embedding): a new head would untie them, which is not built`);
    }
    if (found.head) return this.headOfClasses(found.head);
    throw new KilnError('INVALID_ARGUMENT', `'${this.file}': no Gemm or MatMul with a trainable weight feeds output '${this.modelOutput.name}' directly: there is no classifier head to replace`);
  }

  /** The tied copy that is the head's weight (a language model's head, its embedding transposed), if it is one. */
  tiedHead(): string | undefined {
    return this.headSearch().tied;
  }

  /** The Gemm or MatMul nearest the output, walking back through Softmax, Identity, Flatten, Reshape and a bias Add. */
  private headSearch(): { head?: { weight: string; bias?: string; transposed: boolean }; tied?: string } {
    // Any float weight qualifies, frozen or not (trainOnly must not hide the head).
    const isParam = (name: string | undefined) => !!name && this.params.some((p) => p.name === name && !this.statistics.has(p.name));
    let value = this.modelOutput.name;
    let bias: string | undefined;
    for (let entry = this.producers.get(value); entry; entry = this.producers.get(value)) {
      const n = entry.proto;
      const [a, b, c] = n.input ?? [];
      if (['Gemm', 'MatMul'].includes(n.opType ?? '') && this.tied.has(b ?? '')) return { tied: b! };
      if (n.opType === 'Gemm' && isParam(b)) return { head: { weight: b!, bias: isParam(c) ? c : undefined, transposed: entry.attrs.transB === 1 } };
      if (n.opType === 'MatMul' && isParam(b)) return { head: { weight: b!, bias, transposed: false } };
      if (n.opType === 'Add' && isParam(b) && !bias) bias = b;
      else if (n.opType === 'Add' && isParam(a) && !bias) bias = a;
      else if (!['Softmax', 'LogSoftmax', 'Identity', 'Flatten', 'Reshape'].includes(n.opType ?? '')) break;
      value = n.opType === 'Add' && isParam(a) ? b! : a!;
    }
    return {};
  }

  /** The head found, if its class count is the output's last axis (a MatMul mixing positions is no head). */
  private headOfClasses(head: { weight: string; bias?: string; transposed: boolean }): { weight: string; bias?: string; transposed: boolean } {
    const shape = this.params.find((p) => p.name === head.weight)!.spec.shape;
    const classes = head.transposed ? shape[0] : shape.at(-1);
    if (shape.length !== 2 || classes !== this.outputShape.at(-1)) {
      throw new KilnError('INVALID_ARGUMENT', `'${this.file}': the weight '${head.weight}' ${formatShape(shape)} nearest output '${this.modelOutput.name}' ${formatShape(['N', ...this.outputShape])} does not make its ${this.outputShape.at(-1)} classes: there is no classifier head to replace`);
    }
    return head;
  }

  /**
   * Ops Kiln rewrites for training rather than differentiating as written: BatchNormalization, unless
   * its scale and bias are frozen — then it runs as exported, with its running statistics, as a frozen
   * BatchNormalization layer does in Keras (and a frozen backbone in eval() mode in PyTorch).
   */
  private trainingForm(n: NodeProto): boolean {
    if (n.opType !== 'BatchNormalization' || (n.domain && n.domain !== 'ai.onnx')) return false;
    return !this.trains || [1, 2].some((k) => !!n.input?.[k] && this.trains!(n.input[k]!));
  }

  /** The sequence length a recurrent node runs over (measured), or undefined where it is symbolic. */
  private sequenceLength(n: NodeProto, attrs: Attrs): number | undefined {
    const d = this.values.get(n.input?.[0] ?? '')?.shape[attrs.layout === 1 ? 1 : 0];
    return typeof d === 'number' ? d : undefined;
  }

  /** Whether a recurrent node (LSTM, GRU) trains unrolled over its steps (recurrent-unrolled.ts). */
  private unrolls(n: NodeProto, attrs: Attrs): boolean {
    return isRecurrent(n) && unrollProblem(n, attrs, this.sequenceLength(n, attrs)) === undefined;
  }

  /** Indices of the nodes between the trainable parameters and the output. */
  private pathNodes(): Set<number> {
    const trainable = new Set(this.params.filter((p) => p.spec.trainable).map((p) => p.name));
    // A tied copy carries its weight's gradient: what reads it is on the path too.
    for (const [copy, { source }] of this.tied) if (trainable.has(source)) trainable.add(copy);
    const fromParam = new Set(trainable);
    const out = new Set<number>();
    this.nodes.forEach((n, k) => {
      if (differentiableInputs(n.proto).some((i) => fromParam.has(i))) {
        out.add(k);
        for (const o of n.proto.output ?? []) if (o) fromParam.add(o);
      }
    });
    const toOutput = this.reachingOutput();
    for (const k of [...out]) if (!(this.nodes[k]!.proto.output ?? []).some((o) => toOutput.has(o))) out.delete(k);
    return out;
  }

  /** Values the output depends on through inputs a gradient flows into. */
  private reachingOutput(): Set<string> {
    const needed = new Set<string>([this.modelOutput.name]);
    for (let k = this.nodes.length - 1; k >= 0; k--) {
      const n = this.nodes[k]!.proto;
      if ((n.output ?? []).some((o) => needed.has(o))) for (const i of differentiableInputs(n)) needed.add(i);
    }
    return needed;
  }

  private findParams(): ParamInfo[] {
    const needed = this.reachingOutput();
    const stats = new Set<string>();
    for (const { proto: n } of this.nodes) {
      if (this.trainingForm(n)) for (const k of [3, 4]) if (n.input?.[k]) stats.add(n.input[k]!);
    }
    const params: ParamInfo[] = [];
    const facts = initializerFacts(this.proto);
    const isWeight = (name: string) => needed.has(name) && facts.floats.has(name) && !facts.nonFinite.has(name) && !stats.has(name);
    for (const t of this.proto.graph!.initializer ?? []) {
      const name = t.name ?? '';
      const shape = (t.dims ?? []).map(Number);
      if (facts.floats.has(name) && stats.has(name)) {
        this.statistics.add(name);
        params.push({ name, spec: { name, shape, initializer: 'zeros', trainable: false } });
      } else if (isWeight(name)) {
        const copy = facts.tied.get(name);
        if (copy && isWeight(copy.source)) {
          this.tied.set(name, copy);
          continue;
        }
        params.push({ name, spec: { name, shape, initializer: 'zeros', trainable: !this.trains || this.trains(name) } });
      } else {
        this.constants.set(name, tensorFromProto(t));
      }
    }
    return params;
  }

  buildGraph(weights: ReadonlyMap<string, Tensor>, options: BuildOptions = {}): BuiltGraph {
    const training = options.training ?? false;
    const paramsAsInputs = options.paramsAsInputs ?? training;
    const graph = options.graph ?? new Graph(this.proto.graph!.name || 'model');
    const updates = new Map<string, Value>();
    const input = graph.input(INPUT_NAME, this.inputDtype, [options.batchSize ?? 'N', ...this.inputShape]);
    // Original value name → the value standing for it in this graph.
    const names = new Map<string, string>([[this.modelInput.name, this.adaptInput(graph, input).name]]);
    for (const other of this.otherInputs) names.set(other.name, graph.input(other.stepName, other.dtype, [options.batchSize ?? 'N', ...other.shape]).name);
    const params: ParamInfo[] = [];
    for (const info of this.params) {
      const t = weights.get(info.name)!;
      const v = options.paramValue
        ? options.paramValue(graph, info)
        : paramsAsInputs
          ? graph.input(graph.uniqueName(importedName(info.name)), 'float32', [...t.shape])
          : graph.initializer(graph.uniqueName(importedName(info.name)), t);
      names.set(info.name, v.name);
      params.push(info);
    }
    // A tied copy is its parameter (transposed): gradients of both uses add up in the parameter.
    for (const [name, { source, transpose }] of this.tied) {
      const value = graph.value(names.get(source)!);
      names.set(name, transpose ? graph.op1('Transpose', [value], { perm: [1, 0] }, importedName(name)).name : value.name);
    }
    // A model's weights include statistics a frozen BatchNormalization now reads as constants.
    for (const [name, t] of this.constants) names.set(name, graph.initializer(graph.uniqueName(importedName(name)), weights.get(name) ?? t).name);
    for (const [k, { proto: n, attrs: fileAttrs }] of this.nodes.entries()) {
      const outputs = (n.output ?? []).filter((o) => o !== '');
      if (outputs.length > 0 && outputs.every((o) => this.folded.has(o))) {
        for (const o of outputs) names.set(o, graph.initializer(graph.uniqueName(importedName(o)), this.folded.get(o)!).name);
        continue;
      }
      if (training && this.trainingForm(n)) {
        const inputs = (n.input ?? []).map((i) => (i === '' ? '' : names.get(i)!));
        const y = batchNormalizationTraining(graph, n, fileAttrs, inputs, updates, this.params, this.opset);
        names.set(n.output![0]!, y.name);
        continue;
      }
      if (training && this.unrolls(n, fileAttrs)) {
        // Unrolled over its steps, so backpropagation through time is autodiff over ops with rules.
        const inputs = (n.input ?? []).map((i) => (i === '' ? '' : names.get(i)!));
        const made = unrolledRecurrent(graph, n, fileAttrs, inputs, this.sequenceLength(n, fileAttrs));
        (n.output ?? []).forEach((o, i) => {
          if (o && made[i]) names.set(o, made[i]!.name);
        });
        continue;
      }
      // Dropout drops units in training and passes its input in inference, as model.train() and model.eval() do.
      const dropping = training && n.opType === 'Dropout' && isOnnx(n);
      const form = dropping ? undefined : inferenceForm(n, fileAttrs, this.read);
      let attrs = form?.attrs ?? fileAttrs;
      let inputs = (form?.inputs ?? n.input ?? []).map((i) => (i === '' ? '' : names.get(i)!));
      if (dropping) {
        const ratio = inputs[1] || graph.scalar(0.5).name;
        inputs = [inputs[0]!, ratio, graph.constant(new Tensor(Uint8Array.of(1), [], 'bool'), 'training_mode').name];
        attrs = { ...fileAttrs, seed: typeof fileAttrs.seed === 'number' ? fileAttrs.seed : dropoutSeed(options.seed ?? 42, k) };
      }
      const outs = (form?.outputs ?? n.output ?? []).map((o) => (o === '' ? { name: '', dtype: 'float32' as DType, shape: null } : { name: importedName(o), ...this.values.get(o)! }));
      const made = graph.importNode(n.opType ?? '', inputs, attrs, outs, { name: n.name ?? undefined, domain: n.domain || '' });
      let next = 0;
      for (const o of form?.outputs ?? n.output ?? []) if (o) names.set(o, made[next++]!.name);
    }
    let out = graph.value(names.get(this.modelOutput.name)!);
    if (options.logits && this.logitsName) out = graph.value(names.get(this.logitsName)!);
    const output = graph.output(out, OUTPUT_NAME);
    return { graph, input, output, params, updates };
  }

  /** Kiln's data [N, ...inputShape] as the model's input: layout, then scale, then mean/std. */
  private adaptInput(graph: Graph, input: Value): Value {
    const { layout, scale, mean, std } = this.preprocessing;
    const rank = this.modelInput.shape.length + 1;
    // [N, ..., C] → [N, C, ...]: [0, 3, 1, 2] for images, [0, 4, 1, 2, 3] for volumes.
    const perm = [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
    // An image [H, W] fed [H, W, 1] loses its channel axis instead.
    let x =
      layout !== 'nchw' ? input : rank === 3 ? graph.op1('Squeeze', [input, graph.int64s([3])], {}, 'drop_channel_axis') : graph.op1('Transpose', [input], { perm }, 'to_channels_first');
    const channelAxis = layout === 'nhwc' ? rank - 1 : 1;
    const perChannel = (v: number[]) => {
      const shape = Array.from({ length: rank }, (_, i) => (i === channelAxis ? v.length : 1));
      return graph.constant(new Tensor(Float32Array.from(v), shape, 'float32'), 'preprocess');
    };
    const factor = dataFactor(scale);
    if (factor !== 1) x = graph.op1('Mul', [x, graph.constant(new Tensor(Float32Array.of(factor), [], 'float32'), 'pixel_scale')], {}, 'scale_pixels');
    if (mean) x = graph.op1('Sub', [x, perChannel(mean)], {}, 'subtract_mean');
    if (std) x = graph.op1('Div', [x, perChannel(std)], {}, 'divide_std');
    return x;
  }

  /** The original file with these weights and metadata added (or updated): a drop-in replacement. */
  toOnnx(weights: ReadonlyMap<string, Tensor>, metadata: ReadonlyMap<string, string>): Uint8Array {
    const g = this.proto.graph!;
    const initializer = (g.initializer ?? []).map((t) => {
      const copy = this.tied.get(t.name ?? '');
      // A tied copy is written from its parameter's values, as the exporter wrote it.
      const w = copy ? tiedValue(weights.get(copy.source), copy.transpose) : weights.get(t.name ?? '');
      return w ? tensorToProto(t.name ?? '', w) : t;
    });
    const props = new Map((this.proto.metadataProps ?? []).map((m) => [m.key ?? '', m.value ?? '']));
    for (const [k, v] of metadata) props.set(k, v);
    // Which of several outputs the model trains, so the saved file reloads training the same one.
    if ((g.output ?? []).length > 1) props.set(OUTPUT_METADATA_KEY, this.modelOutput.name);
    else props.delete(OUTPUT_METADATA_KEY);
    // The preprocessing the model has now (an emptied one must not leave the file's old entry behind).
    if (Object.values(this.preprocessing).some((v) => v !== undefined)) props.set(PREPROCESSING_METADATA_KEY, JSON.stringify(this.preprocessing));
    else props.delete(PREPROCESSING_METADATA_KEY);
    // Saved as model.eval() runs: a file exported in training mode is served with running statistics and no dropout.
    const attrs = new Map(this.nodes.map((m) => [m.proto, m.attrs]));
    const outputs = (g.output ?? []).map((o) => o.name ?? '');
    const node = inferenceNodes(g.node ?? [], outputs, (n) => attrs.get(n)!);
    // A Dropout's training_mode flag that nothing reads any more goes with it (ONNX Runtime warns of unused initializers).
    const before = readValues(g.node ?? [], outputs);
    const after = readValues(node, outputs);
    const dropped = new Set(initializer.filter((t) => !after.has(t.name ?? '') && before.has(t.name ?? '')).map((t) => t.name));
    // Older exports list initializers among the graph inputs too: a dropped one leaves both.
    const input = (g.input ?? []).filter((i) => !dropped.has(i.name));
    return encodeModel({
      ...this.proto,
      graph: { ...g, node, input, initializer: initializer.filter((t) => !dropped.has(t.name)) },
      metadataProps: [...props].map(([key, value]) => ({ key, value })),
    });
  }

  inferenceOnnx(weights: ReadonlyMap<string, Tensor>): Uint8Array {
    const { graph } = this.buildGraph(weights);
    return encodeModel(stepModel(graph, this.proto, this.opset));
  }
}

/**
 * The Softmax a graph's output of `rank` ends in (through Identity nodes exporters add), over any axis
 * but the batch's: its input — the logits, which a cross-entropy from logits and temperature-scaled
 * distillation need — and its axis, counted from 0 with the batch axis: the last for a classifier
 * ([N, classes]) or token classifier ([N, T, classes]), 1 for a segmentation model's [N, classes, H, W].
 * Undefined when the output is no Softmax's. `producerOf` gives the node computing a value (by default
 * looked up in `proto`'s graph).
 */
export function finalSoftmax(output: string, producerOf: ModelProto | ((value: string) => NodeProto | undefined), rank: number): { logits: string; axis: number } | undefined {
  let lookup = producerOf;
  if (typeof lookup !== 'function') {
    const producers = new Map<string, NodeProto>();
    for (const n of lookup.graph?.node ?? []) for (const o of n.output ?? []) if (o) producers.set(o, n);
    lookup = (v) => producers.get(v);
  }
  let value = output;
  for (;;) {
    const n = lookup(value);
    if (!n || (n.domain && n.domain !== 'ai.onnx')) return undefined;
    if (n.opType === 'Identity') value = n.input![0]!;
    else if (n.opType === 'Softmax') {
      // No axis: −1 from opset 13, 1 before it (the same axis of [N, classes]; files of more axes are upgraded).
      const given = nodeAttributes(n).axis;
      const axis = given === undefined ? rank - 1 : Number(given) < 0 ? rank + Number(given) : Number(given);
      return axis >= 1 && axis < rank ? { logits: n.input![0]!, axis } : undefined;
    } else return undefined;
  }
}

/** A graph built from an imported model as a model proto, with the model's opset imports. */
export function stepModel(graph: Graph, original: ModelProto, opset: number): ModelProto {
  const proto = modelToProto(graph, {}, opset);
  const others = (original.opsetImport ?? []).filter((o) => o.domain && o.domain !== 'ai.onnx');
  proto.opsetImport = [...proto.opsetImport!, ...others];
  return proto;
}

/**
 * BatchNormalization as PyTorch's train() runs it: normalized with the batch's mean and (biased)
 * variance; the running statistics move by ONNX's momentum m as running = m·running + (1 − m)·batch,
 * with the unbiased variance (n/(n − 1)), which is what torch.nn.BatchNorm does.
 */
function batchNormalizationTraining(graph: Graph, n: NodeProto, attrs: Attrs, inputs: string[], updates: Map<string, Value>, params: ParamInfo[], opset: number): Value {
  const [x, scale, bias, runningMean, runningVar] = inputs.map((i) => graph.value(i)) as [Value, Value, Value, Value, Value];
  const eps = typeof attrs.epsilon === 'number' ? attrs.epsilon : 1e-5;
  const momentum = typeof attrs.momentum === 'number' ? attrs.momentum : 0.9;
  const rank = x.shape!.length;
  const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  const channelShape = graph.int64s([1, -1, ...Array(rank - 2).fill(1)], 'shape');
  // ReduceMean takes its axes as an attribute before opset 18 and as an input from 18.
  const reduceMean = (v: Value) => (opset >= 18 ? graph.op1('ReduceMean', [v, graph.int64s(axes, 'axes')], { keepdims: 0 }) : graph.op1('ReduceMean', [v], { axes, keepdims: 0 }));
  const mean = reduceMean(x); // [C]
  const centered = graph.op1('Sub', [x, graph.op1('Reshape', [mean, channelShape])]);
  const variance = reduceMean(graph.op1('Mul', [centered, centered]));
  // The normalization itself is one inference-form BatchNormalization over the batch's statistics (one
  // fused kernel instead of four full-size ops); its gradient rule sees that they are x's own and
  // takes the whole gradient through them (src/ops/normalization.ts).
  const y = graph.op1('BatchNormalization', [x, scale, bias, mean, variance], { epsilon: eps }, n.name || 'batch_norm');
  // n = elements per channel in the batch, read at run time (the batch size is symbolic).
  const count = graph.op1('Cast', [graph.op1('Div', [graph.op1('Size', [x]), graph.op1('Shape', [x], { start: 1, end: 2 })])], { to: 1 });
  const unbiased = graph.op1('Div', [count, graph.op1('Sub', [count, graph.scalar(1)])]);
  const flat = graph.int64s([-1], 'shape');
  const blend = (running: Value, batch: Value) =>
    graph.op1('Add', [graph.op1('Mul', [running, graph.scalar(momentum)]), graph.op1('Mul', [graph.op1('Reshape', [batch, flat]), graph.scalar(1 - momentum)])]);
  const statName = (k: number) => params.find((p) => p.name === n.input![k])?.name;
  const meanName = statName(3);
  const varName = statName(4);
  if (meanName) updates.set(meanName, blend(runningMean, mean));
  if (varName) updates.set(varName, blend(runningVar, graph.op1('Mul', [variance, unbiased])));
  return y;
}

/** The inputs of a node that a gradient flows into (all of them for an op Kiln does not know). */
function differentiableInputs(n: NodeProto): string[] {
  const skip = opDefinition(n.opType ?? '')?.nonDifferentiableInputs ?? [];
  return (n.input ?? []).filter((name, k) => name !== '' && !skip.includes(k));
}

/**
 * The data input's element type, where Kiln can feed it: float32 (images, vectors) or int64 / int32
 * token ids (a text model's embedding lookup, fed from integer data such as an .npy file).
 */
function dataInputDtype(elemType: number, input: string, file: string): DType {
  const dtype = dtypeOfCode(elemType);
  if (dtype === 'float32' || dtype === 'int64' || dtype === 'int32') return dtype;
  throw new KilnError('INVALID_ARGUMENT', `'${file}': input '${input}' is ${dtypeName(elemType)}: Kiln feeds float32 data (images, vectors) or int64 / int32 token ids`);
}

/** Where an op reads a weight: every input from the second on. */
const WEIGHT_READERS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'BatchNormalization', 'InstanceNormalization', 'LayerNormalization', 'PRelu']);

/**
 * A file whose weights are graph inputs instead of initializers (torch.onnx.export(...,
 * export_params=False)) has nothing to train or run: refused by name rather than as inputs to feed.
 */
function refuseWeightsAsInputs(proto: ModelProto, file: string): void {
  const g = proto.graph!;
  if ((g.initializer ?? []).some((t) => (t.dataType === 1 || t.dataType === 11) && (t.dims ?? []).length > 0)) return;
  const inputs = new Set(dataInputs(g).map((i) => i.name ?? ''));
  const asWeights = new Set<string>();
  for (const n of g.node ?? []) {
    if (!WEIGHT_READERS.has(n.opType ?? '') || !isOnnx(n)) continue;
    for (const i of (n.input ?? []).slice(1)) if (inputs.has(i)) asWeights.add(i);
  }
  if (asWeights.size === 0) return;
  const names = [...asWeights];
  throw new KilnError(
    'INVALID_ARGUMENT',
    `'${file}' stores no weights: its inputs ${names.slice(0, 5).map((n) => `'${n}'`).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''} are read as weights (exported with export_params=False?); export it again with export_params=True, torch.onnx.export's default, so the file holds them`,
  );
}

/** A data input as the file declares it: name, element type, and its sizes after the batch's. */
interface DeclaredInput {
  name: string;
  dtype: DType;
  example: number[];
}

/** Metadata of a file whose free dimensions were given sizes (JSON, by name): the sizes it was made at. */
export const DIMENSIONS_METADATA_KEY = 'kiln.dimensions';

/**
 * The model with its free (symbolic) input dimensions set to the sizes given by name, as ONNX Runtime's
 * freeDimensionOverrides set them: a Hugging Face export's 'sequence' axis, say. The batch axis stays
 * free. Each name must be a free dimension of an input past axis 0, or one a file Kiln saved was made
 * at with that same size (DIMENSIONS_METADATA_KEY). The model is then measured, trained and saved at
 * those sizes (its graph's constants, such as a position-embedding slice, are folded for them).
 */
export function withFreeDimensions(proto: ModelProto, dimensions: Readonly<Record<string, number>>, file: string): ModelProto {
  const names = Object.keys(dimensions);
  if (names.length === 0) return proto;
  let made: Record<string, number> = {};
  try {
    made = JSON.parse(proto.metadataProps?.find((m) => m.key === DIMENSIONS_METADATA_KEY)?.value ?? '{}') as Record<string, number>;
  } catch {
    // not Kiln's: as if absent
  }
  const inputs = realInputs(proto);
  const { free, batch } = symbolicDimensions(proto);
  for (const name of names) {
    const size = dimensions[name];
    if (!(typeof size === 'number' && Number.isInteger(size) && size >= 1)) throw new KilnError('INVALID_ARGUMENT', `dimension '${name}' must be a positive integer, got ${JSON.stringify(size)}`);
    if (free.has(name)) continue;
    if (made[name] === size) continue; // fixed at that size when the file was made: nothing to do
    if (made[name] !== undefined) throw new KilnError('INVALID_ARGUMENT', `'${file}': '${name}' was fixed at ${made[name]} when this file was made (metadata ${DIMENSIONS_METADATA_KEY}): it takes inputs of that size only`);
    if (batch.has(name)) throw new KilnError('INVALID_ARGUMENT', `'${file}': '${name}' is the batch axis (axis 0): Kiln keeps it free, each batch runs at its own size`);
    throw new KilnError('INVALID_ARGUMENT', `'${file}': dimension '${name}' is no free dimension of the model's inputs (${free.size ? `free: ${[...free].join(', ')}` : 'it has none past the batch axis'})`);
  }
  const input = (proto.graph!.input ?? []).map((i) => {
    const dims = i.type?.tensorType?.shape?.dim;
    if (!inputs.includes(i.name ?? '') || !dims?.some((d, axis) => axis > 0 && d.dimParam && d.dimParam in dimensions)) return i;
    const dim = dims.map((d, axis) => (axis > 0 && d.dimParam && d.dimParam in dimensions ? { dimValue: dimensions[d.dimParam]! } : d));
    return { ...i, type: { ...i.type, tensorType: { ...i.type!.tensorType, shape: { dim } } } };
  });
  const sized = { ...made, ...Object.fromEntries(names.filter((n) => free.has(n)).map((n) => [n, dimensions[n]!])) };
  const metadataProps = [...(proto.metadataProps ?? []).filter((m) => m.key !== DIMENSIONS_METADATA_KEY), { key: DIMENSIONS_METADATA_KEY, value: JSON.stringify(sized) }];
  return { ...proto, metadataProps, graph: { ...proto.graph, input } };
}

/** The names of the data inputs' symbolic dimensions: on the batch axis (0), and past it (free, to be given sizes). */
export function symbolicDimensions(proto: ModelProto): { free: Set<string>; batch: Set<string> } {
  const inputs = realInputs(proto);
  const free = new Set<string>();
  const batch = new Set<string>();
  for (const i of proto.graph?.input ?? []) {
    if (!inputs.includes(i.name ?? '')) continue;
    (i.type?.tensorType?.shape?.dim ?? []).forEach((d, axis) => {
      if (d.dimParam) (axis === 0 ? batch : free).add(d.dimParam);
    });
  }
  return { free, batch };
}

/** The error of a graph that does not run (or load) at the sizes given to its free dimensions, naming them. */
export function notAtSizes(file: string, dimensions: Readonly<Record<string, number>>, err: KilnError): KilnError {
  const sizes = Object.entries(dimensions).map(([k, v]) => `${k}=${v}`).join(', ');
  const own = `'${file}' `;
  return new KilnError('INVALID_ARGUMENT', `'${file}' with ${sizes}: ${err.message.startsWith(own) ? err.message.slice(own.length) : err.message}`, { cause: err });
}

/**
 * Sizes for the free dimensions of a file's inputs (past the batch axis), as the data it will be fed
 * has them: an array of token ids [N, 128] sizes a Hugging Face export's 'sequence' to 128. x is one
 * tensor (the first input's) or tensors by input name; a dimension two inputs share must agree.
 */
export function dimensionsOfData(proto: ModelProto, x: Tensor | Readonly<Record<string, Tensor>>, file: string): Record<string, number> {
  const inputs = realInputs(proto);
  const sizes: Record<string, number> = {};
  const from: Record<string, string> = {};
  for (const declared of proto.graph?.input ?? []) {
    const name = declared.name ?? '';
    if (!inputs.includes(name)) continue;
    const data = x instanceof Tensor ? (name === inputs[0] ? x : undefined) : x[name];
    if (!data) continue;
    (declared.type?.tensorType?.shape?.dim ?? []).forEach((d, axis) => {
      const size = data.shape[axis];
      if (axis === 0 || !d.dimParam || size === undefined) return;
      if (sizes[d.dimParam] !== undefined && sizes[d.dimParam] !== size) {
        throw new KilnError('INVALID_DATA', `'${file}': dimension '${d.dimParam}' is ${sizes[d.dimParam]} in the data for '${from[d.dimParam]}' and ${size} in the data for '${name}'`);
      }
      sizes[d.dimParam] = size;
      from[d.dimParam] = name;
    });
  }
  return sizes;
}

/**
 * The graph's data inputs (initializers listed as inputs left out), each of a type Kiln can feed and
 * with every size but the batch's declared. The first is the data input images and vectors go to.
 */
function declaredInputs(proto: ModelProto, file: string): DeclaredInput[] {
  const names = realInputs(proto);
  if (names.length === 0) throw new KilnError('INVALID_ARGUMENT', `'${file}' has no data input`);
  const declaredOf = (name: string) => (proto.graph!.input ?? []).find((i) => i.name === name)!;
  const notFirst = batchNotFirst(names.map((name) => ({ name, shape: declaredShape(declaredOf(name)) })), file);
  if (notFirst) throw notFirst;
  return names.map((name) => {
    const declared = declaredOf(name);
    const dtype = dataInputDtype(declared.type?.tensorType?.elemType ?? 0, name, file);
    const dims = (declared.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined ? Number(d.dimValue) : null));
    if (dims.length === 0) throw new KilnError('INVALID_SHAPE', `'${file}': input '${name}' has no declared shape; Kiln needs its rank and sizes`);
    const missing = dims.slice(1).findIndex((d) => d === null);
    if (missing >= 0) {
      const param = declared.type?.tensorType?.shape?.dim?.[missing + 1]?.dimParam;
      const hint = param
        ? `: give its size, as ONNX Runtime's freeDimensionOverrides do: loadModel(file, { dimensions: { ${JSON.stringify(param)}: n } }), --dimension ${param}=n (n the length your data has)`
        : '; it has no name to give it a size by: export the model again with that size fixed';
      throw new KilnError('INVALID_SHAPE', `'${file}': input '${name}' has shape ${formatShape(declaredShape(declared))}, free at axis ${missing + 1}; Kiln measures and differentiates every size but the batch's${hint}`);
    }
    return { name, dtype, example: dims.slice(1) as number[] };
  });
}

/** The names of the graph inputs a caller feeds. */
function realInputs(proto: ModelProto): string[] {
  return dataInputs(proto.graph ?? {}).map((i) => i.name ?? '');
}

function dtypeOfCode(code: number): DType | undefined {
  try {
    return dtypeFromOnnx(code);
  } catch {
    return undefined;
  }
}

function dtypeName(code: number): string {
  return dtypeOfCode(code) ?? `ONNX element type ${code}`;
}

function declaredShape(v: NonNullable<ModelProto['graph']>['input'] extends (infer T)[] | undefined ? T : never): Dim[] {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined ? Number(d.dimValue) : (d.dimParam ?? null)));
}

/**
 * Every value's dtype and shape, measured: the model runs at batch sizes 2 and 3 with each node output
 * as an extra graph output. A size equal to the batch in both runs is the symbolic 'N'; one that
 * changes otherwise (a reshape to batch × heads) is unknown (null); the rest are static.
 */
async function measureValues(
  proto: ModelProto,
  inputs: readonly DeclaredInput[],
  runtime: Runtime,
  file: string,
): Promise<{ values: Map<string, ValueInfo>; samples: Map<string, [Tensor, Tensor]>; sizes: Map<string, [number[], number[]]> }> {
  const g = proto.graph!;
  const declared = new Set((g.output ?? []).map((o) => o.name));
  const extra = (g.node ?? []).flatMap((n) => (n.output ?? []).filter((o) => o && !declared.has(o)));
  const probe: ModelProto = { ...proto, graph: { ...g, output: [...(g.output ?? []), ...extra.map((name) => ({ name }))] } };
  let session;
  try {
    session = await runtime.load(encodeModel(probe));
  } catch (err) {
    throw new KilnError('INVALID_ARGUMENT', `'${file}' does not load in ONNX Runtime: ${(err as Error).message}`, { cause: err });
  }
  const rng = new Random(7);
  const feedsAt = (batch: number) => {
    const feeds: Record<string, Tensor> = {};
    for (const { name, dtype, example } of inputs) {
      const size = batch * example.reduce((a, b) => a * b, 1);
      // Token ids (and attention masks) are 0 and 1, valid rows of any embedding table; what depends on
      // the inputs is found from the graph's structure (foldConstants), not from the values.
      feeds[name] =
        dtype === 'float32'
          ? new Tensor(Float32Array.from({ length: size }, () => rng.next()), [batch, ...example], 'float32')
          : dtype === 'int64'
            ? new Tensor(BigInt64Array.from({ length: size }, () => BigInt(rng.next() < 0.5 ? 0 : 1)), [batch, ...example], 'int64')
            : new Tensor(Int32Array.from({ length: size }, () => (rng.next() < 0.5 ? 0 : 1)), [batch, ...example], 'int32');
    }
    return feeds;
  };
  const runAt = async (batch: number) => {
    const feeds = feedsAt(batch);
    try {
      return await runtime.run(session, feeds);
    } catch (err) {
      // Not the batch's doing when one example does not run either (a sequence longer than the
      // model's position table): said as such, not as a batch dimension to export.
      const single = await runtime.run(session, feedsAt(1)).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      if (single) {
        const shapes = inputs.map((i) => `'${i.name}' ${formatShape(['N', ...i.example])}`).join(', ');
        throw new KilnError('INVALID_SHAPE', `'${file}' does not run on inputs of shape ${shapes}, not even one example (${single.message})`, { cause: single });
      }
      const axes = inputs.map((i) => `'${i.name}': {0: 'batch'}`).join(', ');
      throw new KilnError(
        'INVALID_SHAPE',
        `'${file}' does not run at batch size ${batch} (${(err as Error).message}); Kiln trains in batches: export the model with a dynamic batch dimension (torch.onnx.export(..., dynamic_axes={${axes}}))`,
        { cause: err },
      );
    }
  };
  try {
    const [a, b] = [await runAt(2), await runAt(3)];
    const values = new Map<string, ValueInfo>();
    const samples = new Map<string, [Tensor, Tensor]>();
    const sizes = new Map<string, [number[], number[]]>(inputs.map((i) => [i.name, [[2, ...i.example], [3, ...i.example]]]));
    for (const i of inputs) values.set(i.name, { dtype: i.dtype, shape: ['N', ...i.example] });
    for (const [name, ta] of Object.entries(a)) {
      const tb = b[name]!;
      sizes.set(name, [[...ta.shape], [...tb.shape]]);
      if (ta.size <= MAX_FOLDED_SIZE) samples.set(name, [ta, tb]);
      const shape: Shape = ta.shape.map((d, i) => (tb.shape[i] === d ? d : d === 2 && tb.shape[i] === 3 ? 'N' : null));
      values.set(name, { dtype: ta.dtype, shape: ta.shape.length === tb.shape.length ? shape : ta.shape.map(() => null) });
    }
    const out = g.output?.[0]?.name ?? '';
    if (values.get(out)?.shape[0] !== 'N') {
      throw new KilnError('INVALID_SHAPE', `'${file}': output '${out}' does not follow the batch size (shape ${formatShape(a[out]?.shape ?? [])} at batch 2): Kiln trains models whose first output has one row per example`);
    }
    return { values, samples, sizes };
  } finally {
    await runtime.release(session).catch(() => undefined);
  }
}

/**
 * What graph rewrites (structured pruning) read of a foreign model: every value's shape at batch sizes
 * 2 and 3 (a size that differs follows the batch) and the values that are constants in fact (see
 * foldConstants), measured as open() measures them.
 */
export async function measureGraph(proto: ModelProto, file: string, runtime: Runtime): Promise<{ sizes: Map<string, [number[], number[]]>; constants: Map<string, Tensor> }> {
  const inputs = declaredInputs(proto, file);
  const { samples, sizes } = await measureValues(proto, inputs, runtime, file);
  return { sizes, constants: foldConstants(proto, inputs.map((i) => i.name), samples) };
}

/** Largest value (elements) folded into a constant: shape vectors and small tables, not activations. */
const MAX_FOLDED_SIZE = 4096;

/**
 * The values that are constants in fact: computed from neither the data input nor any float
 * initializer (only from Constant nodes, integer initializers and the shapes of values), and equal in
 * both measured runs — so not following the batch size. Exporters compute slice bounds, reshape
 * targets and split sizes that way; as constants they give gradient rules the static values they need
 * (a Slice's bounds, a Reshape's target). A value that follows the batch size stays computed.
 */
function foldConstants(proto: ModelProto, inputs: readonly string[], samples: ReadonlyMap<string, [Tensor, Tensor]>): Map<string, Tensor> {
  const g = proto.graph!;
  const variable = new Set<string>(inputs);
  for (const t of g.initializer ?? []) if (t.dataType === 1 || t.dataType === 11 || t.dataType === 10) variable.add(t.name ?? '');
  const folded = new Map<string, Tensor>();
  for (const n of g.node ?? []) {
    const readsShapeOnly = n.opType === 'Shape' || n.opType === 'Size';
    if (!readsShapeOnly && (n.input ?? []).some((i) => variable.has(i))) {
      for (const o of n.output ?? []) if (o) variable.add(o);
      continue;
    }
    for (const o of n.output ?? []) {
      const pair = o ? samples.get(o) : undefined;
      if (pair && sameTensor(pair[0], pair[1])) folded.set(o, pair[0]);
    }
  }
  return folded;
}

function sameTensor(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  for (let i = 0; i < a.size; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/** What the weights of an imported graph are made of, read once per file (ImportedGraph's copies share it). */
interface InitializerFacts {
  /** Float initializers of rank >= 1: the candidates for weights. */
  floats: Set<string>;
  /** Those holding ±∞ or NaN: constants (a causal mask of −∞), never weights. */
  nonFinite: Set<string>;
  /** Copies of another float initializer (tied weights), by the copy's name. */
  tied: Map<string, { source: string; transpose: boolean }>;
}

const initializerFactsOf = new WeakMap<ModelProto, InitializerFacts>();

/**
 * The file's float initializers, which of them hold non-finite values, and which are an exporter's
 * copy of another: a rank-2 initializer PyTorch's constant folding named (`onnx::MatMul_183`) that
 * holds exactly the transpose of another, which has a name of its own — GPT-2's head, `embed.weight.T`,
 * written a second time. Values alone would tie weights that merely start equal; the folded name says
 * the copy was computed, and a tensor whose elements are all equal (zeros, ones) or a square one equal
 * to its own transpose (an identity) ties to nothing. (An untrained export of two layers that start as
 * each other's transposes, one of them folded, would still tie: `kiln info` and `kiln train` print it.)
 */
function initializerFacts(proto: ModelProto): InitializerFacts {
  let facts = initializerFactsOf.get(proto);
  if (facts) return facts;
  facts = { floats: new Set(), nonFinite: new Set(), tied: new Map() };
  const floats = (proto.graph?.initializer ?? []).filter((t) => {
    const dtype = dtypeOfCode(t.dataType ?? 0);
    return dtype !== undefined && FLOAT_TYPES.has(dtype) && (t.dims ?? []).length > 0;
  });
  // Only matrices whose shapes could pair (a folded [a, b] with a named [b, a]) are kept to compare:
  // a large model's weights are decoded one at a time for the finite check, not held all at once.
  const shapeKey = (t: (typeof floats)[number], reversed = false) => {
    const d = (t.dims ?? []).map(Number);
    return (reversed ? d.reverse() : d).join('x');
  };
  const matrices = floats.filter((t) => (t.dims ?? []).length === 2);
  const namedShapes = new Set(matrices.filter((t) => !(t.name ?? '').startsWith(FOLDED_PREFIX)).map((t) => shapeKey(t)));
  const foldedShapes = new Set(matrices.filter((t) => (t.name ?? '').startsWith(FOLDED_PREFIX)).map((t) => shapeKey(t, true)));
  const copies: { name: string; value: Tensor }[] = [];
  const sources = new Map<string, Tensor>();
  for (const t of floats) {
    const name = t.name ?? '';
    facts.floats.add(name);
    const value = tensorFromProto(t);
    const data = value.data as Float32Array;
    if (!data.every((v) => Number.isFinite(v))) facts.nonFinite.add(name);
    else if (value.shape.length !== 2 || data.every((v) => v === data[0])) continue;
    else if (name.startsWith(FOLDED_PREFIX)) {
      if (namedShapes.has(shapeKey(t, true))) copies.push({ name, value });
    } else if (foldedShapes.has(shapeKey(t))) sources.set(name, value);
  }
  for (const { name, value } of copies) {
    // A square matrix equal to its transpose (an identity initialization) says nothing of where it came from.
    if (isTransposeOf(value, value)) continue;
    for (const [source, other] of sources) {
      if (isTransposeOf(value, other)) {
        facts.tied.set(name, { source, transpose: true });
        break;
      }
    }
  }
  initializerFactsOf.set(proto, facts);
  return facts;
}

/**
 * Initializers of a file that are no weights of their own, though float: tied copies (initializerFacts)
 * and tensors holding ±∞ or NaN (a causal mask). What parameter counts leave out, as PyTorch's
 * `model.parameters()` does.
 */
export function notWeights(proto: ModelProto): Set<string> {
  const facts = initializerFacts(proto);
  return new Set([...facts.tied.keys(), ...facts.nonFinite]);
}

/** The tied copies of a file's weights (initializerFacts), by the copy's name. */
export function tiedCopies(proto: ModelProto): ReadonlyMap<string, { source: string; transpose: boolean }> {
  return initializerFacts(proto).tied;
}

/** The prefix PyTorch's exporter gives the initializers its constant folding computes. */
const FOLDED_PREFIX = 'onnx::';

/**
 * The parameter name PyTorch gave a weight its constant folding renamed — `onnx::MatMul_349`, the
 * transpose of `bert.encoder.layer.1.attention.self.query.weight` — read from the node that uses it
 * (`/bert/encoder/layer.1/attention/self/query/MatMul`), so that a selection by module
 * (`--train-only 'bert.encoder.layer.1.*'`) takes the layer's matrices too, not only its biases.
 */
export function foldedWeightNames(proto: ModelProto): Map<string, string> {
  const names = new Map<string, string>();
  const initializers = new Set((proto.graph?.initializer ?? []).map((t) => t.name ?? ''));
  for (const n of proto.graph?.node ?? []) {
    const path = (n.name ?? '').split('/').filter(Boolean).slice(0, -1);
    if (path.length === 0) continue;
    for (const i of n.input ?? []) if (i.startsWith(FOLDED_PREFIX) && initializers.has(i) && !names.has(i)) names.set(i, `${path.join('.')}.weight`);
  }
  return names;
}

/** Whether `value` (rank 2) holds exactly the transpose of `other`. */
function isTransposeOf(value: Tensor, other: Tensor): boolean {
  if (value.shape.length !== 2 || other.shape.length !== 2 || other.shape[0] !== value.shape[1] || other.shape[1] !== value.shape[0]) return false;
  const data = value.data as Float32Array;
  const o = other.data as Float32Array;
  const [rows, cols] = value.shape as [number, number];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if (data[r * cols + c] !== o[c * rows + r]) return false;
  return true;
}

/** A tied copy's values from its parameter's. */
function tiedValue(source: Tensor | undefined, transpose: boolean): Tensor | undefined {
  if (!source || !transpose) return source;
  const [rows, cols] = source.shape as [number, number];
  const data = source.data as Float32Array;
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return new Tensor(out, [cols, rows], 'float32');
}
