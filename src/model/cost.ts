import { gzipSync } from 'node:zlib';
import type { Graph } from '../graph/graph.js';
import type { ModelProto } from '../graph/proto.js';
import { isRecurrentOp } from '../ops/recurrent.js';
import type { Model } from './model.js';

/** What a model costs to store and run, as `modelCost` measures it. */
export interface ModelCost {
  /** Elements in all weights, trainable or not. */
  parameters: number;
  /** Non-zero trainable weights (what pruning removes). */
  nonZeroParameters: number;
  /** Floating-point operations for one example (a multiply-add counts 2), convolutions and matrix products. */
  flops: number;
  /** Size of the saved .onnx file in bytes. */
  fileBytes: number;
  /** Size of that file gzip-compressed (level 9): what pruning's zeros save. */
  gzipBytes: number;
}

/** The arithmetic of a Conv, ConvTranspose or matrix product (Gemm, MatMul and their quantized forms). */
type ProductKind = 'conv' | 'convTranspose' | 'matmul';

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * FLOPs (a multiply-add counting 2) of one such node from its shapes: each output of a Conv sums its
 * weight's C/group·k products (w [M, C/g, k…]); each input element of a ConvTranspose is spread over
 * its weight's C_out/group·k outputs (w [C, C_out/g, k…]); each output of a matrix product sums k.
 */
function productFlops(kind: ProductKind, input: readonly number[], weight: readonly number[], output: readonly number[], transA = false): number {
  if (kind === 'conv') return 2 * size(output) * size(weight.slice(1));
  if (kind === 'convTranspose') return 2 * size(input) * size(weight.slice(1));
  return 2 * size(output) * (transA ? input[input.length - 2]! : input[input.length - 1]!);
}

/**
 * FLOPs of a recurrent layer (LSTM, GRU, RNN) over its input x ([T, N, I], or [N, T, I] with layout 1):
 * at every step each direction multiplies its input by W [gates·hidden, I] and its hidden state by
 * R [gates·hidden, H]. The gates' elementwise work is left out, as activations are for the other layers.
 */
function recurrentFlops(x: readonly number[], weight: readonly number[], recurrence: readonly number[]): number {
  return 2 * x[0]! * x[1]! * weight[0]! * weight[1]! * (weight[2]! + recurrence[2]!);
}

/**
 * For each op that does the arithmetic FLOPs count: which input is the left operand and which the
 * weight. The quantized forms count as their float ones do (an integer multiply-add counting 2).
 */
const WEIGHTED_OPS: Readonly<Record<string, { a: number; w: number; kind: ProductKind }>> = {
  Conv: { a: 0, w: 1, kind: 'conv' },
  ConvInteger: { a: 0, w: 1, kind: 'conv' },
  QLinearConv: { a: 0, w: 3, kind: 'conv' },
  ConvTranspose: { a: 0, w: 1, kind: 'convTranspose' },
  Gemm: { a: 0, w: 1, kind: 'matmul' },
  MatMul: { a: 0, w: 1, kind: 'matmul' },
  MatMulInteger: { a: 0, w: 1, kind: 'matmul' },
  QLinearMatMul: { a: 0, w: 3, kind: 'matmul' },
};

/** A node as the FLOPs count reads it, whether from Kiln's graph builder or an ONNX file. */
export interface CountedNode {
  opType: string;
  /** Its operator set; nodes of any domain but ONNX's own are not counted. */
  domain?: string;
  inputs: readonly string[];
  outputs: readonly string[];
  /** Gemm's transA. */
  transA: boolean;
}

/** An ONNX file's nodes as the FLOPs count reads them. */
export function countedNodes(proto: ModelProto): CountedNode[] {
  return (proto.graph?.node ?? []).map((n) => ({
    opType: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: n.input ?? [],
    outputs: n.output ?? [],
    transA: n.opType === 'Gemm' && Boolean(n.attribute?.some((a) => a.name === 'transA' && Number(a.i) === 1)),
  }));
}

/**
 * FLOPs of the Conv, ConvTranspose, Gemm, MatMul (and their quantized forms) and recurrent nodes
 * among `nodes`, from the shapes `shape` gives (undefined where unknown: that node is not counted).
 * The one count behind modelCost (the builder's shapes), `kiln bench` (ONNX Runtime's shapes) and the
 * structured-pruning report (shapes measured at two batch sizes).
 */
export function nodesFlops(nodes: Iterable<CountedNode>, shape: (value: string) => readonly number[] | undefined): number {
  let flops = 0;
  for (const node of nodes) {
    if (node.domain) continue;
    if (isRecurrentOp(node.opType)) {
      // Its Y may be left unwritten (''): the count needs only x, W and R.
      const [x, w, r] = [shape(node.inputs[0] ?? ''), shape(node.inputs[1] ?? ''), shape(node.inputs[2] ?? '')];
      if (x && w?.length === 3 && r?.length === 3) flops += recurrentFlops(x, w, r);
      continue;
    }
    const rule = Object.hasOwn(WEIGHTED_OPS, node.opType) ? WEIGHTED_OPS[node.opType]! : undefined;
    if (!rule) continue;
    const [out, a, w] = [shape(node.outputs[0] ?? ''), shape(node.inputs[rule.a] ?? ''), shape(node.inputs[rule.w] ?? '')];
    if (out && a && w) flops += productFlops(rule.kind, a, w, out, node.transA);
  }
  return flops;
}

/** FLOPs per example of a graph Kiln's builder holds, from the shapes it inferred. */
export function graphFlops(graph: Graph): number {
  // Per example: an imported graph's batch dimension stays the symbolic 'N' even when built at batch 1.
  const shape = (name: string) => {
    const s = graph.value(name).shape?.map((d) => (d === 'N' ? 1 : d));
    return s && s.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
  };
  return nodesFlops(
    graph.nodes.map((n) => ({ opType: n.opType, domain: n.domain, inputs: n.inputs, outputs: n.outputs, transA: n.opType === 'Gemm' && n.attrs.transA === 1 })),
    shape,
  );
}

/** Parameters, FLOPs per example and file sizes (raw and gzip-compressed) of a Kiln model. */
export function modelCost(model: Model): ModelCost {
  const { graph } = model.buildGraph({ batchSize: 1 });
  let parameters = 0;
  let nonZero = 0;
  for (const [, t] of model.weights) {
    parameters += t.size;
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) if (d[i] !== 0) nonZero++;
  }
  const bytes = model.toOnnx();
  return { parameters, nonZeroParameters: nonZero, flops: graphFlops(graph), fileBytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length };
}
