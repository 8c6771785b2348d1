import { Graph, type Node, type Value } from '../../graph/graph.js';
import type { Tensor } from '../../tensor.js';

/**
 * Rewriting a graph by copying it: the passes walk the source graph's nodes in order and emit each into
 * a new graph, unchanged or replaced. Values keep their names, so calibration ranges and reports keyed
 * by the source graph's names stay valid; constants are copied only when something reads them, so a
 * replaced weight does not linger in the file.
 */
export class GraphCopy {
  readonly dst: Graph;
  /** The destination value that stands for each source value (by source name). */
  private readonly mapped = new Map<string, Value>();
  private readonly consumers = new Map<string, Node[]>();

  constructor(readonly src: Graph) {
    this.dst = new Graph(src.name);
    for (const input of src.inputs) this.mapped.set(input.name, this.dst.input(input.name, input.dtype, input.shape ?? []));
    for (const n of src.nodes) for (const i of n.inputs) if (i) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n]);
  }

  /** Nodes of the source graph that read a value. */
  consumersOf(name: string): Node[] {
    return this.consumers.get(name) ?? [];
  }

  /** Whether a source value leaves the graph (as an output, or only through Identity nodes to one). */
  isModelOutput(name: string): boolean {
    if (this.src.outputs.some((o) => o.name === name)) return true;
    const users = this.consumersOf(name);
    return users.length > 0 && users.every((u) => u.opType === 'Identity' && this.isModelOutput(u.outputs[0]!));
  }

  /** A constant of the source graph (weights), or undefined for computed values. */
  constantOf(name: string): Tensor | undefined {
    return this.src.constantValue(name);
  }

  /** The destination value for a source value name (copying a constant on first use). */
  get(name: string): Value {
    const v = this.mapped.get(name);
    if (v) return v;
    const t = this.src.constantValue(name);
    if (t) {
      const copy = this.dst.initializer(name, t);
      this.mapped.set(name, copy);
      return copy;
    }
    return this.dst.value(name);
  }

  /** From now on, readers of source value `name` read `value` instead. */
  replace(name: string, value: Value): void {
    this.mapped.set(name, value);
  }

  /** Emits a source node unchanged (inputs mapped, outputs keeping their names). */
  emit(node: Node, inputs?: (Value | string)[], attrs = node.attrs): Value[] {
    const ins = inputs ?? node.inputs.map((i) => (i ? this.get(i) : ''));
    const outs = this.dst.op(node.opType, ins, attrs, { outputs: node.outputs, name: node.name.replace(/^node\//, ''), domain: node.domain });
    // The node keeps its name exactly (an exported '/encoder/layers.0/MatMul' must not become 'node//encoder/…').
    this.dst.nodes.at(-1)!.name = node.name;
    node.outputs.forEach((o, k) => this.mapped.set(o, outs[k]!));
    return outs;
  }

  /** Declares the source graph's outputs on the destination graph, under the same names. */
  finish(): Graph {
    for (const o of this.src.outputs) {
      // An output other nodes also read (a model returning (logits, features)) may have been replaced
      // for those readers by its quantized copy; the output stays the value its node computes.
      const v = this.dst.producer(o.name) ? this.dst.value(o.name) : this.get(o.name);
      const out = v.name === o.name ? v : this.dst.op('Identity', [v], {}, { outputs: [o.name] })[0]!;
      // Declared as the source declares it (the rewritten ops' shape rules may know less).
      if (out.shape === null && o.shape !== null) this.dst.redeclare({ name: out.name, dtype: o.dtype, shape: [...o.shape] });
      this.dst.outputs.push(this.dst.value(out.name));
    }
    return this.dst;
  }
}
