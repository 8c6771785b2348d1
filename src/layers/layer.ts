import { KilnError, formatShape } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';
import type { Tensor } from '../tensor.js';
import type { InitializerName } from './initializers.js';

/** A Keras-style shape without the batch dimension, channels last: [32, 32, 3] or [64]. */
export type LayerShape = number[];

/** A parameter a layer declares: its name, stored shape, initializer and whether it trains. */
export interface ParamSpec {
  /** Short name within the layer: 'kernel', 'bias', 'gamma', ... */
  name: string;
  /** Shape as stored in the ONNX graph (conv kernels are [out, in, kH, kW]). */
  shape: number[];
  /** How the parameter starts. */
  initializer: InitializerName;
  /** fan_in / fan_out for the variance-scaling initializers. */
  fans?: [number, number];
  /**
   * False for statistics updated by the training step itself (batch normalization's moving mean and variance).
   */
  trainable: boolean;
}

/**
 * What a layer needs to emit its nodes: the graph, whether this is the training graph, and access to
 * its parameters (initializers in an inference graph, graph inputs in a training graph).
 */
export interface BuildContext {
  /** The graph being built. */
  graph: Graph;
  /** Whether this is the training graph (dropout active, batch statistics used). */
  training: boolean;
  /** The value of one of the layer's parameters in this graph. */
  param(layer: Layer, spec: ParamSpec): Value;
  /** Training graphs only: a non-trainable parameter (a running statistic) gets a new value each step. */
  updateParam(layer: Layer, name: string, value: Value): void;
  /** Seed for random ops a layer emits (dropout masks), distinct per layer. */
  seedFor(layer: Layer): number;
}

/** Arguments every layer takes. */
export interface LayerArgs {
  /** The layer's name, unique in its model (default: Keras-style `conv2d_1`, `dense_2`, ...). */
  name?: string;
  /** Shape of one example (no batch dimension), channels last; only the first layer of a model needs it. */
  inputShape?: number[];
  /** Keras' alternative to inputShape: [batch, ...inputShape]. */
  batchInputShape?: (number | null)[];
}

/** A layer as saved models store it: its class name and `getConfig()`. */
export type SerializedLayer = {
  /** The layer's class name ('Conv2D', ...). */
  className: string;
  /** Its arguments, as `getConfig()` returns them plus `name` and `inputShape`. */
  config: Record<string, unknown>;
};

/**
 * A layer emits graph nodes and declares its parameters; it holds no numeric code and no weights
 * (the model owns those, keyed by `<layer name>/<param name>`).
 */
export abstract class Layer {
  /** The layer's class name as saved models store it ('Conv2D', 'Dense', ...). */
  abstract readonly className: string;
  /** Keras' snake_case base for automatic names (conv2d, max_pooling2d, dense, ...). */
  abstract readonly baseName: string;
  /** The layer's name; assigned when it is added to a model if not given. */
  name: string | undefined;
  /** Shape of one example, when given to this layer (the first layer of a model). */
  readonly inputShape: number[] | undefined;

  constructor(args: LayerArgs) {
    this.name = args.name;
    const inputShape = args.inputShape ?? (args.batchInputShape ? (args.batchInputShape.slice(1) as number[]) : undefined);
    if (inputShape !== undefined) {
      if (!Array.isArray(inputShape) || inputShape.length === 0 || inputShape.some((d) => !Number.isInteger(d) || d <= 0)) {
        throw new KilnError(
          'INVALID_SHAPE',
          `${this.constructor.name}: inputShape must be a non-empty list of positive integers (without the batch dimension), got ${JSON.stringify(inputShape)}`,
        );
      }
    }
    this.inputShape = inputShape;
  }

  /** Parameters this layer has for an input of the given shape. */
  params(_inputShape: LayerShape): ParamSpec[] {
    return [];
  }

  /** Output shape for an input shape (Keras convention, channels last, no batch dim). */
  abstract computeOutputShape(inputShape: LayerShape): LayerShape;

  /** Emits the layer's nodes. `input` is channel-first inside the graph when it is an image. */
  abstract build(ctx: BuildContext, input: Value, inputShape: LayerShape): Value;

  /** The layer's own arguments, enough to rebuild it. */
  abstract getConfig(): Record<string, unknown>;

  /** The layer as saved models store it. */
  serialize(): SerializedLayer {
    const config: Record<string, unknown> = { name: this.name, ...this.getConfig() };
    if (this.inputShape) config.inputShape = this.inputShape;
    return { className: this.className, config };
  }

  /** Number of parameter elements for an input of this shape. */
  countParams(inputShape: LayerShape): number {
    return this.params(inputShape).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  }

  protected requireRank(inputShape: LayerShape, rank: number, what: string): void {
    if (inputShape.length !== rank) {
      throw new KilnError(
        'INVALID_SHAPE',
        `${this.className} '${this.name}' expects ${what} (rank ${rank} without the batch dimension), got input shape ${formatShape([null, ...inputShape])}` +
          (rank === 3 && inputShape.length === 1 ? ': it cannot follow flatten or dense' : ''),
      );
    }
  }
}

/** A weight tensor as the model stores it. */
export interface Weight {
  /** Its name in the model: `<layer name>/<param name>`. */
  name: string;
  /** Its value. */
  tensor: Tensor;
  /** Whether training updates it. */
  trainable: boolean;
}
