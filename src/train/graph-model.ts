import { KilnError, formatShape } from '../errors.js';
import { decodeModel, type ModelProto } from '../graph/proto.js';
import { CLASS_NAMES_METADATA_KEY } from '../model/class-names.js';
import { channelsLastShape, definedPreprocessing, foldedWeightNames, ImportedGraph, PREPROCESSING_METADATA_KEY, type InputLayout, type ParameterUse, type Preprocessing, type TiedWeight, type UntrainableOp } from '../model/imported-graph.js';
export type { TiedWeight } from '../model/imported-graph.js';
import { declaredPreprocessing } from '../model/input-adapter.js';
import { readOnnxFile } from '../model/read-model.js';
import { idOutOfRange, idTables, type IdTable } from '../model/input-values.js';
import type { InputRows, ModelInputs } from '../model/input-rows.js';
import { Random } from '../random.js';
import { sharedRuntime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { resolveLoss, type Loss } from './losses.js';
import { labelsFitAxis, sparseLabels } from './sparse-labels.js';
import { recordedTraining, TrainableModel, type CompileArgs } from './model.js';
import type { TrainingStepOptions } from './training-step.js';

/**
 * A model another tool exported (PyTorch, tf2onnx, Optimum), trained as it is: compile / fit / evaluate
 * / predict / save work as on a Sequential, over the imported graph (model/imported-graph.ts). Transfer
 * learning: `trainOnly` freezes every weight whose name does not match, `replaceHead` gives the
 * classifier a new number of classes. Saving writes the original file with the new weights.
 */

/**
 * Options of `GraphModel.load` and `loadModel`: the input preprocessing (layout, scale, mean, std), a name and a seed.
 */
export interface GraphModelOptions extends Preprocessing {
  /** The model's name (default: the graph's name). */
  name?: string;
  /** Seed for a replaced head's weights and for shuffling (default 42). */
  seed?: number;
  /**
   * Sizes for the inputs' free dimensions past the batch axis, by name, as ONNX Runtime's
   * freeDimensionOverrides: `{ sequence: 128 }` for a Hugging Face export whose inputs are
   * [batch, sequence]. Kiln measures and differentiates the graph at those sizes: the data must have
   * them, and the saved file (and every file made from the model) takes inputs of those sizes.
   */
  dimensions?: Readonly<Record<string, number>>;
  /**
   * For a model of several outputs (a PyTorch forward returning `(logits, features)`), the one to
   * train, evaluate and predict, by name; default: the one the file's Kiln metadata records, else the
   * first. Stored in the saved model.
   */
  output?: string;
}

/** Which weights train: a name pattern (`*` matches anything, as in `--train-only 'fc.*'`), a RegExp or a predicate. */
export type WeightSelector = string | RegExp | ((name: string) => boolean);

/** A WeightSelector as a test of names (trainOnly's, and pruning's choice of an imported graph's weights). */
export function weightMatcher(selector: WeightSelector): (name: string) => boolean {
  if (typeof selector === 'function') return selector;
  // A global or sticky RegExp keeps a position between test() calls: a fresh copy without those flags.
  if (selector instanceof RegExp) {
    const pattern = new RegExp(selector.source, selector.flags.replace(/[gy]/g, ''));
    return (name) => pattern.test(name);
  }
  const pattern = new RegExp(`^${selector.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return (name) => pattern.test(name);
}

/** An imported graph's classifier head, as {@link GraphModel.classifierHead} finds it. */
export interface ClassifierHead {
  /** The Gemm or MatMul weight's initializer name. */
  weight: string;
  /** The bias initializer's name, where the head has one. */
  bias?: string;
  /** Whether the weight is stored [classes, features] (a Gemm with transB = 1, as PyTorch's Linear exports). */
  transposed: boolean;
}

/**
 * A model another tool exported (PyTorch, tf2onnx, Optimum), trained as it is: compile / fit / evaluate /
 * predict / save work as on a Sequential, over the file's own graph. Transfer learning: `trainOnly` freezes
 * every weight whose name does not match, `replaceHead` gives the classifier a new number of classes.
 * Saving writes the original file with the new weights.
 */
export class GraphModel extends TrainableModel {
  protected structure: ImportedGraph;
  /** The inputs of token ids and the tables they index (idTables), read from the file when first needed. */
  private idTablesOfFile?: Map<string, IdTable>;
  /** Whether the input layout was given (then data in the other layout is an error, not a switch). */
  private layoutFixed: boolean;
  private compileArgs: [CompileArgs, TrainingStepOptions] | undefined;

  private constructor(structure: ImportedGraph, args: GraphModelOptions, layoutFixed: boolean) {
    super(args, structure.proto.graph?.name || 'model');
    this.structure = structure;
    this.layoutFixed = layoutFixed;
    for (const [name, t] of structure.initialWeights()) this.weights.set(name, t);
    for (const { key, value } of structure.proto.metadataProps ?? []) if (key?.startsWith('kiln.') && key !== PREPROCESSING_METADATA_KEY) this.metadata.set(key, value ?? '');
  }

  /** Reads an .onnx file another tool wrote; its shapes are measured by running it once (see ImportedGraph). */
  static async load(file: string, options: GraphModelOptions = {}): Promise<GraphModel> {
    const { proto } = await readOnnxFile(file);
    return GraphModel.fromProto(proto, file, options);
  }

  /** The same as `load`, from a decoded ModelProto (`file` names it in messages). */
  static async fromProto(proto: ModelProto, file = '<bytes>', options: GraphModelOptions = {}): Promise<GraphModel> {
    const model = await GraphModel.open(proto, file, options);
    model.setPreprocessing(options);
    return model;
  }

  /**
   * The model as its file declares it (its stored preprocessing, none of the caller's): what can fail
   * here is the file, while fromProto's preprocessing errors are the caller's (loadModel tells them apart).
   */
  static async open(proto: ModelProto, file = '<bytes>', options: { name?: string; seed?: number; dimensions?: Readonly<Record<string, number>>; output?: string } = {}): Promise<GraphModel> {
    const stored = declaredPreprocessing(proto, `'${file}'`);
    const structure = await ImportedGraph.open(proto, file, sharedRuntime(), stored, options.dimensions, options.output);
    return new GraphModel(structure, { name: options.name, seed: options.seed }, stored.layout !== undefined);
  }

  /**
   * Besides the saved loss and the labels: the axis a final Softmax normalizes (also where the labels
   * would fit it and another); without labels, 1 for an output [N, C, H, W] whose last two axes are a
   * channels-first input's grid (a segmentation model's classes on its channel axis, as PyTorch's
   * CrossEntropyLoss takes them; the input's channels fewer than its height and width); else the last.
   */
  override defaultClassAxis(labels?: Tensor): number | undefined {
    const recorded = recordedTraining(this.metadata)?.loss?.config?.axis;
    if (Number.isInteger(recorded)) return recorded as number;
    const out = this.outputShape;
    const softmax = this.structure.softmaxAxis;
    const own = (axis: number | undefined) => (axis === out.length ? undefined : axis);
    if (labels) return own(softmax !== undefined && labelsFitAxis([null, ...out], labels.shape, softmax) ? softmax : (super.defaultClassAxis(labels) ?? out.length));
    const input = this.modelInput.shape;
    const channelsFirstGrid = out.length === 3 && input.length === 3 && input[0]! < input[1]! && input[0]! < input[2]! && out[1] === input[1] && out[2] === input[2];
    return own(softmax ?? (channelsFirstGrid ? 1 : undefined));
  }

  /** The graph output this model trains, evaluates and predicts (one of several, or the only one). */
  get trainedOutput(): string {
    return this.structure.modelOutput.name;
  }

  /** The input preprocessing this model applies (layout, scale, mean/std), stored in the saved file. */
  get preprocessing(): Preprocessing {
    return this.structure.preprocessing;
  }

  /** The model's own input (name, per-example shape), which data is adapted to. */
  get modelInput(): {
    /** The graph input's name. */
    name: string;
    /** Its shape without the batch dimension, in the model's own layout. */
    shape: number[];
  } {
    return this.structure.modelInput;
  }

  /** The graph's own name for its first input (`input`, `input_ids`): the key of its tensor when x is an object of inputs. */
  protected override get primaryInputName(): string {
    return this.structure.modelInput.name;
  }

  /** Whether the graph ends in Softmax: it outputs probabilities, and training starts from the logits before it. */
  get outputsProbabilities(): boolean {
    return this.structure.endsInSoftmax;
  }

  /**
   * An independent copy: the same graph, preprocessing and choice of trained weights, copies of the
   * weights and of the metadata (less the training history); not compiled. Pruning works on one, so
   * the model it was given stays as it was.
   */
  clone(): GraphModel {
    const copy = new GraphModel(this.structure, { name: this.name, seed: this.seed }, this.layoutFixed);
    copy.weights.clear();
    for (const [name, t] of this.weights) copy.weights.set(name, new Tensor((t.data as Float32Array).slice(), [...t.shape], t.dtype));
    copy.metadata.clear();
    for (const [k, v] of this.metadata) if (k !== 'kiln.history') copy.metadata.set(k, v);
    return copy;
  }

  /** Which node reads each weight, and as which input (a Conv's kernel, a Gemm's bias, ...), in graph order. */
  parameterUses(): ParameterUse[] {
    return this.structure.parameterUses();
  }

  /** The classifier's last layer: the Gemm or MatMul weight (and bias) nearest the output; throws when there is none. */
  classifierHead(): ClassifierHead {
    return this.structure.classifierHead();
  }

  /**
   * Initializers the exporter wrote as copies of a weight — a tied head, embed.weight's transpose — by
   * name, with the weight they follow: they are no parameters of their own, train with it, and are
   * written from it when saved.
   */
  tiedWeights(): TiedWeight[] {
    return this.structure.tiedWeights();
  }

  /** The tied copy the classifier head's weight is (a language model's head, its embedding transposed), if it is one: then there is no head of its own. */
  tiedHead(): string | undefined {
    return this.structure.tiedHead();
  }

  /** Every op between the trainable weights and the output that Kiln cannot differentiate yet. */
  untrainableOps(): UntrainableOp[] {
    return this.structure.untrainableOps();
  }

  /**
   * Declares the input layout and/or normalization, on top of what the model has (a key given as
   * undefined is left as it is); the compiled step and sessions are rebuilt for it.
   */
  setPreprocessing(preprocessing: Preprocessing): void {
    const given = definedPreprocessing(preprocessing);
    if (Object.keys(given).length === 0) return;
    this.structure = this.structure.withPreprocessing({ ...this.structure.preprocessing, ...given });
    this.layoutFixed = this.structure.preprocessing.layout !== undefined;
    this.structureChanged();
  }

  private structureChanged(): void {
    this.invalidate();
    this.dropCompiled();
    if (this.compileArgs) this.compile(...this.compileArgs);
  }

  /**
   * Trains only the weights whose names match (the rest keep their values, and a BatchNormalization
   * whose scale and bias are frozen runs on its running statistics): `'fc.*'`, a RegExp or a
   * predicate; null trains every weight again. A weight PyTorch's constant folding renamed
   * (`onnx::MatMul_135`) matches by its module's parameter name too (`encoder.layers.0.linear1.weight`).
   */
  trainOnly(selector: WeightSelector | null): void {
    let match: ((name: string) => boolean) | null = null;
    if (selector !== null) {
      // A weight PyTorch's constant folding renamed (onnx::MatMul_349) matches by its module's name too.
      const byName = weightMatcher(selector);
      const folded = foldedWeightNames(this.structure.proto);
      match = (name) => byName(name) || (folded.has(name) && byName(folded.get(name)!));
      const names = this.structure.withTrainable(null).paramInfos().filter((p) => p.spec.trainable).map((p) => p.name);
      if (!names.some(match)) {
        const tied = this.tiedWeights().filter((t) => match!(t.name));
        const copies = tied.length > 0 ? ` (${tied.map((t) => `'${t.name}' is a tied copy of '${t.source}'`).join(', ')}: select that weight)` : '';
        throw new KilnError('INVALID_ARGUMENT', `trainOnly ${String(selector)} matches no weight${copies}; the model's trainable weights are ${names.join(', ')}`);
      }
    }
    this.structure = this.structure.withTrainable(match);
    this.structureChanged();
  }

  /**
   * Gives the classifier `numClasses` outputs: the weight and bias of the last Gemm or MatMul feeding
   * the output are drawn anew as `model.fc = nn.Linear(features, numClasses)` draws them in PyTorch,
   * where these models come from (both uniform in ±1/√features); everything before them keeps its values.
   */
  async replaceHead(numClasses: number): Promise<void> {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new KilnError('INVALID_ARGUMENT', `numClasses must be a positive integer, got ${numClasses}`);
    const head = this.structure.classifierHead();
    const rng = new Random(this.seed);
    const w = this.weights.get(head.weight)!;
    const inFeatures = head.transposed ? w.shape[1]! : w.shape[0]!;
    const shape = head.transposed ? [numClasses, inFeatures] : [inFeatures, numClasses];
    const bound = 1 / Math.sqrt(inFeatures);
    const uniform = (dims: number[]) => new Tensor(Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(-bound, bound)), dims, 'float32');
    const replaced = new Map<string, Tensor>([[head.weight, uniform(shape)]]);
    if (head.bias) replaced.set(head.bias, uniform([numClasses]));
    const weights = new Map(this.weights);
    for (const [k, v] of replaced) weights.set(k, v);
    const proto = decodeModel(this.structure.toOnnx(weights, this.metadata));
    // The output is declared with the new class count; shapes recorded in value_info downstream of the
    // head are stale and go (they are optional). The graph is measured again.
    const graph = proto.graph!;
    const declared = graph.output?.find((o) => o.name === this.trainedOutput)?.type?.tensorType?.shape?.dim;
    if (declared?.length) declared[declared.length - 1] = { dimValue: numClasses };
    const downstream = this.structure.valuesAfter(head.weight);
    graph.valueInfo = (graph.valueInfo ?? []).filter((v) => !downstream.has(v.name ?? ''));
    // Older exporters list initializers among the graph inputs, with their shapes: those change too.
    for (const input of graph.input ?? []) {
      const t = replaced.get(input.name ?? '');
      const dims = input.type?.tensorType?.shape;
      if (t && dims) dims.dim = t.shape.map((d) => ({ dimValue: d }));
    }
    let reopened: ImportedGraph;
    try {
      reopened = await ImportedGraph.open(proto, this.structure.file, this.runtime, this.structure.preprocessing);
    } catch (err) {
      throw new KilnError('INVALID_ARGUMENT', `a ${numClasses}-class head on '${head.weight}' does not fit the graph after it (${(err as Error).message})`, { cause: err });
    }
    const next = reopened.withTrainable(this.structure.trains);
    this.structure = next;
    this.weights.clear();
    for (const [k, v] of next.initialWeights()) this.weights.set(k, v);
    // The old class names belong to the old head.
    this.metadata.delete(CLASS_NAMES_METADATA_KEY);
    this.structureChanged();
  }

  /**
   * Cross-entropy losses given by name train from logits: an exported classifier outputs logits, or
   * ends in a Softmax that the step cuts off (a numerically stable loss either way).
   */
  override compile(args: CompileArgs, stepOptions: TrainingStepOptions = {}): void {
    const missing = this.untrainableOps();
    if (missing.length > 0) {
      const ops = [...new Set(missing.map((m) => m.op))];
      throw new KilnError('NO_GRADIENT', `'${this.structure.file}' cannot be trained: Kiln has no gradient rule for ${ops.join(', ')} (nodes: ${missing.map((m) => `${m.node} (${m.op}${m.why ? `: ${m.why}` : ''})`).join(', ')})`);
    }
    if (!this.paramInfos().some((p) => p.spec.trainable)) {
      throw new KilnError('NOT_TRAINABLE', `'${this.structure.file}' has no trainable float weights: no float initializer reaches the output '${this.structure.modelOutput.name}'`);
    }
    const loss = typeof args.loss === 'string' ? fromLogits(resolveLoss(args.loss)) : args.loss;
    const classAxis = sparseLabels(loss, this.outputShape.length + 1)?.classAxis;
    const softmaxAxis = this.structure.softmaxAxis;
    if (softmaxAxis !== undefined && loss.config.fromLogits === true && classAxis !== undefined && classAxis !== softmaxAxis) {
      // The step trains from the Softmax's input: the loss's classes must be what the Softmax normalizes.
      throw new KilnError('INVALID_ARGUMENT', `'${this.structure.file}' ends in a Softmax over axis ${softmaxAxis}, and the loss's class axis is ${classAxis}: they must be the same`);
    }
    this.compileArgs = [args, stepOptions];
    super.compile({ ...args, loss }, stepOptions);
  }

  /**
   * x checked as Model.inputRows checks it, and each input of token ids within the embedding table it
   * indexes: a negative id or one past the end is refused by position, as PyTorch's nn.Embedding
   * refuses it, before it becomes a wrapped row or an error deep inside ONNX Runtime.
   */
  override inputRows(x: ModelInputs, what = 'x'): InputRows {
    const rows = super.inputRows(x, what);
    this.idTablesOfFile ??= idTables(this.structure.proto);
    for (const [input, table] of this.idTablesOfFile) {
      const t = x instanceof Tensor ? (input === this.primaryInputName ? x : undefined) : x[input];
      const bad = t && !['float32', 'float64'].includes(t.dtype) ? idOutOfRange(t, table, x instanceof Tensor ? what : `${what}.${input}`) : undefined;
      if (bad) throw bad;
    }
    return rows;
  }

  /**
   * Data that is the channels-last form of a channels-first model's input switches the model to feed
   * it through a transpose (unless a layout was declared); other shapes are an error naming both.
   */
  protected override checkInput(x: Tensor, what = 'x'): void {
    // A model of token ids fed images: the type is the mistake to name, not the shape.
    if (this.inputDtype !== 'float32') this.checkDtype(x, what);
    const example = x.shape.slice(1);
    const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
    const own = this.structure.modelInput.shape;
    if (!same(example, this.inputShape) && !this.layoutFixed) {
      const channelsLast = channelsLastShape(own);
      if (channelsLast && same(example, channelsLast)) this.setLayout('nchw');
      else if (same(example, own)) this.setLayout(undefined);
    }
    if (!same(example, this.inputShape)) {
      const hint = channelsLastShape(own) ? ` (the model's input is ${formatShape([null, ...own])}; --layout nchw feeds channels-last data [N, ${own.length === 4 ? 'D, ' : ''}H, W, C] to a channels-first model, --layout nhwc feeds it as it is)` : '';
      throw new KilnError('INVALID_SHAPE', `${what} has shape ${formatShape(x.shape)}, the model takes ${formatShape([null, ...this.inputShape])}${hint}`);
    }
    super.checkInput(x, what);
  }

  /**
   * The layout the first data settles: fixed from then on, so data in the other layout later is an
   * error rather than a silent switch (which would recompile and drop the optimizer's state).
   */
  private setLayout(layout: InputLayout | undefined): void {
    const { scale, mean, std } = this.structure.preprocessing;
    this.structure = this.structure.withPreprocessing(definedPreprocessing({ layout, scale, mean, std }));
    this.layoutFixed = true;
    this.structureChanged();
  }
}

function fromLogits(loss: Loss): Loss {
  if (!['sparseCategoricalCrossentropy', 'categoricalCrossentropy'].includes(loss.name)) return loss;
  return resolveLoss({ name: loss.name, config: { ...loss.config, fromLogits: true } });
}
