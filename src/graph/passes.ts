import type { Graph, Node } from './graph.js';

/*
 * Rewrites of a built graph that keep what it computes and make ONNX Runtime do less. ONNX Runtime
 * does not drop nodes whose results nobody reads, and gradient rules build every input's gradient
 * (the walk keeps only the ones it needs), so dead-node elimination matters after autodiff.
 */

/** Removes nodes none of whose outputs reach a graph output. Returns how many were removed. */
export function eliminateDeadNodes(graph: Graph): number {
  const needed = new Set(graph.outputs.map((o) => o.name));
  const kept: Node[] = [];
  for (let k = graph.nodes.length - 1; k >= 0; k--) {
    const node = graph.nodes[k]!;
    if (!node.outputs.some((o) => needed.has(o))) continue;
    kept.push(node);
    for (const i of node.inputs) if (i) needed.add(i);
    for (const attr of Object.values(node.attrs)) {
      // A subgraph (If/Loop body) may read outer values by name.
      if (attr && typeof attr === 'object' && 'nodes' in attr) for (const n of attr.nodes) for (const i of n.inputs) if (i) needed.add(i);
    }
  }
  const removed = graph.nodes.length - kept.length;
  if (removed > 0) graph.replaceNodes(kept.reverse());
  return removed;
}

/**
 * MaxPool(Relu(x)) = Relu(MaxPool(x)) exactly (max commutes with any non-decreasing function, and
 * MaxPool ignores padding), so where a Relu's only reader is a MaxPool the two swap places: the Relu
 * and, in training, its backward mask run on the pooled tensor, a quarter of the size for 2×2 pools.
 * Returns how many pairs were swapped.
 */
export function commuteReluMaxPool(graph: Graph): number {
  const readers = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) if (i) readers.set(i, (readers.get(i) ?? 0) + 1);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const nodes = [...graph.nodes];
  let swapped = 0;
  for (let k = 0; k < nodes.length; k++) {
    const pool = nodes[k]!;
    if (pool.opType !== 'MaxPool' || pool.outputs.length !== 1 || pool.domain !== '') continue;
    const activated = pool.inputs[0]!;
    const r = nodes.findIndex((n) => n.outputs[0] === activated);
    const relu = nodes[r];
    if (!relu || relu.opType !== 'Relu' || readers.get(activated) !== 1 || outputs.has(activated)) continue;
    const pooled = pool.outputs[0]!;
    const pooledValue = graph.value(pooled);
    // pool now reads the Relu's input and writes the old Relu output's name; the Relu writes `pooled`.
    pool.inputs[0] = relu.inputs[0]!;
    pool.outputs[0] = activated;
    relu.inputs[0] = activated;
    relu.outputs[0] = pooled;
    graph.redeclare({ name: activated, dtype: pooledValue.dtype, shape: pooledValue.shape });
    nodes[r] = pool;
    nodes[k] = relu;
    swapped++;
  }
  if (swapped > 0) graph.replaceNodes(nodes);
  return swapped;
}
