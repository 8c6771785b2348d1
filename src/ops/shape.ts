import { KilnError, formatShape } from '../errors.js';
import type { Attrs, Graph, Shape, Value } from '../graph/graph.js';
import { constantInts, defineOp, intAttr, intsAttr, normalizeAxis, requireInput } from '../graph/registry.js';

/* Ops that move or reinterpret data without arithmetic. Their gradients move the gradient back. */

function product(dims: Shape): number | null {
  let p = 1;
  for (const d of dims) {
    if (typeof d !== 'number') return null;
    p *= d;
  }
  return p;
}

defineOp({
  type: 'Flatten',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'Flatten');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const axis = normalizeAxis(intAttr(attrs, 'axis', 1), x.shape.length);
    const outer = axis === 0 ? 1 : axis === 1 ? x.shape[0]! : product(x.shape.slice(0, axis));
    return [{ dtype: x.dtype, shape: [outer, product(x.shape.slice(axis))] }];
  },
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

defineOp({
  type: 'Shape',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'Shape');
    if (!x.shape) return [{ dtype: 'int64', shape: null }];
    const [start, end] = shapeRange(attrs, x.shape.length);
    return [{ dtype: 'int64', shape: [Math.max(0, end - start)] }];
  },
  gradient: () => [null],
});

defineOp({
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
    const withCopies: Shape = dims.map((d, i) => (d === 0 ? (x.shape?.[i] ?? null) : d));
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
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => [graph.op1('Reshape', [dy!, graph.op1('Shape', [x!])]), null],
});

defineOp({
  type: 'Transpose',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'Transpose');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const perm = intsAttr(attrs, 'perm', [...x.shape.keys()].reverse());
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape![p]!) }];
  },
  gradient: ({ graph, node, inputs: [x], gradOutputs: [dy] }) => {
    const perm = intsAttr(node.attrs, 'perm', [...x!.shape!.keys()].reverse());
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [graph.op1('Transpose', [dy!], { perm: inverse })];
  },
});

defineOp({
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

defineOp({
  type: 'Split',
  nonDifferentiableInputs: [1],
  infer: (inputs, attrs, graph) => {
    const x = requireInput(inputs, 0, 'Split');
    const sizes = constantInts(graph, inputs[1] ?? null);
    if (!x.shape || !sizes) return [{ dtype: x.dtype, shape: null }];
    const axis = normalizeAxis(intAttr(attrs, 'axis', 0), x.shape.length);
    return sizes.map((s) => ({ dtype: x.dtype, shape: x.shape!.map((d, i) => (i === axis ? s : d)) }));
  },
  gradient: ({ graph, node, outputs, gradOutputs }) => {
    const axis = normalizeAxis(intAttr(node.attrs, 'axis', 0), outputs[0]!.shape!.length);
    const parts = gradOutputs.map((g, k) => g ?? graph.op1('Mul', [outputs[k]!, graph.scalar(0, outputs[k]!.dtype)]));
    return [graph.op1('Concat', parts, { axis }), null];
  },
});

function unsqueezeShape(shape: Shape, axes: number[]): Shape {
  const rank = shape.length + axes.length;
  const norm = axes.map((a) => normalizeAxis(a, rank));
  const out: Shape = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : shape[k++]!);
  return out;
}

defineOp({
  type: 'Unsqueeze',
  nonDifferentiableInputs: [1],
  infer: (inputs, _a, graph) => {
    const x = requireInput(inputs, 0, 'Unsqueeze');
    const axes = constantInts(graph, inputs[1] ?? null);
    return [{ dtype: x.dtype, shape: x.shape && axes ? unsqueezeShape(x.shape, axes) : null }];
  },
  gradient: ({ graph, inputs: [x, axes], gradOutputs: [dy] }) => [graph.op1('Squeeze', [dy!, axes!]), null],
});

defineOp({
  type: 'Squeeze',
  nonDifferentiableInputs: [1],
  infer: (inputs, _a, graph) => {
    const x = requireInput(inputs, 0, 'Squeeze');
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const axes = inputs[1] ? constantInts(graph, inputs[1]) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
    if (!axes) return [{ dtype: x.dtype, shape: null }];
    const norm = axes.map((a) => normalizeAxis(a, x.shape!.length));
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !norm.includes(i)) }];
  },
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => [graph.op1('Reshape', [dy!, graph.op1('Shape', [x!])]), null],
});

defineOp({
  type: 'Slice',
  nonDifferentiableInputs: [1, 2, 3, 4],
  infer: (inputs, _a, graph) => {
    const x = requireInput(inputs, 0, 'Slice');
    const starts = constantInts(graph, inputs[1] ?? null);
    const ends = constantInts(graph, inputs[2] ?? null);
    if (!x.shape || !starts || !ends) return [{ dtype: x.dtype, shape: null }];
    const axes = constantInts(graph, inputs[3] ?? null) ?? starts.map((_, i) => i);
    const steps = constantInts(graph, inputs[4] ?? null) ?? starts.map(() => 1);
    const out = [...x.shape];
    axes.forEach((a, k) => {
      const axis = normalizeAxis(a, x.shape!.length);
      const d = x.shape![axis];
      if (typeof d !== 'number') {
        out[axis] = null;
        return;
      }
      const step = steps[k]!;
      const clamp = (v: number) => Math.max(0, Math.min(d, v < 0 ? v + d : v));
      const s = clamp(starts[k]!);
      const e = clamp(ends[k]!);
      out[axis] = step > 0 ? Math.max(0, Math.ceil((e - s) / step)) : Math.max(0, Math.ceil((s - e) / -step));
    });
    return [{ dtype: x.dtype, shape: out }];
  },
  // Step-1 slices of statically known axes: the gradient is dy zero-padded back to x's extent.
  gradient: ({ graph, inputs: [x, startsV, endsV, axesV, stepsV], gradOutputs: [dy] }) => {
    const starts = constantInts(graph, startsV ?? null);
    const ends = constantInts(graph, endsV ?? null);
    const rank = x!.shape?.length ?? 0;
    const axes = (constantInts(graph, axesV ?? null) ?? starts?.map((_, i) => i))?.map((a) => normalizeAxis(a, rank));
    const steps = constantInts(graph, stepsV ?? null) ?? starts?.map(() => 1);
    if (!starts || !ends || !axes || !steps || steps.some((s) => s !== 1) || axes.some((a) => typeof x!.shape![a] !== 'number')) {
      throw new KilnError('NO_GRADIENT', 'Slice gradient needs constant starts/ends, steps of 1 and statically known sliced axes');
    }
    const pads = Array<number>(2 * rank).fill(0);
    axes.forEach((axis, k) => {
      const d = x!.shape![axis] as number;
      const clamp = (v: number) => Math.max(0, Math.min(d, v < 0 ? v + d : v));
      pads[axis] = clamp(starts[k]!);
      pads[axis + rank] = d - Math.max(clamp(starts[k]!), clamp(ends[k]!));
    });
    return [graph.op1('Pad', [dy!, graph.int64s(pads, 'pads')])];
  },
});

defineOp({
  type: 'Pad',
  nonDifferentiableInputs: [1, 2],
  infer: (inputs, _a, graph) => {
    const x = requireInput(inputs, 0, 'Pad');
    const pads = constantInts(graph, inputs[1] ?? null);
    if (!x.shape || !pads) return [{ dtype: x.dtype, shape: null }];
    const r = x.shape.length;
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? d + pads[i]! + pads[i + r]! : d)) }];
  },
});

defineOp({
  type: 'Resize',
  nonDifferentiableInputs: [1, 2, 3],
  infer: (inputs, _a, graph) => {
    const x = requireInput(inputs, 0, 'Resize');
    const scalesValue = inputs[2] ? graph.constantValue(inputs[2].name) : undefined;
    const sizes = constantInts(graph, inputs[3] ?? null);
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    if (sizes) return [{ dtype: x.dtype, shape: sizes }];
    if (!scalesValue) return [{ dtype: x.dtype, shape: null }];
    const scales = Array.from(scalesValue.data as Float32Array);
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? Math.floor(d * scales[i]!) : scales[i] === 1 ? d : null)) }];
  },
});

defineOp({
  type: 'Expand',
  nonDifferentiableInputs: [1],
  infer: (inputs, _a, graph) => {
    const x = requireInput(inputs, 0, 'Expand');
    const target = requireInput(inputs, 1, 'Expand');
    const source = wholeShapeOf(graph, target.name);
    if (source) return [{ dtype: x.dtype, shape: source.shape }];
    const dims = constantInts(graph, target);
    return [{ dtype: x.dtype, shape: dims ?? null }];
  },
});

defineOp({
  type: 'ScatterElements',
  nonDifferentiableInputs: [1],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'ScatterElements');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
});

defineOp({
  type: 'GatherElements',
  nonDifferentiableInputs: [1],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'GatherElements');
    const idx = requireInput(inputs, 1, 'GatherElements');
    return [{ dtype: x.dtype, shape: idx.shape }];
  },
});

defineOp({
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
  gradient: () => [null, null, null],
});
