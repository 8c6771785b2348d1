import type { Attrs, Graph, Shape, Value } from '../graph/graph.js';
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

for (const type of ['ReduceSum', 'ReduceMean', 'ReduceMax']) {
  ops.push({
    type,
    nonDifferentiableInputs: [1],
    infer: (inputs, attrs, graph) => {
      const x = requireInput(inputs, 0, type);
      const r = reductionOf(inputs, attrs, graph, x.shape?.length ?? 0);
      return [{ dtype: x.dtype, shape: reduceShape(x, r, intAttr(attrs, 'keepdims', 1) === 1) }];
    },
    // ReduceSum spreads dy back over the reduced axes; ReduceMean also divides by their size; ReduceMax sends it to the maxima
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
      // ReduceMax: the gradient goes to the positions equal to the maximum.
      const mask = graph.op1('Cast', [graph.op1('Equal', [x, unreduce(graph, y!, r, keepdims)])], { to: onnxTypeCode(x.dtype) });
      return [graph.op1('Mul', [spreadBack(graph, dy!, x, r, keepdims), mask]), null];
    },
  });
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

ops.push({
  type: 'ArgMax',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'ArgMax');
    const axis = intAttr(attrs, 'axis', 0);
    const r: Reduction = { kind: 'axes', axes: [normalizeAxis(axis, x.shape?.length ?? 0)] };
    return [{ dtype: 'int64', shape: reduceShape(x, r, intAttr(attrs, 'keepdims', 1) === 1) }];
  },
  gradient: noGradientFlows,
});
