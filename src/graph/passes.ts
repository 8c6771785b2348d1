import { Tensor } from '../tensor.js';
import type { Graph, Node } from './graph.js';
import { isTilingPool } from './pool-window.js';
import { intAttr, intsAttr } from './registry.js';

/*
 * Rewrites of a built graph that keep what it computes and make ONNX Runtime do less. ONNX Runtime
 * does not drop nodes whose results nobody reads, and gradient rules build every input's gradient
 * (the walk keeps only the ones it needs), so dead-node elimination matters after autodiff.
 */

/** Whether a value feeds exactly one node and is not a graph output: a pass may then change what it holds. */
function readOnlyOnceInside(graph: Graph): (name: string) => boolean {
  const readers = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) if (i) readers.set(i, (readers.get(i) ?? 0) + 1);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  return (name) => readers.get(name) === 1 && !outputs.has(name);
}

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
  const changeable = readOnlyOnceInside(graph);
  const nodes = [...graph.nodes];
  let swapped = 0;
  for (let k = 0; k < nodes.length; k++) {
    const pool = nodes[k]!;
    if (pool.opType !== 'MaxPool' || pool.outputs.length !== 1 || pool.domain !== '') continue;
    const activated = pool.inputs[0]!;
    const relu = graph.producer(activated);
    if (!relu || relu.opType !== 'Relu' || relu.outputs[0] !== activated || !changeable(activated)) continue;
    const r = nodes.indexOf(relu);
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

/**
 * Rewrites 2-D convolutions with few output positions (Ho·Wo ≤ maxPositions) as one matrix product
 * over the whole batch. ONNX Runtime runs a Conv as one small GEMM per image, which for a 4×4 output is
 * far below its GEMM speed (~20 against ~86 GFLOP/s measured for the tutorial CNN's third convolution).
 * Here the im2col matrix comes from one MatMul of the [C, N, H·W] input with a constant 0/1 gather
 * matrix [H·W, k·P] (zero padding, strides and dilations are encoded in it), so the forward, the weight
 * gradient and the input gradient (through autodiff: MatMul and Gemm rules) are each one large GEMM,
 * and the forward and the weight gradient share the same patches. Meant for training graphs, where
 * weights are graph inputs; inference graphs keep Conv (ORT prepacks constant weights). Returns how
 * many convolutions were rewritten.
 */
export function convolutionsAsGemm(graph: Graph, maxPositions = 36): number {
  const outputNames = new Set(graph.outputs.map((o) => o.name));
  let rewritten = 0;
  for (const conv of [...graph.nodes]) {
    if (conv.opType !== 'Conv' || conv.domain !== '' || intAttr(conv.attrs, 'group', 1) !== 1) continue;
    const [xName, wName, bName] = conv.inputs as [string, string, string | undefined];
    const x = graph.value(xName);
    const w = graph.value(wName);
    const y = graph.value(conv.outputs[0]!);
    if (outputNames.has(y.name) || !x.shape || x.shape.length !== 4 || !w.shape || !y.shape) continue;
    const [, c, h, wd] = x.shape;
    const [m, cw, kh, kw] = w.shape;
    const [, , ho, wo] = y.shape;
    if (![c, h, wd, m, cw, kh, kw, ho, wo].every((d) => typeof d === 'number')) continue;
    const [C, H, W, M, KH, KW, HO, WO] = [c, h, wd, m, kh, kw, ho, wo] as number[] as [number, number, number, number, number, number, number, number];
    const positions = HO * WO;
    if (positions > maxPositions) continue;
    const [sh, sw] = intsAttr(conv.attrs, 'strides', [1, 1]);
    const [dh, dw] = intsAttr(conv.attrs, 'dilations', [1, 1]);
    const [pt, pl] = intsAttr(conv.attrs, 'pads', [0, 0, 0, 0]);
    const taps = KH * KW;
    const gather = new Float32Array(H * W * taps * positions);
    for (let i = 0; i < KH; i++) {
      for (let j = 0; j < KW; j++) {
        for (let r = 0; r < HO; r++) {
          for (let q = 0; q < WO; q++) {
            const row = r * sh! + i * dh! - pt!;
            const col = q * sw! + j * dw! - pl!;
            if (row < 0 || row >= H || col < 0 || col >= W) continue; // zero padding
            gather[(row * W + col) * taps * positions + (i * KW + j) * positions + r * WO + q] = 1;
          }
        }
      }
    }
    const first = graph.nodes.length;
    const shape = (dims: number[]) => graph.int64s(dims, 'shape');
    const channelsFirst = graph.op1('Reshape', [graph.op1('Transpose', [x], { perm: [1, 0, 2, 3] }), shape([C, -1, H * W])]); // [C, N, H·W]
    const patches = graph.op1('MatMul', [channelsFirst, graph.constant(new Tensor(gather, [H * W, taps * positions], 'float32'), 'im2col_gather')]); // [C, N, k·P]
    const byTap = graph.op1('Transpose', [graph.op1('Reshape', [patches, shape([C, -1, taps, positions])])], { perm: [0, 2, 1, 3] }); // [C, k, N, P]
    const cols = graph.op1('Reshape', [byTap, shape([C * taps, -1])]); // [C·k, N·P]
    const weights = graph.op1('Reshape', [w, shape([M, (cw as number) * taps])]);
    const bias = bName ? [graph.op1('Reshape', [graph.value(bName), shape([M, 1])])] : [];
    const product = graph.op1('Gemm', [weights, cols, ...bias]); // [M, N·P]
    const result = graph.op1('Transpose', [graph.op1('Reshape', [product, shape([M, -1, HO, WO])])], { perm: [1, 0, 2, 3] });
    graph.redeclare({ name: result.name, dtype: y.dtype, shape: y.shape });
    const added = graph.nodes.slice(first);
    const rest = graph.nodes.slice(0, first).flatMap((n) => (n === conv ? added : [n]));
    for (const n of rest) n.inputs = n.inputs.map((i) => (i === y.name ? result.name : i));
    graph.replaceNodes(rest);
    rewritten++;
  }
  return rewritten;
}

/**
 * A tiling MaxPool whose windows do not cover its input (13×13 pooled 2×2 → 6×6 reads 12×12) leaves the
 * last rows and columns of the convolution before it unread. Where that Conv (stride 1, dilation 1,
 * no padding at the end) has the pool as its only reader, its input is cropped so that it computes
 * exactly the rows the pool reads: the forward, weight-gradient and input-gradient work shrink by the
 * unread share (15% for 13 → 12), and the pool's backward needs no crop and pad of its own. Returns
 * how many convolutions were trimmed.
 */
export function trimConvolutionsToPool(graph: Graph): number {
  const changeable = readOnlyOnceInside(graph);
  let trimmed = 0;
  for (const pool of [...graph.nodes]) {
    if (pool.opType !== 'MaxPool' || pool.domain !== '' || pool.outputs.length !== 1) continue;
    const kernel = intsAttr(pool.attrs, 'kernel_shape', []);
    const tiling = kernel.length === 2 && isTilingPool(pool.attrs);
    const convOut = pool.inputs[0]!;
    const conv = graph.producer(convOut);
    if (!tiling || !conv || conv.opType !== 'Conv' || conv.domain !== '' || !changeable(convOut)) continue;
    const pads = intsAttr(conv.attrs, 'pads', [0, 0, 0, 0]);
    if (intsAttr(conv.attrs, 'strides', [1, 1]).some((s) => s !== 1) || intsAttr(conv.attrs, 'dilations', [1, 1]).some((d) => d !== 1) || pads[2] !== 0 || pads[3] !== 0) continue;
    const x = graph.value(conv.inputs[0]!);
    const y = graph.value(convOut);
    const [h, w] = [x.shape?.[2], x.shape?.[3]];
    const [ho, wo] = [y.shape?.[2], y.shape?.[3]];
    if (typeof h !== 'number' || typeof w !== 'number' || typeof ho !== 'number' || typeof wo !== 'number') continue;
    const unread = [ho % kernel[0]!, wo % kernel[1]!];
    if (unread[0] === 0 && unread[1] === 0) continue;
    const first = graph.nodes.length;
    const cropped = graph.op1('Slice', [x, graph.int64s([0, 0], 'starts'), graph.int64s([h - unread[0]!, w - unread[1]!], 'ends'), graph.int64s([2, 3], 'axes')]);
    const slice = graph.nodes[first]!;
    conv.inputs[0] = cropped.name;
    graph.redeclare({ name: convOut, dtype: y.dtype, shape: [y.shape![0]!, y.shape![1]!, ho - unread[0]!, wo - unread[1]!] });
    graph.replaceNodes(graph.nodes.slice(0, first).flatMap((n) => (n === conv ? [slice, n] : [n])));
    trimmed++;
  }
  return trimmed;
}
