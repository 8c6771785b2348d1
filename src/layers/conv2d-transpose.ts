/*
 * Keras' Conv2DTranspose: the layer that upsamples in autoencoders' decoders, U-Nets and GAN
 * generators. An ONNX ConvTranspose whose pads and output_padding place the output where TensorFlow's
 * conv2d_transpose puts it, at the size Keras computes.
 */
import { KilnError, formatShape } from '../errors.js';
import type { Value } from '../graph/graph.js';
import { applyActivation } from './activations.js';
import { ConvolutionLayer, type ConvolutionArgs } from './convolution.js';
import type { BuildContext, LayerShape, ParamSpec } from './layer.js';
import type { Padding } from './padding.js';

/** Arguments of `layers.conv2dTranspose`, as Keras' `Conv2DTranspose` takes them. */
export interface Conv2DTransposeArgs extends ConvolutionArgs {
  /**
   * Rows and columns added at the end of the output, each less than its stride (Keras' output_padding).
   * Without it the output is input × strides ('same'), or input × strides + max(kernel − strides, 0) ('valid').
   */
  outputPadding?: number | [number, number];
}

/** Output size along one axis, as Keras' deconv_output_length computes it (dilation 1). */
export function transposedLength(size: number, k: number, s: number, padding: Padding, outputPadding?: number): number {
  if (outputPadding === undefined) return padding === 'same' ? size * s : size * s + Math.max(k - s, 0);
  const pad = padding === 'same' ? Math.floor(k / 2) : 0;
  return (size - 1) * s + k - 2 * pad + outputPadding;
}

/**
 * ONNX ConvTranspose pads and output_padding along one axis for an output of `length`: TensorFlow
 * computes conv2d_transpose as the gradient of the conv2d from `length` back to `size`, whose 'same'
 * padding puts floor(total / 2) before; what the full transposed output has beyond `length` is cut at
 * the end, and what `length` has beyond it (strides larger than the kernel, output padding) is
 * output_padding.
 */
function placement(size: number, k: number, s: number, padding: Padding, length: number): { before: number; after: number; outputPadding: number } {
  const full = (size - 1) * s + k;
  const before = padding === 'same' ? Math.floor(Math.max(full - length, 0) / 2) : 0;
  const after = full - before - length;
  return after >= 0 ? { before, after, outputPadding: 0 } : { before, after: 0, outputPadding: -after };
}

/** 2-D transposed convolution: an ONNX ConvTranspose with its kernel stored [channels, filters, kH, kW]. */
export class Conv2DTranspose extends ConvolutionLayer {
  /** The class name stored in saved models ('Conv2DTranspose'). */
  readonly className = 'Conv2DTranspose';
  readonly baseName = 'conv2d_transpose';
  /** Extra rows and columns at the end of the output, when given. */
  readonly outputPadding: [number, number] | undefined;

  constructor(args: Conv2DTransposeArgs) {
    super(args, 'conv2dTranspose');
    if (args.outputPadding !== undefined) {
      const p = typeof args.outputPadding === 'number' ? [args.outputPadding, args.outputPadding] : args.outputPadding;
      if (!Array.isArray(p) || p.length !== 2 || p.some((d, i) => !Number.isInteger(d) || d < 0 || d >= this.strides[i]!)) {
        throw new KilnError('INVALID_ARGUMENT', `conv2dTranspose: outputPadding must be a non-negative integer (or a pair) less than strides ${formatShape(this.strides)}, got ${JSON.stringify(args.outputPadding)}`);
      }
      this.outputPadding = [p[0]!, p[1]!];
    }
  }

  computeOutputShape(inputShape: LayerShape): LayerShape {
    this.requireRank(inputShape, 3, 'an image [height, width, channels]');
    const [h, w] = inputShape as [number, number, number];
    return [...this.lengths(h, w), this.filters];
  }

  private lengths(h: number, w: number): [number, number] {
    return [0, 1].map((i) => transposedLength([h, w][i]!, this.kernelSize[i]!, this.strides[i]!, this.padding, this.outputPadding?.[i])) as [number, number];
  }

  override params(inputShape: LayerShape): ParamSpec[] {
    const c = inputShape[2]!;
    const [kh, kw] = this.kernelSize;
    // Keras' fans for its kernel (kH, kW, filters, channels): in = filters·kH·kW, out = channels·kH·kW.
    const specs: ParamSpec[] = [
      { name: 'kernel', shape: [c, this.filters, kh, kw], initializer: this.kernelInitializer, fans: [this.filters * kh * kw, c * kh * kw], trainable: true },
    ];
    if (this.useBias) specs.push({ name: 'bias', shape: [this.filters], initializer: this.biasInitializer, trainable: true });
    return specs;
  }

  build(ctx: BuildContext, input: Value, inputShape: LayerShape): Value {
    const [kernel, bias] = this.params(inputShape).map((p) => ctx.param(this, p));
    const [h, w] = inputShape as [number, number, number];
    const [oh, ow] = this.lengths(h, w);
    const along = [placement(h, this.kernelSize[0], this.strides[0], this.padding, oh), placement(w, this.kernelSize[1], this.strides[1], this.padding, ow)];
    const conv = ctx.graph.op1('ConvTranspose', bias ? [input, kernel!, bias] : [input, kernel!], {
      kernel_shape: this.kernelSize,
      strides: this.strides,
      pads: [along[0]!.before, along[1]!.before, along[0]!.after, along[1]!.after],
      output_padding: [along[0]!.outputPadding, along[1]!.outputPadding],
    }, this.name);
    return applyActivation(ctx.graph, conv, this.activation);
  }

  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), ...(this.outputPadding ? { outputPadding: this.outputPadding } : {}) };
  }
}
