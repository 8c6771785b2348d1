import { Tensor } from '../tensor.js';
import type { Graph, Node, Value } from './graph.js';
import { isTilingPool } from './pool-window.js';
import { resolvedPads } from './spatial-pads.js';
import { isSpatialEndCrop, spatialEndCrop } from './spatial-crop.js';
import { intAttr, intsAttr } from './op-definition.js';

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
 * Graph.output(value, name) names an output through an Identity, and ONNX Runtime copies the tensor
 * for it (~0.1 ms per 120k-float optimizer state in a training step). Where the Identity's input is
 * computed by a node inside the graph and is not itself an output, that node writes the output's name
 * directly and its other readers read that name. Meant for a finished graph: Value objects a builder
 * still holds for the old name go stale. Returns how many Identity nodes were removed.
 */
export function elideOutputIdentities(graph: Graph): number {
  const outputNames = new Set(graph.outputs.map((o) => o.name));
  const renamed = new Map<string, string>();
  const removed = new Set<Node>();
  for (const node of graph.nodes) {
    if (node.opType !== 'Identity' || node.domain !== '' || !outputNames.has(node.outputs[0]!)) continue;
    const inner = node.inputs[0]!;
    const producer = graph.producer(inner);
    if (!producer || outputNames.has(inner) || renamed.has(inner)) continue;
    renamed.set(inner, node.outputs[0]!);
    producer.outputs = producer.outputs.map((o) => (o === inner ? node.outputs[0]! : o));
    removed.add(node);
  }
  if (removed.size === 0) return 0;
  const kept = graph.nodes.filter((n) => !removed.has(n));
  for (const n of kept) n.inputs = n.inputs.map((i) => renamed.get(i) ?? i);
  graph.replaceNodes(kept);
  return removed.size;
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
    const [pt, pl] = resolvedPads(conv.attrs, [KH, KW], [sh!, sw!], [dh!, dw!], [H, W]);
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

/** Ops that act on each element alone, so a crop of their output is their op applied to a crop of their input. */
const ELEMENTWISE_UNARY = new Set(['Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Elu', 'Identity']);

/**
 * Rows and columns nothing reads need not be computed. A tiling MaxPool whose windows do not cover its
 * input (13×13 pooled 2×2 → 6×6 reads 12×12) leaves the last rows and columns of its input unread. That
 * crop is carried up the chain that computes the pool's input, as far as each value has the chain as
 * its only reader: through elementwise ops (Relu), through tiling MaxPools (e pooled rows read e·k
 * input rows) and through convolutions (stride 1, undilated, no padding at the end: e output rows read
 * e + k − 1 − pad input rows). The topmost convolution reached gets its input cropped by a Slice. In the
 * tutorial CNN the third conv's 6×6 pool crops the second conv to 12×12, whose 14×14 input crops the
 * first pool to 14×14 and the first conv to 28×28 of its 30×30: forward and backward (including the
 * pools' masks) shrink by the unread share, and no gradient needs a crop and pad of its own. Returns how
 * many pools started a trim.
 */
export function trimUnreadRows(graph: Graph): number {
  let trimmed = 0;
  for (const pool of [...graph.nodes]) {
    const kernel = tilingMaxPool2d(pool);
    if (!kernel) continue;
    const dims = spatialDims(graph.value(pool.inputs[0]!));
    if (!dims) continue;
    const read: [number, number] = [dims[0] - (dims[0] % kernel[0]), dims[1] - (dims[1] % kernel[1])];
    if (read[0] === dims[0] && read[1] === dims[1]) continue;
    // Readers are counted afresh: an earlier trim may have added a Slice that this one shortens.
    if (cropProducer(graph, readOnlyOnceInside(graph), pool.inputs[0]!, read)) trimmed++;
  }
  return trimmed;
}

/** The kernel of a 2-D MaxPool whose windows tile its input (see isTilingPool), else undefined. */
function tilingMaxPool2d(node: Node): [number, number] | undefined {
  if (node.opType !== 'MaxPool' || node.domain !== '' || node.outputs.length !== 1 || !isTilingPool(node.attrs)) return undefined;
  const kernel = intsAttr(node.attrs, 'kernel_shape', []);
  return kernel.length === 2 ? [kernel[0]!, kernel[1]!] : undefined;
}

/** [H, W] of an NCHW value whose spatial size is known. */
function spatialDims(value: Value): [number, number] | undefined {
  const [h, w] = [value.shape?.[2], value.shape?.[3]];
  return value.shape?.length === 4 && typeof h === 'number' && typeof w === 'number' ? [h, w] : undefined;
}

/**
 * Makes `name`'s producer compute only its first ends[0] rows and ends[1] columns, rewriting the chain
 * above it as trimUnreadRows describes. Returns false, having changed nothing, where the producer cannot
 * be cropped (another reader, an op that mixes positions, a strided or end-padded convolution).
 */
function cropProducer(graph: Graph, changeable: (name: string) => boolean, name: string, ends: [number, number]): boolean {
  const value = graph.value(name);
  const dims = spatialDims(value);
  const node = graph.producer(name);
  if (!dims || !node || node.domain !== '' || !changeable(name) || ends[0] < 1 || ends[1] < 1) return false;
  if (ends[0] === dims[0] && ends[1] === dims[1]) return true;
  const poolKernel = tilingMaxPool2d(node);
  if (ELEMENTWISE_UNARY.has(node.opType) && node.outputs.length === 1) {
    if (!cropProducer(graph, changeable, node.inputs[0]!, ends)) return false;
  } else if (poolKernel) {
    if (!cropProducer(graph, changeable, node.inputs[0]!, [ends[0] * poolKernel[0], ends[1] * poolKernel[1]])) return false;
  } else if (node.opType === 'Conv') {
    const x = graph.value(node.inputs[0]!);
    const inputDims = spatialDims(x);
    const kernelDims = graph.value(node.inputs[1]!).shape?.slice(2) as number[] | undefined;
    // auto_pad SAME_* pads the end too; without the kernel's size that cannot be ruled out.
    const pads = inputDims && kernelDims ? resolvedPads(node.attrs, intsAttr(node.attrs, 'kernel_shape', kernelDims), [1, 1], [1, 1], inputDims) : null;
    if (!inputDims || intsAttr(node.attrs, 'strides', [1, 1]).some((s) => s !== 1) || intsAttr(node.attrs, 'dilations', [1, 1]).some((d) => d !== 1) || !pads || pads[2] !== 0 || pads[3] !== 0) return false;
    // Stride 1: each output row dropped at the end drops one input row at the end.
    const inputEnds: [number, number] = [inputDims[0] - (dims[0] - ends[0]), inputDims[1] - (dims[1] - ends[1])];
    if (!cropProducer(graph, changeable, x.name, inputEnds)) {
      const first = graph.nodes.length;
      const cropped = spatialEndCrop(graph, x, inputEnds);
      const slice = graph.nodes[first]!;
      node.inputs[0] = cropped.name;
      graph.replaceNodes(graph.nodes.slice(0, first).flatMap((n) => (n === node ? [slice, n] : [n])));
    }
  } else if (isSpatialEndCrop(graph, node)) {
    // A crop already there (one this pass made for an earlier pool that the chain also feeds) just ends sooner.
    node.inputs[2] = graph.int64s(ends, 'ends').name;
  } else {
    return false;
  }
  graph.redeclare({ name, dtype: value.dtype, shape: [value.shape![0]!, value.shape![1]!, ...ends] });
  return true;
}
