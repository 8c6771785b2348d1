import { KilnError } from '../errors.js';
import type { Value } from '../graph/graph.js';
import { Layer, type BuildContext, type LayerArgs, type LayerShape, type ParamSpec } from './layer.js';

/** Arguments of `layers.batchNormalization`, as Keras' `BatchNormalization` takes them. */
export interface BatchNormalizationArgs extends LayerArgs {
  /** Weight of the old value in the moving statistics' update (default 0.99). */
  momentum?: number;
  /** Added to the variance before its square root (default 0.001). */
  epsilon?: number;
}

/**
 * Batch normalization over the feature axis, Keras' axis −1 of the channels-last shape. Inside the graph
 * only images (rank-3 layer shapes) are channel-first, so that axis is graph axis 1 for images and flat
 * [features] inputs, but the last graph axis for other shapes such as [steps, features].
 * Inference: one ONNX BatchNormalization with the moving statistics (it normalizes axis 1, so a
 * last-axis feature dimension is transposed to axis 1 and back around it). Training: the batch
 * statistics are ReduceMeans over every axis but the feature axis; on feature axis 1 one
 * BatchNormalization normalizes with them (its gradient rule differentiates through them), on a last
 * feature axis ReduceMean/Sub/Mul/Sqrt compose it and autodiff differentiates through them; the moving
 * statistics are updated as
 * moving = momentum·moving + (1 − momentum)·batch, as Keras does.
 */
export class BatchNormalization extends Layer {
  /** The class name stored in saved models. */
  readonly className = 'BatchNormalization';
  readonly baseName = 'batch_normalization';
  /** Weight of the old value in the moving statistics' update. */
  readonly momentum: number;
  /** Added to the variance before its square root. */
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

  /**
   * The feature axis of the graph tensor [N, ...]: axis 1 for channel-first images (rank-3 layer shapes)
   * and for flat [features] inputs, the last axis for every other (channels-last) shape.
   */
  featureAxis(inputShape: LayerShape): number {
    return inputShape.length === 3 ? 1 : inputShape.length;
  }

  build(ctx: BuildContext, input: Value, inputShape: LayerShape): Value {
    const [gamma, beta, movingMean, movingVar] = this.params(inputShape).map((p) => ctx.param(this, p)) as [Value, Value, Value, Value];
    const g = ctx.graph;
    const rank = inputShape.length + 1;
    const axis = this.featureAxis(inputShape);
    if (!ctx.training) {
      const inputs = (x: Value) => [x, gamma, beta, movingMean, movingVar];
      if (axis === 1) return g.op1('BatchNormalization', inputs(input), { epsilon: this.epsilon }, this.name);
      // ONNX BatchNormalization normalizes axis 1: move the last (feature) axis there and back.
      const toFirst = [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
      const toLast = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2), 1];
      const featuresFirst = g.op1('Transpose', [input], { perm: toFirst });
      const normalized = g.op1('BatchNormalization', inputs(featuresFirst), { epsilon: this.epsilon });
      return g.op1('Transpose', [normalized], { perm: toLast }, this.name);
    }
    const axes = Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis);
    const featureShape = g.int64s(Array.from({ length: rank }, (_, i) => (i === axis ? -1 : 1)), 'shape');
    const flat = g.int64s([-1], 'shape');
    const blend = (moving: Value, batch: Value) =>
      g.op1('Add', [g.op1('Mul', [moving, g.scalar(this.momentum)]), g.op1('Mul', [g.op1('Reshape', [batch, flat]), g.scalar(1 - this.momentum)])]);
    if (axis === 1) {
      // One inference-form BatchNormalization over the batch's own statistics, whose gradient rule
      // takes the whole gradient through them in closed form (src/ops/normalization.ts), as
      // imported-graph.ts trains an exported model's BatchNormalization.
      const batchMean = g.op1('ReduceMean', [input], { axes, keepdims: 0 });
      const centeredInput = g.op1('Sub', [input, g.op1('Reshape', [batchMean, featureShape])]);
      const batchVariance = g.op1('ReduceMean', [g.op1('Mul', [centeredInput, centeredInput])], { axes, keepdims: 0 });
      ctx.updateParam(this, 'moving_mean', blend(movingMean, batchMean));
      ctx.updateParam(this, 'moving_variance', blend(movingVar, batchVariance));
      return g.op1('BatchNormalization', [input, gamma, beta, batchMean, batchVariance], { epsilon: this.epsilon }, this.name);
    }
    const mean = g.op1('ReduceMean', [input], { axes, keepdims: 1 });
    const centered = g.op1('Sub', [input, mean]);
    const variance = g.op1('ReduceMean', [g.op1('Mul', [centered, centered])], { axes, keepdims: 1 });
    const invStd = g.op1('Reciprocal', [g.op1('Sqrt', [g.op1('Add', [variance, g.scalar(this.epsilon)])])]);
    const normalized = g.op1('Mul', [centered, invStd]);
    const y = g.op1('Add', [g.op1('Mul', [normalized, g.op1('Reshape', [gamma, featureShape])]), g.op1('Reshape', [beta, featureShape])], {}, this.name);
    ctx.updateParam(this, 'moving_mean', blend(movingMean, mean));
    ctx.updateParam(this, 'moving_variance', blend(movingVar, variance));
    return y;
  }

  getConfig(): Record<string, unknown> {
    return { momentum: this.momentum, epsilon: this.epsilon };
  }
}
