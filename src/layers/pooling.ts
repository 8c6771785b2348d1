import { KilnError, formatShape } from '../errors.js';
import type { Value } from '../graph/graph.js';
import { Layer, type BuildContext, type LayerArgs, type LayerShape } from './layer.js';
import { checkPadding, onnxPads, outputLength, pair, type Padding } from './padding.js';

/** Arguments of `layers.maxPooling2d` and `layers.averagePooling2d`. */
export interface Pooling2DArgs extends LayerArgs {
  /** Window height and width (default 2). */
  poolSize?: number | [number, number];
  /** Defaults to poolSize, as in Keras. */
  strides?: number | [number, number];
  /** 'valid' (default) or 'same'. */
  padding?: Padding;
}

abstract class Pooling2D extends Layer {
  /** Window height and width. */
  readonly poolSize: [number, number];
  /** Step between windows. */
  readonly strides: [number, number];
  /** 'valid' or 'same'. */
  readonly padding: Padding;
  protected abstract readonly opType: 'MaxPool' | 'AveragePool';

  constructor(args: Pooling2DArgs, where: string) {
    super(args);
    this.poolSize = pair(args.poolSize ?? 2, 'poolSize', where);
    this.strides = pair(args.strides ?? this.poolSize, 'strides', where);
    this.padding = checkPadding(args.padding, where);
  }

  computeOutputShape(inputShape: LayerShape): LayerShape {
    this.requireRank(inputShape, 3, 'an image [height, width, channels]');
    const [h, w, c] = inputShape as [number, number, number];
    const oh = outputLength(h, this.poolSize[0], this.strides[0], this.padding);
    const ow = outputLength(w, this.poolSize[1], this.strides[1], this.padding);
    if (oh < 1 || ow < 1) {
      throw new KilnError('INVALID_SHAPE', `${this.className} '${this.name}': input ${formatShape([null, ...inputShape])} is smaller than the pool ${formatShape(this.poolSize)}`);
    }
    return [oh, ow, c];
  }

  build(ctx: BuildContext, input: Value, inputShape: LayerShape): Value {
    const pads = onnxPads(inputShape[0]!, inputShape[1]!, this.poolSize, this.strides, this.padding);
    return ctx.graph.op1(this.opType, [input], { kernel_shape: this.poolSize, strides: this.strides, pads }, this.name);
  }

  getConfig(): Record<string, unknown> {
    return { poolSize: this.poolSize, strides: this.strides, padding: this.padding };
  }
}

/** Max pooling; padded positions never win (ONNX MaxPool pads with -inf). */
export class MaxPooling2D extends Pooling2D {
  /** The class name stored in saved models. */
  readonly className = 'MaxPooling2D';
  readonly baseName = 'max_pooling2d';
  protected readonly opType = 'MaxPool';
  constructor(args: Pooling2DArgs = {}) {
    super(args, 'maxPooling2d');
  }
}

/** Average pooling; padded positions are left out of the average, as in Keras. */
export class AveragePooling2D extends Pooling2D {
  /** The class name stored in saved models. */
  readonly className = 'AveragePooling2D';
  readonly baseName = 'average_pooling2d';
  protected readonly opType = 'AveragePool';
  constructor(args: Pooling2DArgs = {}) {
    super(args, 'averagePooling2d');
  }
}

/** Mean over height and width: [H, W, C] → [C]. */
export class GlobalAveragePooling2D extends Layer {
  /** The class name stored in saved models. */
  readonly className = 'GlobalAveragePooling2D';
  readonly baseName = 'global_average_pooling2d';
  constructor(args: LayerArgs = {}) {
    super(args);
  }
  computeOutputShape(inputShape: LayerShape): LayerShape {
    this.requireRank(inputShape, 3, 'an image [height, width, channels]');
    return [inputShape[2]!];
  }
  build(ctx: BuildContext, input: Value): Value {
    const pooled = ctx.graph.op1('GlobalAveragePool', [input], {}, this.name);
    return ctx.graph.op1('Flatten', [pooled], { axis: 1 });
  }
  getConfig(): Record<string, unknown> {
    return {};
  }
}
