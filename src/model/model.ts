import { KilnError, formatShape } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';
import type { Layer } from '../layers/index.js';
import type { ParamSpec } from '../layers/layer.js';
import { sharedRuntime, type Runtime } from '../runtime/runtime.js';
import type { SessionInfo } from '../runtime/protocol.js';
import { Tensor, type DType } from '../tensor.js';
import { checkInputNames, InputRows, type ModelInputs } from './input-rows.js';
import { DEFAULT_OPSET } from '../graph/onnx-io.js';
import { platform } from '#platform';
import { CLASS_NAMES_METADATA_KEY, checkClassNames, parseClassNames } from './class-names.js';

/**
 * The model every Kiln model is: weights by name, metadata, and a structure that emits the graph.
 * Two structures exist — a stack of Kiln layers (model/sequential.ts) and an ONNX graph written by
 * another tool (model/imported-graph.ts) — and everything above this file (training, pruning,
 * quantization, serving) talks to a Model, not to either structure.
 */

/** Name of the data input in the graphs Kiln builds (training, evaluation, Kiln's own models). */
export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'output';

/** One parameter of a model: its name in the graph, the layer that owns it, and its spec. */
export interface ParamInfo {
  /** The initializer's name in the ONNX graph (`<layer name>/<param name>` for layer models). */
  name: string;
  /** The Kiln layer that owns it; absent for imported graphs. */
  layer?: Layer;
  /** Shape, initializer and whether it trains. */
  spec: ParamSpec;
}

/** A graph built from the structure, with the parameters it reads and (training) the statistics it updates. */
export interface BuiltGraph {
  /** The graph, with the model's nodes in it. */
  graph: Graph;
  /** The data input. */
  input: Value;
  /** The model's output. */
  output: Value;
  /** The parameters the graph reads. */
  params: ParamInfo[];
  /** Training graphs: new values of non-trainable parameters (moving statistics), by parameter name. */
  updates: Map<string, Value>;
}

/** How `Model.buildGraph` builds the graph: for inference (default) or for the training step. */
export interface BuildOptions {
  /** Build the training form (dropout active, batch statistics, statistics updates). */
  training?: boolean;
  /** The model's seed, which an imported graph's dropout masks are drawn from (layer models seed theirs per layer). */
  seed?: number;
  /** Parameters as graph inputs (training) instead of stored initializers (inference, export). */
  paramsAsInputs?: boolean;
  /** Symbolic ('N') or fixed batch dimension. */
  batchSize?: number | 'N';
  /** Build into this graph (which may already hold inputs the provider below uses). */
  graph?: Graph;
  /** Supplies each parameter's value instead of an initializer or a plain graph input (training graphs). */
  paramValue?: (graph: Graph, info: ParamInfo) => Value;
  /** Rewrites each layer's output (e.g. fake quantization of activations in quantization-aware training). */
  afterLayer?: (graph: Graph, layer: Layer, output: Value, index: number) => Value;
  /**
   * Return the logits where the model ends in a Softmax that the structure can see (imported graphs),
   * so a loss from logits is computed stably; layer models return what their last layer emits.
   */
  logits?: boolean;
}

/** Options of `predict`. */
export interface PredictOptions {
  /** Examples per ONNX Runtime run (default 32); the results are the same for any size. */
  batchSize?: number;
}

/** A data input after a model's first (an imported graph's `attention_mask` beside its `input_ids`). */
export interface OtherInput {
  /** The model's own name for it: the key callers give its tensor under. */
  name: string;
  /** The input's name in Kiln's step graphs (training, evaluation, prediction). */
  stepName: string;
  /** Shape of one example (no batch dimension). */
  shape: number[];
  /** Its element type. */
  dtype: DType;
}

/** What emits a model's graph: the part that differs between layer models and imported graphs. */
export interface ModelStructure {
  /** Shape of one example as the model's callers feed it (no batch dimension). */
  readonly inputShape: number[];
  /** Shape of one example's output. */
  readonly outputShape: number[];
  /** The ai.onnx opset the model's graphs are written at (default: Kiln's, 17). */
  readonly opset?: number;
  /** The element type of the data input (default float32; an imported text model's token ids: int64 or int32). */
  readonly inputDtype?: DType;
  /** Data inputs after the first (an imported text model's attention_mask), fed beside it. */
  readonly otherInputs?: readonly OtherInput[];
  paramInfos(): ParamInfo[];
  buildGraph(weights: ReadonlyMap<string, Tensor>, options: BuildOptions): BuiltGraph;
  /** The model as a standard .onnx file with these weights and metadata. */
  toOnnx(weights: ReadonlyMap<string, Tensor>, metadata: ReadonlyMap<string, string>): Uint8Array;
  /** The graph predict() runs, its data input fed `input` [N, ...inputShape] and its result read from `output`. */
  inferenceOnnx(weights: ReadonlyMap<string, Tensor>): Uint8Array;
}

/** Arguments every model takes. */
export interface ModelArgs {
  /** The model's name (default 'sequential' or the imported graph's name). */
  name?: string;
  /** Seed for initial weights (and dropout masks); the same seed gives the same model. */
  seed?: number;
}

/**
 * The model every Kiln model is: weights by name, metadata, and the graph its structure emits; it predicts
 * and saves. `Sequential` and `GraphModel` add training (`TrainableModel`); `OnnxModel` runs any file as it is.
 */
export abstract class Model {
  /** The model's name. */
  name: string;
  /** The seed its initial weights (and dropout masks) came from (default 42). */
  readonly seed: number;
  /** Current parameter values by name. */
  readonly weights = new Map<string, Tensor>();
  /** Free-form metadata stored with the model (training config, history). */
  readonly metadata = new Map<string, string>();
  protected runtime: Runtime = sharedRuntime();
  private inferenceSession: SessionInfo | undefined;
  protected abstract readonly structure: ModelStructure;

  constructor(args: ModelArgs, defaultName: string) {
    this.name = args.name ?? defaultName;
    this.seed = args.seed ?? 42;
  }

  /**
   * Shape of one input example as callers feed it, without the batch dimension (channels last for images).
   */
  get inputShape(): number[] {
    return this.structure.inputShape;
  }

  /** Shape of one output example, without the batch dimension (`[10]` for a 10-class classifier). */
  get outputShape(): number[] {
    return this.structure.outputShape;
  }

  /** Data inputs after the first (an imported text model's attention_mask): name, shape and type each; none for most models. */
  get otherInputs(): readonly OtherInput[] {
    return this.structure.otherInputs ?? [];
  }

  /** The element type its data input takes: float32, or integer token ids for an imported text model. */
  get inputDtype(): DType {
    return this.structure.inputDtype ?? 'float32';
  }

  /** The ai.onnx opset this model's training and inference graphs are written at. */
  get graphOpset(): number {
    return this.structure.opset ?? DEFAULT_OPSET;
  }

  /** Parameters in graph order with their specs (trainable or not). */
  paramInfos(): ParamInfo[] {
    return this.structure.paramInfos();
  }

  /** Emits the model's graph for inference or training (see BuildOptions). */
  buildGraph(options: BuildOptions = {}): BuiltGraph {
    return this.structure.buildGraph(this.weights, { seed: this.seed, ...options });
  }

  /**
   * Class names by output index, saved with the model (metadata 'kiln.labels'): `kiln train` sets them
   * from the data set, and servers answer with them (TF Serving :classify, KServe v2 classification,
   * TorchServe /predictions). Undefined when the model has none.
   */
  get classNames(): string[] | undefined {
    return parseClassNames(this.metadata.get(CLASS_NAMES_METADATA_KEY), `model '${this.name}'`);
  }

  /** Sets the class names by output index (checked against the output width); undefined removes them. */
  set classNames(names: readonly string[] | undefined) {
    if (names === undefined) {
      this.metadata.delete(CLASS_NAMES_METADATA_KEY);
      return;
    }
    checkClassNames(names, 'classNames');
    const classes = this.outputShape[this.outputShape.length - 1];
    if (this.outputShape.length === 1 && classes !== names.length) {
      throw new KilnError('INVALID_ARGUMENT', `classNames has ${names.length} names; model '${this.name}' outputs ${classes} classes`);
    }
    this.metadata.set(CLASS_NAMES_METADATA_KEY, JSON.stringify(names));
  }

  /** The model as ONNX bytes: weights as initializers, Kiln's metadata in metadata_props. */
  toOnnx(): Uint8Array {
    return this.structure.toOnnx(this.weights, this.metadata);
  }

  /**
   * Runs this model's sessions in `runtime` from now on (default: the process-wide worker), so models
   * trained at the same time — parallel tuning trials — each step in a worker of their own. Sessions
   * loaded in the previous runtime are released there.
   */
  useRuntime(runtime: Runtime): void {
    if (runtime === this.runtime) return;
    this.releaseRuntimeSessions();
    this.runtime = runtime;
  }

  /** Lets go of every session the model holds in its runtime; they load again on demand. */
  protected releaseRuntimeSessions(): void {
    this.invalidate();
  }

  /** Drops cached sessions after weights or structure change. */
  protected invalidate(): void {
    const s = this.inferenceSession;
    this.inferenceSession = undefined;
    if (s) void this.runtime.release(s).catch(() => undefined);
  }

  /**
   * Releases the ONNX Runtime sessions the model holds (inference, and for trainable models the
   * compiled steps), as tf.js' dispose() does; the model stays usable and loads them again on demand.
   */
  dispose(): void {
    this.invalidate();
  }

  /** Replaces parameter values (shapes must match). */
  setWeights(values: Map<string, Tensor> | Record<string, Tensor>): void {
    const entries = values instanceof Map ? [...values] : Object.entries(values);
    for (const [name, t] of entries) {
      const current = this.weights.get(name);
      if (!current) throw new KilnError('INVALID_ARGUMENT', `model has no weight named '${name}' (has ${[...this.weights.keys()].join(', ')})`);
      if (formatShape(current.shape) !== formatShape(t.shape)) {
        throw new KilnError('INVALID_SHAPE', `weight '${name}': expected shape ${formatShape(current.shape)}, got ${formatShape(t.shape)}`);
      }
    }
    for (const [name, t] of entries) this.weights.set(name, t);
    this.invalidate();
  }

  /** Number of parameter elements: all of them, and those training updates. */
  countParams(): {
    /** Every parameter element. */
    total: number;
    /** The elements training updates. */
    trainable: number;
  } {
    let total = 0;
    let trainable = 0;
    for (const p of this.paramInfos()) {
      const n = p.spec.shape.reduce((a, b) => a * b, 1);
      total += n;
      if (p.spec.trainable) trainable += n;
    }
    return { total, trainable };
  }

  /** Checks x against the model's input shape and type: [N, ...inputShape] of inputDtype. */
  protected checkInput(x: Tensor, what = 'x'): void {
    const expected = this.inputShape;
    const got = x.shape.slice(1);
    if (x.rank !== expected.length + 1 || got.some((d, i) => d !== expected[i])) {
      throw new KilnError('INVALID_SHAPE', `${what} must have shape ${formatShape([null, ...expected])} (batch first), got ${formatShape(x.shape)}`);
    }
    this.checkDtype(x, what);
  }

  /** Checks x's element type against the model's input (token ids are named as such). */
  protected checkDtype(x: Tensor, what: string): void {
    const dtype = this.inputDtype;
    if (x.dtype !== dtype) {
      throw new KilnError(
        'INVALID_ARGUMENT',
        dtype === 'float32'
          ? `${what} must be float32, got ${x.dtype}`
          : `${what} must be ${dtype} token ids, as the model's input is; got ${x.dtype}${x.dtype === 'float32' || x.dtype === 'float64' ? ' (image or vector data cannot feed a model of token ids)' : ''}`,
      );
    }
  }

  /** The model's own name for its first data input: what an object of inputs keys its tensor by. */
  protected get primaryInputName(): string {
    return INPUT_NAME;
  }

  /** The names its data inputs go by in an object of inputs: the first input's, then any others' (attention_mask). */
  get inputNames(): string[] {
    return [this.primaryInputName, ...this.otherInputs.map((o) => o.name)];
  }

  /**
   * x checked and keyed as the step graphs take it: a tensor for a model with one data input, or the
   * model's inputs by name (a model with several: `{input_ids, attention_mask}`), each checked against
   * its shape and type.
   */
  inputRows(x: ModelInputs, what = 'x'): InputRows {
    const others = this.otherInputs;
    const names = this.inputNames;
    if (x instanceof Tensor) {
      if (others.length > 0) {
        throw new KilnError('INVALID_ARGUMENT', `the model has ${names.length} inputs (${names.join(', ')}): give ${what} as an object of tensors by those names, e.g. {${names.join(', ')}}`);
      }
      this.checkInput(x, what);
      return new InputRows({ [INPUT_NAME]: x }, INPUT_NAME);
    }
    if (!x || typeof x !== 'object') throw new KilnError('INVALID_ARGUMENT', `${what} must be a tensor, or an object of tensors by the model's input names (${names.join(', ')})`);
    checkInputNames(x, names, what);
    const primary = x[this.primaryInputName]!;
    this.checkInput(primary, `${what}.${this.primaryInputName}`);
    const feeds: Record<string, Tensor> = { [INPUT_NAME]: primary };
    for (const o of others) {
      const t = x[o.name]!;
      const expected = [primary.shape[0]!, ...o.shape];
      if (formatShape(t.shape) !== formatShape(expected)) throw new KilnError('INVALID_SHAPE', `${what}.${o.name} must have shape ${formatShape(expected)} (as many rows as ${what}.${this.primaryInputName}), got ${formatShape(t.shape)}`);
      if (t.dtype !== o.dtype) throw new KilnError('INVALID_ARGUMENT', `${what}.${o.name} must be ${o.dtype}, as the model's input '${o.name}' is; got ${t.dtype}`);
      feeds[o.stepName] = t;
    }
    return new InputRows(feeds, INPUT_NAME);
  }

  /** Runs the model on x in batches with ONNX Runtime (off the main thread). */
  async predict(x: ModelInputs, options: PredictOptions = {}): Promise<Tensor<'float32'>> {
    const rows = this.inputRows(x);
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new KilnError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${batchSize}`);
    this.inferenceSession ??= await this.runtime.load(this.structure.inferenceOnnx(this.weights));
    const session = this.inferenceSession;
    const n = rows.n;
    const outShape = this.outputShape;
    const rowSize = outShape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n * rowSize);
    for (let start = 0; start < n; start += batchSize) {
      const batch = rows.slice(start, start + batchSize);
      const result = (await this.runtime.run(session, batch.feeds))[OUTPUT_NAME]!;
      const expected = [batch.n, ...outShape];
      if (formatShape(result.shape) !== formatShape(expected)) {
        throw new KilnError('RUNTIME_ERROR', `the model graph produced shape ${formatShape(result.shape)}, its structure promises ${formatShape(expected)}`);
      }
      out.set(result.data as Float32Array, start * rowSize);
    }
    return new Tensor(out, [n, ...outShape], 'float32');
  }

  /** Writes the model as one standard .onnx file, atomically. */
  async save(file: string): Promise<void> {
    await platform.writeFileAtomic(file, this.toOnnx());
  }
}
