import type { Graph, Node } from '../../graph/graph.js';
import { Tensor } from '../../tensor.js';
import { GraphCopy } from './rewrite.js';

/** One BatchNormalization folded into the convolution before it. */
export interface FoldedBatchNorm {
  /** The BatchNormalization node's name. */
  batchNorm: string;
  /** The Conv node it went into. */
  conv: string;
}

/**
 * Folds inference-mode BatchNormalization into the Conv before it: with k = γ / √(σ² + ε),
 * W'[c] = W[c] · k[c] and b'[c] = (b[c] − μ[c]) · k[c] + β[c]. Quantizing the folded Conv quantizes
 * what actually runs (a BatchNormalization left after an int8 Conv would stay a float op between two
 * quantized tensors). The Conv's weights and the statistics must be constants, and the Conv's output
 * must go to the BatchNormalization only.
 */
export function foldBatchNormalization(src: Graph): {
  /** The graph without the folded BatchNormalizations. */
  graph: Graph;
  /** Each one folded. */
  folded: FoldedBatchNorm[];
} {
  const copy = new GraphCopy(src);
  const foldInto = new Map<Node, Node>(); // conv → its batch norm
  for (const bn of src.nodes) {
    if (bn.opType !== 'BatchNormalization' || bn.outputs.length !== 1) continue;
    const conv = src.producer(bn.inputs[0]!);
    if (!conv || conv.opType !== 'Conv' || copy.consumersOf(conv.outputs[0]!).length !== 1 || copy.isModelOutput(conv.outputs[0]!)) continue;
    const constants = [conv.inputs[1]!, ...(conv.inputs[2] ? [conv.inputs[2]] : []), ...bn.inputs.slice(1)];
    if (constants.every((n) => copy.constantOf(n)?.dtype === 'float32')) foldInto.set(conv, bn);
  }
  const folded: FoldedBatchNorm[] = [];
  const skip = new Set<Node>([...foldInto.values()]);
  for (const node of src.nodes) {
    if (skip.has(node)) continue;
    const bn = foldInto.get(node);
    if (!bn) {
      copy.emit(node);
      continue;
    }
    const w = copy.constantOf(node.inputs[1]!)!;
    const b = node.inputs[2] ? copy.constantOf(node.inputs[2]) : undefined;
    const [gamma, beta, mean, variance] = bn.inputs.slice(1).map((n) => copy.constantOf(n)!.data as Float32Array) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const eps = typeof bn.attrs.epsilon === 'number' ? bn.attrs.epsilon : 1e-5;
    const channels = w.shape[0]!;
    const perChannel = w.size / channels;
    const k = Float64Array.from({ length: channels }, (_, c) => gamma[c]! / Math.sqrt(variance[c]! + eps));
    const wData = w.data as Float32Array;
    const newW = Float32Array.from(wData, (v, i) => v * k[Math.floor(i / perChannel)]!);
    const bData = b ? (b.data as Float32Array) : new Float32Array(channels);
    const newB = Float32Array.from({ length: channels }, (_, c) => (bData[c]! - mean[c]!) * k[c]! + beta[c]!);
    const dst = copy.dst;
    // Named like the weights they replace, so reports and exclusions keep reading naturally.
    const weight = dst.constant(new Tensor(newW, w.shape, 'float32'), node.inputs[1]!);
    const bias = dst.constant(new Tensor(newB, [channels], 'float32'), node.inputs[2] || `${node.inputs[1]!.replace(/\/kernel$/, '')}/bias`);
    const [y] = copy.emit(node, [copy.get(node.inputs[0]!), weight, bias]);
    copy.replace(bn.outputs[0]!, y!);
    folded.push({ batchNorm: bn.name, conv: node.name });
  }
  return { graph: copy.finish(), folded };
}
