import type { Attrs, Graph, Node, Shape, Value } from '../graph/graph.js';
import { onnxTypeCode } from '../graph/dtype.js';
import { constantInts, intAttr, normalizeAxis, requireInput, noGradientFlows, type OpDefinition } from '../graph/op-definition.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const REDUCE_OPS: readonly OpDefinition[] = ops;

/*
 * Reductions. The axes come from an attribute (ReduceSum before opset 13, ReduceMean and ReduceMax up
 * to opset 17) or from input 1 (ReduceSum from opset 13, which Kiln emits). Kiln does not track a
 * graph's opset, so an 'axes' attribute wins when present. Empty axes reduce everything, unless
 * noop_with_empty_axes (opset 13+), where the node is an identity.
 */

/** What a reduction node reduces: nothing, known axes, or axes only known at run time. */
type Reduction =
  | { kind: 'noop' }
  | { kind: 'axes'; axes: number[] }
  /** axes from a computed input; count is their number where the input's shape says it */
  | { kind: 'runtime'; axes: Value; count: number | null };

function reductionOf(inputs: (Value | null)[], attrs: Attrs, graph: Graph, rank: number): Reduction {
  const fromAttr = Array.isArray(attrs.axes) ? (attrs.axes as number[]) : undefined;
  const axesInput = inputs[1] ?? null;
  const constant = fromAttr ?? (axesInput ? constantInts(graph, axesInput) : []);
  if (constant === undefined) {
    const count = axesInput!.shape?.length === 1 && typeof axesInput!.shape[0] === 'number' ? axesInput!.shape[0] : null;
    if (count !== 0) return { kind: 'runtime', axes: axesInput!, count };
  }
  if (!constant || constant.length === 0) {
    return intAttr(attrs, 'noop_with_empty_axes', 0) === 1 ? { kind: 'noop' } : { kind: 'axes', axes: [...Array(rank).keys()] };
  }
  return { kind: 'axes', axes: constant.map((a) => normalizeAxis(a, rank)) };
}

function reduceShape(x: Value, r: Reduction, keepdims: boolean): Shape | null {
  if (!x.shape) return null;
  if (r.kind === 'noop') return x.shape;
  if (r.kind === 'runtime') {
    // Which dims go is known only at run time: the rank is known, the sizes are not.
    if (keepdims) return x.shape.map(() => null);
    return r.count === null ? null : Array(x.shape.length - r.count).fill(null);
  }
  return keepdims ? x.shape.map((d, i) => (r.axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !r.axes.includes(i));
}

/** Broadcasts a reduced gradient (or reduced y) back over the reduced axes. */
function unreduce(graph: Graph, dy: Value, r: Reduction & { kind: 'axes' | 'runtime' }, keepdims: boolean): Value {
  if (keepdims) return dy;
  return graph.op1('Unsqueeze', [dy, r.kind === 'axes' ? graph.int64s(r.axes, 'axes') : r.axes]);
}

function spreadBack(graph: Graph, dy: Value, x: Value, r: Reduction & { kind: 'axes' | 'runtime' }, keepdims: boolean): Value {
  return graph.op1('Expand', [unreduce(graph, dy, r, keepdims), graph.op1('Shape', [x])]);
}

/*
 * Every reduction of ONNX. The backward of each is a full-size expression in x, the output y (put back
 * over the reduced axes) and dy spread over them, with ReduceSum as the only reduction it uses (its
 * axes are an input at every opset Kiln trains), except ReduceProd's, which repeats its own node's form.
 */
for (const type of ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp']) {
  ops.push({
    type,
    nonDifferentiableInputs: [1],
    infer: (inputs, attrs, graph) => {
      const x = requireInput(inputs, 0, type);
      const r = reductionOf(inputs, attrs, graph, x.shape?.length ?? 0);
      return [{ dtype: x.dtype, shape: reduceShape(x, r, intAttr(attrs, 'keepdims', 1) === 1) }];
    },
    /*
     * ReduceSum spreads dy back over the reduced axes; ReduceMean also divides by their size; ReduceMax
     * and ReduceMin send it to the extreme (k tied extremes get dy/k each); ReduceL1: dy·sign(x); ReduceL2:
     * dy·x/y (0 where y = 0, as PyTorch's norm); ReduceSumSquare: 2x·dy; ReduceLogSum: dy/eʸ;
     * ReduceLogSumExp: dy·eˣ⁻ʸ; ReduceProd: dy times the product of the others — y/x where x ≠ 0, and
     * for a zero the product of its slice's other elements when it is the slice's only zero, else 0.
     */
    gradient: ({ graph, node, inputs, outputs: [y], gradOutputs: [dy] }) => {
      const x = inputs[0]!;
      const r = reductionOf(inputs, node.attrs, graph, x.shape!.length);
      if (r.kind === 'noop') return [dy!, null];
      const keepdims = intAttr(node.attrs, 'keepdims', 1) === 1;
      if (type === 'ReduceSum') return [spreadBack(graph, dy!, x, r, keepdims), null];
      if (type === 'ReduceMean') {
        const dims = r.kind === 'axes' ? r.axes.map((a) => x.shape![a]) : [null];
        const staticCount = dims.every((d) => typeof d === 'number') ? (dims as number[]).reduce((p, d) => p * d, 1) : null;
        // A symbolic batch dimension (or axes known at run time): the count is size(x)/size(y).
        const scale =
          staticCount !== null
            ? graph.scalar(1 / staticCount, dy!.dtype)
            : graph.op1('Div', [
                graph.op1('Cast', [graph.op1('Size', [y!])], { to: onnxTypeCode(dy!.dtype) }),
                graph.op1('Cast', [graph.op1('Size', [x])], { to: onnxTypeCode(dy!.dtype) }),
              ]);
        return [spreadBack(graph, graph.op1('Mul', [dy!, scale]), x, r, keepdims), null];
      }
      const spread = spreadBack(graph, dy!, x, r, keepdims);
      const times = (v: Value) => [graph.op1('Mul', [spread, v]), null];
      const yBack = () => unreduce(graph, y!, r, keepdims);
      const t = x.dtype;
      switch (type) {
        case 'ReduceMax':
        case 'ReduceMin': {
          // Tied extremes share dy evenly, as torch.amax / amin and TensorFlow's reduce_max do.
          const mask = graph.op1('Cast', [graph.op1('Equal', [x, yBack()])], { to: onnxTypeCode(t) });
          const ties = graph.op1('ReduceSum', [mask, r.kind === 'axes' ? graph.int64s(r.axes, 'axes') : r.axes], { keepdims: 1 });
          return times(graph.op1('Div', [mask, ties]));
        }
        case 'ReduceL1':
          return times(graph.op1('Sign', [x]));
        case 'ReduceL2': {
          // Where y = 0 every element of the slice is 0, so x divided by 1 there is the 0 wanted.
          const norm = yBack();
          return times(graph.op1('Div', [x, graph.op1('Where', [graph.op1('Equal', [norm, graph.scalar(0, t)]), graph.scalar(1, t), norm])]));
        }
        case 'ReduceSumSquare':
          return times(graph.op1('Mul', [x, graph.scalar(2, t)]));
        case 'ReduceLogSum':
          return times(graph.op1('Exp', [graph.op1('Neg', [yBack()])]));
        case 'ReduceLogSumExp':
          return times(graph.op1('Exp', [graph.op1('Sub', [x, yBack()])]));
        default:
          return times(productOfOthers(graph, node, x, y!, r, keepdims));
      }
    },
  });
}

/** ReduceProd's derivative: for each element, the product of the other elements of its slice. */
function productOfOthers(graph: Graph, node: Node, x: Value, y: Value, r: Reduction & { kind: 'axes' | 'runtime' }, keepdims: boolean): Value {
  const t = x.dtype;
  const isZero = graph.op1('Equal', [x, graph.scalar(0, t)]);
  const ones = graph.op1('Where', [isZero, graph.scalar(1, t), x]);
  // The forward node's own form (axes attribute or input), so the product is valid at the model's opset.
  const [, axesInput] = node.inputs;
  const nonzeroProduct = graph.op1('ReduceProd', axesInput ? [ones, axesInput] : [ones], { ...node.attrs, keepdims: 1 });
  const zeroCount = graph.op1('ReduceSum', [graph.op1('Cast', [isZero], { to: onnxTypeCode(t) }), r.kind === 'axes' ? graph.int64s(r.axes, 'axes') : r.axes], { keepdims: 1 });
  const onlyZero = graph.op1('Cast', [graph.op1('Equal', [zeroCount, graph.scalar(1, t)])], { to: onnxTypeCode(t) });
  const atZero = graph.op1('Mul', [nonzeroProduct, onlyZero]);
  return graph.op1('Where', [isZero, atZero, graph.op1('Div', [unreduce(graph, y, r, keepdims), ones])]);
}

/* CumSum (exporters write it for position ids and masks): its gradient is the reversed cumulative sum. */
ops.push({
  type: 'CumSum',
  nonDifferentiableInputs: [1],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'CumSum');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  gradient: ({ graph, node, inputs: [, axis], gradOutputs: [dy] }) => [
    graph.op1('CumSum', [dy!, axis!], { exclusive: intAttr(node.attrs, 'exclusive', 0), reverse: intAttr(node.attrs, 'reverse', 0) ? 0 : 1 }),
    null,
  ],
});

ops.push({
  type: 'Size',
  infer: () => [{ dtype: 'int64', shape: [] }],
  gradient: noGradientFlows,
});

for (const type of ['ArgMax', 'ArgMin']) {
  ops.push({
    type,
    infer: (inputs, attrs) => {
      const x = requireInput(inputs, 0, type);
      const axis = intAttr(attrs, 'axis', 0);
      const r: Reduction = { kind: 'axes', axes: [normalizeAxis(axis, x.shape?.length ?? 0)] };
      return [{ dtype: 'int64', shape: reduceShape(x, r, intAttr(attrs, 'keepdims', 1) === 1) }];
    },
    gradient: noGradientFlows,
  });
}
