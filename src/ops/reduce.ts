import type { Attrs, Graph, Shape, Value } from '../graph/graph.js';
import { constantInts, defineOp, intAttr, intsAttr, normalizeAxis, requireInput } from '../graph/registry.js';

/*
 * Reductions. In opset 17 ReduceSum takes its axes as an input while ReduceMean and ReduceMax still
 * take an attribute; Kiln emits both forms accordingly.
 */

function reducedAxes(x: Value, axes: number[] | undefined): number[] {
  const rank = x.shape!.length;
  return axes && axes.length > 0 ? axes.map((a) => normalizeAxis(a, rank)) : [...Array(rank).keys()];
}

function reduceShape(x: Value, axes: number[] | undefined, keepdims: boolean): Shape | null {
  if (!x.shape) return null;
  const norm = reducedAxes(x, axes);
  return keepdims ? x.shape.map((d, i) => (norm.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !norm.includes(i));
}

function axesOf(type: string, inputs: (Value | null)[], attrs: Attrs, graph: Graph): number[] | undefined {
  return type === 'ReduceSum' ? constantInts(graph, inputs[1] ?? null) : intsAttr(attrs, 'axes', []);
}

/** Broadcasts a reduced gradient back over the reduced axes. */
function spreadBack(graph: Graph, dy: Value, x: Value, axes: number[], keepdims: boolean): Value {
  const kept = keepdims ? dy : graph.op1('Unsqueeze', [dy, graph.int64s(axes, 'axes')]);
  return graph.op1('Expand', [kept, graph.op1('Shape', [x])]);
}

for (const type of ['ReduceSum', 'ReduceMean', 'ReduceMax']) {
  defineOp({
    type,
    nonDifferentiableInputs: [1],
    infer: (inputs, attrs, graph) => {
      const x = requireInput(inputs, 0, type);
      return [{ dtype: x.dtype, shape: reduceShape(x, axesOf(type, inputs, attrs, graph), intAttr(attrs, 'keepdims', 1) === 1) }];
    },
    gradient: ({ graph, node, inputs, outputs: [y], gradOutputs: [dy] }) => {
      const x = inputs[0]!;
      const axes = reducedAxes(x, axesOf(type, inputs, node.attrs, graph));
      const keepdims = intAttr(node.attrs, 'keepdims', 1) === 1;
      if (type === 'ReduceSum') return [spreadBack(graph, dy!, x, axes, keepdims), null];
      if (type === 'ReduceMean') {
        const dims = axes.map((a) => x.shape![a]);
        const staticCount = dims.every((d) => typeof d === 'number') ? (dims as number[]).reduce((p, d) => p * d, 1) : null;
        // A symbolic batch dimension: the count is size(x)/size(y), known only at run time.
        const scale =
          staticCount !== null
            ? graph.scalar(1 / staticCount, dy!.dtype)
            : graph.op1('Div', [
                graph.op1('Cast', [graph.op1('Size', [y!])], { to: 1 }),
                graph.op1('Cast', [graph.op1('Size', [x])], { to: 1 }),
              ]);
        return [spreadBack(graph, graph.op1('Mul', [dy!, scale]), x, axes, keepdims), null];
      }
      // ReduceMax: the gradient goes to the positions equal to the maximum.
      const yKept = keepdims ? y! : graph.op1('Unsqueeze', [y!, graph.int64s(axes, 'axes')]);
      const mask = graph.op1('Cast', [graph.op1('Equal', [x, yKept])], { to: x.dtype === 'float64' ? 11 : 1 });
      return [graph.op1('Mul', [spreadBack(graph, dy!, x, axes, keepdims), mask]), null];
    },
  });
}

defineOp({
  type: 'Size',
  infer: () => [{ dtype: 'int64', shape: [] }],
  gradient: () => [null],
});

defineOp({
  type: 'ArgMax',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'ArgMax');
    const axis = intAttr(attrs, 'axis', 0);
    return [{ dtype: 'int64', shape: x.shape ? reduceShape(x, [axis], intAttr(attrs, 'keepdims', 1) === 1) : null }];
  },
  gradient: () => [null],
});
