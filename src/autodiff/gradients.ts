import { KilnError } from '../errors.js';
import type { Graph, Node, Value } from '../graph/graph.js';
import type { GradientOptions } from '../graph/op-definition.js';
import { opDefinition } from '../ops/index.js';

/**
 * Reverse-mode differentiation over a Kiln graph: one walk, no knowledge of any operator. It visits
 * the nodes between the parameters and the loss in reverse order, sums the gradients that meet at a
 * value, and asks each op's gradient rule (src/ops/) for its inputs' gradients. The gradient nodes are
 * appended to the same graph, so forward and backward become one ONNX graph.
 *
 * `options` picks between formulations where exactness costs time (see GradientOptions).
 *
 * Returns d(loss)/d(param) for each requested value (zeros-free: a parameter the loss does not depend
 * on is an error, since training it would be silently useless).
 */
export function addGradients(graph: Graph, loss: Value, params: readonly Value[], options: GradientOptions = {}): Map<string, Value> {
  const forward = [...graph.nodes];
  const producedBy = new Map<string, Node>();
  for (const n of forward) for (const o of n.outputs) producedBy.set(o, n);

  // Values that depend on a parameter ...
  const dependsOnParam = new Set(params.map((p) => p.name));
  for (const n of forward) {
    if (n.inputs.some((i) => dependsOnParam.has(i))) for (const o of n.outputs) dependsOnParam.add(o);
  }
  // ... and that the loss depends on.
  const lossNeeds = new Set<string>([loss.name]);
  for (let k = forward.length - 1; k >= 0; k--) {
    const n = forward[k]!;
    if (n.outputs.some((o) => lossNeeds.has(o))) for (const i of n.inputs) if (i) lossNeeds.add(i);
  }
  const relevant = (name: string) => dependsOnParam.has(name) && lossNeeds.has(name);

  const pending = new Map<string, Value[]>();
  // d(loss)/d(loss) = 1, shaped like the (scalar) loss.
  const seed = graph.scalar(1, loss.dtype);
  pending.set(loss.name, [seed]);

  const total = (name: string): Value | null => {
    const parts = pending.get(name);
    if (!parts || parts.length === 0) return null;
    let sum = parts[0]!;
    for (let i = 1; i < parts.length; i++) sum = graph.op1('Add', [sum, parts[i]!], {}, `grad_sum`);
    pending.set(name, [sum]);
    return sum;
  };

  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k]!;
    if (!node.outputs.some(relevant)) continue;
    const gradOutputs = node.outputs.map((o) => (relevant(o) ? total(o) : null));
    if (gradOutputs.every((g) => g === null)) continue;
    const def = opDefinition(node.opType);
    if (!def?.gradient) {
      throw new KilnError('NO_GRADIENT', `cannot differentiate through op '${node.opType}' (node '${node.name}'): Kiln has no gradient rule for it`);
    }
    const inputs = node.inputs.map((i) => (i === '' ? null : graph.value(i)));
    // An omitted optional output ('' in an imported node) has no value; no rule reads one it did not ask for.
    const outputs = node.outputs.map((o) => (o === '' ? (null as unknown as Value) : graph.value(o)));
    let grads: (Value | null)[];
    try {
      grads = def.gradient({ graph, node, inputs, outputs, gradOutputs, options });
    } catch (err) {
      // A rule that covers only some of its op's attributes or shapes (static sizes it needs) says why;
      // the node says where.
      if (err instanceof KilnError && (err.code === 'NO_GRADIENT' || err.code === 'INVALID_SHAPE')) {
        throw new KilnError('NO_GRADIENT', `node '${node.name}' (${node.opType}): ${err.message}`, { cause: err });
      }
      throw err;
    }
    node.inputs.forEach((name, i) => {
      const g = grads[i];
      if (!name || !g || !relevant(name) || def.nonDifferentiableInputs?.includes(i)) return;
      const list = pending.get(name) ?? [];
      list.push(g);
      pending.set(name, list);
    });
  }

  const result = new Map<string, Value>();
  for (const p of params) {
    const g = total(p.name);
    if (!g) throw new KilnError('NO_GRADIENT', `the loss does not depend on '${p.name}': nothing would train it`);
    result.set(p.name, g);
  }
  return result;
}
