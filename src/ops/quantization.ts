import { KilnError, formatShape } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';
import { broadcastShapes, intAttr, intsAttr, normalizeAxis, requireInput, type OpDefinition } from '../graph/op-definition.js';
import type { DType } from '../tensor.js';
import { convOutputSize, spatialAttrs } from './conv.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const QUANTIZATION_OPS: readonly OpDefinition[] = ops;

/*
 * Quantization operators: the QDQ pair (QuantizeLinear / DequantizeLinear, opset 13+ with per-axis
 * scales) that quantized models and fake quantization are written in, and the integer operators of
 * dynamic quantization (DynamicQuantizeLinear, MatMulInteger, ConvInteger).
 *
 * Fake quantization in quantization-aware training is DequantizeLinear(QuantizeLinear(x)); its
 * gradient is the straight-through estimator, split over the two rules so each is right on its own:
 * d DQ(q)/dq = scale exactly, and Q's estimated slope is 1/scale where x is inside the representable
 * range — where round(x / scale) + zp does not saturate, i.e. x ∈ [(qmin − zp − ½)·scale,
 * (qmax − zp + ½)·scale], PyTorch's fake-quantize mask — and 0 outside (saturated values do not move).
 * Together: the gradient passes unchanged inside the range and stops outside. The half step matters:
 * a channel's largest weight sits exactly on the range's end, where float rounding would otherwise
 * decide whether it ever trains. Scales and zero points get no gradient (ranges are tracked, not learned).
 */

/** Integer range of a quantized element type. */
export function quantRange(dtype: DType): [number, number] {
  switch (dtype) {
    case 'int8':
      return [-128, 127];
    case 'uint8':
      return [0, 255];
    case 'int32':
      return [-2147483648, 2147483647];
    default:
      throw new KilnError('INVALID_ARGUMENT', `quantized values must be int8, uint8 or int32, got ${dtype}`);
  }
}

const FLOAT = 1;

/**
 * A per-axis parameter (scale or zero point, 1-D of length C) reshaped to broadcast against a tensor of
 * the given rank along `axis`; per-tensor (scalar) parameters are returned as they are.
 */
function alongAxis(graph: Graph, param: Value, rank: number, axis: number): Value {
  if (!param.shape || param.shape.length === 0) return param;
  const dims = Array.from({ length: rank }, (_, i) => (i === normalizeAxis(axis, rank) ? -1 : 1));
  return graph.op1('Reshape', [param, graph.int64s(dims, 'shape')]);
}

function checkQuantParams(type: string, x: Value, scale: Value, zeroPoint: Value | null, axis: number): void {
  if (!scale.shape || !x.shape) return;
  if (zeroPoint?.shape && formatShape(zeroPoint.shape) !== formatShape(scale.shape)) {
    throw new KilnError('INVALID_SHAPE', `${type}: zero point ${formatShape(zeroPoint.shape)} must have the scale's shape ${formatShape(scale.shape)}`);
  }
  if (scale.shape.length > 1) throw new KilnError('INVALID_SHAPE', `${type}: scale must be a scalar or 1-D (per-axis), got ${formatShape(scale.shape)}`);
  if (scale.shape.length === 1) {
    const a = normalizeAxis(axis, x.shape.length);
    const along = x.shape[a];
    if (a < 0 || a >= x.shape.length) throw new KilnError('INVALID_SHAPE', `${type}: axis ${axis} is outside a rank-${x.shape.length} input`);
    if (typeof along === 'number' && typeof scale.shape[0] === 'number' && along !== scale.shape[0]) {
      throw new KilnError('INVALID_SHAPE', `${type}: ${scale.shape[0]} per-axis scales for axis ${axis} of ${formatShape(x.shape)}, which has ${along}`);
    }
  }
}

ops.push({
  type: 'QuantizeLinear',
  nonDifferentiableInputs: [1, 2],
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'QuantizeLinear');
    const scale = requireInput(inputs, 1, 'QuantizeLinear');
    const zeroPoint = inputs[2] ?? null;
    checkQuantParams('QuantizeLinear', x, scale, zeroPoint, intAttr(attrs, 'axis', 1));
    // Without a zero point the output is uint8 (the ONNX default).
    return [{ dtype: zeroPoint?.dtype ?? 'uint8', shape: x.shape }];
  },
  // Straight-through estimator: dx = dq/scale where x falls inside the integer range (± half a step), 0 where it was clipped.
  gradient: ({ graph, node, inputs: [x, scale, zeroPoint], outputs: [q], gradOutputs: [dq] }) => {
    const rank = x!.shape!.length;
    const axis = intAttr(node.attrs, 'axis', 1);
    const s = alongAxis(graph, scale!, rank, axis);
    const [qmin, qmax] = quantRange(q!.dtype);
    const zp = zeroPoint ? graph.op1('Cast', [alongAxis(graph, zeroPoint, rank, axis)], { to: FLOAT }) : graph.scalar(0);
    const lo = graph.op1('Mul', [graph.op1('Sub', [graph.scalar(qmin - 0.5), zp]), s]);
    const hi = graph.op1('Mul', [graph.op1('Sub', [graph.scalar(qmax + 0.5), zp]), s]);
    const inside = graph.op1('Cast', [graph.op1('And', [graph.op1('GreaterOrEqual', [x!, lo]), graph.op1('LessOrEqual', [x!, hi])])], { to: FLOAT });
    return [graph.op1('Mul', [graph.op1('Div', [dq!, s]), inside]), null, null];
  },
});

ops.push({
  type: 'DequantizeLinear',
  nonDifferentiableInputs: [1, 2],
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'DequantizeLinear');
    const scale = requireInput(inputs, 1, 'DequantizeLinear');
    checkQuantParams('DequantizeLinear', x, scale, inputs[2] ?? null, intAttr(attrs, 'axis', 1));
    return [{ dtype: scale.dtype, shape: x.shape }];
  },
  // y = (q − zero point)·scale, so dq = dy·scale (along the quantization axis); scale and zero point get none
  gradient: ({ graph, node, inputs: [x, scale], gradOutputs: [dy] }) => {
    const s = alongAxis(graph, scale!, x!.shape!.length, intAttr(node.attrs, 'axis', 1));
    return [graph.op1('Mul', [dy!, s]), null, null];
  },
});

/** x → (uint8 y, scale, zero point) with the range of x taken at run time (and widened to hold 0). */
ops.push({
  type: 'DynamicQuantizeLinear',
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'DynamicQuantizeLinear');
    return [
      { dtype: 'uint8', shape: x.shape },
      { dtype: 'float32', shape: [] },
      { dtype: 'uint8', shape: [] },
    ];
  },
});

ops.push({
  type: 'MatMulInteger',
  infer: (inputs) => {
    const a = requireInput(inputs, 0, 'MatMulInteger');
    const b = requireInput(inputs, 1, 'MatMulInteger');
    if (!a.shape || !b.shape) return [{ dtype: 'int32', shape: null }];
    if (a.shape.length < 2 || b.shape.length !== 2) {
      throw new KilnError('INVALID_SHAPE', `MatMulInteger: Kiln emits [.., M, K] · [K, N], got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
    }
    const ka = a.shape[a.shape.length - 1];
    if (typeof ka === 'number' && typeof b.shape[0] === 'number' && ka !== b.shape[0]) {
      throw new KilnError('INVALID_SHAPE', `MatMulInteger: inner dimensions differ: ${formatShape(a.shape)} · ${formatShape(b.shape)}`);
    }
    const batch = broadcastShapes(a.shape.slice(0, -2), [], 'MatMulInteger')!;
    return [{ dtype: 'int32', shape: [...batch, a.shape[a.shape.length - 2]!, b.shape[1]!] }];
  },
});

ops.push({
  type: 'ConvInteger',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'ConvInteger');
    const w = requireInput(inputs, 1, 'ConvInteger');
    if (!x.shape || !w.shape) return [{ dtype: 'int32', shape: null }];
    const kernel = intsAttr(attrs, 'kernel_shape', w.shape.slice(2) as number[]);
    const sa = spatialAttrs(attrs, kernel, x.shape.slice(2));
    const n = kernel.length;
    const spatial = x.shape.slice(2).map((d, i) =>
      typeof d === 'number' ? convOutputSize(d, kernel[i]!, sa.strides[i]!, sa.dilations[i]!, sa.pads[i]!, sa.pads[i + n]!) : null,
    );
    return [{ dtype: 'int32', shape: [x.shape[0]!, w.shape[0]!, ...spatial] }];
  },
});
