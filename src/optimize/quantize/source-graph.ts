import { KilnError } from '../../errors.js';
import { ONNX_TYPE_NAMES, dtypeFromOnnx } from '../../graph/dtype.js';
import type { Graph } from '../../graph/graph.js';
import { DEFAULT_OPSET } from '../../graph/onnx-io.js';
import type { ModelProto } from '../../graph/proto.js';
import { describedByShapeRules, graphFromProto, shapeOf } from '../../model/graph-from-proto.js';
import { UPGRADED_OPSET, upgradeOpset } from '../../graph/opset-upgrade.js';
import { OnnxModel, QUANTIZED_OPS } from '../../model/onnx-model.js';
import type { Model } from '../../model/model.js';
import { parseOnnx } from '../../model/read-model.js';
import { MODEL_METADATA_KEY, OUTPUT_NAME } from '../../model/sequential.js';

export { graphFromProto } from '../../model/graph-from-proto.js';
import { type Sequential } from '../../train/sequential.js';

/** Metadata key of a quantized model: what was done to it, and to which model (JSON). */
export const QUANTIZATION_METADATA_KEY = 'kiln.quantization';

/** A float inference graph to quantize, and where each node came from. */
export interface SourceGraph {
  /** The float graph, as Kiln's graph builder holds it. */
  graph: Graph;
  /** Node name → the Kiln layer that emitted it (foreign models: the node's own name). */
  layerOf: Map<string, string>;
  /**
   * Metadata to carry into the quantized file: everything but Kiln's layer configuration, which no
   * longer describes the graph (and would make `loadModel` try to rebuild a Sequential from it).
   */
  metadata: Record<string, string>;
  /** The model's name, for the quantization metadata. */
  modelName: string;
  /** Layer names, in order (to check `exclude` against). */
  layerNames: string[];
  /**
   * The model's ONNX opset: a rewrite writes the same one (at least 13, where QuantizeLinear takes a
   * per-channel axis), so its own ops keep the meaning they had (ReduceMean's axes, for one).
   */
  opset: number;
}

/** A Kiln layer model, any other Kiln model (an imported graph is quantized as the file it saves), a loaded ONNX file, or its bytes. */
export type QuantizableModel = Sequential | Model | OnnxModel | Uint8Array;

/** Fails with a clear message when the proto is a quantized (or float16) model already, or a float64 one. */
export function checkNotQuantized(proto: ModelProto, what = 'the model'): void {
  const meta = proto.metadataProps?.find((m) => m.key === QUANTIZATION_METADATA_KEY);
  if (meta) {
    let mode = 'quantized';
    try {
      mode = (JSON.parse(meta.value ?? '{}') as { mode?: string }).mode ?? mode;
    } catch {
      // the presence of the key is what matters
    }
    throw new KilnError('INVALID_ARGUMENT', `${what} is already quantized (mode '${mode}', metadata '${QUANTIZATION_METADATA_KEY}'): quantize the original float model instead`);
  }
  // Counted in QUANTIZED_OPS' order, whatever order the graph has them in.
  const counts = new Map([...QUANTIZED_OPS].map((op) => [op, 0]));
  for (const n of proto.graph?.node ?? []) if (QUANTIZED_OPS.has(n.opType ?? '')) counts.set(n.opType!, counts.get(n.opType!)! + 1);
  if ([...counts.values()].some((k) => k > 0)) {
    const found = [...counts].filter(([, k]) => k > 0).map(([op, k]) => `${k} ${op}`).join(', ');
    throw new KilnError('INVALID_ARGUMENT', `${what} is already quantized: it has ${found} node(s); quantize the original float model instead`);
  }
  const lowPrecision = (proto.graph?.initializer ?? []).filter((t) => t.dataType === 10 || t.dataType === 16);
  if (lowPrecision.length > 0) {
    throw new KilnError('INVALID_ARGUMENT', `${what} is already converted to ${ONNX_TYPE_NAMES[lowPrecision[0]!.dataType!]} (initializer '${lowPrecision[0]!.name}'): quantize the original float32 model instead`);
  }
  // Every mode converts float32 weights (as ONNX Runtime's quantizer does): a float64 model would come
  // out unchanged, reported as converted.
  const double = (proto.graph?.initializer ?? []).find((t) => t.dataType === 11);
  if (double) {
    throw new KilnError('INVALID_ARGUMENT', `${what} holds float64 weights (initializer '${double.name}'): quantization converts float32 models; export it in float32 (model.float() before torch.onnx.export)`);
  }
}

/**
 * A file of an opset before 13 upgraded to 13 (graph/opset-upgrade.ts): the rewrite is written at 13 at
 * least, where the file's older nodes would mean something else or nothing. The ranks and types the
 * upgrade asks for come from Kiln's shape rules on the file as it is, where they know its ops.
 */
function atRewriteOpset(proto: ModelProto): ModelProto {
  const declared = proto.opsetImport?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version;
  if (declared === undefined || Number(declared) >= UPGRADED_OPSET) return proto;
  return upgradeOpset(proto, { file: proto.graph?.name ? `the model (graph '${proto.graph.name}')` : 'the model', describe: describedByShapeRules(proto) });
}

/**
 * The float inference graph of a model, with weights as initializers and a symbolic batch dimension.
 * Kiln models also say which layer emitted each node (for the report and `exclude`).
 */
export function sourceGraph(model: QuantizableModel): SourceGraph {
  if (model instanceof Uint8Array) return sourceGraph(new OnnxModel(model, parseOnnx(model)));
  if (model instanceof OnnxModel) {
    checkNotQuantized(model.proto);
    const proto = atRewriteOpset(model.proto);
    const graph = graphFromProto(proto);
    // What the file declares for its outputs (a symbolic batch, the class count) where Kiln's shape
    // rules could not tell, so the rewritten file declares the same (graphFromProto itself keeps
    // Kiln's inference: the conformance tests check exactly that).
    for (const o of model.proto.graph?.output ?? []) {
      const v = graph.value(o.name ?? '');
      const declared = o.type?.tensorType;
      if (v.shape === null && declared?.elemType !== undefined && declared.shape) graph.redeclare({ name: v.name, dtype: dtypeFromOnnx(declared.elemType), shape: shapeOf(o) });
    }
    graph.outputs.splice(0, graph.outputs.length, ...graph.outputs.map((v) => graph.value(v.name)));
    const layerOf = new Map(graph.nodes.map((n) => [n.name, n.name.replace(/^node\//, '')]));
    const metadata = Object.fromEntries((model.proto.metadataProps ?? []).map((m) => [m.key ?? '', m.value ?? '']));
    delete metadata[MODEL_METADATA_KEY];
    const opset = Number(proto.opsetImport?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? DEFAULT_OPSET);
    return { graph, layerOf, metadata, layerNames: [...new Set(layerOf.values())], modelName: model.proto.graph?.name || 'model', opset };
  }
  const sequentialModel = model as Sequential;
  if (typeof sequentialModel.buildGraph !== 'function') {
    throw new KilnError('INVALID_ARGUMENT', 'quantize() takes a Kiln Sequential model, an OnnxModel or the bytes of an .onnx file');
  }
  const layerOf = new Map<string, string>();
  let seen = 0;
  const { graph } = sequentialModel.buildGraph({
    batchSize: 'N',
    afterLayer: (g, layer, output) => {
      // The layout transpose before the first layer belongs to the input.
      for (const n of g.nodes.slice(seen)) layerOf.set(n.name, n.name === 'node/to_channels_first' ? 'input' : (layer.name ?? layer.className));
      seen = g.nodes.length;
      return output;
    },
  });
  for (const n of graph.nodes.slice(seen)) layerOf.set(n.name, n.outputs.includes(OUTPUT_NAME) ? 'output' : 'input');
  const metadata = Object.fromEntries(sequentialModel.metadata);
  return { graph, layerOf, metadata, layerNames: sequentialModel.layers.map((l) => l.name ?? l.className), modelName: sequentialModel.name, opset: DEFAULT_OPSET };
}
