/**
 * A decoded ONNX model as a Kiln Graph: every value gets a dtype and shape from Kiln's shape rules.
 * Quantization rewrites that graph; the opset upgrade asks it for ranks and types where ONNX Runtime
 * cannot run the original (opset 6's operators have no kernels there).
 */
import { KilnError } from '../errors.js';
import { dtypeFromOnnx } from '../graph/dtype.js';
import { Graph, type Shape } from '../graph/graph.js';
import { nodeAttributes, tensorFromProto } from '../graph/onnx-io.js';
import type { ValueDescription } from '../graph/opset-upgrade.js';
import type { ModelProto, ValueInfoProto } from '../graph/proto.js';

/** The shape a value info declares: sizes, symbolic names, null where unknown. */
export function shapeOf(v: ValueInfoProto): Shape {
  const dims = v.type?.tensorType?.shape?.dim ?? [];
  return dims.map((d) => (d.dimValue !== undefined ? Number(d.dimValue) : (d.dimParam ?? null)));
}

/**
 * Rebuilds a decoded ONNX model as a Kiln Graph, so every value gets a dtype and shape from Kiln's
 * shape rules. Operators Kiln has no shape rule for are reported by name (UNSUPPORTED_OP).
 */
export function graphFromProto(proto: ModelProto): Graph {
  const g = proto.graph ?? {};
  const graph = new Graph(g.name || 'model');
  const initNames = new Set<string>();
  for (const t of g.initializer ?? []) {
    graph.initializer(t.name ?? '', tensorFromProto(t));
    initNames.add(t.name ?? '');
  }
  for (const v of g.input ?? []) {
    if (initNames.has(v.name ?? '')) continue;
    const elem = v.type?.tensorType?.elemType;
    if (elem === undefined) throw new KilnError('UNSUPPORTED_OP', `model input '${v.name}' is not a tensor`);
    graph.input(v.name ?? '', dtypeFromOnnx(elem), shapeOf(v));
  }
  for (const n of g.node ?? []) {
    if (n.domain && n.domain !== 'ai.onnx') {
      throw new KilnError('UNSUPPORTED_OP', `node '${n.name}' is ${n.domain}.${n.opType}: Kiln reads graphs of standard ONNX operators only`);
    }
    const attrs = nodeAttributes(n);
    const hint = (n.name || n.opType || 'node').replace(/^node\//, '');
    graph.op(n.opType ?? '', n.input ?? [], attrs, { outputs: n.output ?? [], name: hint });
    // The file's own node name, as it is (Graph.op would prefix Kiln's 'node/'): the rewritten file keeps it.
    if (n.name) graph.nodes.at(-1)!.name = n.name;
  }
  for (const o of g.output ?? []) graph.outputs.push(graph.value(o.name ?? ''));
  return graph;
}

/**
 * Values' ranks and types as Kiln's shape rules give them, for the opset upgrade; nothing where the
 * rules do not know the model's operators (the upgrade then goes by the shapes the file declares).
 */
export function describedByShapeRules(proto: ModelProto): (name: string) => ValueDescription | undefined {
  let graph: Graph;
  try {
    graph = graphFromProto(proto);
  } catch {
    return () => undefined;
  }
  return (name) => {
    const v = graph.values.get(name);
    return v?.shape ? { rank: v.shape.length, dtype: v.dtype } : undefined;
  };
}
