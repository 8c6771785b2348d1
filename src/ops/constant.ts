import { KilnError } from '../errors.js';
import type { Attrs } from '../graph/graph.js';
import { constantInts, requireInput, type InferredValue, noGradientFlows, type OpDefinition } from '../graph/op-definition.js';
import { Tensor, int64FromNumber } from '../tensor.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const CONSTANT_OPS: readonly OpDefinition[] = ops;

/*
 * Constant, ConstantOfShape and Range: exporters write them for scalars, shape pieces and masks. They take no
 * input a gradient could flow into, so they have shape rules only (and appear in imported graphs).
 */

/** The tensor a Constant node holds, from whichever of its attribute forms is set. */
export function constantAttrValue(attrs: Attrs): Tensor {
  const v = attrs.value;
  if (v instanceof Tensor) return v;
  if (typeof attrs.value_float === 'number') return new Tensor(Float32Array.of(attrs.value_float), [], 'float32');
  if (typeof attrs.value_int === 'number') return new Tensor(BigInt64Array.of(int64FromNumber(attrs.value_int)), [], 'int64');
  if (Array.isArray(attrs.value_floats)) return new Tensor(Float32Array.from(attrs.value_floats as number[]), [attrs.value_floats.length], 'float32');
  if (Array.isArray(attrs.value_ints)) return new Tensor(BigInt64Array.from(attrs.value_ints as number[], int64FromNumber), [attrs.value_ints.length], 'int64');
  throw new KilnError('UNSUPPORTED_OP', `Constant: Kiln reads value, value_float(s) and value_int(s); this node sets ${Object.keys(attrs).join(', ') || 'none'}`);
}

ops.push({
  type: 'Constant',
  infer: (_inputs, attrs): InferredValue[] => {
    const t = constantAttrValue(attrs);
    return [{ dtype: t.dtype, shape: [...t.shape] }];
  },
  gradient: noGradientFlows,
});

ops.push({
  type: 'ConstantOfShape',
  nonDifferentiableInputs: [0],
  infer: (inputs, attrs, graph) => {
    const shape = requireInput(inputs, 0, 'ConstantOfShape');
    const fill = attrs.value instanceof Tensor ? attrs.value : undefined;
    const dims = constantInts(graph, shape);
    const rank = typeof shape.shape?.[0] === 'number' ? shape.shape[0] : undefined;
    return [{ dtype: fill?.dtype ?? 'float32', shape: dims ?? (rank !== undefined ? Array(rank).fill(null) : null) }];
  },
  gradient: noGradientFlows,
});

/*
 * Range: torch.arange's export (a text model's position ids, arange over the sequence's length). Its
 * length is known when its three scalars are constants, else it is measured at run time. Integer
 * positions and steps: no gradient.
 */
ops.push({
  type: 'Range',
  nonDifferentiableInputs: [0, 1, 2],
  infer: (inputs, _attrs, graph) => {
    const start = requireInput(inputs, 0, 'Range');
    const [s, l, d] = [0, 1, 2].map((k) => constantInts(graph, requireInput(inputs, k, 'Range'))?.[0]);
    const length = s !== undefined && l !== undefined && d !== undefined && d !== 0 ? Math.max(Math.ceil((l - s) / d), 0) : null;
    return [{ dtype: start.dtype, shape: [length] }];
  },
  gradient: noGradientFlows,
});

/*
 * RandomNormal: a fresh draw of the given static shape at every run (ONNX Runtime seeds one generator
 * per session from `seed` and keeps drawing from it). DP-SGD's noise; no input, so no gradient.
 */
ops.push({
  type: 'RandomNormal',
  infer: (_inputs, attrs) => {
    if (!Array.isArray(attrs.shape)) throw new KilnError('INVALID_ARGUMENT', 'RandomNormal: the shape attribute is required');
    if (attrs.dtype !== undefined && attrs.dtype !== 1) throw new KilnError('UNSUPPORTED_OP', `RandomNormal: Kiln draws float32 (dtype 1), got dtype ${String(attrs.dtype)}`);
    return [{ dtype: 'float32', shape: [...(attrs.shape as number[])] }];
  },
  gradient: noGradientFlows,
});
