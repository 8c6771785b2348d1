import { KilnError } from '../errors.js';
import type { Value } from '../graph/graph.js';
import { Layer, type BuildContext, type LayerArgs, type LayerShape, type ParamSpec } from './layer.js';

export interface BatchNormalizationArgs extends LayerArgs {
  momentum?: number;
  epsilon?: number;
}

/**
 * Batch normalization over the channel axis (Keras' axis -1, which is axis 1 inside the graph).
 * Inference: one ONNX BatchNormalization with the moving statistics. Training: the batch statistics are
 * composed from ReduceMean/Sub/Mul/Sqrt so autodiff differentiates through them, and the moving
 * statistics are updated as moving = momentum·moving + (1 − momentum)·batch, as Keras does.
 */
export class BatchNormalization extends Layer {
  readonly className = 'BatchNormalization';
  readonly baseName = 'batch_normalization';
  readonly momentum: number;
  readonly epsilon: number;

  constructor(args: BatchNormalizationArgs = {}) {
    super(args);
    this.momentum = args.momentum ?? 0.99;
    this.epsilon = args.epsilon ?? 1e-3;
    if (!(this.momentum >= 0 && this.momentum < 1)) {
      throw new KilnError('INVALID_ARGUMENT', `batchNormalization: momentum must be in [0, 1), got ${args.momentum}`);
    }
    if (!(this.epsilon > 0)) throw new KilnError('INVALID_ARGUMENT', `batchNormalization: epsilon must be > 0, got ${args.epsilon}`);
  }

  computeOutputShape(inputShape: LayerShape): LayerShape {
    return inputShape;
  }

  override params(inputShape: LayerShape): ParamSpec[] {
    const c = inputShape[inputShape.length - 1]!;
    return [
      { name: 'gamma', shape: [c], initializer: 'ones', trainable: true },
      { name: 'beta', shape: [c], initializer: 'zeros', trainable: true },
      { name: 'moving_mean', shape: [c], initializer: 'zeros', trainable: false },
      { name: 'moving_variance', shape: [c], initializer: 'ones', trainable: false },
    ];
  }

  build(ctx: BuildContext, input: Value, inputShape: LayerShape): Value {
    const [gamma, beta, movingMean, movingVar] = this.params(inputShape).map((p) => ctx.param(this, p)) as [Value, Value, Value, Value];
    const g = ctx.graph;
    if (!ctx.training) {
      return g.op1('BatchNormalization', [input, gamma, beta, movingMean, movingVar], { epsilon: this.epsilon }, this.name);
    }
    const rank = inputShape.length + 1;
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const channelShape = g.int64s([1, -1, ...Array(rank - 2).fill(1)], 'shape');
    const mean = g.op1('ReduceMean', [input], { axes, keepdims: 1 });
    const centered = g.op1('Sub', [input, mean]);
    const variance = g.op1('ReduceMean', [g.op1('Mul', [centered, centered])], { axes, keepdims: 1 });
    const invStd = g.op1('Reciprocal', [g.op1('Sqrt', [g.op1('Add', [variance, g.scalar(this.epsilon)])])]);
    const normalized = g.op1('Mul', [centered, invStd]);
    const y = g.op1('Add', [g.op1('Mul', [normalized, g.op1('Reshape', [gamma, channelShape])]), g.op1('Reshape', [beta, channelShape])], {}, this.name);
    const flat = g.int64s([-1], 'shape');
    const blend = (moving: Value, batch: Value) =>
      g.op1('Add', [g.op1('Mul', [moving, g.scalar(this.momentum)]), g.op1('Mul', [g.op1('Reshape', [batch, flat]), g.scalar(1 - this.momentum)])]);
    ctx.updateParam(this, 'moving_mean', blend(movingMean, mean));
    ctx.updateParam(this, 'moving_variance', blend(movingVar, variance));
    return y;
  }

  getConfig(): Record<string, unknown> {
    return { momentum: this.momentum, epsilon: this.epsilon };
  }
}
