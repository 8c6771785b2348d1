import { KilnError, formatShape } from '../errors.js';
import type { Attrs, Graph, Shape, Value } from '../graph/graph.js';
import { broadcastShapes, constantInts, intAttr, intsAttr, normalizeAxis, requireInput, noGradientFlows, type OpDefinition } from '../graph/op-definition.js';
import { Tensor } from '../tensor.js';
import { reduceToShape } from './reduce-to-shape.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const SHAPE_OPS: readonly OpDefinition[] = ops;

/*
 * Ops that move or reinterpret data without arithmetic (Reshape, Transpose, Slice, Gather, Pad,
 * Resize, ...). Their gradients move the gradient back. Shape rules return null dims (or a null
 * shape) where a shape, index or size input is computed at run time, as in exporters'
 * Shape→Gather→Concat→Reshape chains.
 */

function product(dims: Shape): number | null {
  let p = 1;
  for (const d of dims) {
    if (typeof d !== 'number') return null;
    p *= d;
  }
  return p;
}

ops.push({
  type: 'Flatten',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'Flatten');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const axis = normalizeAxis(intAttr(attrs, 'axis', 1), x.shape.length);
    const outer = axis === 0 ? 1 : axis === 1 ? x.shape[0]! : product(x.shape.slice(0, axis));
    return [{ dtype: x.dtype, shape: [outer, product(x.shape.slice(axis))] }];
  },
  // dy reshaped back to x's shape
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => [graph.op1('Reshape', [dy!, graph.op1('Shape', [x!])])],
});

/** The [start, end) of the dims a Shape node returns (opset 15: negative counts from the end, clamped). */
function shapeRange(attrs: Attrs, rank: number): [number, number] {
  const clamp = (v: number) => Math.min(rank, Math.max(0, v < 0 ? v + rank : v));
  return [clamp(intAttr(attrs, 'start', 0)), clamp(intAttr(attrs, 'end', rank))];
}

/** The value whose whole shape a Shape node returns, or undefined (another op, or start/end). */
function wholeShapeOf(graph: Graph, name: string): Value | undefined {
  const producer = graph.producer(name);
  if (producer?.opType !== 'Shape') return undefined;
  const x = graph.value(producer.inputs[0]!);
  if (!x.shape) return undefined;
  const [start, end] = shapeRange(producer.attrs, x.shape.length);
  return start === 0 && end === x.shape.length ? x : undefined;
}

ops.push({
  type: 'Shape',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'Shape');
    if (!x.shape) return [{ dtype: 'int64', shape: null }];
    const [start, end] = shapeRange(attrs, x.shape.length);
    return [{ dtype: 'int64', shape: [Math.max(0, end - start)] }];
  },
  gradient: noGradientFlows,
});

ops.push({
  type: 'Reshape',
  nonDifferentiableInputs: [1],
  infer: (inputs, _attrs, graph) => {
    const x = requireInput(inputs, 0, 'Reshape');
    const target = requireInput(inputs, 1, 'Reshape');
    // A shape taken from another value with Shape() gives that value's shape.
    const source = wholeShapeOf(graph, target.name);
    if (source) return [{ dtype: x.dtype, shape: source.shape }];
    const dims = constantInts(graph, target);
    if (!dims) return [{ dtype: x.dtype, shape: null }];
    // 0 copies the input's dim at that index, unless allowzero (opset 14), where it is a 0-sized dim.
    const allowZero = intAttr(_attrs, 'allowzero', 0) === 1;
    const withCopies: Shape = dims.map((d, i) => (d === 0 && !allowZero ? (x.shape?.[i] ?? null) : d));
    const known = withCopies.filter((d) => d !== -1);
    const total = x.shape ? product(x.shape) : null;
    const knownProduct = product(known);
    const out: Shape = withCopies.map((d) => {
      if (d !== -1) return d;
      if (total !== null && knownProduct !== null) return total / knownProduct;
      // [N, ...static] reshaped to [-1, static...] keeps the symbolic batch dimension.
      if (x.shape && knownProduct !== null && product(x.shape.slice(1)) === knownProduct) return x.shape[0]!;
      return null;
    });
    if (total !== null && product(out) !== null && product(out) !== total) {
      throw new KilnError('INVALID_SHAPE', `Reshape: cannot reshape ${formatShape(x.shape!)} (${total} elements) to ${formatShape(dims)}`);
    }
    return [{ dtype: x.dtype, shape: out }];
  },
  // dy reshaped back to x's shape
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => [graph.op1('Reshape', [dy!, graph.op1('Shape', [x!])]), null],
});

ops.push({
  type: 'Transpose',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'Transpose');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const perm = intsAttr(attrs, 'perm', [...x.shape.keys()].reverse());
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape![p]!) }];
  },
  // dy transposed by the inverse permutation
  gradient: ({ graph, node, inputs: [x], gradOutputs: [dy] }) => {
    const perm = intsAttr(node.attrs, 'perm', [...x!.shape!.keys()].reverse());
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [graph.op1('Transpose', [dy!], { perm: inverse })];
  },
});

/*
 * SpaceToDepth / DepthToSpace (blocksize b): [N, C, H, W] ↔ [N, C·b², H/b, W/b]. Each moves every
 * element once, so each one's gradient is its inverse applied to dy: DepthToSpace in DCR mode is
 * SpaceToDepth's inverse; CRD mode's (channel c·b² + i·b + j to pixel (h·b + i, w·b + j)) has no single
 * op and is written as Reshape → Transpose → Reshape.
 */
function spaceDepthInfer(type: 'SpaceToDepth' | 'DepthToSpace') {
  return (inputs: (Value | null)[], attrs: Attrs) => {
    const x = requireInput(inputs, 0, type);
    const b = intAttr(attrs, 'blocksize', 0);
    if (!(b >= 1)) throw new KilnError('INVALID_ARGUMENT', `${type}: blocksize must be a positive integer, got ${String(attrs.blocksize)}`);
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    if (x.shape.length !== 4) throw new KilnError('INVALID_SHAPE', `${type}: input must be 4-D [N, C, H, W], got ${formatShape(x.shape)}`);
    const [n, c, h, w] = x.shape;
    const scale = (d: typeof c, f: (v: number) => number) => (typeof d === 'number' ? f(d) : null);
    if (type === 'SpaceToDepth') {
      if ((typeof h === 'number' && h % b) || (typeof w === 'number' && w % b)) throw new KilnError('INVALID_SHAPE', `SpaceToDepth: spatial size ${formatShape(x.shape)} is not a multiple of blocksize ${b}`);
      return [{ dtype: x.dtype, shape: [n!, scale(c, (v) => v * b * b), scale(h, (v) => v / b), scale(w, (v) => v / b)] }];
    }
    if (typeof c === 'number' && c % (b * b)) throw new KilnError('INVALID_SHAPE', `DepthToSpace: ${c} channels are not a multiple of blocksize² ${b * b}`);
    return [{ dtype: x.dtype, shape: [n!, scale(c, (v) => v / (b * b)), scale(h, (v) => v * b), scale(w, (v) => v * b)] }];
  };
}

ops.push({
  type: 'SpaceToDepth',
  infer: spaceDepthInfer('SpaceToDepth'),
  gradient: ({ graph, node, gradOutputs: [dy] }) => [graph.op1('DepthToSpace', [dy!], { blocksize: intAttr(node.attrs, 'blocksize', 0), mode: 'DCR' })],
});

ops.push({
  type: 'DepthToSpace',
  infer: spaceDepthInfer('DepthToSpace'),
  gradient: ({ graph, node, gradOutputs: [dy] }) => {
    const mode = typeof node.attrs.mode === 'string' ? node.attrs.mode : 'DCR';
    const b = intAttr(node.attrs, 'blocksize', 0);
    if (mode === 'DCR') return [graph.op1('SpaceToDepth', [dy!], { blocksize: b })];
    if (mode !== 'CRD') throw new KilnError('NO_GRADIENT', `DepthToSpace: no gradient rule for mode '${mode}' (DCR and CRD only)`);
    const [, c, h, w] = graph.staticShape({ ...dy!, shape: [1, ...(dy!.shape ?? []).slice(1)] });
    const blocks = graph.op1('Reshape', [dy!, graph.int64s([0, c!, h! / b, b, w! / b, b], 'shape')]); // [N, C, H/b, i, W/b, j]
    const channelsLast = graph.op1('Transpose', [blocks], { perm: [0, 1, 3, 5, 2, 4] }); // [N, C, i, j, H/b, W/b]
    return [graph.op1('Reshape', [channelsLast, graph.int64s([0, c! * b * b, h! / b, w! / b], 'shape')])];
  },
});

ops.push({
  type: 'Concat',
  infer: (inputs, attrs) => {
    const first = requireInput(inputs, 0, 'Concat');
    if (inputs.some((v) => !v?.shape)) return [{ dtype: first.dtype, shape: null }];
    const axis = normalizeAxis(intAttr(attrs, 'axis', 0), first.shape!.length);
    const out = [...first.shape!];
    let total: number | null = 0;
    for (const v of inputs) {
      const d = v!.shape![axis];
      total = typeof d === 'number' && total !== null ? total + d : null;
    }
    out[axis] = total;
    return [{ dtype: first.dtype, shape: out }];
  },
  // Each input's gradient is its slab of dy along the axis.
  gradient: ({ graph, node, inputs, gradOutputs: [dy] }) => {
    const rank = inputs[0]!.shape!.length;
    const axis = normalizeAxis(intAttr(node.attrs, 'axis', 0), rank);
    const sizes = inputs.map((v) => v!.shape![axis]);
    if (sizes.some((s) => typeof s !== 'number')) throw new KilnError('NO_GRADIENT', 'Concat gradient needs static sizes along the axis');
    return graph.op('Split', [dy!, graph.int64s(sizes as number[], 'split')], { axis }, { outputs: inputs.length });
  },
});

/**
 * The sizes a Split node cuts its axis into: the 'split' input (opset 13+) or attribute (before 13);
 * else num_outputs parts (opset 18: ceil(d/n) each, the last one smaller); else (opset 13) equal
 * parts, one per output. Null when they depend on run-time values.
 */
function splitSizes(inputs: (Value | null)[], attrs: Attrs, graph: Graph, dim: Shape[number], outputCount: number): number[] | null {
  if (inputs[1]) return constantInts(graph, inputs[1]) ?? null;
  if (Array.isArray(attrs.split)) return attrs.split as number[];
  if (typeof dim !== 'number') return null;
  const parts = intAttr(attrs, 'num_outputs', outputCount);
  const chunk = typeof attrs.num_outputs === 'number' ? Math.ceil(dim / parts) : dim / parts;
  return Array.from({ length: parts }, (_, k) => Math.max(0, Math.min(chunk, dim - k * chunk)));
}

ops.push({
  type: 'Split',
  nonDifferentiableInputs: [1],
  infer: (inputs, attrs, graph, outputCount) => {
    const x = requireInput(inputs, 0, 'Split');
    const unknown = Array.from({ length: outputCount }, () => ({ dtype: x.dtype, shape: null }));
    if (!x.shape) return unknown;
    const axis = normalizeAxis(intAttr(attrs, 'axis', 0), x.shape.length);
    const sizes = splitSizes(inputs, attrs, graph, x.shape[axis]!, outputCount);
    // Sizes unknown: every output keeps the other dims, its size along the axis is unknown.
    if (!sizes) return unknown.map(() => ({ dtype: x.dtype, shape: x.shape!.map((d, i) => (i === axis ? null : d)) }));
    return sizes.map((s) => ({ dtype: x.dtype, shape: x.shape!.map((d, i) => (i === axis ? s : d)) }));
  },
  // The parts' gradients concatenated back; an output no gradient reaches contributes zeros of its shape.
  gradient: ({ graph, node, outputs, gradOutputs }) => {
    const axis = normalizeAxis(intAttr(node.attrs, 'axis', 0), outputs[0]!.shape?.length ?? graph.value(node.inputs[0]!).shape!.length);
    const parts = gradOutputs.map((g, k) => g ?? zerosLike(graph, outputs[k]!));
    return [graph.op1('Concat', parts, { axis }), null];
  },
});

/** Zeros of a value's dtype and (run-time) shape, without reading its values (so no NaN·0). */
export function zerosLike(graph: Graph, v: Value): Value {
  return graph.op1('Expand', [graph.scalar(0, v.dtype), graph.op1('Shape', [v])]);
}

function unsqueezeShape(shape: Shape, axes: number[]): Shape {
  const rank = shape.length + axes.length;
  const norm = axes.map((a) => normalizeAxis(a, rank));
  const out: Shape = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : shape[k++]!);
  return out;
}

ops.push({
  type: 'Unsqueeze',
  nonDifferentiableInputs: [1],
  // axes: an input from opset 13, an attribute before.
  infer: (inputs, attrs, graph) => {
    const x = requireInput(inputs, 0, 'Unsqueeze');
    const axes = Array.isArray(attrs.axes) ? (attrs.axes as number[]) : constantInts(graph, inputs[1] ?? null);
    return [{ dtype: x.dtype, shape: x.shape && axes ? unsqueezeShape(x.shape, axes) : null }];
  },
  // A Reshape back to x's shape: valid whichever form (and opset) gave the axes.
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => [graph.op1('Reshape', [dy!, graph.op1('Shape', [x!])]), null],
});

ops.push({
  type: 'Squeeze',
  nonDifferentiableInputs: [1],
  infer: (inputs, attrs, graph) => {
    const x = requireInput(inputs, 0, 'Squeeze');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const axes = Array.isArray(attrs.axes)
      ? (attrs.axes as number[])
      : inputs[1]
        ? constantInts(graph, inputs[1])
        : x.shape.some((d) => typeof d !== 'number')
          ? undefined // which symbolic dims are 1 is known only at run time
          : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
    if (!axes) return [{ dtype: x.dtype, shape: null }];
    const norm = axes.map((a) => normalizeAxis(a, x.shape!.length));
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !norm.includes(i)) }];
  },
  // dy reshaped back to x's shape
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => [graph.op1('Reshape', [dy!, graph.op1('Shape', [x!])]), null],
});

/** Large enough to mean 'to the end' in a Slice (ONNX clamps ends to the dim). */
const TO_END = Number.MAX_SAFE_INTEGER;

/**
 * What one axis of a Slice picks from a dim of size d: `count` elements first, first + step, ...
 * ONNX clamps starts and ends to [0, d] for positive steps and to [0, d−1] / [−1, d−1] for negative
 * ones, after adding d to negative values.
 */
function sliceAxis(d: number, start: number, end: number, step: number): { first: number; count: number } {
  const wrap = (v: number) => (v < 0 ? v + d : v);
  if (step > 0) {
    const s = Math.max(0, Math.min(d, wrap(start)));
    const e = Math.max(0, Math.min(d, wrap(end)));
    return { first: s, count: Math.max(0, Math.ceil((e - s) / step)) };
  }
  const s = Math.max(0, Math.min(d - 1, wrap(start)));
  const e = Math.max(-1, Math.min(d - 1, wrap(end)));
  return { first: s, count: Math.max(0, Math.ceil((s - e) / -step)) };
}

/**
 * A Slice node's constant starts/ends/axes/steps (axes normalized), or undefined if any is computed.
 * Before opset 10 they were attributes (no steps).
 */
function sliceParams(graph: Graph, inputs: (Value | null)[], attrs: Attrs, rank: number) {
  if (Array.isArray(attrs.starts) && Array.isArray(attrs.ends)) {
    const starts = attrs.starts as number[];
    const axes = intsAttr(attrs, 'axes', starts.map((_, i) => i));
    return { starts, ends: attrs.ends as number[], axes: axes.map((a) => normalizeAxis(a, rank)), steps: starts.map(() => 1) };
  }
  const starts = constantInts(graph, inputs[1] ?? null);
  const ends = constantInts(graph, inputs[2] ?? null);
  if (!starts || !ends) return undefined;
  const axes = inputs[3] ? constantInts(graph, inputs[3]) : starts.map((_, i) => i);
  const steps = inputs[4] ? constantInts(graph, inputs[4]) : starts.map(() => 1);
  if (!axes || !steps) return undefined;
  return { starts, ends, axes: axes.map((a) => normalizeAxis(a, rank)), steps };
}

ops.push({
  type: 'Slice',
  nonDifferentiableInputs: [1, 2, 3, 4],
  infer: (inputs, attrs, graph) => {
    const x = requireInput(inputs, 0, 'Slice');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const p = sliceParams(graph, inputs, attrs, x.shape.length);
    if (!p) {
      // Computed starts/ends: the sliced axes (all, when axes are computed too) have unknown sizes.
      const axes = inputs[3] ? constantInts(graph, inputs[3])?.map((a) => normalizeAxis(a, x.shape!.length)) : undefined;
      return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (axes && !axes.includes(i) ? d : null)) }];
    }
    const out = [...x.shape];
    p.axes.forEach((axis, k) => {
      const d = x.shape![axis];
      out[axis] = typeof d === 'number' ? sliceAxis(d, p.starts[k]!, p.ends[k]!, p.steps[k]!).count : null;
    });
    return [{ dtype: x.dtype, shape: out }];
  },
  /*
   * dy put back where the slice took it from, zeros elsewhere. Unit-step axes: one Pad for all of them
   * (the cheapest form). Other steps (strided, reversed): per axis, a ScatterElements of the gradient
   * into zeros at the indices first + k·step along that axis; its indices are distinct, so no
   * reduction, and ONNX Runtime writes each element once (a one-hot MatMul would cost d·count per row).
   * Needs constant starts/ends/axes/steps and statically known sliced axes.
   */
  gradient: ({ graph, node, inputs, gradOutputs: [dy] }) => {
    const x = inputs[0]!;
    const rank = x.shape?.length ?? 0;
    const p = sliceParams(graph, inputs, node.attrs, rank);
    if (!p || p.axes.some((a) => typeof x.shape![a] !== 'number')) {
      throw new KilnError('NO_GRADIENT', 'Slice gradient needs constant starts/ends/axes/steps and statically known sliced axes');
    }
    let g = dy!;
    const pads = Array<number>(2 * rank).fill(0);
    p.axes.forEach((axis, k) => {
      const d = x.shape![axis] as number;
      const step = p.steps[k]!;
      const { first, count } = sliceAxis(d, p.starts[k]!, p.ends[k]!, step);
      if (step === 1) {
        pads[axis] = first;
        pads[axis + rank] = d - first - count;
        return;
      }
      const picked = Array.from({ length: count }, (_, j) => first + j * step);
      const along = graph.int64s(picked, 'indices');
      const indexShape = Array.from({ length: rank }, (_, i) => (i === axis ? count : 1));
      const indices = graph.op1('Expand', [graph.op1('Reshape', [along, graph.int64s(indexShape, 'shape')]), graph.op1('Shape', [g])]);
      const gShape = g.shape?.map((v, i) => (i === axis ? d : v));
      const fullShape = gShape?.every((v) => typeof v === 'number')
        ? graph.int64s(gShape as number[], 'shape')
        : graph.op1('ScatterElements', [graph.op1('Shape', [g]), graph.int64s([axis], 'axis'), graph.int64s([d], 'dim')], { axis: 0 });
      const zeros = graph.op1('Expand', [graph.scalar(0, g.dtype), fullShape]);
      g = graph.op1('ScatterElements', [zeros, indices, g], { axis });
    });
    if (pads.some((v) => v !== 0)) g = graph.op1('Pad', [g, graph.int64s(pads, 'pads')]);
    return [g];
  },
});

/** A Pad node's pads as [begin..., end...] over all rank axes (opset 18's axes input mapped), or undefined. */
function fullPads(graph: Graph, inputs: (Value | null)[], rank: number): number[] | undefined {
  const pads = constantInts(graph, inputs[1] ?? null);
  if (!pads) return undefined;
  if (!inputs[3]) return pads;
  const axes = constantInts(graph, inputs[3]);
  if (!axes) return undefined;
  const out = Array<number>(2 * rank).fill(0);
  axes.forEach((a, k) => {
    const axis = normalizeAxis(a, rank);
    out[axis] = pads[k]!;
    out[axis + rank] = pads[k + axes.length]!;
  });
  return out;
}

/** dy reversed along one axis (a Slice with step −1). */
function flip(graph: Graph, v: Value, axis: number): Value {
  return graph.op1('Slice', [v, graph.int64s([-1], 'starts'), graph.int64s([-TO_END], 'ends'), graph.int64s([axis], 'axes'), graph.int64s([-1], 'steps')]);
}

/** v[begin:end] along one axis. */
function sliceAlong(graph: Graph, v: Value, axis: number, begin: number, end: number): Value {
  return graph.op1('Slice', [v, graph.int64s([begin], 'starts'), graph.int64s([end], 'ends'), graph.int64s([axis], 'axes')]);
}

/** v zero-padded by `before`/`after` along one axis. */
function padAlong(graph: Graph, v: Value, axis: number, rank: number, before: number, after: number): Value {
  const pads = Array<number>(2 * rank).fill(0);
  pads[axis] = before;
  pads[axis + rank] = after;
  return graph.op1('Pad', [v, graph.int64s(pads, 'pads')]);
}

ops.push({
  type: 'Pad',
  nonDifferentiableInputs: [1, 2, 3],
  infer: (inputs, _a, graph) => {
    const x = requireInput(inputs, 0, 'Pad');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const r = x.shape.length;
    const pads = fullPads(graph, inputs, r);
    // Pads computed at run time (PyTorch's F.pad with traced sizes): the rank is known.
    if (!pads) return [{ dtype: x.dtype, shape: x.shape.map(() => null) }];
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? d + pads[i]! + pads[i + r]! : pads[i] === 0 && pads[i + r] === 0 ? d : null)) }];
  },
  /*
   * constant: the gradient is dy with the padding cut off (a Slice; negative pads cropped the input,
   * so there the gradient is zero-padded back). reflect and edge (static sizes on the padded axes),
   * one axis at a time since both pad each axis independently: the center, plus the padding's
   * gradient added where it was copied from — reflect mirrors it onto x[1..b] and x[d−1−e..d−2] (the
   * edge element itself is not repeated), edge sums it onto the first and last element.
   */
  gradient: ({ graph, node, inputs, gradOutputs: [dy] }) => {
    const x = inputs[0]!;
    const rank = x.shape?.length ?? 0;
    const pads = fullPads(graph, inputs, rank);
    if (!x.shape || !pads) throw new KilnError('NO_GRADIENT', 'Pad gradient needs constant pads (and axes) and a known rank');
    const mode = typeof node.attrs.mode === 'string' ? node.attrs.mode : 'constant';
    if (mode === 'constant') {
      const axes = [...Array(rank).keys()];
      const starts = axes.map((i) => Math.max(0, pads[i]!));
      const ends = axes.map((i) => (pads[i + rank]! > 0 ? -pads[i + rank]! : TO_END));
      let g = graph.op1('Slice', [dy!, graph.int64s(starts, 'starts'), graph.int64s(ends, 'ends'), graph.int64s(axes, 'axes')]);
      const crop = [...axes.map((i) => Math.max(0, -pads[i]!)), ...axes.map((i) => Math.max(0, -pads[i + rank]!))];
      if (crop.some((c) => c > 0)) g = graph.op1('Pad', [g, graph.int64s(crop, 'pads')]);
      return [g];
    }
    if (mode !== 'reflect' && mode !== 'edge') throw new KilnError('NO_GRADIENT', `Pad gradient: mode '${mode}' is not supported`);
    let g = dy!;
    for (let axis = 0; axis < rank; axis++) {
      const [b, e] = [pads[axis]!, pads[axis + rank]!];
      if (b === 0 && e === 0) continue;
      const d = x.shape[axis];
      if (typeof d !== 'number' || b < 0 || e < 0) throw new KilnError('NO_GRADIENT', `Pad gradient (${mode}) needs a static size and non-negative pads on axis ${axis}`);
      let sum = sliceAlong(graph, g, axis, b, b + d);
      const axesV = graph.int64s([axis], 'axes');
      if (b > 0) {
        const head = sliceAlong(graph, g, axis, 0, b);
        const back = mode === 'reflect' ? padAlong(graph, flip(graph, head, axis), axis, rank, 1, d - 1 - b) : padAlong(graph, graph.op1('ReduceSum', [head, axesV], { keepdims: 1 }), axis, rank, 0, d - 1);
        sum = graph.op1('Add', [sum, back]);
      }
      if (e > 0) {
        const tail = sliceAlong(graph, g, axis, b + d, b + d + e);
        const back = mode === 'reflect' ? padAlong(graph, flip(graph, tail, axis), axis, rank, d - 1 - e, 1) : padAlong(graph, graph.op1('ReduceSum', [tail, axesV], { keepdims: 1 }), axis, rank, d - 1, 0);
        sum = graph.op1('Add', [sum, back]);
      }
      g = sum;
    }
    return [g];
  },
});

/**
 * What a Resize node does per axis (its scales or its sizes, over all rank axes; opset 18's axes
 * attribute mapped), or undefined when they are computed at run time.
 */
function resizePlan(graph: Graph, inputs: (Value | null)[], attrs: Attrs, rank: number): { scales?: number[]; sizes?: number[] } | undefined {
  const axes = Array.isArray(attrs.axes) ? (attrs.axes as number[]).map((a) => normalizeAxis(a, rank)) : [...Array(rank).keys()];
  const spread = (given: number[], fill: (axis: number) => number) => {
    const out = Array.from({ length: rank }, (_, i) => fill(i));
    axes.forEach((a, k) => (out[a] = given[k]!));
    return out;
  };
  const sizesValue = inputs[3] ?? null;
  if (sizesValue) {
    const sizes = constantInts(graph, sizesValue);
    const x = inputs[0]!;
    return sizes ? { sizes: spread(sizes, (i) => (typeof x.shape?.[i] === 'number' ? (x.shape[i] as number) : -1)) } : undefined;
  }
  const scalesTensor = inputs[2] ? graph.constantValue(inputs[2].name) : undefined;
  if (!scalesTensor) return undefined;
  return { scales: spread(Array.from(scalesTensor.data as Float32Array, Number), () => 1) };
}

ops.push({
  type: 'Resize',
  nonDifferentiableInputs: [1, 2, 3],
  infer: (inputs, attrs, graph) => {
    const x = requireInput(inputs, 0, 'Resize');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const plan = resizePlan(graph, inputs, attrs, x.shape.length);
    const policy = typeof attrs.keep_aspect_ratio_policy === 'string' ? attrs.keep_aspect_ratio_policy : 'stretch';
    // Sizes or scales computed at run time (or sizes adjusted to keep the aspect ratio): the rank is known.
    if (!plan || (plan.sizes && policy !== 'stretch')) return [{ dtype: x.dtype, shape: x.shape.map(() => null) }];
    if (plan.sizes) return [{ dtype: x.dtype, shape: plan.sizes.map((s, i) => (s === -1 ? x.shape![i]! : s)) }];
    const scales = plan.scales!;
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? Math.floor(d * scales[i]!) : scales[i] === 1 ? d : null)) }];
  },
  /*
   * Resize is linear in X and acts on each axis separately: along a resized axis of size d → o it is an
   * [o, d] interpolation matrix A, and dX = Aᵀ·dY along that axis. A is obtained by resizing the d×d
   * identity with the node's own attributes (mode, coordinate_transformation_mode, nearest_mode,
   * cubic_coeff_a, exclude_outside, antialias), so the gradient matches ONNX Runtime's forward
   * exactly in every mode without restating its coordinate formulas; A is a constant subgraph that
   * ONNX Runtime folds at load time. The cost is a MatMul of d·o per row, small for the feature-map
   * sizes of CNN upsampling. tf_crop_and_resize (roi) and computed scales/sizes are not supported.
   */
  gradient: ({ graph, node, inputs, gradOutputs: [dy] }) => {
    const x = inputs[0]!;
    const rank = x.shape?.length ?? 0;
    const plan = x.shape ? resizePlan(graph, inputs, node.attrs, rank) : undefined;
    const policy = typeof node.attrs.keep_aspect_ratio_policy === 'string' ? node.attrs.keep_aspect_ratio_policy : 'stretch';
    if (!plan || policy !== 'stretch' || node.attrs.coordinate_transformation_mode === 'tf_crop_and_resize') {
      throw new KilnError('NO_GRADIENT', 'Resize gradient needs constant scales or sizes, keep_aspect_ratio_policy stretch and no tf_crop_and_resize');
    }
    const { axes: _axes, keep_aspect_ratio_policy: _policy, ...attrs } = node.attrs;
    let g = dy!;
    for (let axis = 0; axis < rank; axis++) {
      const d = x.shape![axis];
      const o = dy!.shape?.[axis];
      const scale = plan.scales?.[axis] ?? 1;
      // Scale 1, or a size equal to the input's: the identity in every coordinate mode but tf_crop_and_resize.
      if (plan.scales ? scale === 1 : plan.sizes![axis] === -1 || plan.sizes![axis] === d) continue;
      if (typeof d !== 'number' || typeof o !== 'number') throw new KilnError('NO_GRADIENT', `Resize gradient needs static sizes on resized axis ${axis}`);
      const eye = new Float32Array(d * d);
      for (let i = 0; i < d; i++) eye[i * d + i] = 1;
      const identity = graph.constant(new Tensor(eye, [d, d], 'float32'), 'identity');
      const resizeInputs = plan.sizes
        ? [identity, '', '', graph.int64s([o, d], 'sizes')]
        : [identity, '', graph.constant(new Tensor(Float32Array.of(scale, 1), [2], 'float32'), 'scales')];
      const a = graph.op1('Resize', resizeInputs, attrs); // [o, d]
      if (axis === rank - 1) g = graph.op1('MatMul', [g, a]);
      else if (axis === rank - 2) g = graph.op1('MatMul', [graph.op1('Transpose', [a], { perm: [1, 0] }), g]);
      else {
        const perm = [...Array(rank).keys()];
        [perm[axis], perm[rank - 1]] = [rank - 1, axis];
        g = graph.op1('Transpose', [graph.op1('MatMul', [graph.op1('Transpose', [g], { perm }), a])], { perm });
      }
    }
    return [g, null, null, null];
  },
});

ops.push({
  type: 'Expand',
  nonDifferentiableInputs: [1],
  /* Bidirectional broadcasting: the output is x's shape broadcast with the target (a 1 there keeps x's dim). */
  infer: (inputs, _a, graph) => {
    const x = requireInput(inputs, 0, 'Expand');
    const target = requireInput(inputs, 1, 'Expand');
    const source = wholeShapeOf(graph, target.name);
    const dims = source?.shape ?? constantInts(graph, target);
    if (dims) return [{ dtype: x.dtype, shape: broadcastShapes(x.shape, dims, 'Expand') }];
    // A computed target of known length: the rank is known, x's dims other than 1 are kept.
    const length = target.shape?.length === 1 ? target.shape[0] : null;
    if (typeof length !== 'number' || !x.shape) return [{ dtype: x.dtype, shape: null }];
    return [{ dtype: x.dtype, shape: broadcastShapes(x.shape, Array(length).fill(null), 'Expand') }];
  },
  // Summed back over the axes the expansion added or stretched from 1.
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => {
    if (!dy!.shape || !x!.shape) throw new KilnError('NO_GRADIENT', 'Expand gradient needs the ranks of its input and output');
    return [reduceToShape(graph, dy!, x!), null];
  },
});

ops.push({
  type: 'Tile',
  nonDifferentiableInputs: [1],
  infer: (inputs, _a, graph) => {
    const x = requireInput(inputs, 0, 'Tile');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const repeats = constantInts(graph, inputs[1] ?? null);
    if (!repeats) return [{ dtype: x.dtype, shape: x.shape.map(() => null) }];
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (repeats[i] === 1 ? d : typeof d === 'number' ? d * repeats[i]! : null)) }];
  },
  /*
   * The output along an axis is r copies of x: reshaped to [r, d] per axis, the copies' gradients are
   * summed by one ReduceSum over the r axes. Needs constant repeats; symbolic dims are read at run time.
   */
  gradient: ({ graph, inputs: [x, repeatsV], gradOutputs: [dy] }) => {
    const repeats = constantInts(graph, repeatsV ?? null);
    if (!repeats || !x!.shape) throw new KilnError('NO_GRADIENT', 'Tile gradient needs constant repeats');
    if (repeats.every((r) => r === 1)) return [dy!, null];
    const parts: Value[] = [];
    const sumAxes: number[] = [];
    let staticDims: number[] | null = [];
    x!.shape.forEach((d, i) => {
      if (repeats[i] !== 1) {
        sumAxes.push(sumAxes.length + i);
        staticDims?.push(repeats[i]!);
        parts.push(graph.int64s([repeats[i]!], 'repeat'));
      }
      if (typeof d === 'number') staticDims?.push(d);
      else staticDims = null;
      parts.push(typeof d === 'number' ? graph.int64s([d], 'dim') : graph.op1('Gather', [graph.op1('Shape', [x!]), graph.int64s([i], 'axis')]));
    });
    const target = staticDims ? graph.int64s(staticDims, 'shape') : graph.op1('Concat', parts, { axis: 0 });
    const split = graph.op1('Reshape', [dy!, target]);
    return [graph.op1('ReduceSum', [split, graph.int64s(sumAxes, 'axes')], { keepdims: 0 }), null];
  },
});

ops.push({
  type: 'Gather',
  nonDifferentiableInputs: [1],
  // data[:axis] + indices.shape + data[axis+1:]
  infer: (inputs, attrs) => {
    const data = requireInput(inputs, 0, 'Gather');
    const indices = requireInput(inputs, 1, 'Gather');
    if (!data.shape || !indices.shape) return [{ dtype: data.dtype, shape: null }];
    const axis = normalizeAxis(intAttr(attrs, 'axis', 0), data.shape.length);
    return [{ dtype: data.dtype, shape: [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)] }];
  },
  /*
   * dData: the gradient rows added into zeros at the gathered positions — a ScatterND with
   * reduction 'add' (opset 16+), with the gathered axis moved to the front so each index selects one
   * slab. Repeated indices (an embedding row used twice) accumulate. ScatterND over a one-hot MatMul:
   * it touches only the gathered rows, where OneHot·MatMul costs (vocabulary × tokens) per column,
   * and ONNX Runtime's CPU kernel runs it; negative indices are made positive first (ScatterND's
   * bounds are not promised for them by every runtime).
   */
  gradient: ({ graph, node, inputs: [data, indices], gradOutputs: [dy] }) => {
    if (!data!.shape || !indices!.shape) throw new KilnError('NO_GRADIENT', 'Gather gradient needs the ranks of data and indices');
    const rank = data!.shape.length;
    const axis = normalizeAxis(intAttr(node.attrs, 'axis', 0), rank);
    let idx = indices!;
    let g = dy!;
    let q = idx.shape!.length;
    if (q === 0) {
      // A scalar index removed the axis: put it back as a size-1 axis with a [1] index.
      idx = graph.op1('Reshape', [idx, graph.int64s([1], 'shape')]);
      g = graph.op1('Unsqueeze', [g, graph.int64s([axis], 'axes')]);
      q = 1;
    }
    if (idx.dtype !== 'int64') idx = graph.op1('Cast', [idx], { to: 7 });
    const d = data!.shape[axis];
    const size = typeof d === 'number' ? graph.int64s([d], 'dim') : graph.op1('Gather', [graph.op1('Shape', [data!]), graph.int64s([axis], 'axis')]);
    const negative = graph.op1('Cast', [graph.op1('Less', [idx, graph.int64s([0], 'zero')])], { to: 7 });
    idx = graph.op1('Add', [idx, graph.op1('Mul', [negative, size])]);
    // dy [d0..d(a-1), I..., d(a+1)..] → [I..., d0..d(a-1), d(a+1)..]; data → [d_a, d0..d(a-1), d(a+1)..].
    const gPerm = [...Array.from({ length: q }, (_, i) => axis + i), ...Array.from({ length: axis }, (_, i) => i), ...Array.from({ length: rank - axis - 1 }, (_, i) => axis + q + i)];
    const dataPerm = [axis, ...Array.from({ length: axis }, (_, i) => i), ...Array.from({ length: rank - axis - 1 }, (_, i) => axis + 1 + i)];
    const moved = axis === 0 ? g : graph.op1('Transpose', [g], { perm: gPerm });
    const dataShape = data!.shape.every((v) => typeof v === 'number')
      ? graph.int64s(dataPerm.map((i) => data!.shape![i] as number), 'shape')
      : graph.op1('Gather', [graph.op1('Shape', [data!]), graph.int64s(dataPerm, 'perm')]);
    const zeros = graph.op1('Expand', [graph.scalar(0, data!.dtype), dataShape]);
    const scattered = graph.op1('ScatterND', [zeros, graph.op1('Unsqueeze', [idx, graph.int64s([-1], 'axes')]), moved], { reduction: 'add' });
    const back = axis === 0 ? scattered : graph.op1('Transpose', [scattered], { perm: dataPerm.map((_, i) => dataPerm.indexOf(i)) });
    return [back, null];
  },
});

/**
 * A Scatter's reduction as its gradient rule needs it: 'none' (the written positions take the
 * updates, so data's gradient there is 0) or 'add' (data's gradient passes whole); 'mul', 'max' and
 * 'min' have no rule.
 */
function scatterReduction(node: { attrs: Attrs }, type: string): 'none' | 'add' {
  const r = typeof node.attrs.reduction === 'string' ? node.attrs.reduction : 'none';
  if (r !== 'none' && r !== 'add') throw new KilnError('NO_GRADIENT', `${type}: no gradient rule for reduction '${r}' (none and add only)`);
  return r;
}

ops.push({
  type: 'ScatterND',
  nonDifferentiableInputs: [1],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'ScatterND');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  /*
   * dUpdates = GatherND(dy, indices); dData = dy with the written positions zeroed (reduction none: the
   * updates replaced them) or dy whole (reduction add). Repeated indices under 'none' leave the last
   * write, as ONNX leaves which one undefined; the gradient then reaches every writer.
   */
  gradient: ({ graph, node, inputs: [, indices, updates], gradOutputs: [dy] }) => {
    const reduction = scatterReduction(node, 'ScatterND');
    const dUpdates = graph.op1('GatherND', [dy!, indices!]);
    const dData = reduction === 'add' ? dy! : graph.op1('ScatterND', [dy!, indices!, zerosLike(graph, updates!)]);
    return [dData, null, dUpdates];
  },
});

ops.push({
  type: 'ScatterElements',
  nonDifferentiableInputs: [1],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'ScatterElements');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  // dUpdates = GatherElements(dy, indices) along the axis; dData = dy with the written positions zeroed (none) or whole (add).
  gradient: ({ graph, node, inputs: [, indices, updates], gradOutputs: [dy] }) => {
    const reduction = scatterReduction(node, 'ScatterElements');
    const axis = intAttr(node.attrs, 'axis', 0);
    const dUpdates = graph.op1('GatherElements', [dy!, indices!], { axis });
    const dData = reduction === 'add' ? dy! : graph.op1('ScatterElements', [dy!, indices!, zerosLike(graph, updates!)], { axis });
    return [dData, null, dUpdates];
  },
});

ops.push({
  type: 'GatherElements',
  nonDifferentiableInputs: [1],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'GatherElements');
    const idx = requireInput(inputs, 1, 'GatherElements');
    return [{ dtype: x.dtype, shape: idx.shape }];
  },
  // torch.gather's export: dData adds each gradient element into the position it was read from (ScatterElements, reduction add, opset 16+).
  gradient: ({ graph, node, inputs: [data, indices], gradOutputs: [dy] }) => [
    graph.op1('ScatterElements', [zerosLike(graph, data!), indices!, dy!], { axis: intAttr(node.attrs, 'axis', 0), reduction: 'add' }),
    null,
  ],
});

ops.push({
  type: 'GatherND',
  nonDifferentiableInputs: [1],
  // data [d0..d(r-1)] indexed by indices [i0..i(q-2), k]: indices' leading axes, then data's axes past k (batch_dims 0).
  infer: (inputs, attrs) => {
    const data = requireInput(inputs, 0, 'GatherND');
    const indices = requireInput(inputs, 1, 'GatherND');
    const b = intAttr(attrs, 'batch_dims', 0);
    const k = indices.shape?.at(-1);
    if (!data.shape || !indices.shape || typeof k !== 'number') return [{ dtype: data.dtype, shape: null }];
    return [{ dtype: data.dtype, shape: [...indices.shape.slice(0, -1), ...data.shape.slice(b + k)] }];
  },
  // dData adds each gathered slice's gradient into the slice it came from (ScatterND, reduction add); batch_dims 0.
  gradient: ({ graph, node, inputs: [data, indices], gradOutputs: [dy] }) => {
    if (intAttr(node.attrs, 'batch_dims', 0) !== 0) throw new KilnError('NO_GRADIENT', 'GatherND: no gradient rule for batch_dims > 0');
    return [graph.op1('ScatterND', [zerosLike(graph, data!), indices!, dy!], { reduction: 'add' }), null];
  },
});

ops.push({
  type: 'TopK',
  nonDifferentiableInputs: [1],
  infer: (inputs, attrs, graph) => {
    const x = requireInput(inputs, 0, 'TopK');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }, { dtype: 'int64', shape: null }];
    const axis = normalizeAxis(intAttr(attrs, 'axis', -1), x.shape.length);
    const k = constantInts(graph, inputs[1] ?? null)?.[0] ?? null;
    const shape = x.shape.map((d, i) => (i === axis ? k : d));
    return [{ dtype: x.dtype, shape }, { dtype: 'int64', shape: [...shape] }];
  },
  // The k values' gradients go back to the positions they were taken from (ScatterElements of dValues at Indices); the indices have none.
  gradient: ({ graph, node, inputs: [x], outputs: [, indices], gradOutputs: [dValues] }) => {
    if (!dValues) return [null, null];
    const axis = normalizeAxis(intAttr(node.attrs, 'axis', -1), x!.shape!.length);
    return [graph.op1('ScatterElements', [zerosLike(graph, x!), indices!, dValues], { axis, reduction: 'add' }), null];
  },
});

ops.push({
  type: 'Trilu',
  nonDifferentiableInputs: [1],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'Trilu');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  // A mask of the upper or lower triangle: the gradient is dy under the same mask (Trilu of dy with the same k and upper).
  gradient: ({ graph, node, inputs: [, k], gradOutputs: [dy] }) => [graph.op1('Trilu', k ? [dy!, k] : [dy!], { upper: intAttr(node.attrs, 'upper', 1) }), null],
});

ops.push({
  type: 'OneHot',
  nonDifferentiableInputs: [0, 1, 2],
  infer: (inputs, attrs, graph) => {
    const idx = requireInput(inputs, 0, 'OneHot');
    const depth = constantInts(graph, inputs[1] ?? null);
    const values = requireInput(inputs, 2, 'OneHot');
    if (!idx.shape) return [{ dtype: values.dtype, shape: null }];
    const axis = intAttr(attrs, 'axis', -1);
    const out = [...idx.shape];
    out.splice(axis < 0 ? out.length + 1 + axis : axis, 0, depth ? depth[0]! : null);
    return [{ dtype: values.dtype, shape: out }];
  },
  gradient: noGradientFlows,
});
