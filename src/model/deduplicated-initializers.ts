import type { ModelProto, NodeProto, TensorProto } from '../graph/proto.js';
import { tensorFromProto } from '../graph/onnx-io.js';

/*
 * Owns undoing the exporter's merging of weights that merely start equal. torch.onnx.export (1.13+,
 * any export in eval mode, its default) deduplicates initializers *by value*: in a freshly built
 * torchvision ResNet every BatchNorm of 64 channels has γ = 1 and β = 0, and so do the running
 * variances and means, so the file keeps one tensor of ones and one of zeros and gives every other use
 * an Identity of them (`layer4.1.bn2.running_var = Identity(layer4.0.bn1.weight)`). Trained as written,
 * those would be one weight shared by every layer, and the running statistics would be that weight.
 * PyTorch's model has a parameter per layer, so each such Identity becomes an initializer of its own,
 * under the name the Identity gives it (PyTorch's own: `layer4.1.bn2.running_var`), holding the value.
 *
 * Copies of a tensor whose elements are all equal (the constant fills of initialization) are
 * separated, and so are clones: the same weight of two layers that differ only in their index in a
 * stack (`enc.layers.0.linear1.weight` and `enc.layers.1.linear1.weight`, or, for a weight constant
 * folding named `onnx::MatMul_305`, the nodes reading them: `/enc/layers.0/self_attn/MatMul` and
 * `/enc/layers.1/…`) — nn.TransformerEncoder deep-copies its layer, so an untrained export starts
 * every layer equal, and PyTorch trains each apart. Any other two weights of random values that are
 * equal are one weight the exporter saw twice (a tied embedding and head), which a GraphModel trains
 * as one, as PyTorch does.
 */

/** Whether every element of a float initializer is the same number (a constant fill: zeros, ones). */
function isConstantFill(t: TensorProto): boolean {
  try {
    const value = tensorFromProto(t);
    if (value.dtype !== 'float32' && value.dtype !== 'float64') return false;
    const data = value.data as ArrayLike<number>;
    for (let i = 1; i < data.length; i++) if (!Object.is(data[i], data[0])) return false;
    return data.length > 0;
  } catch {
    return false;
  }
}

/** The prefix PyTorch's exporter gives the initializers its constant folding computes. */
const FOLDED_PREFIX = 'onnx::';

/**
 * Where a weight sits in the model's module tree, as path segments: its own name when the exporter
 * kept the parameter's (`enc.layers.1.linear1.weight`), else the name of the first node reading it
 * (`/enc/layers.1/self_attn/MatMul`).
 */
function modulePath(value: string, readers: ReadonlyMap<string, NodeProto>): string[] | undefined {
  const name = value.startsWith(FOLDED_PREFIX) ? readers.get(value)?.name : value;
  return name ? name.split(/[/.]/).filter(Boolean) : undefined;
}

/** Whether two module paths are the same but for the numbers in them (layers.0 and layers.1 of a stack). */
function sameButIndex(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  let differs = false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (!/^\d+$/.test(a[i]!) || !/^\d+$/.test(b[i]!)) return false;
    differs = true;
  }
  return differs;
}

/**
 * The file with every Identity of a constant-fill initializer, or of a clone's, replaced by an
 * initializer of its own (named as the Identity's output, the same values); the file itself where
 * there are none.
 */
export function separateEqualInitializers(proto: ModelProto): ModelProto {
  const graph = proto.graph;
  if (!graph?.node?.some((n) => n.opType === 'Identity')) return proto;
  const readers = new Map<string, NodeProto>();
  // (The Identities themselves are no module's: the node a value is computed in says where it sits.)
  for (const n of graph.node) if (n.opType !== 'Identity') for (const i of n.input ?? []) if (i && !readers.has(i)) readers.set(i, n);
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  const fills = new Map<string, boolean>();
  const fill = (name: string) => {
    if (!fills.has(name)) fills.set(name, initializers.has(name) && isConstantFill(initializers.get(name)!));
    return fills.get(name)!;
  };
  const added: TensorProto[] = [];
  const node: NodeProto[] = [];
  for (const n of graph.node) {
    const source = n.input?.[0];
    const target = n.output?.[0];
    const separate = () => fill(source!) || (initializers.has(source!) && sameButIndex(modulePath(source!, readers), modulePath(target!, readers)));
    if (n.opType === 'Identity' && (n.domain ?? '') === '' && source && target && !outputs.has(target) && !initializers.has(target) && separate()) {
      const copy: TensorProto = { ...initializers.get(source)!, name: target };
      added.push(copy);
      initializers.set(target, copy);
      fills.set(target, true);
      continue;
    }
    node.push(n);
  }
  if (added.length === 0) return proto;
  return { ...proto, graph: { ...graph, node, initializer: [...(graph.initializer ?? []), ...added] } };
}
