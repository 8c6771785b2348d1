import { KilnError, formatShape } from '../errors.js';
import type { Value } from '../graph/graph.js';
import { applyActivation } from './activations.js';
import { ConvolutionLayer, type ConvolutionArgs } from './convolution.js';
import type { BuildContext, LayerShape, ParamSpec } from './layer.js';
import { onnxPads, outputLength } from './padding.js';

/** Arguments of `layers.conv2d`, as Keras' `Conv2D` takes them. */
export type Conv2DArgs = ConvolutionArgs;

/** 2-D convolution: an ONNX Conv with its kernel stored [filters, channels, kH, kW]. */
export class Conv2D extends ConvolutionLayer {
  /** The class name stored in saved models ('Conv2D'). */
  readonly className = 'Conv2D';
  readonly baseName = 'conv2d';

  constructor(args: Conv2DArgs) {
    super(args, 'conv2d');
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
}
