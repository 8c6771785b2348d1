import { tensorFromProto, tensorToProto } from '../../graph/onnx-io.js';
import type { AttributeProto, ModelProto, NodeProto, TensorProto } from '../../graph/proto.js';
import { AttributeType } from '../../graph/proto.js';
import { isRecurrentOp } from '../../ops/recurrent.js';
import { Tensor, allocate, int64FromNumber, type AnyTypedArray } from '../../tensor.js';
import { formatSize, type Size, type Structure } from './axis-atoms.js';
import { keptIndices, keptSize, zeroFill, type GraphAnalysis } from './graph-groups.js';

/*
 * Writes the physically smaller graph once groups have lost units (graph-groups.ts finds the groups):
 * every initializer axis that holds a pruned group keeps only the remaining indices (weights, biases,
 * normalization scales and running statistics alike), and the few places a graph writes sizes down
 * are rewritten to the new ones — a Reshape's target (an attention's head count), a Slice's bounds (the
 * q/k/v offsets in a packed projection), a Split's sizes, an Expand's target (an attention mask
 * broadcast to the heads), a grouped Conv's or ConvTranspose's group count (a depthwise one keeps one group per channel),
 * a recurrent layer's hidden size. Nothing else changes: node names, the input and output names and
 * shapes, the opset and metadata stay, and shape computations that read sizes at run time (Shape →
 * Gather → Concat) are replaced only where a rewritten node no longer reads them; nodes left without a
 * reader go. `expectedSizes` says what every value's shape must be afterwards, which the caller checks
 * against the shrunk graph run in ONNX Runtime.
 */

/** Units removed from each group, by the group's leaf (original unit indices). */
export type Removals = ReadonlyMap<number, ReadonlySet<number>>;

function structureOrFail(analysis: GraphAnalysis, atom: number, what: string): Structure {
  try {
    return analysis.atoms.structure(atom);
  } catch (err) {
    throw new Error(`structured pruning: the structure of ${what} cannot be followed, yet a group in it was pruned (${(err as Error).message})`);
  }
}

/** Whether a value's axis loses indices. */
function axisChanges(analysis: GraphAnalysis, removed: Removals, value: string, axis: number): boolean {
  const atom = analysis.axes.get(value)?.[axis];
  if (atom === undefined) return false;
  return analysis.atoms.leavesUnder(atom).some((leaf) => (removed.get(leaf)?.size ?? 0) > 0);
}

function valueChanges(analysis: GraphAnalysis, removed: Removals, value: string): boolean {
  const list = analysis.axes.get(value);
  return !!list && list.some((_, a) => axisChanges(analysis, removed, value, a));
}

/** A value's sizes after the removals (k·N where they follow the batch); undefined when it was not measured. */
export function expectedSizes(analysis: GraphAnalysis, removed: Removals, value: string): Size[] | undefined {
  const measured = analysis.facts.sizes.get(value);
  const init = analysis.facts.proto.graph?.initializer?.find((t) => t.name === value);
  const original: Size[] | undefined = init
    ? (init.dims ?? []).map((k) => ({ k: Number(k), n: 0 }))
    : measured && measured[0].length === measured[1].length
      ? measured[0].map((a, i) => (a === measured[1][i] ? { k: a, n: 0 } : { k: a / 2, n: 1 }))
      : undefined;
  if (!original) return undefined;
  const atoms = analysis.axes.get(value);
  return original.map((size, a) => {
    const atom = atoms?.[a];
    if (atom === undefined || !axisChanges(analysis, removed, value, a)) return size;
    return keptSize(analysis.atoms, structureOrFail(analysis, atom, `axis ${a} of '${value}'`), removed);
  });
}

/** Copies the entries of `t` at the kept indices of each axis (null: the whole axis). */
export function takeAxes(t: Tensor, keeps: readonly (readonly number[] | null)[]): Tensor {
  const shape = t.shape.map((d, a) => keeps[a]?.length ?? d);
  const src = t.data as AnyTypedArray;
  const out = allocate(t.dtype, shape.reduce((p, d) => p * d, 1)) as AnyTypedArray;
  const srcStrides = t.shape.map((_, a) => t.shape.slice(a + 1).reduce((p, d) => p * d, 1));
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let s = 0;
    for (let a = 0; a < shape.length; a++) s += (keeps[a] ? keeps[a]![idx[a]!]! : idx[a]!) * srcStrides[a]!;
    (out as Float32Array)[o] = (src as Float32Array)[s]!;
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
  return new Tensor(out as never, shape, t.dtype);
}

function intTensor(values: readonly (number | bigint)[], like: TensorProto | undefined): Tensor {
  if (like?.dataType === 6) return new Tensor(Int32Array.from(values, Number), [values.length], 'int32');
  return new Tensor(BigInt64Array.from(values, int64FromNumber), [values.length], 'int64');
}

/**
 * The model with the removals applied. The caller has checked that every group losing units can be
 * pruned (analysis blockers empty) and keeps at least one unit.
 */
export function shrinkGraph(analysis: GraphAnalysis, removed: Removals): ModelProto {
  const { facts, atoms, axes } = analysis;
  const proto = facts.proto;
  const g = proto.graph!;
  const taken = new Set<string>([...(g.initializer ?? []).map((t) => t.name ?? ''), ...(g.node ?? []).flatMap((n) => n.output ?? []), ...(g.input ?? []).map((i) => i.name ?? '')]);
  const fresh = (base: string) => {
    let name = `${base}/pruned`;
    for (let k = 1; taken.has(name); k++) name = `${base}/pruned_${k}`;
    taken.add(name);
    return name;
  };
  const added: TensorProto[] = [];
  const constantProto = (name: string) => (g.initializer ?? []).find((t) => t.name === name);
  const constantValues = (name: string): (number | bigint)[] => {
    const t = facts.constants.get(name);
    if (!t) throw new Error(`structured pruning: '${name}' is not a constant`);
    return Array.from(t.data as ArrayLike<number | bigint>);
  };
  const newSize = (value: string, a: number): Size => expectedSizes(analysis, removed, value)![a]!;

  // Initializers: each axis keeps its remaining indices.
  const initializer = (g.initializer ?? []).map((t) => {
    const name = t.name ?? '';
    const list = axes.get(name);
    if (!list || !valueChanges(analysis, removed, name)) return t;
    const keeps = (t.dims ?? []).map((_, a) => {
      const atom = list[a];
      if (atom === undefined || !axisChanges(analysis, removed, name, a)) return null;
      return keptIndices(atoms, structureOrFail(analysis, atom, `axis ${a} of '${name}'`), removed);
    });
    return tensorToProto(name, takeAxes(tensorFromProto(t), keeps));
  });

  // Each node as the removals leave it; a rewrite that needs new nodes returns them before it.
  const rewrite = (n: NodeProto): NodeProto | NodeProto[] => {
    const op = n.opType ?? '';
    const inputs = n.input ?? [];
    const outputs = n.output ?? [];
    if (op === 'Reshape' && (valueChanges(analysis, removed, inputs[0]!) || valueChanges(analysis, removed, outputs[0]!))) {
      const sizes = expectedSizes(analysis, removed, outputs[0]!)!;
      const target = sizes.map((s) => (s.n !== 0 ? -1 : s.k));
      if (target.filter((d) => d === -1).length > 1) throw new Error(`structured pruning: Reshape '${n.name}' would need several -1 sizes (${sizes.map(formatSize).join('×')})`);
      const name = fresh(inputs[1] || `${n.name}/shape`);
      added.push(tensorToProto(name, intTensor(target, constantProto(inputs[1]!))));
      return { ...n, input: [inputs[0]!, name, ...inputs.slice(2)] };
    }
    if (op === 'Slice' && valueChanges(analysis, removed, inputs[0]!)) {
      const x = inputs[0]!;
      const rank = expectedSizes(analysis, removed, x)!.length;
      const starts = constantValues(inputs[1]!);
      const ends = constantValues(inputs[2]!);
      const axesList = inputs[3] ? constantValues(inputs[3]).map(Number) : starts.map((_, i) => i);
      const newStarts = [...starts];
      const newEnds = [...ends];
      axesList.forEach((raw, j) => {
        const a = raw < 0 ? raw + rank : raw;
        if (!axisChanges(analysis, removed, x, a)) return;
        const d = atoms.size(axes.get(x)![a]!).k;
        const kept = keptIndices(atoms, structureOrFail(analysis, axes.get(x)![a]!, `axis ${a} of '${x}'`), removed);
        const clamp = (v: number) => Math.min(d, Math.max(0, v < 0 ? v + d : v));
        const before = (bound: number) => kept.filter((i) => i < bound).length;
        newStarts[j] = before(clamp(Number(starts[j])));
        newEnds[j] = before(clamp(Number(ends[j])));
      });
      const s = fresh(inputs[1]!);
      const e = fresh(inputs[2]!);
      added.push(tensorToProto(s, intTensor(newStarts, constantProto(inputs[1]!))), tensorToProto(e, intTensor(newEnds, constantProto(inputs[2]!))));
      return { ...n, input: [x, s, e, ...inputs.slice(3)] };
    }
    if (op === 'Split' && valueChanges(analysis, removed, inputs[0]!)) {
      const x = inputs[0]!;
      const rank = expectedSizes(analysis, removed, x)!.length;
      const axisAttr = (n.attribute ?? []).find((a) => a.name === 'axis');
      const rawAxis = Number(axisAttr?.i ?? 0);
      const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
      const sizes = outputs.map((o) => newSize(o, axis).k);
      const name = fresh(inputs[1] || `${n.name}/split`);
      added.push(tensorToProto(name, intTensor(sizes, undefined)));
      const attribute = (n.attribute ?? []).filter((a) => a.name !== 'num_outputs' && a.name !== 'split');
      return { ...n, input: [x, name], attribute };
    }
    if (op === 'Expand' && valueChanges(analysis, removed, outputs[0]!) && !facts.constants.has(inputs[1]!)) {
      // A target computed at run time: its entries for the axes that shrink become 1 (target · keep +
      // (1 − keep)), so the output takes the input's new size there; the analysis left whole the axes
      // the input broadcasts from 1.
      const y = outputs[0]!;
      const rank = expectedSizes(analysis, removed, y)!.length;
      const length = facts.sizes.get(inputs[1]!)?.[0]?.[0] ?? rank;
      const keep = Array.from({ length }, (_, j) => (axisChanges(analysis, removed, y, j + rank - length) ? 0 : 1));
      const keepName = fresh(`${n.name}/kept`);
      const onesName = fresh(`${n.name}/ones`);
      const kept = fresh(`${n.name}/target_kept`);
      const target = fresh(`${n.name}/target`);
      added.push(tensorToProto(keepName, intTensor(keep, undefined)), tensorToProto(onesName, intTensor(keep.map((k) => 1 - k), undefined)));
      return [
        { opType: 'Mul', name: kept, input: [inputs[1]!, keepName], output: [kept] },
        { opType: 'Add', name: target, input: [kept, onesName], output: [target] },
        { ...n, input: [inputs[0]!, target] },
      ];
    }
    if (op === 'Expand' && valueChanges(analysis, removed, outputs[0]!)) {
      // An attention mask broadcast to every head ([B, 1, 1, T] → [B, heads, 1, T]): the head count it
      // expands to is the new one; the other sizes stay as the file wrote them (1: keep the input's).
      const y = outputs[0]!;
      const rank = expectedSizes(analysis, removed, y)!.length;
      const target = constantValues(inputs[1]!);
      const resized = target.map((t, j) => {
        const a = j + rank - target.length;
        return axisChanges(analysis, removed, y, a) ? newSize(y, a).k : t;
      });
      const name = fresh(inputs[1]!);
      added.push(tensorToProto(name, intTensor(resized, constantProto(inputs[1]!))));
      return { ...n, input: [inputs[0]!, name] };
    }
    if (isRecurrentOp(op) && valueChanges(analysis, removed, inputs[2]!)) {
      // The hidden size is written down; an initial state of ConstantOfShape's zeros (its shape written
      // with the old size) goes, zeros being what ONNX assumes without one.
      const attribute: AttributeProto[] = [...(n.attribute ?? []).filter((a) => a.name !== 'hidden_size'), { name: 'hidden_size', type: AttributeType.INT, i: newSize(inputs[2]!, 2).k }];
      const kept = inputs.map((v, k) => ((k === 5 || k === 6) && zeroFill(proto, v) ? '' : v));
      while (kept.length > 0 && kept.at(-1) === '') kept.pop();
      return { ...n, input: kept, attribute };
    }
    if ((op === 'Conv' || op === 'ConvTranspose') && valueChanges(analysis, removed, inputs[0]!)) {
      const group = Number((n.attribute ?? []).find((a) => a.name === 'group')?.i ?? 1);
      if (group === 1) return n;
      // A Conv's weight axis 1 holds one group's input channels; a ConvTranspose's, one group's output channels.
      const channels = newSize(op === 'Conv' ? inputs[0]! : n.output![0]!, 1).k;
      const perGroup = newSize(inputs[1]!, 1).k;
      const attribute: AttributeProto[] = (n.attribute ?? []).map((a) => (a.name === 'group' ? { name: 'group', type: AttributeType.INT, i: channels / perGroup } : a));
      return { ...n, attribute };
    }
    return n;
  };
  const nodes = (g.node ?? []).flatMap(rewrite);

  // Nodes and initializers that lost their last reader to a rewrite go (the shape arithmetic a new
  // Reshape target replaced); whatever the original left unread stays as it was.
  const readers = (nodeList: NodeProto[]) => {
    const used = new Set<string>((g.output ?? []).map((o) => o.name ?? ''));
    for (let k = nodeList.length - 1; k >= 0; k--) {
      const n = nodeList[k]!;
      if ((n.output ?? []).some((o) => used.has(o))) for (const i of n.input ?? []) used.add(i);
    }
    return used;
  };
  const before = readers(g.node ?? []);
  const after = readers(nodes);
  const live = (names: string[] | undefined, used: Set<string>) => (names ?? []).some((o) => used.has(o));
  const keptNodes = nodes.filter((n) => live(n.output, after) || !live(n.output, before));
  const usedAfter = new Set<string>([...keptNodes.flatMap((n) => n.input ?? []), ...(g.output ?? []).map((o) => o.name ?? '')]);
  const keptInitializers = [...initializer, ...added].filter((t) => usedAfter.has(t.name ?? '') || !before.has(t.name ?? ''));

  // Shapes recorded for changed values are stale (value_info is optional); initializers that older
  // exporters list among the inputs carry their new dims.
  const newDims = new Map(keptInitializers.map((t) => [t.name ?? '', t.dims ?? []]));
  const input = (g.input ?? []).map((i) => {
    const dims = newDims.get(i.name ?? '');
    const shape = i.type?.tensorType?.shape;
    if (!dims || !shape || !valueChanges(analysis, removed, i.name ?? '')) return i;
    return { ...i, type: { ...i.type, tensorType: { ...i.type!.tensorType, shape: { dim: dims.map((d) => ({ dimValue: Number(d) })) } } } };
  });
  const valueInfo = (g.valueInfo ?? []).filter((v) => !valueChanges(analysis, removed, v.name ?? ''));
  return { ...proto, graph: { ...g, node: keptNodes, initializer: keptInitializers, input, valueInfo } };
}
