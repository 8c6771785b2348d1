import { gzipSync } from 'node:zlib';
import { KilnError } from '../errors.js';
import { encodeModel, type ModelProto } from '../graph/proto.js';
import { countedNodes, nodesFlops } from '../model/cost.js';
import type { OnnxModel } from '../model/onnx-model.js';
import { onnxParameterCount } from '../optimize/distill/student.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';

/** What a model costs, read off any ONNX file (float, pruned or quantized alike). */
export interface OnnxCost {
  /** Initializer elements, less int64 tensors (shapes, axes) and scalars (quantization scales, zero points). */
  parameters: number;
  /** The same elements that are not zero (what unstructured pruning removes). */
  nonZeroParameters: number;
  /** Floating-point (or integer) operations per example, a multiply-add counting 2: Conv, ConvTranspose, Gemm, MatMul and their quantized forms. */
  flops: number;
  /** Size of the .onnx file in bytes. */
  fileBytes: number;
  /** The file compressed with gzip -9: what sparse or low-entropy weights save on disk and on the wire. */
  gzipBytes: number;
}

/** Parameter counts and file sizes; FLOPs come from `measureFlops`, which needs to run the model. */
export function staticCost(model: OnnxModel): Omit<OnnxCost, 'flops'> {
  const counted = model.description.initializers.filter((t) => t.dtype !== 'int64' && t.shape.length > 0);
  return {
    parameters: onnxParameterCount(model),
    nonZeroParameters: counted.reduce((n, t) => n + t.size - t.zeros, 0),
    fileBytes: model.bytes.length,
    gzipBytes: gzipSync(model.bytes, { level: 9 }).length,
  };
}

/**
 * FLOPs of one example. Shapes inside a foreign or quantized graph are not written down anywhere Kiln
 * can trust, so every intermediate value is made a graph output and the model is run once on one
 * example: the shapes ONNX Runtime produces are the ones counted. The count is `nodesFlops`, as for Kiln's own graphs.
 */
export async function measureFlops(model: OnnxModel, example: Tensor | Record<string, Tensor>, runtime: Runtime): Promise<number> {
  const proto = model.proto;
  const graph = proto.graph ?? {};
  const nodes = graph.node ?? [];
  // One example: a tensor for a model's one input, or tensors by input name (input_ids, attention_mask).
  const feeds: Record<string, Tensor> = example instanceof Tensor ? (model.inputs.length === 1 ? { [model.inputs[0]!.name]: example } : {}) : example;
  if (model.inputs.length === 0 || model.inputs.some((i) => feeds[i.name]?.shape[0] !== 1)) throw new KilnError('INVALID_ARGUMENT', `measureFlops needs one example for each of the model's inputs (${model.inputs.map((i) => i.name).join(', ')})`);
  const existing = new Set((graph.output ?? []).map((o) => o.name));
  const extra = nodes.flatMap((n) => (n.output ?? []).filter((o) => o && !existing.has(o)));
  const probe: ModelProto = { ...proto, graph: { ...graph, output: [...(graph.output ?? []), ...extra.map((name) => ({ name }))] } };
  const session = await runtime.load(encodeModel(probe), { optimizationLevel: 'disabled' });
  let outputs: Record<string, Tensor>;
  try {
    outputs = await runtime.run(session, feeds);
  } finally {
    await runtime.release(session);
  }
  const shapes = new Map<string, number[]>();
  for (const t of graph.initializer ?? []) shapes.set(t.name ?? '', (t.dims ?? []).map(Number));
  for (const [name, t] of Object.entries(feeds)) shapes.set(name, [...t.shape]);
  for (const [name, t] of Object.entries(outputs)) shapes.set(name, [...t.shape]);
  return nodesFlops(countedNodes(proto), (name) => shapes.get(name));
}
