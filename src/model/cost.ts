import { gzipSync } from 'node:zlib';
import type { Graph } from '../graph/graph.js';
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
export type ProductKind = 'conv' | 'convTranspose' | 'matmul';

/** The float ops whose arithmetic productFlops counts, by op type. */
export const PRODUCT_KINDS: Readonly<Record<string, ProductKind>> = { Conv: 'conv', ConvTranspose: 'convTranspose', Gemm: 'matmul', MatMul: 'matmul' };

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * FLOPs (a multiply-add counting 2) of one such node from its shapes: each output of a Conv sums its
 * weight's C/group·k products (w [M, C/g, k…]); each input element of a ConvTranspose is spread over
 * its weight's C_out/group·k outputs (w [C, C_out/g, k…]); each output of a matrix product sums k.
 */
export function productFlops(kind: ProductKind, input: readonly number[], weight: readonly number[], output: readonly number[], transA = false): number {
  if (kind === 'conv') return 2 * size(output) * size(weight.slice(1));
  if (kind === 'convTranspose') return 2 * size(input) * size(weight.slice(1));
  return 2 * size(output) * (transA ? input[input.length - 2]! : input[input.length - 1]!);
}

/**
 * FLOPs of a recurrent layer (LSTM, GRU, RNN) over its input x ([T, N, I], or [N, T, I] with layout 1):
 * at every step each direction multiplies its input by W [gates·hidden, I] and its hidden state by
 * R [gates·hidden, H]. The gates' elementwise work is left out, as activations are for the other layers.
 */
export function recurrentFlops(x: readonly number[], weight: readonly number[], recurrence: readonly number[]): number {
  return 2 * x[0]! * x[1]! * weight[0]! * weight[1]! * (weight[2]! + recurrence[2]!);
}

/** FLOPs of the graph's Conv, ConvTranspose, Gemm, MatMul and recurrent nodes, from the shapes the builder inferred. */
export function graphFlops(graph: Graph): number {
  let flops = 0;
  // Per example: an imported graph's batch dimension stays the symbolic 'N' even when built at batch 1.
  const shape = (name: string) => {
    const s = graph.value(name).shape?.map((d) => (d === 'N' ? 1 : d));
    return s && s.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
  };
  for (const node of graph.nodes) {
    if (isRecurrentOp(node.opType)) {
      const [x, w, r] = [shape(node.inputs[0]!), shape(node.inputs[1]!), shape(node.inputs[2]!)];
      if (x && w?.length === 3 && r?.length === 3) flops += recurrentFlops(x, w, r);
      continue;
    }
    const kind = Object.hasOwn(PRODUCT_KINDS, node.opType) ? PRODUCT_KINDS[node.opType] : undefined;
    if (!kind) continue;
    const [out, a, w] = [shape(node.outputs[0]!), shape(node.inputs[0]!), shape(node.inputs[1]!)];
    if (!out || !a || !w) continue;
    flops += productFlops(kind, a, w, out, node.opType === 'Gemm' && node.attrs.transA === 1);
  }
  return flops;
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
