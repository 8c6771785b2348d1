import { KilnError } from '../errors.js';
import type { Value } from '../graph/graph.js';
import { Tensor } from '../tensor.js';
import { applyActivation, checkActivation, type ActivationName } from './activations.js';
import { checkInitializer, type InitializerName } from './initializers.js';
import { Layer, type BuildContext, type LayerArgs, type LayerShape, type ParamSpec } from './layer.js';

/** Arguments of `layers.dense`, as Keras' `Dense` takes them. */
export interface DenseArgs extends LayerArgs {
  /** Number of outputs. */
  units: number;
  /** Applied after the affine map (default 'linear': none). */
  activation?: ActivationName;
  /** Whether to add a bias (default true). */
  useBias?: boolean;
  /** How the kernel starts (default 'glorotUniform', seeded by the model's seed). */
  kernelInitializer?: InitializerName;
  /** How the bias starts (default 'zeros'). */
  biasInitializer?: InitializerName;
}

/** Fully connected layer: Gemm with the kernel stored [inputs, units] as in Keras. */
export class Dense extends Layer {
  /** The class name stored in saved models ('Dense'). */
  readonly className = 'Dense';
  readonly baseName = 'dense';
  /** Number of outputs. */
  readonly units: number;
  /** Activation applied to the output. */
  readonly activation: ActivationName;
  /** Whether the layer has a bias. */
  readonly useBias: boolean;
  /** Initializer of the kernel. */
  readonly kernelInitializer: InitializerName;
  /** Initializer of the bias. */
  readonly biasInitializer: InitializerName;

  constructor(args: DenseArgs) {
    super(args);
    if (!Number.isInteger(args.units) || args.units <= 0) {
      throw new KilnError('INVALID_ARGUMENT', `dense: units must be a positive integer, got ${JSON.stringify(args.units)}`);
    }
    this.units = args.units;
    this.activation = checkActivation(args.activation, 'dense');
    this.useBias = args.useBias ?? true;
    this.kernelInitializer = checkInitializer(args.kernelInitializer ?? 'glorotUniform', 'dense');
    this.biasInitializer = checkInitializer(args.biasInitializer ?? 'zeros', 'dense');
  }

  computeOutputShape(inputShape: LayerShape): LayerShape {
    if (inputShape.length !== 1) {
      throw new KilnError(
        'INVALID_SHAPE',
        `Dense '${this.name}' expects a flat input [features], got [null, ${inputShape.join(', ')}]: add a flatten or globalAveragePooling2d layer before it`,
      );
    }
    return [this.units];
  }

  override params(inputShape: LayerShape): ParamSpec[] {
    const n = inputShape[0]!;
    const specs: ParamSpec[] = [
      { name: 'kernel', shape: [n, this.units], initializer: this.kernelInitializer, fans: [n, this.units], trainable: true },
    ];
    if (this.useBias) specs.push({ name: 'bias', shape: [this.units], initializer: this.biasInitializer, trainable: true });
    return specs;
  }

  build(ctx: BuildContext, input: Value, inputShape: LayerShape): Value {
    const [kernel, bias] = this.params(inputShape).map((p) => ctx.param(this, p));
    const y = ctx.graph.op1('Gemm', bias ? [input, kernel!, bias] : [input, kernel!], {}, this.name);
    return applyActivation(ctx.graph, y, this.activation);
  }

  getConfig(): Record<string, unknown> {
    return {
      units: this.units,
      activation: this.activation,
      useBias: this.useBias,
      kernelInitializer: this.kernelInitializer,
      biasInitializer: this.biasInitializer,
    };
  }
}

/**
 * Flattens to [features]. Inside the graph images are channel-first, so features are ordered
 * (channel, row, column) — unlike Keras' channels-last order; this only matters when importing
 * Keras dense weights, which Kiln does not do.
 */
export class Flatten extends Layer {
  /** The class name stored in saved models. */
  readonly className = 'Flatten';
  readonly baseName = 'flatten';
  constructor(args: LayerArgs = {}) {
    super(args);
  }
  computeOutputShape(inputShape: LayerShape): LayerShape {
    return [inputShape.reduce((a, b) => a * b, 1)];
  }
  build(ctx: BuildContext, input: Value): Value {
    return ctx.graph.op1('Flatten', [input], { axis: 1 }, this.name);
  }
  getConfig(): Record<string, unknown> {
    return {};
  }
}

/** Arguments of `layers.activation`. */
export interface ActivationArgs extends LayerArgs {
  /** The function to apply (softmax normalizes over the last axis, the channels of an image). */
  activation: ActivationName;
}

/** Applies an activation function on its own, as Keras' `Activation` layer does; no parameters. */
export class Activation extends Layer {
  /** The class name stored in saved models ('Activation'). */
  readonly className = 'Activation';
  readonly baseName = 'activation';
  /** The function applied. */
  readonly activation: ActivationName;
  constructor(args: ActivationArgs) {
    super(args);
    this.activation = checkActivation(args.activation, 'activation');
  }
  computeOutputShape(inputShape: LayerShape): LayerShape {
    return inputShape;
  }
  build(ctx: BuildContext, input: Value, inputShape: LayerShape): Value {
    // Keras normalizes softmax over the last axis; only rank-3 images are channel-first in the graph.
    return applyActivation(ctx.graph, input, this.activation, inputShape.length === 3 ? 1 : -1);
  }
  getConfig(): Record<string, unknown> {
    return { activation: this.activation };
  }
}

/** Arguments of `layers.dropout`. */
export interface DropoutArgs extends LayerArgs {
  /** Fraction of the inputs set to zero while training, in [0, 1); the rest are scaled by 1 / (1 − rate). */
  rate: number;
  /** Seed of the masks (default: derived from the model's seed and the layer's position). */
  seed?: number;
}

/**
 * Dropout: in the training graph an ONNX Dropout in training mode (seeded), elsewhere nothing at all,
 * so exported models carry no dropout node.
 */
export class Dropout extends Layer {
  /** The class name stored in saved models ('Dropout'). */
  readonly className = 'Dropout';
  readonly baseName = 'dropout';
  /** Fraction of the inputs dropped while training. */
  readonly rate: number;
  /** Seed of the masks, when one was given. */
  readonly seed: number | undefined;
  constructor(args: DropoutArgs) {
    super(args);
    if (typeof args.rate !== 'number' || !(args.rate >= 0 && args.rate < 1)) {
      throw new KilnError('INVALID_ARGUMENT', `dropout: rate must be in [0, 1), got ${JSON.stringify(args.rate)}`);
    }
    this.rate = args.rate;
    this.seed = args.seed;
  }
  computeOutputShape(inputShape: LayerShape): LayerShape {
    return inputShape;
  }
  build(ctx: BuildContext, input: Value): Value {
    if (!ctx.training || this.rate === 0) return input;
    const g = ctx.graph;
    const ratio = g.constant(new Tensor(Float32Array.of(this.rate), [], 'float32'), 'ratio');
    const training = g.constant(new Tensor(Uint8Array.of(1), [], 'bool'), 'training_mode');
    return g.op('Dropout', [input, ratio, training], { seed: this.seed ?? ctx.seedFor(this) }, { outputs: 2, name: this.name })[0]!;
  }
  getConfig(): Record<string, unknown> {
    return this.seed === undefined ? { rate: this.rate } : { rate: this.rate, seed: this.seed };
  }
}
