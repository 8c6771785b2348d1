/*
 * What Conv2D and Conv2DTranspose share, as Keras' base convolution does: the filters, window,
 * strides, padding, activation, bias and initializers, checked once, and the config they save.
 */
import { KilnError } from '../errors.js';
import { checkActivation, type ActivationName } from './activations.js';
import { checkInitializer, type InitializerName } from './initializers.js';
import { Layer, type LayerArgs } from './layer.js';
import { checkPadding, pair, type Padding } from './padding.js';

/** The arguments every 2-D convolution layer takes, with Keras' names and defaults. */
export interface ConvolutionArgs extends LayerArgs {
  /** Number of output channels (filters). */
  filters: number;
  /** Height and width of the window; one number for a square one. */
  kernelSize: number | [number, number];
  /** Step between windows (Conv2D) or upsampling factor (Conv2DTranspose) along height and width (default 1). */
  strides?: number | [number, number];
  /** 'valid' (default: no padding) or 'same' (Conv2D: output input / strides, rounded up; Conv2DTranspose: input × strides). */
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

/** A 2-D convolution layer's shared settings; subclasses add their shapes, parameters and graph. */
export abstract class ConvolutionLayer extends Layer {
  /** Number of output channels. */
  readonly filters: number;
  /** Window height and width. */
  readonly kernelSize: [number, number];
  /** Step between windows (or upsampling factor) along height and width. */
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

  /** `where`: the factory's name, which error messages start with. */
  constructor(args: ConvolutionArgs, where: string) {
    super(args);
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
