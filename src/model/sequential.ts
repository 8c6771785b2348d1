import { KilnError, formatShape } from '../errors.js';
import { Graph, type Value } from '../graph/graph.js';
import { modelToProto, tensorFromProto } from '../graph/onnx-io.js';
import { encodeModel, type ModelProto } from '../graph/proto.js';
import { initialValues } from '../layers/initializers.js';
import { layerFromConfig, type Layer, type LayerShape, type SerializedLayer } from '../layers/index.js';
import type { BuildContext, ParamSpec } from '../layers/layer.js';
import { Random } from '../random.js';
import type { Tensor } from '../tensor.js';
import { INPUT_NAME, OUTPUT_NAME, type BuildOptions, type BuiltGraph, type ModelStructure, type ParamInfo } from './model.js';

/*
 * The structure of a Sequential model: a linear stack of Kiln layers, as in Keras. The model owns the
 * weights (one tensor per parameter, named `<layer>/<param>`); the stack creates them as layers are
 * added and emits the graph from the layers on demand, for inference or for training.
 */

export { INPUT_NAME, OUTPUT_NAME };
/** Metadata key holding the layer configuration in a saved .onnx file. */
export const MODEL_METADATA_KEY = 'kiln.model';

/** Arguments of `sequential()` / `new Sequential()`. */
export interface SequentialArgs {
  /** Layers to add, in order (more can be added with `add`). */
  layers?: Layer[];
  /** The model's name (default 'sequential'), shown by `summary()` and stored in saved files. */
  name?: string;
  /** Seed for initial weights (and dropout masks); the same seed gives the same model. */
  seed?: number;
}

/** What the stack reads from the model that owns it. */
export interface LayerStackOwner {
  readonly name: string;
  readonly seed: number;
  readonly weights: Map<string, Tensor>;
}

export class LayerStack implements ModelStructure {
  readonly layers: Layer[] = [];
  private readonly nameCounts = new Map<string, number>();

  constructor(private readonly owner: LayerStackOwner) {}

  add(layer: Layer): void {
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
    const existing = this.owner.weights.get(name);
    if (existing) {
      if (formatShape(existing.shape) !== formatShape(spec.shape)) {
        throw new KilnError('INVALID_SHAPE', `weight '${name}' has shape ${formatShape(existing.shape)}, the layer needs ${formatShape(spec.shape)}`);
      }
      return;
    }
    // Each weight draws from its own stream (seed, layer position, name), so adding a layer never
    // changes the initial values of the others.
    const rng = new Random(hashSeed(this.owner.seed, name));
    this.owner.weights.set(name, initialValues(spec.initializer, spec.shape, spec.fans ?? [spec.shape[0]!, spec.shape[0]!], rng));
  }

  /** Parameters in layer order with their specs. */
  paramInfos(): ParamInfo[] {
    const shapes = this.layerShapes();
    return this.layers.flatMap((layer, i) => layer.params(shapes[i]!).map((spec) => ({ name: `${layer.name}/${spec.name}`, layer, spec })));
  }

  /**
   * Emits the model's graph: a channels-last input [N, ...inputShape] transposed once to channels-first
   * for image inputs (ONNX Runtime's fast layout), then each layer's nodes.
   */
  buildGraph(weights: ReadonlyMap<string, Tensor>, options: BuildOptions = {}): BuiltGraph {
    const training = options.training ?? false;
    const paramsAsInputs = options.paramsAsInputs ?? training;
    const graph = options.graph ?? new Graph(this.owner.name);
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
          const t = weights.get(name)!;
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
      seedFor: (layer) => hashSeed(this.owner.seed, layer.name ?? '') % 2147483647,
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
  toJSON(): {
    /** Always 'kiln.sequential'. */
    format: string;
    /** Version of this description's format (1). */
    version: number;
    /** The model's name. */
    name: string;
    /** The seed its initial weights came from. */
    seed: number;
    /** Each layer's class and arguments, in order. */
    layers: SerializedLayer[];
  } {
    return { format: 'kiln.sequential', version: 1, name: this.owner.name, seed: this.owner.seed, layers: this.layers.map((l) => l.serialize()) };
  }

  /** The inference model as ONNX bytes: weights as initializers, Kiln's config in metadata_props. */
  toOnnx(weights: ReadonlyMap<string, Tensor>, metadata: ReadonlyMap<string, string>): Uint8Array {
    const { graph } = this.buildGraph(weights);
    const props: Record<string, string> = { [MODEL_METADATA_KEY]: JSON.stringify(this.toJSON()) };
    for (const [k, v] of metadata) props[k] = v;
    return encodeModel(modelToProto(graph, props));
  }

  inferenceOnnx(weights: ReadonlyMap<string, Tensor>): Uint8Array {
    return encodeModel(modelToProto(this.buildGraph(weights).graph));
  }
}

/** The weights a Kiln-written proto stores for a model's parameters, checked by name. */
export function storedWeights(proto: ModelProto, names: Iterable<string>, file: string): Map<string, Tensor> {
  const stored = new Map((proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const values = new Map<string, Tensor>();
  for (const name of names) {
    const t = stored.get(name);
    if (!t) throw new KilnError('CORRUPT_FILE', `'${file}': weight '${name}' is missing from the model's initializers`);
    values.set(name, tensorFromProto(t));
  }
  return values;
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
