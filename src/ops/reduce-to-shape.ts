import type { Graph, Value } from '../graph/graph.js';

/**
 * Sums a broadcast gradient back to the shape of the operand it belongs to: over the leading axes the
 * operand lacks, and over axes where the operand had size 1. Needs the operand's rank and its size-1
 * axes statically, which Kiln's graphs always know.
 */
export function reduceToShape(graph: Graph, grad: Value, target: Value): Value {
  const gs = grad.shape;
  const ts = target.shape;
  if (!gs || !ts) return grad;
  const lead = gs.length - ts.length;
  const axes: number[] = [];
  for (let i = 0; i < gs.length; i++) {
    if (i < lead) axes.push(i);
    else if (ts[i - lead] === 1 && gs[i] !== 1) axes.push(i);
  }
  if (axes.length === 0) return grad;
  let out = graph.op1('ReduceSum', [grad, graph.int64s(axes, 'axes')], { keepdims: 1 });
  if (lead > 0) out = graph.op1('Reshape', [out, graph.int64s(ts.map((d) => (typeof d === 'number' ? d : -1)), 'shape')]);
  return out;
}
