import { KilnError } from '../errors.js';
import type { Graph, Shape, Value } from '../graph/graph.js';
import { onnxTypeCode } from '../graph/dtype.js';
import { intAttr, normalizeAxis, requireInput, type OpDefinition } from '../graph/op-definition.js';
import { reduceToShape } from './reduce-to-shape.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const NORMALIZATION_OPS: readonly OpDefinition[] = ops;

/*
 * Normalizations (BatchNormalization in inference form, LayerNormalization, InstanceNormalization)
 * and Dropout.
 *
 * BatchNormalization in inference form (statistics as inputs), in two uses. With running statistics
 * (fine-tuning with frozen statistics) they are constants to the gradient. With x's own batch
 * statistics computed just before it (the training form imported-graph.ts builds, see
 * ownBatchStatistics), the gradient is the whole one through the statistics, in closed form:
 * dx = a·dy − a·Σdy/n − (x − mean)·a·invStd²·Σ(dy·(x − mean))/n with a = scale·invStd — five
 * full-size ops where autodiff through ReduceMean/Sub/Mul/Sqrt built about fifteen, the bulk of a
 * small-channel ResNet's elementwise time (bench/train/profile.js --fixture resnet).
 */
ops.push({
  type: 'BatchNormalization',
  nonDifferentiableInputs: [3, 4],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'BatchNormalization');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  gradient: ({ graph, node, inputs: [x, scale, , mean, variance], gradOutputs: [dy] }) => {
    const eps = typeof node.attrs.epsilon === 'number' ? node.attrs.epsilon : 1e-5;
    const rank = x!.shape!.length;
    const channelShape = graph.int64s([1, -1, ...Array(rank - 2).fill(1)], 'shape');
    const asChannel = (v: typeof x) => graph.op1('Reshape', [v!, channelShape]);
    const invStd = graph.op1('Reciprocal', [graph.op1('Sqrt', [graph.op1('Add', [variance!, graph.scalar(eps)])])]);
    const centered = ownBatchStatistics(graph, x!, mean!, variance!);
    if (centered) {
      const axes = graph.int64s([0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)], 'axes');
      const dims = x!.shape!.filter((_, i) => i !== 1);
      const invCount = dims.every((d) => typeof d === 'number')
        ? graph.scalar(1 / (dims as number[]).reduce((p, d) => p * d, 1))
        : graph.op1('Div', [graph.op1('Cast', [graph.op1('Shape', [x!], { start: 1, end: 2 })], { to: 1 }), graph.op1('Cast', [graph.op1('Size', [x!])], { to: 1 })]);
      const a = graph.op1('Mul', [scale!, invStd]); // [C]
      const dBias = graph.op1('ReduceSum', [dy!, axes], { keepdims: 0 });
      const projected = graph.op1('ReduceSum', [graph.op1('Mul', [dy!, centered]), axes], { keepdims: 0 }); // Σ dy·(x − mean)
      const dScale = graph.op1('Mul', [projected, invStd]);
      const perCentered = graph.op1('Neg', [graph.op1('Mul', [graph.op1('Mul', [a, graph.op1('Mul', [invStd, invStd])]), graph.op1('Mul', [projected, invCount])])]);
      const shift = graph.op1('Neg', [graph.op1('Mul', [a, graph.op1('Mul', [dBias, invCount])])]);
      const dx = graph.op1('Add', [graph.op1('Add', [graph.op1('Mul', [dy!, asChannel(a)]), graph.op1('Mul', [centered, asChannel(perCentered)])]), asChannel(shift)]);
      return [dx, dScale, dBias, null, null];
    }
    const xhat = graph.op1('Mul', [graph.op1('Sub', [x!, asChannel(mean)]), asChannel(invStd)]);
    const axes = graph.int64s([0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)], 'axes');
    const dx = graph.op1('Mul', [dy!, asChannel(graph.op1('Mul', [scale!, invStd]))]);
    const dScale = graph.op1('ReduceSum', [graph.op1('Mul', [dy!, xhat]), axes], { keepdims: 0 });
    const dBias = graph.op1('ReduceSum', [dy!, axes], { keepdims: 0 });
    return [dx, dScale, dBias, null, null];
  },
});

ops.push({
  type: 'Dropout',
  nonDifferentiableInputs: [1, 2],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'Dropout');
    return [
      { dtype: x.dtype, shape: x.shape },
      { dtype: 'bool', shape: x.shape },
    ];
  },
  /*
   * Kept units were scaled by 1/(1-ratio) in the forward pass; their gradient is scaled alike. Without
   * training_mode, or with it false, ONNX Dropout is the identity (its mask is all ones), so there the
   * gradient must pass unscaled; scaling it by 1/(1-ratio) regardless made it 1/(1-ratio) too large.
   */
  gradient: ({ graph, node, inputs: [x, ratio, training], outputs: [, mask], gradOutputs: [dy] }) => {
    const mode = training ? graph.constantValue(training.name) : undefined;
    if (!training || (mode && !Number(mode.data[0]))) return [dy!, null, null];
    const r = ratio ? graph.constantValue(ratio.name) : undefined;
    // Nothing dropped and nothing scaled.
    if (r && Number(r.data[0]) === 0) return [dy!, null, null];
    // A node written without its optional mask output gets one: the units it dropped are known only there.
    const keptUnits = mask ?? graph.addNodeOutput(node, 1, `${node.outputs[0]}_mask`, 'bool', x!.shape);
    // ratio defaults to 0.5 (ONNX); a ratio computed at run time is read at run time.
    const to = onnxTypeCode(dy!.dtype);
    const scale =
      ratio && !r
        ? graph.op1('Cast', [graph.op1('Reciprocal', [graph.op1('Sub', [graph.scalar(1, ratio.dtype), ratio])])], { to })
        : graph.scalar(1 / (1 - (r ? Number(r.data[0]) : 0.5)), dy!.dtype);
    const keep = graph.op1('Cast', [keptUnits], { to });
    const scaled = graph.op1('Mul', [dy!, graph.op1('Mul', [keep, scale])]);
    // training_mode fed at run time: scale only when it is true.
    return [mode ? scaled : graph.op1('Where', [training, scaled, dy!]), null, null];
  },
});

/**
 * Where a BatchNormalization's mean and variance are x's own batch statistics — mean = ReduceMean(x)
 * and variance = ReduceMean(c·c) with c = x − Reshape(mean), both over every axis but the channel,
 * keepdims 0 (the training form imported-graph.ts builds) — returns c, the centered x; otherwise
 * undefined (running statistics, or anything else: their gradient is then not taken).
 */
function ownBatchStatistics(graph: Graph, x: Value, mean: Value, variance: Value): Value | undefined {
  const rank = x.shape?.length ?? 0;
  const nonChannel = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)].join();
  const meanOf = (v: Value): string | undefined => {
    const p = graph.producer(v.name);
    if (!p || p.opType !== 'ReduceMean' || p.domain !== '' || intAttr(p.attrs, 'keepdims', 1) !== 0) return undefined;
    const axes = p.inputs[1] ? graph.constantValue(p.inputs[1]) : undefined;
    const list = axes ? Array.from(axes.data as BigInt64Array, Number) : Array.isArray(p.attrs.axes) ? (p.attrs.axes as number[]) : undefined;
    return list && list.map((a) => normalizeAxis(a, rank)).join() === nonChannel ? p.inputs[0] : undefined;
  };
  if (rank < 2 || meanOf(mean) !== x.name) return undefined;
  const square = graph.producer(meanOf(variance) ?? '');
  if (!square || square.opType !== 'Mul' || square.inputs[0] !== square.inputs[1]) return undefined;
  const sub = graph.producer(square.inputs[0]!);
  const shaped = sub && sub.opType === 'Sub' && sub.inputs[0] === x.name ? graph.producer(sub.inputs[1]!) : undefined;
  return shaped && shaped.opType === 'Reshape' && shaped.inputs[0] === mean.name ? graph.value(sub!.outputs[0]!) : undefined;
}

function epsilonOf(attrs: Record<string, unknown>): number {
  return typeof attrs.epsilon === 'number' ? attrs.epsilon : 1e-5;
}

/**
 * The statistics a normalization over `axes` divides by, rebuilt in the gradient from x: the mean,
 * 1/√(var + ε) and x̂ = (x − mean)·invStd (kept dims, so they broadcast against x), and a
 * mean-over-axes function for the backward formula. Means are ReduceSum times 1/count rather than
 * ReduceMean: ReduceSum takes its axes as an input from opset 13 on, ReduceMean only from opset 18,
 * so these gradient nodes are valid whichever opset (13–18) the model declares. The count comes from
 * static dims, or at run time from Size(x)/Size(reduced) where a normalized dim is symbolic.
 */
function normalizationStatistics(graph: Graph, x: Value, axes: number[], epsilon: number) {
  const axesValue = graph.int64s(axes, 'axes');
  const dims = axes.map((a) => x.shape![a]);
  const sum = (v: Value) => graph.op1('ReduceSum', [v, axesValue], { keepdims: 1 });
  let invCount: Value;
  if (dims.every((d) => typeof d === 'number')) {
    invCount = graph.scalar(1 / (dims as number[]).reduce((p, d) => p * d, 1), x.dtype);
  } else {
    const to = onnxTypeCode(x.dtype);
    const reduced = sum(x);
    invCount = graph.op1('Div', [graph.op1('Cast', [graph.op1('Size', [reduced])], { to }), graph.op1('Cast', [graph.op1('Size', [x])], { to })]);
  }
  const meanOver = (v: Value) => graph.op1('Mul', [sum(v), invCount]);
  const mean = meanOver(x);
  const centered = graph.op1('Sub', [x, mean]);
  const variance = meanOver(graph.op1('Mul', [centered, centered]));
  const invStd = graph.op1('Reciprocal', [graph.op1('Sqrt', [graph.op1('Add', [variance, graph.scalar(epsilon, x.dtype)])])]);
  const xhat = graph.op1('Mul', [centered, invStd]);
  return { mean, invStd, xhat, meanOver, invCount };
}

/** dL/dx of x̂ = (x − mean)·invStd given g = dL/dx̂: invStd·(g − mean(g) − x̂·mean(g·x̂)). */
function normalizedInputGradient(graph: Graph, g: Value, st: ReturnType<typeof normalizationStatistics>): Value {
  const centeredG = graph.op1('Sub', [g, st.meanOver(g)]);
  const projection = graph.op1('Mul', [st.xhat, st.meanOver(graph.op1('Mul', [g, st.xhat]))]);
  return graph.op1('Mul', [graph.op1('Sub', [centeredG, projection]), st.invStd]);
}

/*
 * LayerNormalization (opset 17): normalizes over the axes from `axis` to the last, then Scale and the
 * optional B (both broadcast to X[axis:]). The optional outputs Mean and InvStdDev have X's shape
 * with the normalized axes kept as 1, in the stash type (float32 unless stash_type says otherwise).
 */
ops.push({
  type: 'LayerNormalization',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'LayerNormalization');
    const y = { dtype: x.dtype, shape: x.shape };
    if (!x.shape) return [y, { dtype: 'float32', shape: null }, { dtype: 'float32', shape: null }];
    const axis = normalizeAxis(intAttr(attrs, 'axis', -1), x.shape.length);
    const statShape: Shape = x.shape.map((d, i) => (i < axis ? d : 1));
    const stash = intAttr(attrs, 'stash_type', 1) === 11 ? 'float64' : 'float32';
    return [y, { dtype: stash, shape: statShape }, { dtype: stash, shape: [...statShape] }];
  },
  /*
   * dx from Y through x̂ (with g = dY·Scale), plus what reaches it through the optional outputs:
   * d mean/dxᵢ = 1/n and d invStd/dxᵢ = −invStd²·x̂ᵢ/n. dScale and dB are dY·x̂ and dY summed over
   * the axes they were broadcast along.
   */
  gradient: ({ graph, node, inputs: [x, scale, bias], gradOutputs: [dy, dMean, dInvStd] }) => {
    const rank = x!.shape!.length;
    const axis = normalizeAxis(intAttr(node.attrs, 'axis', -1), rank);
    const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
    const st = normalizationStatistics(graph, x!, axes, epsilonOf(node.attrs));
    const parts: Value[] = [];
    if (dy) parts.push(normalizedInputGradient(graph, graph.op1('Mul', [dy, scale!]), st));
    if (dMean) parts.push(graph.op1('Mul', [castLike(graph, dMean, x!), st.invCount]));
    if (dInvStd) {
      const invStd2 = graph.op1('Mul', [st.invStd, st.invStd]);
      parts.push(graph.op1('Neg', [graph.op1('Mul', [graph.op1('Mul', [castLike(graph, dInvStd, x!), invStd2]), graph.op1('Mul', [st.xhat, st.invCount])])]));
    }
    const dx = parts.reduce((a, b) => graph.op1('Add', [a, b]));
    const dScale = dy ? reduceToShape(graph, graph.op1('Mul', [dy, st.xhat]), scale!) : null;
    const dBias = dy && bias ? reduceToShape(graph, dy, bias) : null;
    return [dx, dScale, dBias];
  },
});

function castLike(graph: Graph, v: Value, like: Value): Value {
  return v.dtype === like.dtype ? v : graph.op1('Cast', [v], { to: onnxTypeCode(like.dtype) });
}

/* InstanceNormalization: per sample and channel over the spatial axes, then per-channel scale and B. */
ops.push({
  type: 'InstanceNormalization',
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'InstanceNormalization');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  gradient: ({ graph, node, inputs: [x, scale], gradOutputs: [dy] }) => {
    const rank = x!.shape!.length;
    const spatial = Array.from({ length: rank - 2 }, (_, i) => i + 2);
    const st = normalizationStatistics(graph, x!, spatial, epsilonOf(node.attrs));
    const asChannel = (v: Value) => graph.op1('Reshape', [v, graph.int64s([-1, ...Array(rank - 2).fill(1)], 'shape')]); // [C, 1, ...]
    const dx = normalizedInputGradient(graph, graph.op1('Mul', [dy!, asChannel(scale!)]), st);
    const notChannel = graph.int64s([0, ...spatial], 'axes');
    const dScale = graph.op1('ReduceSum', [graph.op1('Mul', [dy!, st.xhat]), notChannel], { keepdims: 0 });
    const dBias = graph.op1('ReduceSum', [dy!, notChannel], { keepdims: 0 });
    return [dx, dScale, dBias];
  },
});

/*
 * LRN (local response normalization across channels: AlexNet, GoogLeNet and the other classic Model
 * Zoo CNNs): y = x·s^(−β), s = bias + α/size·Σ x² over a window of `size` channels around each one
 * (⌊(size−1)/2⌋ before, ⌈(size−1)/2⌉ after).
 */
ops.push({
  type: 'LRN',
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'LRN');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  /*
   * dx_j = dy_j·s_j^(−β) − (2αβ/size)·x_j·Σ_c dy_c·x_c·s_c^(−β−1), the sum over the channels c whose
   * window holds j: the same window mirrored (⌈(size−1)/2⌉ before, ⌊(size−1)/2⌋ after). Both window
   * sums are an AveragePool over the channel axis with its padding counted, times size.
   */
  gradient: ({ graph, node, inputs: [x], gradOutputs: [dy] }) => {
    const size = intAttr(node.attrs, 'size', 0);
    const alpha = typeof node.attrs.alpha === 'number' ? node.attrs.alpha : 1e-4;
    const beta = typeof node.attrs.beta === 'number' ? node.attrs.beta : 0.75;
    const bias = typeof node.attrs.bias === 'number' ? node.attrs.bias : 1;
    const t = x!.dtype;
    const [before, after] = [Math.floor((size - 1) / 2), Math.ceil((size - 1) / 2)];
    // [N, C, ...] as [N, 1, C, positions]: the channel window is a [size, 1] pooling window.
    const channels = x!.shape?.[1];
    if (typeof channels !== 'number' || size < 1) throw new KilnError('NO_GRADIENT', 'LRN gradient needs the channel count and the size attribute');
    const asGrid = graph.int64s([0, 1, channels, -1], 'shape');
    const windowSum = (v: Value, lo: number, hi: number) => {
      const pooled = graph.op1('AveragePool', [graph.op1('Reshape', [v, asGrid])], { kernel_shape: [size, 1], pads: [lo, 0, hi, 0], count_include_pad: 1 });
      return graph.op1('Mul', [graph.op1('Reshape', [pooled, graph.op1('Shape', [x!])]), graph.scalar(size, t)]);
    };
    const s = graph.op1('Add', [graph.scalar(bias, t), graph.op1('Mul', [graph.scalar(alpha / size, t), windowSum(graph.op1('Mul', [x!, x!]), before, after)])]);
    const direct = graph.op1('Mul', [dy!, graph.op1('Pow', [s, graph.scalar(-beta, t)])]);
    const through = graph.op1('Mul', [graph.op1('Mul', [dy!, x!]), graph.op1('Pow', [s, graph.scalar(-beta - 1, t)])]);
    const spread = graph.op1('Mul', [x!, windowSum(through, after, before)]);
    return [graph.op1('Sub', [direct, graph.op1('Mul', [spread, graph.scalar((2 * alpha * beta) / size, t)])])];
  },
});
