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
 * Only copies of a tensor whose elements are all equal (the constant fills of initialization) are
 * separated: two weights of random values that are equal are one weight the exporter saw twice (a tied
 * embedding and head), which a GraphModel trains as one, as PyTorch does.
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

/**
 * The file with every Identity of a constant-fill initializer replaced by an initializer of its own
 * (named as the Identity's output, the same values); the file itself where there are none.
 */
export function separateEqualInitializers(proto: ModelProto): ModelProto {
  const graph = proto.graph;
  if (!graph?.node?.some((n) => n.opType === 'Identity')) return proto;
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
    if (n.opType === 'Identity' && (n.domain ?? '') === '' && source && target && !outputs.has(target) && !initializers.has(target) && fill(source)) {
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
