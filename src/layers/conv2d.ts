import { KilnError, formatShape } from '../errors.js';
import type { Value } from '../graph/graph.js';
import { applyActivation, checkActivation, type ActivationName } from './activations.js';
import { checkInitializer, type InitializerName } from './initializers.js';
import { Layer, type BuildContext, type LayerArgs, type LayerShape, type ParamSpec } from './layer.js';
import { checkPadding, onnxPads, outputLength, pair, type Padding } from './padding.js';

/** Arguments of `layers.conv2d`, as Keras' `Conv2D` takes them. */
export interface Conv2DArgs extends LayerArgs {
  /** Number of output channels (filters). */
  filters: number;
  /** Height and width of the window; one number for a square one. */
  kernelSize: number | [number, number];
  /** Step between windows along height and width (default 1). */
  strides?: number | [number, number];
  /** 'valid' (default: no padding) or 'same' (pad so the output is input / strides, rounded up). */
  padding?: Padding;
  /** Applied after the convolution (default 'linear': none). */
  activation?: ActivationName;
  /** Whether to add a bias per filter (default true). */
  useBias?: boolean;
  /** How the kernel starts (default 'glorotUniform', seeded by the model's seed). */
  kernelInitializer?: InitializerName;
  /** How the bias starts (default 'zeros'). */
  biasInitializer?: InitializerName;
}

/** 2-D convolution: an ONNX Conv with its kernel stored [filters, channels, kH, kW]. */
export class Conv2D extends Layer {
  /** The class name stored in saved models ('Conv2D'). */
  readonly className = 'Conv2D';
  readonly baseName = 'conv2d';
  /** Number of output channels. */
  readonly filters: number;
  /** Window height and width. */
  readonly kernelSize: [number, number];
  /** Step between windows along height and width. */
  readonly strides: [number, number];
  /** 'valid' or 'same'. */
  readonly padding: Padding;
  /** Activation applied to the output. */
  readonly activation: ActivationName;
  /** Whether the layer has a bias. */
  readonly useBias: boolean;
  /** Initializer of the kernel. */
  readonly kernelInitializer: InitializerName;
  /** Initializer of the bias. */
  readonly biasInitializer: InitializerName;

  constructor(args: Conv2DArgs) {
    super(args);
    const where = 'conv2d';
    if (!Number.isInteger(args.filters) || args.filters <= 0) {
      throw new KilnError('INVALID_ARGUMENT', `${where}: filters must be a positive integer, got ${JSON.stringify(args.filters)}`);
    }
    this.filters = args.filters;
    this.kernelSize = pair(args.kernelSize, 'kernelSize', where);
    this.strides = pair(args.strides ?? 1, 'strides', where);
    this.padding = checkPadding(args.padding, where);
    this.activation = checkActivation(args.activation, where);
    this.useBias = args.useBias ?? true;
    this.kernelInitializer = checkInitializer(args.kernelInitializer ?? 'glorotUniform', where);
    this.biasInitializer = checkInitializer(args.biasInitializer ?? 'zeros', where);
  }

  computeOutputShape(inputShape: LayerShape): LayerShape {
    this.requireRank(inputShape, 3, 'an image [height, width, channels]');
    const [h, w] = inputShape as [number, number, number];
    const oh = outputLength(h, this.kernelSize[0], this.strides[0], this.padding);
    const ow = outputLength(w, this.kernelSize[1], this.strides[1], this.padding);
    if (oh < 1 || ow < 1) {
      throw new KilnError('INVALID_SHAPE', `${this.className} '${this.name}': input ${formatShape([null, ...inputShape])} is smaller than the kernel ${formatShape(this.kernelSize)}`);
    }
    return [oh, ow, this.filters];
  }

  override params(inputShape: LayerShape): ParamSpec[] {
    const c = inputShape[2]!;
    const [kh, kw] = this.kernelSize;
    const specs: ParamSpec[] = [
      { name: 'kernel', shape: [this.filters, c, kh, kw], initializer: this.kernelInitializer, fans: [c * kh * kw, this.filters * kh * kw], trainable: true },
    ];
    if (this.useBias) specs.push({ name: 'bias', shape: [this.filters], initializer: this.biasInitializer, trainable: true });
    return specs;
  }

  build(ctx: BuildContext, input: Value, inputShape: LayerShape): Value {
    const [kernel, bias] = this.params(inputShape).map((p) => ctx.param(this, p));
    const pads = onnxPads(inputShape[0]!, inputShape[1]!, this.kernelSize, this.strides, this.padding);
    const conv = ctx.graph.op1('Conv', bias ? [input, kernel!, bias] : [input, kernel!], {
      kernel_shape: this.kernelSize,
      strides: this.strides,
      pads,
    }, this.name);
    return applyActivation(ctx.graph, conv, this.activation);
  }

  getConfig(): Record<string, unknown> {
    return {
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      activation: this.activation,
      useBias: this.useBias,
      kernelInitializer: this.kernelInitializer,
      biasInitializer: this.biasInitializer,
    };
  }
}
