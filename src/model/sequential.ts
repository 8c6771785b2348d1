import { KilnError, formatShape } from '../errors.js';
import { Graph, type Value } from '../graph/graph.js';
import { modelToProto, tensorFromProto } from '../graph/onnx-io.js';
import { encodeModel, type ModelProto } from '../graph/proto.js';
import { initialValues } from '../layers/initializers.js';
import { layerFromConfig, type Layer, type LayerShape, type SerializedLayer } from '../layers/index.js';
import type { BuildContext, ParamSpec } from '../layers/layer.js';
import { Random } from '../random.js';
import { sharedRuntime, type Runtime } from '../runtime/runtime.js';
import type { SessionInfo } from '../runtime/protocol.js';
import { Tensor } from '../tensor.js';
import { formatBytes, formatNumber, formatTable } from '../cli/format.js';
import '../ops/index.js';
import { writeFileAtomic } from './atomic-write.js';
import { readOnnxFile } from './read-model.js';

export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'output';
/** Metadata key holding the layer configuration in a saved .onnx file. */
export const MODEL_METADATA_KEY = 'kiln.model';

export interface SequentialArgs {
  layers?: Layer[];
  name?: string;
  /** Seed for initial weights (and dropout masks); the same seed gives the same model. */
  seed?: number;
}

export interface ParamInfo {
  /** `<layer name>/<param name>`: the initializer's name in the ONNX graph. */
  name: string;
  layer: Layer;
  spec: ParamSpec;
}

/** A graph built from the layers, with the parameters it reads and (training) the statistics it updates. */
export interface BuiltGraph {
  graph: Graph;
  input: Value;
  output: Value;
  params: ParamInfo[];
  /** Training graphs: new values of non-trainable parameters (moving statistics), by parameter name. */
  updates: Map<string, Value>;
}

export interface BuildOptions {
  training?: boolean;
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
}

export interface PredictOptions {
  batchSize?: number;
}

/**
 * A linear stack of layers, as in Keras. The model owns its weights (one tensor per parameter, named
 * `<layer>/<param>`); its graph is built from the layers on demand, for inference or for training.
 */
export class Sequential {
  readonly layers: Layer[] = [];
  name: string;
  readonly seed: number;
  /** Current parameter values by name. */
  readonly weights = new Map<string, Tensor>();
  /** Free-form metadata stored with the model (training config, history). */
  readonly metadata = new Map<string, string>();
  protected runtime: Runtime = sharedRuntime();
  private inferenceSession: SessionInfo | undefined;
  private readonly nameCounts = new Map<string, number>();

  constructor(args: SequentialArgs = {}) {
    this.name = args.name ?? 'sequential';
    this.seed = args.seed ?? 42;
    for (const layer of args.layers ?? []) this.add(layer);
  }

  add(layer: Layer): this {
    if (this.layers.length === 0 && !layer.inputShape) {
      throw new KilnError('INVALID_SHAPE', `the first layer of a sequential model needs an inputShape (e.g. inputShape: [32, 32, 3]); ${layer.className} has none`);
    }
    const taken = new Set(this.layers.map((l) => l.name));
    const automatic = layer.name === undefined;
    let count = this.nameCounts.get(layer.baseName) ?? 0;
    if (automatic) {
      // Keras' scheme (dense, dense_1, dense_2, ...), skipping any name a layer already has.
      const nameFor = (n: number) => (n === 0 ? layer.baseName : `${layer.baseName}_${n}`);
      while (taken.has(nameFor(count))) count++;
      layer.name = nameFor(count);
    } else if (taken.has(layer.name)) {
      throw new KilnError('INVALID_ARGUMENT', `the model already has a layer named '${layer.name}': layer names must be unique`);
    }
    try {
      // Checks the new layer accepts what the previous one produces before accepting it.
      const shapes = this.shapesWith(layer);
      for (const spec of layer.params(shapes.at(-2)!)) this.ensureWeight(layer, spec);
    } catch (e) {
      // A refused layer keeps no automatic name, and uses up no number.
      if (automatic) layer.name = undefined;
      throw e;
    }
    if (automatic) this.nameCounts.set(layer.baseName, count + 1);
    this.layers.push(layer);
    this.invalidate();
    return this;
  }

  get inputShape(): number[] {
    if (this.layers.length === 0) throw new KilnError('INVALID_ARGUMENT', 'the model has no layers');
    return this.layers[0]!.inputShape!;
  }

  get outputShape(): number[] {
    return this.layerShapes().at(-1)!;
  }

  /** Input shape followed by each layer's output shape (Keras convention, no batch dimension). */
  layerShapes(): LayerShape[] {
    const shapes: LayerShape[] = [this.inputShape];
    for (const layer of this.layers) shapes.push(layer.computeOutputShape(shapes.at(-1)!));
    return shapes;
  }

  private shapesWith(next: Layer): LayerShape[] {
    const shapes: LayerShape[] = [this.layers.length === 0 ? next.inputShape! : this.inputShape];
    for (const layer of [...this.layers, next]) shapes.push(layer.computeOutputShape(shapes.at(-1)!));
    return shapes;
  }

  private ensureWeight(layer: Layer, spec: ParamSpec): void {
    const name = `${layer.name}/${spec.name}`;
    const existing = this.weights.get(name);
    if (existing) {
      if (formatShape(existing.shape) !== formatShape(spec.shape)) {
        throw new KilnError('INVALID_SHAPE', `weight '${name}' has shape ${formatShape(existing.shape)}, the layer needs ${formatShape(spec.shape)}`);
      }
      return;
    }
    // Each weight draws from its own stream (seed, layer position, name), so adding a layer never
    // changes the initial values of the others.
    const rng = new Random(hashSeed(this.seed, name));
    this.weights.set(name, initialValues(spec.initializer, spec.shape, spec.fans ?? [spec.shape[0]!, spec.shape[0]!], rng));
  }

  /** Drops cached sessions after weights or structure change. */
  protected invalidate(): void {
    const s = this.inferenceSession;
    this.inferenceSession = undefined;
    if (s) void this.runtime.release(s).catch(() => undefined);
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

  /** Parameters in layer order with their specs. */
  paramInfos(): ParamInfo[] {
    const shapes = this.layerShapes();
    return this.layers.flatMap((layer, i) => layer.params(shapes[i]!).map((spec) => ({ name: `${layer.name}/${spec.name}`, layer, spec })));
  }

  countParams(): { total: number; trainable: number } {
    let total = 0;
    let trainable = 0;
    for (const p of this.paramInfos()) {
      const n = p.spec.shape.reduce((a, b) => a * b, 1);
      total += n;
      if (p.spec.trainable) trainable += n;
    }
    return { total, trainable };
  }

  /**
   * Emits the model's graph: a channels-last input [N, ...inputShape] transposed once to channels-first
   * for image inputs (ONNX Runtime's fast layout), then each layer's nodes.
   */
  buildGraph(options: BuildOptions = {}): BuiltGraph {
    const training = options.training ?? false;
    const paramsAsInputs = options.paramsAsInputs ?? training;
    const graph = options.graph ?? new Graph(this.name);
    const params: ParamInfo[] = [];
    const updates = new Map<string, Value>();
    const paramValues = new Map<string, Value>();
    const ctx: BuildContext = {
      graph,
      training,
      param: (layer, spec) => {
        const name = `${layer.name}/${spec.name}`;
        let v = paramValues.get(name);
        if (!v) {
          const t = this.weights.get(name)!;
          const info = { name, layer, spec };
          v = options.paramValue
            ? options.paramValue(graph, info)
            : paramsAsInputs
              ? graph.input(name, 'float32', [...t.shape])
              : graph.initializer(name, t);
          paramValues.set(name, v);
          params.push(info);
        }
        return v;
      },
      updateParam: (layer, name, value) => updates.set(`${layer.name}/${name}`, value),
      seedFor: (layer) => hashSeed(this.seed, layer.name ?? '') % 2147483647,
    };
    const shapes = this.layerShapes();
    const input = graph.input(INPUT_NAME, 'float32', [options.batchSize ?? 'N', ...this.inputShape]);
    let x: Value = this.inputShape.length === 3 ? graph.op1('Transpose', [input], { perm: [0, 3, 1, 2] }, 'to_channels_first') : input;
    this.layers.forEach((layer, i) => {
      x = layer.build(ctx, x, shapes[i]!);
      if (options.afterLayer) x = options.afterLayer(graph, layer, x, i);
    });
    // Image-shaped outputs go back to channels-last so callers see Keras' layout.
    if (shapes.at(-1)!.length === 3) x = graph.op1('Transpose', [x], { perm: [0, 2, 3, 1] }, 'to_channels_last');
    const output = graph.output(x, OUTPUT_NAME);
    return { graph, input, output, params, updates };
  }

  /** The serializable description of the model (layers and seed), stored in saved files. */
  toJSON(): { format: string; version: number; name: string; seed: number; layers: SerializedLayer[] } {
    return { format: 'kiln.sequential', version: 1, name: this.name, seed: this.seed, layers: this.layers.map((l) => l.serialize()) };
  }

  /** The inference model as ONNX bytes: weights as initializers, Kiln's config in metadata_props. */
  toOnnx(): Uint8Array {
    const { graph } = this.buildGraph();
    const metadata: Record<string, string> = { [MODEL_METADATA_KEY]: JSON.stringify(this.toJSON()) };
    for (const [k, v] of this.metadata) metadata[k] = v;
    return encodeModel(modelToProto(graph, metadata));
  }

  /** Prints (and returns) a Keras-like table of layers, output shapes and parameter counts. */
  summary(print: (line: string) => void = console.log): string {
    const shapes = this.layerShapes();
    const rows = this.layers.map((l, i) => [`${l.name} (${l.className})`, formatShape([null, ...shapes[i + 1]!]), l.countParams(shapes[i]!)]);
    const { total, trainable } = this.countParams();
    const text = [
      `Model: "${this.name}"`,
      formatTable(rows, { header: ['Layer (type)', 'Output Shape', 'Param #'] }),
      `Total params: ${formatNumber(total)} (${formatBytes(total * 4)})`,
      `Trainable params: ${formatNumber(trainable)}`,
      `Non-trainable params: ${formatNumber(total - trainable)}`,
    ].join('\n');
    print(text);
    return text;
  }

  /** Checks x against the model's input shape: [N, ...inputShape] float32. */
  protected checkInput(x: Tensor, what = 'x'): void {
    const expected = this.inputShape;
    const got = x.shape.slice(1);
    if (x.rank !== expected.length + 1 || got.some((d, i) => d !== expected[i])) {
      throw new KilnError('INVALID_SHAPE', `${what} must have shape ${formatShape([null, ...expected])} (batch first), got ${formatShape(x.shape)}`);
    }
    if (x.dtype !== 'float32') throw new KilnError('INVALID_ARGUMENT', `${what} must be float32, got ${x.dtype}`);
  }

  /** Runs the model on x in batches with ONNX Runtime (off the main thread). */
  async predict(x: Tensor, options: PredictOptions = {}): Promise<Tensor<'float32'>> {
    this.checkInput(x);
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new KilnError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${batchSize}`);
    this.inferenceSession ??= await this.runtime.load(this.toOnnx());
    const session = this.inferenceSession;
    const n = x.shape[0]!;
    const outShape = this.outputShape;
    const rowSize = outShape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n * rowSize);
    for (let start = 0; start < n; start += batchSize) {
      const batch = x.slice(start, start + batchSize);
      const result = (await this.runtime.run(session, { [INPUT_NAME]: batch }))[OUTPUT_NAME]!;
      const expected = [batch.shape[0]!, ...outShape];
      if (formatShape(result.shape) !== formatShape(expected)) {
        throw new KilnError('RUNTIME_ERROR', `the model graph produced shape ${formatShape(result.shape)}, its layers promise ${formatShape(expected)}`);
      }
      out.set(result.data as Float32Array, start * rowSize);
    }
    return new Tensor(out, [n, ...outShape], 'float32');
  }

  /** Writes the model as one standard .onnx file, atomically. */
  async save(file: string): Promise<void> {
    await writeFileAtomic(file, this.toOnnx());
  }

  /** Rebuilds a model from a decoded Kiln .onnx file. */
  static fromProto<T extends Sequential>(this: new (args: SequentialArgs) => T, proto: ModelProto, file = '<bytes>'): T {
    const model = new this(sequentialArgsFromProto(proto, file));
    model.restoreFromProto(proto, file);
    return model;
  }

  /** Loads metadata and weights from a Kiln-written proto into this (freshly built) model. */
  restoreFromProto(proto: ModelProto, file: string): void {
    for (const { key, value } of proto.metadataProps ?? []) {
      if (key && key !== MODEL_METADATA_KEY) this.metadata.set(key, value ?? '');
    }
    const stored = new Map((proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
    const values = new Map<string, Tensor>();
    for (const name of this.weights.keys()) {
      const t = stored.get(name);
      if (!t) throw new KilnError('CORRUPT_FILE', `'${file}': weight '${name}' is missing from the model's initializers`);
      values.set(name, tensorFromProto(t));
    }
    this.setWeights(values);
  }

  static async load<T extends Sequential>(this: (new (args: SequentialArgs) => T) & { fromProto(p: ModelProto, f: string): T }, file: string): Promise<T> {
    const { proto } = await readOnnxFile(file);
    return this.fromProto(proto, file);
  }
}

/** Reads the layer configuration Kiln stores in metadata_props. */
export function sequentialArgsFromProto(proto: ModelProto, file: string): SequentialArgs {
  const entry = proto.metadataProps?.find((m) => m.key === MODEL_METADATA_KEY);
  if (!entry?.value) throw new KilnError('NOT_ONNX', `'${file}' has no Kiln model configuration (metadata '${MODEL_METADATA_KEY}')`);
  let config: { format?: string; name?: string; seed?: number; layers?: SerializedLayer[] };
  try {
    config = JSON.parse(entry.value);
  } catch (err) {
    throw new KilnError('CORRUPT_FILE', `'${file}': metadata '${MODEL_METADATA_KEY}' is not valid JSON (${(err as Error).message})`);
  }
  if (config.format !== 'kiln.sequential' || !Array.isArray(config.layers)) {
    throw new KilnError('CORRUPT_FILE', `'${file}': metadata '${MODEL_METADATA_KEY}' should describe a kiln.sequential model with layers, found format ${JSON.stringify(config.format)}`);
  }
  return {
    name: config.name,
    seed: config.seed,
    layers: config.layers.map((l, i) => layerFromConfig(l, `'${file}' layer ${i}`)),
  };
}

/** FNV-1a over the seed and a name: a stable per-weight seed. */
function hashSeed(seed: number, name: string): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  return h;
}

export function sequential(args: SequentialArgs | Layer[] = {}): Sequential {
  return new Sequential(Array.isArray(args) ? { layers: args } : args);
}
