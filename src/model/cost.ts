import { gzipSync } from 'node:zlib';
import type { Graph } from '../graph/graph.js';
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

/** FLOPs of the graph's Conv, ConvTranspose, Gemm and MatMul nodes, from the shapes the builder inferred. */
export function graphFlops(graph: Graph): number {
  let flops = 0;
  for (const node of graph.nodes) {
    // Per example: an imported graph's batch dimension stays the symbolic 'N' even when built at batch 1.
    const out = graph.value(node.outputs[0]!).shape?.map((d) => (d === 'N' ? 1 : d));
    if (!out || out.some((d) => typeof d !== 'number')) continue;
    const outSize = (out as number[]).reduce((a, b) => a * b, 1);
    if (node.opType === 'Conv' || node.opType === 'ConvTranspose') {
      const w = graph.value(node.inputs[1]!).shape as number[];
      // Each output element sums over (in channels per group) × kernel positions.
      const perOutput = node.opType === 'Conv' ? w.slice(1).reduce((a, b) => a * b, 1) : w[0]! * w.slice(2).reduce((a, b) => a * b, 1);
      flops += 2 * outSize * perOutput;
    } else if (node.opType === 'Gemm' || node.opType === 'MatMul') {
      const a = graph.value(node.inputs[0]!).shape as number[];
      const transA = node.opType === 'Gemm' && node.attrs.transA === 1;
      const k = transA ? a[a.length - 2]! : a[a.length - 1]!;
      flops += 2 * outSize * k;
    }
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
