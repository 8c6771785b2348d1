import { KilnError } from '../../errors.js';
import type { Graph, Value } from '../../graph/graph.js';
import { BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D, layerFromConfig, type Layer } from '../../layers/index.js';
import { Tensor } from '../../tensor.js';
import { Sequential } from '../../train/sequential.js';
import type { TrainingStepOptions } from '../../train/training-step.js';
import { quantRangeOf } from './params.js';

/*
 * Quantization-aware training: the compiled training step computes the forward pass on fake-quantized
 * weights and activations — DequantizeLinear(QuantizeLinear(x)), the same operators and the same
 * rounding the exported QDQ model uses — and the gradient passes straight through (the STE rule of
 * QuantizeLinear in src/ops/quantization.ts). Weights: symmetric int8 per output channel, the scale
 * recomputed from the current weights every step (exactly what export will do with the final ones).
 * Activations: asymmetric 8-bit over the current batch's range (ranges are tracked per batch, not
 * learned); export calibrates them on data.
 */

/** Layers whose kernels take int8 weights, and the kernel axis of their output channels. */
function kernelAxis(layer: Layer): number | null {
  if (layer instanceof Conv2D) return 0; // [filters, channels, kH, kW]
  if (layer instanceof Dense) return 1; // [inputs, units]
  return null;
}

/**
 * Fake quantization of a weight: per channel along `axis`, symmetric, zero point 0, with the scale
 * max|w| / qmax recomputed in the graph from the weight itself.
 */
export function fakeQuantizeWeight(graph: Graph, w: Value, axis: number, bits = 8): Value {
  const rank = w.shape!.length;
  const [, qmax] = quantRangeOf('int8', { symmetric: true, bits });
  const others = [...Array(rank).keys()].filter((a) => a !== axis);
  const absMax = graph.op1('ReduceMax', [graph.op1('Abs', [w])], { axes: others, keepdims: 0 });
  // An all-zero channel would give scale 0; any positive scale represents it exactly.
  const scale = graph.op1('Div', [graph.op1('Max', [absMax, graph.scalar(1e-12)]), graph.scalar(qmax)]);
  const channels = w.shape![axis] as number;
  const zero = graph.constant(new Tensor(new Int8Array(channels), [channels], 'int8'), 'zero_point');
  // |w| / scale ≤ qmax, so the int8 saturation never cuts: the values land on [−qmax, qmax] as at export.
  const q = graph.op1('QuantizeLinear', [w, scale, zero], { axis }, 'fake_quant');
  return graph.op1('DequantizeLinear', [q, scale, zero], { axis });
}

/**
 * Fake quantization of an activation to 8 bits over the batch's own range (widened to hold 0),
 * asymmetric: scale = (max − min) / 255, zero point = round(−min / scale).
 */
export function fakeQuantizeActivation(graph: Graph, x: Value): Value {
  const rank = x.shape!.length;
  const all = [...Array(rank).keys()];
  const max = graph.op1('Max', [graph.op1('ReduceMax', [x], { axes: all, keepdims: 0 }), graph.scalar(0)]);
  const min = graph.op1('Min', [graph.op1('Neg', [graph.op1('ReduceMax', [graph.op1('Neg', [x])], { axes: all, keepdims: 0 })]), graph.scalar(0)]);
  const scale = graph.op1('Max', [graph.op1('Div', [graph.op1('Sub', [max, min]), graph.scalar(255)]), graph.scalar(1e-12)]);
  const zp = graph.op1('Cast', [graph.op1('Clip', [graph.op1('Round', [graph.op1('Div', [graph.op1('Neg', [min]), scale])]), graph.scalar(0), graph.scalar(255)])], { to: 2 });
  return graph.op1('DequantizeLinear', [graph.op1('QuantizeLinear', [x, scale, zp], {}, 'fake_quant'), scale, zp]);
}

/** Options of `fakeQuantStepOptions`: the quantization the export will use, mirrored in training. */
export interface FakeQuantOptions {
  /** Weight bits (as the export will use). */
  weightBits?: number;
  /** Layer names kept in float (as the export will keep them). */
  exclude?: string[];
  /**
   * Convolutions summing fewer products per output compute in float at export, their kernels stored in
   * 8 bits per channel: those kernels train fake-quantized at 8 bits whatever `weightBits` says.
   */
  minConvReduction?: number;
}

/**
 * The training-step hooks that make a model train as it will run quantized: int8 kernels of Conv2D and
 * Dense layers, 8-bit outputs of the layers whose outputs are quantized tensors in the exported QDQ
 * model (Conv2D, Dense, GlobalAveragePooling2D), except the last layer, whose output stays float.
 */
export function fakeQuantStepOptions(model: Sequential, options: FakeQuantOptions = {}): TrainingStepOptions {
  const exclude = new Set(options.exclude ?? []);
  const kernels = new Map<string, { axis: number; bits: number | undefined }>();
  for (const layer of model.layers) {
    const axis = kernelAxis(layer);
    if (axis === null || exclude.has(layer.name!)) continue;
    const kernel = model.weights.get(`${layer.name}/kernel`)!;
    const small = layer instanceof Conv2D && kernel.shape.slice(1).reduce((a, b) => a * b, 1) < (options.minConvReduction ?? 0);
    kernels.set(`${layer.name}/kernel`, { axis, bits: small ? 8 : options.weightBits });
  }
  const last = model.layers.length - 1;
  return {
    transformParam: (graph, name, value) => {
      const k = kernels.get(name);
      return k === undefined ? value : fakeQuantizeWeight(graph, value, k.axis, k.bits);
    },
    afterLayer: (graph, layer, output, index) => {
      if (index === last || exclude.has(layer.name!)) return output;
      if (layer instanceof Conv2D || layer instanceof Dense || layer instanceof GlobalAveragePooling2D) return fakeQuantizeActivation(graph, output);
      return output;
    },
  };
}

/**
 * A copy of the model with each BatchNormalization folded into the Conv2D before it (when that
 * convolution has no activation of its own), so fine-tuning trains the weights that will be quantized.
 */
export function foldBatchNormLayers(model: Sequential): {
  /** A copy of the model without its foldable BatchNormalization layers. */
  model: Sequential;
  /** Names of the layers folded. */
  folded: string[];
} {
  const layers: Layer[] = [];
  const weights = new Map<string, Tensor>();
  const folded: string[] = [];
  const src = model.layers;
  for (let i = 0; i < src.length; i++) {
    const layer = src[i]!;
    const next = src[i + 1];
    const copyOf = (l: Layer, extra: Record<string, unknown> = {}) => {
      const s = l.serialize();
      return layerFromConfig({ className: s.className, config: { ...s.config, ...extra } }, `layer ${l.name}`);
    };
    if (layer instanceof Conv2D && next instanceof BatchNormalization && layer.activation === 'linear') {
      layers.push(copyOf(layer, { useBias: true }));
      const w = model.weights.get(`${layer.name}/kernel`)!;
      const b = model.weights.get(`${layer.name}/bias`);
      const [gamma, beta, mean, variance] = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((p) => model.weights.get(`${next.name}/${p}`)!.data as Float32Array) as [Float32Array, Float32Array, Float32Array, Float32Array];
      const channels = w.shape[0]!;
      const per = w.size / channels;
      const k = Float64Array.from({ length: channels }, (_, c) => gamma[c]! / Math.sqrt(variance[c]! + next.epsilon));
      weights.set(`${layer.name}/kernel`, new Tensor(Float32Array.from(w.data as Float32Array, (v, j) => v * k[Math.floor(j / per)]!), w.shape, 'float32'));
      const bias = b ? (b.data as Float32Array) : new Float32Array(channels);
      weights.set(`${layer.name}/bias`, new Tensor(Float32Array.from({ length: channels }, (_, c) => (bias[c]! - mean[c]!) * k[c]! + beta[c]!), [channels], 'float32'));
      folded.push(next.name!);
      i++;
      continue;
    }
    layers.push(copyOf(layer));
    for (const [name, t] of model.weights) if (name.startsWith(`${layer.name}/`)) weights.set(name, t);
  }
  const copy = new Sequential({ name: model.name, seed: model.seed, layers });
  copy.setWeights(weights);
  for (const [k, v] of model.metadata) copy.metadata.set(k, v);
  return { model: copy, folded };
}

/** Checks fine-tuning arguments before any work is done. */
export function checkFineTune(model: unknown, fineTune: { x?: Tensor; y?: Tensor; epochs?: number } | undefined): asserts fineTune is { x: Tensor; y: Tensor; epochs?: number } {
  if (!(model instanceof Sequential)) {
    throw new KilnError('NOT_TRAINABLE', "mode 'qat' fine-tunes the model, so it needs a trainable Kiln Sequential (an ONNX model without Kiln's layer configuration can only be quantized post-training: mode 'static' or 'dynamic')");
  }
  if (!fineTune || !fineTune.x || !fineTune.y) throw new KilnError('INVALID_ARGUMENT', "mode 'qat' needs fineTune: {x, y, epochs} (training examples and labels)");
  if (fineTune.x.shape[0] === 0) throw new KilnError('INVALID_DATA', 'fineTune.x is empty: give at least one training example');
  if (fineTune.epochs !== undefined && !(Number.isInteger(fineTune.epochs) && fineTune.epochs >= 1)) {
    throw new KilnError('INVALID_ARGUMENT', `fineTune.epochs must be a positive integer, got ${fineTune.epochs}`);
  }
}
