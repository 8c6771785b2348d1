import type { Graph, Node } from '../../graph/graph.js';

/*
 * Transformer blocks as exporters write them: LayerNorm (one LayerNormalization node from opset 17,
 * or PyTorch's decomposition ReduceMean → Sub → Pow → ReduceMean → Add(ε) → Sqrt → Div → Mul(γ) →
 * Add(β) before it) and GELU in its exact form, x · ½ · (1 + erf(x / √2)) (Div or Mul by a constant,
 * Erf, Add 1, Mul by x, Mul ½, in either order of the last two). The static quantizer treats each as
 * one unit: an 8-bit input and output or none, one line in the report. Recognised by structure and
 * constant values, so a graph that only looks alike (another exponent, another constant) is left to
 * the per-node rules.
 */

/** Which block; also the name `floatOps` takes for it. */
export type BlockKind = 'LayerNormalization' | 'Gelu';
export const BLOCK_KINDS: readonly BlockKind[] = ['LayerNormalization', 'Gelu'];

/** A transformer block (LayerNorm or GELU) found in a graph, which the static quantizer treats as one unit. */
export interface Block {
  /** Which block it is. */
  kind: BlockKind;
  /** The block's nodes in graph order. */
  nodes: Node[];
  /** The value it normalizes / activates. */
  input: string;
  /** The value it produces. */
  output: string;
}

/** Every LayerNorm and GELU block of a graph, each node in at most one. */
export function findBlocks(graph: Graph): Block[] {
  const readers = new Map<string, Node[]>();
  for (const n of graph.nodes) for (const i of n.inputs) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  const m = new Matcher(graph, readers);
  const blocks: Block[] = [];
  const taken = new Set<Node>();
  for (const n of graph.nodes) {
    if (taken.has(n)) continue;
    const block = n.opType === 'LayerNormalization' ? { kind: 'LayerNormalization' as const, nodes: [n], input: n.inputs[0]!, output: n.outputs[0]! } : n.opType === 'ReduceMean' ? m.decomposedLayerNorm(n) : n.opType === 'Erf' ? m.gelu(n) : undefined;
    if (!block || block.nodes.some((b) => taken.has(b))) continue;
    block.nodes.sort((a, b) => graph.nodes.indexOf(a) - graph.nodes.indexOf(b));
    for (const b of block.nodes) taken.add(b);
    blocks.push(block);
  }
  return blocks;
}

class Matcher {
  constructor(
    private readonly graph: Graph,
    private readonly readers: Map<string, Node[]>,
  ) {}

  /** The single reader of a value, or undefined when it has none or several. */
  private only(value: string, opType: string): Node | undefined {
    const r = this.readers.get(value) ?? [];
    return r.length === 1 && r[0]!.opType === opType ? r[0] : undefined;
  }

  /** The scalar constant among a node's inputs (and the other input), when it has one. */
  private withScalar(n: Node): { scalar: number; other: string } | undefined {
    for (const [k, name] of n.inputs.entries()) {
      const t = this.graph.constantValue(name);
      if (t && t.size === 1 && (t.dtype === 'float32' || t.dtype === 'float64')) return { scalar: Number(t.data[0]), other: n.inputs[1 - k]! };
    }
    return undefined;
  }

  private isConstant(name: string): boolean {
    return this.graph.constantValue(name) !== undefined;
  }

  /** mean = ReduceMean(x); d = x − mean; var = ReduceMean(d²); y = d / √(var + ε) [· γ] [+ β]. */
  decomposedLayerNorm(mean: Node): Block | undefined {
    const x = mean.inputs[0]!;
    const sub = (this.readers.get(mean.outputs[0]!) ?? []).find((r) => r.opType === 'Sub' && r.inputs[0] === x && r.inputs[1] === mean.outputs[0]);
    if (!sub || (this.readers.get(mean.outputs[0]!) ?? []).length !== 1) return undefined;
    const d = sub.outputs[0]!;
    const dReaders = this.readers.get(d) ?? [];
    const pow = dReaders.find((r) => r.opType === 'Pow' && r.inputs[0] === d);
    const div = dReaders.find((r) => r.opType === 'Div' && r.inputs[0] === d);
    if (!pow || !div || dReaders.length !== 2 || this.withScalar(pow)?.scalar !== 2) return undefined;
    const variance = this.only(pow.outputs[0]!, 'ReduceMean');
    const addEps = variance && this.only(variance.outputs[0]!, 'Add');
    const sqrt = addEps && this.withScalar(addEps) ? this.only(addEps.outputs[0]!, 'Sqrt') : undefined;
    if (!variance || !addEps || !sqrt || div.inputs[1] !== sqrt.outputs[0] || (this.readers.get(sqrt.outputs[0]!) ?? []).length !== 1) return undefined;
    const nodes = [mean, sub, pow, variance, addEps, sqrt, div];
    let out = div.outputs[0]!;
    const scale = this.only(out, 'Mul');
    if (scale && scale.inputs.some((i) => i !== out && this.isConstant(i))) {
      nodes.push(scale);
      out = scale.outputs[0]!;
      const shift = this.only(out, 'Add');
      if (shift && shift.inputs.some((i) => i !== out && this.isConstant(i))) {
        nodes.push(shift);
        out = shift.outputs[0]!;
      }
    }
    return { kind: 'LayerNormalization', nodes, input: x, output: out };
  }

  /** GELU's exact form around its Erf: x / √2 (or x · 1/√2) → Erf → + 1 → · x → · ½ (or ½ first). */
  gelu(erf: Node): Block | undefined {
    const scaled = this.graph.producer(erf.inputs[0]!);
    const s = scaled && (scaled.opType === 'Div' || scaled.opType === 'Mul') ? this.withScalar(scaled) : undefined;
    if (!scaled || !s || (this.readers.get(scaled.outputs[0]!) ?? []).length !== 1) return undefined;
    const inverse = scaled.opType === 'Div' ? s.scalar : 1 / s.scalar;
    if (Math.abs(inverse - Math.SQRT2) > 1e-4 || (scaled.opType === 'Div' && scaled.inputs[0] !== s.other)) return undefined;
    const x = s.other;
    const plusOne = this.only(erf.outputs[0]!, 'Add');
    if (!plusOne || this.withScalar(plusOne)?.scalar !== 1) return undefined;
    const nodes = [scaled, erf, plusOne];
    // x · (1 + erf) · ½, or (x · ½) · (1 + erf).
    const times = this.only(plusOne.outputs[0]!, 'Mul');
    if (!times) return undefined;
    const other = times.inputs[0] === plusOne.outputs[0] ? times.inputs[1]! : times.inputs[0]!;
    if (other === x) {
      const half = this.only(times.outputs[0]!, 'Mul');
      if (!half || this.withScalar(half)?.scalar !== 0.5) return undefined;
      return { kind: 'Gelu', nodes: [...nodes, times, half], input: x, output: half.outputs[0]! };
    }
    const halfFirst = this.graph.producer(other);
    if (halfFirst?.opType !== 'Mul' || this.withScalar(halfFirst)?.scalar !== 0.5 || this.withScalar(halfFirst)?.other !== x) return undefined;
    return { kind: 'Gelu', nodes: [halfFirst, ...nodes, times], input: x, output: times.outputs[0]! };
  }
}
