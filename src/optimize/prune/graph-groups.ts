import type { Attrs } from '../../graph/graph.js';
import { nodeAttributes, tensorFromProto } from '../../graph/onnx-io.js';
import type { ModelProto, NodeProto } from '../../graph/proto.js';
import { RECURRENT_GATES } from '../../ops/recurrent.js';
import { measureGraph, tiedCopies } from '../../model/imported-graph.js';
import { separateEqualInitializers } from '../../model/deduplicated-initializers.js';
import { sharedRuntime, type Runtime } from '../../runtime/runtime.js';
import type { Tensor } from '../../tensor.js';
import { AxisAtoms, NotRepresentable, commonFactors, formatSize, sizeEquals, type Size, type Structure } from './axis-atoms.js';

/*
 * Channel dependency groups of an ONNX graph, found from the graph itself (the idea of Torch-Pruning's
 * DepGraph): which indices of which weight axes must be removed together so that the graph stays
 * valid and computes what it computed with those channels zeroed. One rule per op type ties the axes
 * of its inputs and outputs (axis-atoms.ts holds the algebra): element-wise ops and broadcasting tie
 * equal axes (a residual Add ties the two branches' channels), Conv ties its input channels to its
 * weight's second axis and its output channels to the first (a depthwise or grouped Conv ties input,
 * output and weight channels group by group), MatMul/Gemm tie the contracted axis and pass the others,
 * Concat/Slice/Split place axes at offsets, Reshape/Flatten/Transpose rearrange them (an attention's
 * reshape into heads splits the projection's columns into heads × head size). An op that mixes the
 * entries of an axis (Softmax, a reduction, LayerNormalization over it, pooling windows) or that the
 * rules do not know leaves the axes it touches whole, and records which node and why; so do the
 * model's input and output.
 *
 * A group is a leaf of the final structure that some weight produces (a Conv's output channels, a
 * MatMul/Gemm's output columns): its units, every weight axis that holds it, and the reasons, if any,
 * it must stay whole. The shapes the rules read are measured (model/imported-graph.ts measureGraph),
 * so sizes that follow the batch are known as multiples of it.
 */

/** What the analysis reads of a graph: the model, its values' shapes measured at batch 2 and 3, its constants. */
export interface GraphFacts {
  /** The model analysed. */
  proto: ModelProto;
  /** Each value's shape measured at batch size 2 and at batch size 3 (so that sizes following the batch show). */
  sizes: ReadonlyMap<string, [number[], number[]]>;
  /** Values that are constants in fact (computed from no data and no float weight). */
  constants: ReadonlyMap<string, Tensor>;
}

/** Why a group stays whole: the node (or the graph's input/output) and what it does to the axis. */
export interface Blocker {
  /** The node's name, or '(graph input)' / '(graph output)'. */
  node: string;
  /** The node's op type (empty for the graph's input or output). */
  op: string;
  /** What it does to the axis that keeps the group whole. */
  why: string;
}

/**
 * What a group's units are: 'channels' (convolution channels), 'units' (hidden units of MatMul/Gemm
 * layers), 'heads' (attention heads) or 'headDims' (the dimensions within each attention head).
 */
export type GroupKind = 'channels' | 'units' | 'heads' | 'headDims';

/** One weight axis that a group slices. */
export interface GroupMember {
  /** An initializer the group slices. */
  tensor: string;
  /** The axis of that tensor that holds the group. */
  axis: number;
  /** Indices of that axis the group holds (all units). */
  indices: number;
  /** Whether the tensor is a running statistic (BatchNormalization mean/variance: sliced, not scored). */
  statistic: boolean;
}

/**
 * A channel dependency group: units (channels, hidden units, heads) that must be removed together from
 * every weight that holds them, and the reasons, if any, it must stay whole.
 */
export interface ChannelGroup {
  /** The leaf atom (an id for removals). */
  leaf: number;
  /** What the group's units are. */
  kind: GroupKind;
  /** The number of units in the group. */
  units: number;
  /** Nodes whose weights produce the group's channels (Conv, MatMul, Gemm). */
  producers: string[];
  /** Every weight axis that holds the group. */
  members: GroupMember[];
  /** Why the group must stay whole (empty when it can be pruned). */
  blockers: Blocker[];
}

/** The result of {@link analyzeGraph}: a graph's channel dependency groups and what they were found from. */
export interface GraphAnalysis {
  /** What the analysis read of the graph. */
  facts: GraphFacts;
  /** The axis structures the analysis built (every value axis as an atom). */
  atoms: AxisAtoms;
  /** Each value's axes as atoms (undefined for axes of size 1 or unknown size). */
  axes: ReadonlyMap<string, readonly (number | undefined)[]>;
  /** Groups, in the order of their first producer in the graph. */
  groups: ChannelGroup[];
  /** BatchNormalization running statistics (sliced with their group, never scored or counted as parameters). */
  statistics: ReadonlySet<string>;
  /** BatchNormalization scales (what the 'bnScale' criterion ranks by). */
  batchNormScales: ReadonlySet<string>;
}

interface NodeInfo {
  proto: NodeProto;
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
}

type Rule = (an: Analyzer, n: NodeInfo) => void;

const FIXED_ONE: Size = { k: 1, n: 0 };

class Analyzer {
  readonly atoms = new AxisAtoms();
  readonly axes = new Map<string, (number | undefined)[]>();
  readonly blocks: { value: string; axis: number; blocker: Blocker }[] = [];
  readonly producers: { value: string; axis: number; node: NodeInfo }[] = [];
  /** Atoms every leaf under which stays whole (a grouped Conv's group count), with why. */
  readonly atomBlocks: { atom: number; blocker: Blocker }[] = [];
  /** Atoms whose leaves a node produces as units, where an axis holds them among factors that are not (a recurrent layer's gates × hidden). */
  readonly unitProducers: { atom: number; node: NodeInfo }[] = [];
  readonly statistics = new Set<string>();
  readonly batchNormScales = new Set<string>();
  readonly initializers = new Map<string, number[]>();
  private readonly weightLike = new Set<string>();

  constructor(readonly facts: GraphFacts) {
    for (const t of facts.proto.graph?.initializer ?? []) {
      this.initializers.set(t.name ?? '', (t.dims ?? []).map(Number));
      this.weightLike.add(t.name ?? '');
    }
  }

  /** A value's shape, sizes following the batch as k·N; undefined when not measured or not linear in the batch. */
  shape(v: string): Size[] | undefined {
    const init = this.initializers.get(v);
    if (init) return init.map((k) => ({ k, n: 0 }));
    const m = this.facts.sizes.get(v);
    if (!m) return undefined;
    const [a, b] = m;
    if (a.length !== b.length) return undefined;
    const out: Size[] = [];
    for (let i = 0; i < a.length; i++) {
      if (a[i] === b[i]) out.push({ k: a[i]!, n: 0 });
      else if (a[i]! % 2 === 0 && (a[i]! / 2) * 3 === b[i]) out.push({ k: a[i]! / 2, n: 1 });
      else return undefined;
    }
    return out;
  }

  requireShape(v: string): Size[] {
    const s = this.shape(v);
    if (!s) throw new NotRepresentable(`the shape of '${v}' was not measured or does not follow the batch size linearly`);
    return s;
  }

  rank(v: string): number {
    return this.requireShape(v).length;
  }

  /** The atom of a value's axis (created on first use); undefined for an axis of size 1 or 0. */
  axis(v: string, a: number): number | undefined {
    const shape = this.requireShape(v);
    if (a < 0 || a >= shape.length) throw new NotRepresentable(`axis ${a} of '${v}' (rank ${shape.length})`);
    let list = this.axes.get(v);
    if (!list) this.axes.set(v, (list = new Array<number | undefined>(shape.length).fill(undefined)));
    const size = shape[a]!;
    if (size.n === 0 && size.k <= 1) return undefined;
    return (list[a] ??= this.atoms.create(size));
  }

  /** The atom of an axis, or a fresh size-1 atom where the axis has size 1 (a Concat's or Slice's piece). */
  piece(v: string, a: number): number {
    return this.axis(v, a) ?? this.atoms.create(FIXED_ONE);
  }

  tie(v1: string, a1: number, v2: string, a2: number): void {
    const x = this.axis(v1, a1);
    const y = this.axis(v2, a2);
    if (x === undefined && y === undefined) return;
    if (x === undefined || y === undefined) throw new NotRepresentable(`axis ${a1} of '${v1}' and axis ${a2} of '${v2}' differ in size`);
    this.atoms.unify(x, y);
  }

  /** Ties every axis of two values of the same shape. */
  tieAll(v1: string, v2: string): void {
    const r = this.rank(v1);
    if (r !== this.rank(v2)) throw new NotRepresentable(`'${v1}' and '${v2}' differ in rank`);
    for (let a = 0; a < r; a++) this.tie(v1, a, v2, a);
  }

  block(v: string, a: number, blocker: Blocker): void {
    if (!v) return;
    const shape = this.shape(v);
    if (!shape || a < 0 || a >= shape.length) return;
    this.axis(v, a);
    this.blocks.push({ value: v, axis: a, blocker });
  }

  blockAll(v: string, blocker: Blocker): void {
    const shape = v ? this.shape(v) : undefined;
    if (shape) for (let a = 0; a < shape.length; a++) this.block(v, a, blocker);
  }

  /** A constant's values as numbers (int64 included), or undefined when the value is not a constant. */
  constant(v: string | undefined): number[] | undefined {
    if (!v) return undefined;
    const t = this.facts.constants.get(v);
    if (!t) return undefined;
    return Array.from(t.data as ArrayLike<number | bigint>, Number);
  }

  producer(value: string, axis: number, node: NodeInfo): void {
    if (this.isWeight(value)) this.producers.push({ value, axis, node });
  }

  /** Whether a value is computed from initializers alone (a weight, perhaps transposed or reshaped). */
  isWeight(v: string): boolean {
    return this.weightLike.has(v);
  }

  noteWeightLike(n: NodeInfo): void {
    const inputs = n.inputs.filter((i) => i);
    if (inputs.length > 0 && inputs.every((i) => this.weightLike.has(i) || this.facts.constants.has(i))) {
      if (inputs.some((i) => this.weightLike.has(i))) for (const o of n.outputs) if (o) this.weightLike.add(o);
    }
  }
}

const normalize = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const blocker = (n: NodeInfo, why: string): Blocker => ({ node: n.name, op: n.op, why });

/** Element-wise with numpy broadcasting: an input axis equal to the output's (and not 1) is tied to it. */
const broadcast: Rule = (an, n) => broadcastInputs(an, n, n.inputs);

function broadcastInputs(an: Analyzer, n: NodeInfo, inputs: string[]): void {
  const out = n.outputs[0]!;
  const so = an.requireShape(out);
  for (const i of inputs) {
    if (!i) continue;
    const si = an.requireShape(i);
    if (si.length > so.length) throw new NotRepresentable(`input '${i}' has a higher rank than the output`);
    for (let a = 0; a < si.length; a++) {
      const oa = a + so.length - si.length;
      if (sizeEquals(si[a]!, so[oa]!)) an.tie(i, a, out, oa);
      else if (!sizeEquals(si[a]!, FIXED_ONE)) throw new NotRepresentable(`input '${i}' axis ${a} (${formatSize(si[a]!)}) does not broadcast to ${formatSize(so[oa]!)}`);
    }
  }
  // Further outputs of the same shape (Dropout's mask).
  for (const o of n.outputs.slice(1)) if (o && an.shape(o)?.length === so.length) an.tieAll(o, out);
}

/** Reductions: reduced axes are mixed (left whole); the rest pass to the output. */
function reduce(an: Analyzer, n: NodeInfo, axes: number[] | undefined, keepdims: boolean): void {
  const [x] = n.inputs;
  const y = n.outputs[0]!;
  const r = an.rank(x!);
  const reduced = new Set((axes ?? Array.from({ length: r }, (_, a) => a)).map((a) => normalize(a, r)));
  let k = 0;
  for (let a = 0; a < r; a++) {
    if (reduced.has(a)) {
      an.block(x!, a, blocker(n, 'reduces over this axis: removing entries changes the result for the rest'));
      if (keepdims) k++;
    } else an.tie(x!, a, y, k++);
  }
}

const reduceRule: Rule = (an, n) => {
  const keepdims = (n.attrs.keepdims ?? 1) === 1;
  let axes = n.attrs.axes as number[] | undefined;
  if (axes === undefined && n.inputs[1]) {
    axes = an.constant(n.inputs[1]);
    if (!axes) throw new NotRepresentable('its axes are not a constant');
  }
  if (axes !== undefined && axes.length === 0 && n.attrs.noop_with_empty_axes === 1) return an.tieAll(n.inputs[0]!, n.outputs[0]!);
  reduce(an, n, axes !== undefined && axes.length > 0 ? axes : undefined, keepdims);
};

const argReduce: Rule = (an, n) => reduce(an, n, [Number(n.attrs.axis ?? 0)], (n.attrs.keepdims ?? 1) === 1);

const softmax: Rule = (an, n) => {
  const x = n.inputs[0]!;
  const r = an.rank(x);
  const axis = normalize(Number(n.attrs.axis ?? -1), r);
  for (let a = 0; a < r; a++) {
    if (a === axis) an.block(x, a, blocker(n, 'normalizes over this axis: removing entries changes the result for the rest'));
    else an.tie(x, a, n.outputs[0]!, a);
  }
};

const layerNorm: Rule = (an, n) => {
  const [x, scale, bias] = n.inputs;
  const y = n.outputs[0]!;
  const r = an.rank(x!);
  const axis = normalize(Number(n.attrs.axis ?? -1), r);
  an.tieAll(x!, y);
  for (let a = axis; a < r; a++) an.block(x!, a, blocker(n, 'normalizes over this axis: removing channels changes the mean and variance of the rest'));
  for (const p of [scale, bias]) {
    if (!p) continue;
    const rp = an.rank(p);
    for (let a = 0; a < rp; a++) {
      const xa = a + r - rp;
      if (sizeEquals(an.requireShape(p)[a]!, an.requireShape(x!)[xa]!)) an.tie(p, a, x!, xa);
    }
  }
  for (const o of n.outputs.slice(1)) if (o) for (let a = 0; a < axis; a++) an.tie(o, a, x!, a);
};

const batchNorm: Rule = (an, n) => {
  const [x, ...params] = n.inputs;
  an.tieAll(x!, n.outputs[0]!);
  for (const p of params) if (p) an.tie(p, 0, x!, 1);
  for (const o of n.outputs.slice(1)) if (o) an.tie(o, 0, x!, 1);
  for (const k of [3, 4]) if (n.inputs[k]) an.statistics.add(n.inputs[k]!);
  if (n.inputs[1]) an.batchNormScales.add(n.inputs[1]);
};

const instanceNorm: Rule = (an, n) => {
  const [x, scale, bias] = n.inputs;
  an.tieAll(x!, n.outputs[0]!);
  for (const p of [scale, bias]) if (p) an.tie(p, 0, x!, 1);
  for (let a = 2; a < an.rank(x!); a++) an.block(x!, a, blocker(n, 'normalizes over this axis'));
};

/** Pooling windows: batch and channels pass; the spatial axes are mixed. */
const pool: Rule = (an, n) => {
  const x = n.inputs[0]!;
  const y = n.outputs[0]!;
  if (n.outputs[1]) throw new NotRepresentable('MaxPool indices encode channel positions');
  an.tie(x, 0, y, 0);
  an.tie(x, 1, y, 1);
  for (let a = 2; a < an.rank(x); a++) {
    an.block(x, a, blocker(n, 'pools over this axis'));
    an.block(y, a, blocker(n, 'pools over this axis'));
  }
};

const conv: Rule = (an, n) => {
  const [x, w, b] = n.inputs;
  const y = n.outputs[0]!;
  const groups = Number(n.attrs.group ?? 1);
  an.tie(x!, 0, y, 0);
  for (let a = 2; a < an.rank(x!); a++) {
    an.block(x!, a, blocker(n, 'convolves over this axis'));
    an.block(y, a, blocker(n, 'convolves over this axis'));
  }
  if (groups === 1) {
    an.tie(x!, 1, w!, 1);
    an.tie(y, 1, w!, 0);
  } else groupedChannels(an, n, groups, { w: 0, of: 'output' });
  if (b) an.tie(b, 0, y, 1);
  an.producer(w!, 0, n);
};

/**
 * The channels of a grouped Conv (w [co, ci/g, k…]) or ConvTranspose (w [ci, co/g, k…]), split into
 * `groups` groups: input [g, ci/g], output [g, co/g], the weight's grouped axis (`w`: its output
 * channels for a Conv, its input channels for a ConvTranspose) the same [g, per group], its other axis
 * one group's channels. The group factor is one leaf for input, output and weight alike.
 */
function groupedChannels(an: Analyzer, n: NodeInfo, groups: number, grouped: { w: 0 | 1; of: 'output' | 'input' }): void {
  const [x, w] = n.inputs;
  const y = n.outputs[0]!;
  const wShape = an.requireShape(w!);
  const ci = an.requireShape(x!)[1]!;
  const co = grouped.of === 'output' ? wShape[0]! : { k: wShape[1]!.k * groups };
  if (ci.k % groups !== 0 || co.k % groups !== 0) throw new NotRepresentable(`${groups} groups do not divide ${ci.k} input and ${co.k} output channels`);
  const g = an.atoms.create({ k: groups, n: 0 });
  const perIn = an.atoms.create({ k: ci.k / groups, n: 0 });
  const perOut = an.atoms.create({ k: co.k / groups, n: 0 });
  const unify = (v: string, axis: number, atom: number) => {
    const at = an.axis(v, axis);
    if (at !== undefined) an.atoms.unify(at, atom);
  };
  unify(x!, 1, an.atoms.product([g, perIn]));
  unify(y, 1, an.atoms.product([g, perOut]));
  unify(w!, grouped.w, an.atoms.product([g, grouped.of === 'output' ? perOut : perIn]));
  unify(w!, 1 - grouped.w, grouped.of === 'output' ? perIn : perOut);
  // Channels go within each group, and the group count stays (as Torch-Pruning keeps it): a ratio
  // is then that fraction of the channels, where removing whole groups too would take far more.
  // A depthwise Conv (one input channel per group) has no other factor: its groups are its channels.
  if (ci.k / groups > 1 && co.k / groups > 1) an.atomBlocks.push({ atom: g, blocker: blocker(n, `the ${groups} groups of a grouped ${n.op}: channels are removed within each group, which keeps the group count`) });
}

/** Ops whose output holds only entries of their first input, rearranged or repeated. */
const MOVES_ENTRIES = new Set(['Slice', 'Gather', 'Split', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Expand', 'Transpose', 'Tile', 'Cast']);

/**
 * Whether a value is zeros a ConstantOfShape wrote, perhaps sliced or reshaped on the way: what torch
 * exports for a recurrent layer's unset initial state (one ConstantOfShape, sliced per layer when
 * there are several).
 */
export function zeroFill(proto: ModelProto, value: string): boolean {
  const nodes = proto.graph?.node ?? [];
  for (let v = value, hops = 0; v && hops < 16; hops++) {
    const maker = nodes.find((m) => m.output?.includes(v));
    if (!maker || (maker.domain && maker.domain !== 'ai.onnx')) return false;
    if (maker.opType === 'ConstantOfShape') {
      const fill = maker.attribute?.find((a) => a.name === 'value')?.t;
      return !fill || Array.from(tensorFromProto(fill).data as ArrayLike<number | bigint>).every((x) => Number(x) === 0);
    }
    if (!MOVES_ENTRIES.has(maker.opType ?? '')) return false;
    v = maker.input?.[0] ?? '';
  }
  return false;
}

/**
 * LSTM, GRU and RNN: the hidden units are the group — W [dirs, gates·H, I] and R [dirs, gates·H, H]
 * hold them in every gate's block of rows, R's columns and the bias's two halves [Wb | Rb] again, Y's
 * last axis and the states' carry them out — and both directions lose the same units (one hidden
 * size). The gates are the layer's computation, not units. The input's features tie to W's columns.
 * An initial state that is ConstantOfShape's zeros, sliced or not (torch's export of an unset h0), is
 * not followed: the shrink drops it, zeros being ONNX's default.
 */
const recurrent: Rule = (an, n) => {
  const [x, w, r, b, , h0, c0, p] = n.inputs;
  const [y, yh, yc] = n.outputs;
  if (p) throw new NotRepresentable('an LSTM with peepholes');
  if (!an.isWeight(w!) || !an.isWeight(r!) || (b && !an.isWeight(b))) throw new NotRepresentable('its weights are computed in the graph');
  const gates = RECURRENT_GATES[n.op]!;
  const hidden = an.requireShape(r!)[2]!;
  const h = an.atoms.create(hidden);
  const gated = () => an.atoms.product([an.atoms.create({ k: gates, n: 0 }), h]);
  const unify = (v: string | undefined, a: number, atom: number) => {
    const at = v ? an.axis(v, a) : undefined;
    if (at !== undefined) an.atoms.unify(at, atom);
  };
  unify(w, 1, gated());
  unify(r, 1, gated());
  unify(r, 2, h);
  if (b) unify(b, 1, an.atoms.concat([gated(), gated()]));
  an.tie(x!, 2, w!, 2);
  const why = blocker(n, 'the steps, the batch and the directions of a recurrent layer');
  for (const [v, keep] of [[x, 2], [y, 3], [yh, 2], [yc, 2]] as const) {
    if (!v) continue;
    if (v !== x) unify(v, keep, h);
    for (let a = 0; a < an.rank(v); a++) if (a !== keep) an.block(v, a, why);
  }
  for (const state of [h0, c0]) {
    if (!state || zeroFill(an.facts.proto, state)) continue;
    unify(state, 2, h);
    an.block(state, 0, why);
    an.block(state, 1, why);
  }
  an.unitProducers.push({ atom: h, node: n });
};

const convTranspose: Rule = (an, n) => {
  const [x, w, b] = n.inputs;
  const y = n.outputs[0]!;
  const groups = Number(n.attrs.group ?? 1);
  an.tie(x!, 0, y, 0);
  if (groups === 1) {
    an.tie(x!, 1, w!, 0);
    an.tie(y, 1, w!, 1);
  } else groupedChannels(an, n, groups, { w: 0, of: 'input' });
  if (b) an.tie(b, 0, y, 1);
  for (let a = 2; a < an.rank(x!); a++) {
    an.block(x!, a, blocker(n, 'convolves over this axis'));
    an.block(y, a, blocker(n, 'convolves over this axis'));
  }
  an.producer(w!, 1, n);
};

const gemm: Rule = (an, n) => {
  const [a, b, c] = n.inputs;
  const y = n.outputs[0]!;
  const ta = n.attrs.transA === 1;
  const tb = n.attrs.transB === 1;
  an.tie(a!, ta ? 1 : 0, y, 0);
  an.tie(a!, ta ? 0 : 1, b!, tb ? 1 : 0);
  an.tie(b!, tb ? 0 : 1, y, 1);
  if (c) broadcastInputs(an, n, [c]);
  an.producer(b!, tb ? 0 : 1, n);
  an.producer(a!, ta ? 1 : 0, n);
};

const matmul: Rule = (an, n) => {
  const [a, b] = n.inputs;
  const y = n.outputs[0]!;
  const [ra, rb, ry] = [an.rank(a!), an.rank(b!), an.rank(y)];
  if (ra === 1 && rb === 1) return an.tie(a!, 0, b!, 0);
  if (ra === 1) {
    an.tie(a!, 0, b!, rb - 2);
    for (let k = 0; k < rb - 2; k++) an.tie(b!, k, y, k);
    an.tie(b!, rb - 1, y, ry - 1);
    an.producer(b!, rb - 1, n);
    return;
  }
  if (rb === 1) {
    an.tie(a!, ra - 1, b!, 0);
    for (let k = 0; k < ra - 1; k++) an.tie(a!, k, y, k);
    return;
  }
  an.tie(a!, ra - 1, b!, rb - 2);
  an.tie(a!, ra - 2, y, ry - 2);
  an.tie(b!, rb - 1, y, ry - 1);
  // Batch axes broadcast.
  const [sa, sb, sy] = [an.requireShape(a!), an.requireShape(b!), an.requireShape(y)];
  for (const [v, s, r] of [[a!, sa, ra], [b!, sb, rb]] as const) {
    for (let k = 0; k < r - 2; k++) {
      const yk = k + ry - r;
      if (sizeEquals(s[k]!, sy[yk]!)) an.tie(v, k, y, yk);
    }
  }
  an.producer(b!, rb - 1, n);
  an.producer(a!, ra - 2, n);
};

const transpose: Rule = (an, n) => {
  const x = n.inputs[0]!;
  const r = an.rank(x);
  const perm = (n.attrs.perm as number[] | undefined) ?? Array.from({ length: r }, (_, i) => r - 1 - i);
  perm.forEach((p, i) => an.tie(x, p, n.outputs[0]!, i));
};

/** Reshape, Flatten, Squeeze, Unsqueeze: axes split and merged in row-major order. */
const reshape: Rule = (an, n) => {
  const x = n.inputs[0]!;
  const y = n.outputs[0]!;
  const [sx, sy] = [an.requireShape(x), an.requireShape(y)];
  if (n.op === 'Reshape' && sy.filter((d) => d.n !== 0).length > 1) throw new NotRepresentable('its target has several sizes that follow the batch (a pruned graph could not write it)');
  const { factors, axesA, axesB } = commonFactors(sx, sy);
  const leaves = factors.map((f) => an.atoms.create(f));
  const place = (v: string, axes: number[][]) =>
    axes.forEach((fs, a) => {
      const atom = an.axis(v, a);
      if (atom !== undefined) an.atoms.unify(atom, an.atoms.product(fs.map((f) => leaves[f]!)));
    });
  place(x, axesA);
  place(y, axesB);
};

const concat: Rule = (an, n) => {
  const y = n.outputs[0]!;
  const r = an.rank(y);
  const axis = normalize(Number(n.attrs.axis), r);
  const inputs = n.inputs.filter((i) => i && an.requireShape(i)[axis]!.k !== 0);
  for (const i of inputs) for (let a = 0; a < r; a++) if (a !== axis) an.tie(i, a, y, a);
  const whole = an.axis(y, axis);
  if (whole !== undefined) an.atoms.unify(whole, an.atoms.concat(inputs.map((i) => an.piece(i, axis))));
};

const split: Rule = (an, n) => {
  const x = n.inputs[0]!;
  const r = an.rank(x);
  const axis = normalize(Number(n.attrs.axis ?? 0), r);
  const outputs = n.outputs.filter((o) => o && an.requireShape(o)[axis]!.k !== 0);
  for (const o of outputs) for (let a = 0; a < r; a++) if (a !== axis) an.tie(x, a, o, a);
  const whole = an.axis(x, axis);
  if (whole !== undefined) an.atoms.unify(whole, an.atoms.concat(outputs.map((o) => an.piece(o, axis))));
};

const slice: Rule = (an, n) => {
  const [x, startsIn, endsIn, axesIn, stepsIn] = n.inputs;
  const y = n.outputs[0]!;
  const sx = an.requireShape(x!);
  const r = sx.length;
  const starts = an.constant(startsIn);
  const ends = an.constant(endsIn);
  const axes = axesIn ? an.constant(axesIn) : starts?.map((_, i) => i);
  const steps = stepsIn ? an.constant(stepsIn) : starts?.map(() => 1);
  if (!starts || !ends || !axes || !steps) throw new NotRepresentable('its bounds are not constants');
  const sliced = new Map(axes.map((a, j) => [normalize(a, r), j]));
  for (let a = 0; a < r; a++) {
    const j = sliced.get(a);
    if (j === undefined) {
      an.tie(x!, a, y, a);
      continue;
    }
    const d = sx[a]!;
    const s = starts[j]!;
    const e = ends[j]!;
    // Exporters write 'to the end' as INT64_MAX or INT32_MAX.
    const whole = s === 0 && (e >= 2 ** 31 - 1 || (d.n === 0 && e >= d.k));
    if (steps[j] === 1 && whole) {
      an.tie(x!, a, y, a);
      continue;
    }
    if (steps[j] !== 1 || d.n !== 0) {
      const why = steps[j] !== 1 ? 'takes every few entries of this axis' : 'slices an axis that follows the batch';
      an.block(x!, a, blocker(n, why));
      an.block(y, a, blocker(n, why));
      continue;
    }
    const clamp = (v: number) => Math.min(d.k, Math.max(0, v < 0 ? v + d.k : v));
    const [lo, hi] = [clamp(s), clamp(e)];
    if (hi <= lo) continue;
    const parts = [...(lo > 0 ? [an.atoms.create({ k: lo, n: 0 })] : []), an.piece(y, a), ...(hi < d.k ? [an.atoms.create({ k: d.k - hi, n: 0 })] : [])];
    const atom = an.axis(x!, a);
    if (atom !== undefined) an.atoms.unify(atom, an.atoms.concat(parts));
  }
};

const gather: Rule = (an, n) => {
  const [x, indices] = n.inputs;
  const y = n.outputs[0]!;
  const r = an.rank(x!);
  const ri = an.rank(indices!);
  const axis = normalize(Number(n.attrs.axis ?? 0), r);
  an.block(x!, axis, blocker(n, 'picks entries of this axis by index'));
  for (let a = 0; a < axis; a++) an.tie(x!, a, y, a);
  for (let a = axis + 1; a < r; a++) an.tie(x!, a, y, a + ri - 1);
  for (let a = 0; a < ri; a++) an.tie(indices!, a, y, axis + a);
};

const expand: Rule = (an, n) => {
  const [x, shapeIn] = n.inputs;
  broadcastInputs(an, n, [x!]);
  const target = an.constant(shapeIn);
  const [sx, sy] = [an.requireShape(x!), an.requireShape(n.outputs[0]!)];
  if (!target) {
    // A target computed at run time (torch's expand_as(x), h0.expand(1, n, H)): where x has the
    // axis, the shrink makes the target's entry 1 (the output then has x's size, pruned or not);
    // where x broadcasts a size of 1 up to the output's, the target alone says how many, and no
    // rewrite reaches a value computed at run time.
    for (let ya = 0; ya < sy.length; ya++) {
      const xa = ya - (sy.length - sx.length);
      if ((xa < 0 || sizeEquals(sx[xa]!, FIXED_ONE)) && !sizeEquals(sy[ya]!, FIXED_ONE)) an.block(n.outputs[0]!, ya, blocker(n, 'expands to a size computed at run time along this axis'));
    }
    return;
  }
  for (let a = 0; a < sx.length; a++) {
    const ya = a + sy.length - sx.length;
    const t = target[ya - (sy.length - target.length)];
    if (!sizeEquals(sx[a]!, FIXED_ONE) && t !== undefined && t !== 1 && t !== -1) an.block(x!, a, blocker(n, 'expands to a fixed size along this axis'));
  }
};

/** Ops whose per-axis amounts (repeats, pads) leave an axis alone where they are 0 or 1. */
function perAxisAmounts(amountOf: (an: Analyzer, n: NodeInfo, r: number) => ((a: number) => boolean) | undefined, why: string): Rule {
  return (an, n) => {
    const x = n.inputs[0]!;
    const y = n.outputs[0]!;
    const r = an.rank(x);
    const untouched = amountOf(an, n, r);
    if (!untouched) throw new NotRepresentable(`its ${why} are not constants`);
    for (let a = 0; a < r; a++) {
      if (untouched(a)) an.tie(x, a, y, a);
      else {
        an.block(x, a, blocker(n, `${why} this axis`));
        an.block(y, a, blocker(n, `${why} this axis`));
      }
    }
  };
}

const tile = perAxisAmounts((an, n) => {
  const repeats = an.constant(n.inputs[1]);
  return repeats && ((a) => repeats[a] === 1);
}, 'repeats');

const pad = perAxisAmounts((an, n, r) => {
  const pads = (n.attrs.pads as number[] | undefined) ?? an.constant(n.inputs[1]);
  if (!pads) return undefined;
  const axes = n.inputs[3] ? an.constant(n.inputs[3])?.map((a) => normalize(a, r)) : Array.from({ length: r }, (_, a) => a);
  if (!axes) return undefined;
  return (a) => {
    const j = axes.indexOf(a);
    return j < 0 || (pads[j] === 0 && pads[j + axes.length] === 0);
  };
}, 'pads');

const resize: Rule = (an, n) => {
  const x = n.inputs[0]!;
  const y = n.outputs[0]!;
  // Sizes written in the file would need rewriting; sizes computed at run time (torch's
  // F.interpolate(size=skip.shape[-2:]): the batch and channels read from the input) follow the
  // pruned input, which the run of the shrunk graph checks.
  if (n.inputs[3] && an.constant(n.inputs[3])) throw new NotRepresentable('it resizes to sizes written in the file');
  const [sx, sy] = [an.requireShape(x), an.requireShape(y)];
  for (let a = 0; a < sx.length; a++) {
    if (sizeEquals(sx[a]!, sy[a]!)) an.tie(x, a, y, a);
    else {
      an.block(x, a, blocker(n, 'resizes this axis'));
      an.block(y, a, blocker(n, 'resizes this axis'));
    }
  }
};

/** Ops that read no channel of their inputs as such (shapes, constants). */
const none: Rule = () => undefined;

const ELEMENTWISE = [
  'Abs', 'Acos', 'Acosh', 'Add', 'And', 'Asin', 'Asinh', 'Atan', 'Atanh', 'BitShift', 'Cast', 'Ceil', 'Celu', 'Clip', 'Cos', 'Cosh', 'Div',
  'Dropout', 'Elu', 'Equal', 'Erf', 'Exp', 'Floor', 'Gelu', 'Greater', 'GreaterOrEqual', 'HardSigmoid', 'HardSwish', 'Identity', 'IsInf',
  'IsNaN', 'LeakyRelu', 'Less', 'LessOrEqual', 'Log', 'Max', 'Mean', 'Min', 'Mish', 'Mod', 'Mul', 'Neg', 'Not', 'Or', 'Pow', 'PRelu',
  'Reciprocal', 'Relu', 'Round', 'Selu', 'Shrink', 'Sigmoid', 'Sign', 'Sin', 'Sinh', 'Softplus', 'Softsign', 'Sqrt', 'Sub', 'Sum', 'Tan',
  'Tanh', 'ThresholdedRelu', 'Where', 'Xor',
];
const REDUCTIONS = ['ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceMax', 'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum', 'ReduceSumSquare'];

/** One rule per ONNX op type (default domain); an op not here leaves every axis it touches whole. */
const RULES: ReadonlyMap<string, Rule> = new Map<string, Rule>([
  ...ELEMENTWISE.map((op) => [op, broadcast] as const),
  ...REDUCTIONS.map((op) => [op, reduceRule] as const),
  ['ArgMax', argReduce],
  ['ArgMin', argReduce],
  ['Softmax', softmax],
  ['LogSoftmax', softmax],
  ['Hardmax', softmax],
  ['LayerNormalization', layerNorm],
  ['BatchNormalization', batchNorm],
  ['InstanceNormalization', instanceNorm],
  ['MaxPool', pool],
  ['AveragePool', pool],
  ['LpPool', pool],
  ['GlobalAveragePool', pool],
  ['GlobalMaxPool', pool],
  ['GlobalLpPool', pool],
  ['Conv', conv],
  ['ConvTranspose', convTranspose],
  ['Gemm', gemm],
  ['MatMul', matmul],
  ['Transpose', transpose],
  ['Reshape', reshape],
  ['Flatten', reshape],
  ['Squeeze', reshape],
  ['Unsqueeze', reshape],
  ['Concat', concat],
  ['Split', split],
  ['Slice', slice],
  ['Gather', gather],
  ['Expand', expand],
  ['Tile', tile],
  ['Pad', pad],
  ['Resize', resize],
  ...Object.keys(RECURRENT_GATES).map((op) => [op, recurrent] as const),
  ['Shape', none],
  ['Size', none],
  ['Constant', none],
  ['ConstantOfShape', none],
  ['Range', none],
]);

/** Which op types the analysis follows (for the docs and the report). */
export const FOLLOWED_OPS: readonly string[] = [...RULES.keys()].sort();

/** Inputs that take sizes as shapes (a Reshape's target, a Slice's bounds, ...): a size read there is no number. */
const SHAPE_INPUTS: Readonly<Record<string, readonly number[]>> = {
  Reshape: [1], Expand: [1], ConstantOfShape: [0], Tile: [1], Slice: [1, 2, 3, 4], Resize: [1, 2, 3], Pad: [1, 2, 3], Split: [1],
  Squeeze: [1], Unsqueeze: [1], TopK: [1], OneHot: [1], Range: [0, 1, 2], ReduceMean: [1], ReduceSum: [1], ReduceMax: [1], ReduceMin: [1],
};
const FLOAT_TYPES = new Set([1, 10, 11, 16]);

/**
 * Where sizes read by a Shape or Size node (the values `from`) become a number the model computes with
 * — a Cast to a float type reached through integer arithmetic (torch's `x.size(1) ** -0.5`, an
 * attention scale from the head size) — the Cast node; undefined when they only ever serve as shapes.
 * Removing units would change that number, which no rewrite and no shape check would catch.
 */
function numericUse(readers: ReadonlyMap<string, readonly { node: NodeInfo; input: number }[]>, from: readonly string[]): NodeInfo | undefined {
  const seen = new Set<string>();
  const pending = [...from];
  while (pending.length > 0) {
    const value = pending.pop()!;
    if (seen.has(value)) continue;
    seen.add(value);
    for (const { node, input } of readers.get(value) ?? []) {
      if (node.op === 'Cast' && FLOAT_TYPES.has(Number(node.attrs.to))) return node;
      if (SHAPE_INPUTS[node.op]?.includes(input)) continue;
      pending.push(...node.outputs.filter((o) => o));
    }
  }
  return undefined;
}

/** The entries of a shape vector of `length` that a Gather of constant indices or a constant Slice reads; undefined when not known. */
function pickedEntries(an: Analyzer, reader: NodeInfo, length: number): number[] | undefined {
  if (reader.op === 'Gather' && Number(reader.attrs.axis ?? 0) === 0) return an.constant(reader.inputs[1])?.map((k) => (k < 0 ? k + length : k));
  if (reader.op !== 'Slice') return undefined;
  // Slice(data, starts, ends, axes = [0], steps = [1]) of the 1-D shape vector.
  const [starts, ends] = [an.constant(reader.inputs[1]), an.constant(reader.inputs[2])];
  const axes = reader.inputs[3] ? an.constant(reader.inputs[3]) : [0];
  const steps = reader.inputs[4] ? an.constant(reader.inputs[4]) : [1];
  if (!starts || !ends || !axes || !steps || starts.length !== 1 || steps[0] !== 1 || normalize(axes[0]!, 1) !== 0) return undefined;
  const clamp = (v: number) => Math.min(length, Math.max(0, v < 0 ? v + length : v));
  const [from, to] = [clamp(starts[0]!), clamp(ends[0]!)];
  return Array.from({ length: Math.max(0, to - from) }, (_, k) => from + k);
}

/**
 * Finds the channel dependency groups of a graph. Nothing is changed; the result says which weight axes
 * each group slices and why a group must stay whole.
 */
export function analyzeGraph(facts: GraphFacts): GraphAnalysis {
  const an = new Analyzer(facts);
  const g = facts.proto.graph!;
  const nodes: NodeInfo[] = (g.node ?? []).map((proto) => ({
    proto,
    name: proto.name || `(${proto.opType} node)`,
    op: proto.opType ?? '',
    inputs: proto.input ?? [],
    outputs: proto.output ?? [],
    attrs: nodeAttributes(proto),
  }));
  const inits = new Set(an.initializers.keys());
  for (const i of g.input ?? []) {
    if (!inits.has(i.name ?? '')) an.blockAll(i.name ?? '', { node: '(graph input)', op: '', why: `the model's input '${i.name}'` });
  }
  for (const o of g.output ?? []) an.blockAll(o.name ?? '', { node: '(graph output)', op: '', why: `the model's output '${o.name}': its entries are what the model answers` });
  // A tied copy (a language model's head, its embedding transposed) shrinks only with its weight, which
  // the groups do not follow: what it holds stays whole.
  for (const [copy, { source }] of tiedCopies(facts.proto)) {
    an.blockAll(copy, { node: `(tied weight ${copy})`, op: '', why: `'${copy}' is the exporter's copy of '${source}' (tied): removing units of one would untie them` });
  }
  const readers = new Map<string, { node: NodeInfo; input: number }[]>();
  for (const n of nodes) {
    n.inputs.forEach((v, input) => {
      if (!v) return;
      const list = readers.get(v) ?? [];
      list.push({ node: n, input });
      readers.set(v, list);
    });
  }
  for (const n of nodes) {
    if ((n.op !== 'Shape' && n.op !== 'Size') || (n.proto.domain && n.proto.domain !== 'ai.onnx')) continue;
    const x = n.inputs[0]!;
    const rank = an.shape(x)?.length;
    if (rank === undefined) continue;
    // Shape's start attribute (opset 15) offsets the entries it returns.
    const start = n.op === 'Shape' ? normalize(Number(n.attrs.start ?? 0), rank) : 0;
    for (const r of readers.get(n.outputs[0]!) ?? []) {
      const cast = r.node.op === 'Cast' && FLOAT_TYPES.has(Number(r.node.attrs.to)) ? r.node : SHAPE_INPUTS[r.node.op]?.includes(r.input) ? undefined : numericUse(readers, r.node.outputs.filter((o) => o));
      if (!cast) continue;
      // Through a Gather of constant indices or a constant Slice only those axes are read; otherwise every one.
      const picked = n.op === 'Shape' ? pickedEntries(an, r.node, rank - start) : undefined;
      const axes = picked ? picked.map((k) => start + k) : Array.from({ length: rank }, (_, a) => a);
      const why = blocker(cast, `computes with the size of '${x}' as a number (read by ${n.op} '${n.name}'): removing units would change it`);
      for (const a of axes) an.block(x, a, why);
    }
  }
  for (const n of nodes) {
    an.noteWeightLike(n);
    const rule = n.proto.domain && n.proto.domain !== 'ai.onnx' ? undefined : RULES.get(n.op);
    if (!rule) {
      const why = `${n.proto.domain ? `${n.proto.domain}.` : ''}${n.op} is not an op the analysis follows`;
      for (const v of [...n.inputs, ...n.outputs]) an.blockAll(v, blocker(n, why));
      continue;
    }
    try {
      rule(an, n);
    } catch (err) {
      if (!(err instanceof NotRepresentable)) throw err;
      for (const v of [...n.inputs, ...n.outputs]) an.blockAll(v, blocker(n, `the analysis cannot follow it: ${err.message}`));
    }
  }
  return collectGroups(an, nodes);
}

function collectGroups(an: Analyzer, nodes: NodeInfo[]): GraphAnalysis {
  const { atoms } = an;
  const blockers = new Map<number, Blocker[]>();
  const addBlocker = (leaf: number, b: Blocker) => {
    const list = blockers.get(leaf) ?? [];
    if (!list.some((x) => x.node === b.node && x.why === b.why)) list.push(b);
    blockers.set(leaf, list);
  };
  for (const { value, axis, blocker: b } of an.blocks) {
    const atom = an.axes.get(value)?.[axis];
    if (atom !== undefined) for (const leaf of atoms.leavesUnder(atom)) addBlocker(leaf, b);
  }
  for (const { atom, blocker: b } of an.atomBlocks) for (const leaf of atoms.leavesUnder(atom)) addBlocker(leaf, b);
  const producerOf = new Map<string, NodeInfo>();
  for (const n of nodes) for (const o of n.outputs) if (o) producerOf.set(o, n);
  const structures = new Map<number, Structure | undefined>();
  const structureOf = (atom: number) => {
    if (!structures.has(atom)) {
      try {
        structures.set(atom, atoms.structure(atom));
      } catch (err) {
        if (!(err instanceof NotRepresentable)) throw err;
        structures.set(atom, undefined);
      }
    }
    return structures.get(atom);
  };
  // Axes whose final structure the algebra cannot hold: every leaf under them stays whole.
  for (const [value, list] of an.axes) {
    for (const atom of list) {
      if (atom === undefined || structureOf(atom)) continue;
      const n = producerOf.get(value);
      for (const leaf of atoms.leavesUnder(atom)) addBlocker(leaf, { node: n?.name ?? value, op: n?.op ?? '', why: `the structure of '${value}' cannot be followed (a slice inside a reshaped factor)` });
    }
  }
  // Constants computed inside the graph (Constant nodes) cannot be sliced like initializers.
  for (const [value, list] of an.axes) {
    if (an.initializers.has(value) || !an.facts.constants.has(value)) continue;
    const n = producerOf.get(value);
    for (const atom of list) if (atom !== undefined) for (const leaf of atoms.leavesUnder(atom)) addBlocker(leaf, { node: n?.name ?? value, op: n?.op ?? '', why: `holds per-channel values computed in the graph, which pruning cannot slice` });
  }
  // Which leaves weights produce, and where (for the kind: a leaf with factors inside it is a head).
  const produced = new Map<number, { node: NodeInfo; inner: boolean; outer: boolean }[]>();
  for (const p of an.producers) {
    const atom = an.axes.get(p.value)?.[p.axis];
    const s = atom === undefined ? undefined : structureOf(atom);
    if (!s) continue;
    for (const seg of s) {
      seg.forEach((leaf, i) => {
        const list = produced.get(leaf) ?? [];
        list.push({ node: p.node, inner: i < seg.length - 1, outer: i > 0 });
        produced.set(leaf, list);
      });
    }
  }
  for (const { atom, node } of an.unitProducers) {
    const s = structureOf(atom);
    if (!s) continue;
    for (const leaf of s.flat()) {
      const list = produced.get(leaf) ?? [];
      list.push({ node, inner: false, outer: false });
      produced.set(leaf, list);
    }
  }
  const members = new Map<number, GroupMember[]>();
  for (const [tensor, dims] of an.initializers) {
    const list = an.axes.get(tensor);
    if (!list) continue;
    dims.forEach((_, axis) => {
      const atom = list[axis];
      const s = atom === undefined ? undefined : structureOf(atom);
      if (!s) return;
      const count = new Map<number, number>();
      for (const seg of s) {
        const total = seg.reduce((t, f) => t * atoms.size(f).k, 1);
        for (const leaf of seg) count.set(leaf, (count.get(leaf) ?? 0) + total);
      }
      for (const [leaf, indices] of count) {
        const m = members.get(leaf) ?? [];
        m.push({ tensor, axis, indices, statistic: an.statistics.has(tensor) });
        members.set(leaf, m);
      }
    });
  }
  const order = new Map(nodes.map((n, i) => [n, i]));
  const groups: ChannelGroup[] = [];
  for (const [leaf, prods] of produced) {
    const size = atoms.size(leaf);
    if (size.n !== 0 || size.k < 2) continue;
    const convolution = prods.some((p) => p.node.op === 'Conv' || p.node.op === 'ConvTranspose');
    const kind: GroupKind = convolution ? 'channels' : prods.some((p) => p.inner) ? 'heads' : prods.some((p) => p.outer) ? 'headDims' : 'units';
    groups.push({
      leaf,
      kind,
      units: size.k,
      producers: [...new Set(prods.sort((a, b) => order.get(a.node)! - order.get(b.node)!).map((p) => p.node.name))],
      members: members.get(leaf) ?? [],
      blockers: blockers.get(leaf) ?? [],
    });
  }
  const first = (gr: ChannelGroup) => Math.min(...gr.producers.map((name) => nodes.findIndex((n) => n.name === name)));
  groups.sort((a, b) => first(a) - first(b) || a.leaf - b.leaf);
  return { facts: an.facts, atoms, axes: an.axes, groups, statistics: an.statistics, batchNormScales: an.batchNormScales };
}

/** For each index of an axis (static size), the coordinate at `leaf` (-1 where the index lies outside it). */
export function unitIndex(atoms: AxisAtoms, s: Structure, leaf: number): Int32Array {
  const total = s.reduce((t, seg) => t + seg.reduce((p, f) => p * atoms.size(f).k, 1), 0);
  const out = new Int32Array(total).fill(-1);
  let offset = 0;
  for (const seg of s) {
    const sizes = seg.map((f) => atoms.size(f).k);
    const n = sizes.reduce((p, k) => p * k, 1);
    const at = seg.indexOf(leaf);
    if (at >= 0) {
      const inner = sizes.slice(at + 1).reduce((p, k) => p * k, 1);
      for (let i = 0; i < n; i++) out[offset + i] = Math.floor(i / inner) % sizes[at]!;
    }
    offset += n;
  }
  return out;
}

/** The indices of an axis (static size) that remain when `removed` units go from each leaf. */
export function keptIndices(atoms: AxisAtoms, s: Structure, removed: ReadonlyMap<number, ReadonlySet<number>>): number[] {
  const kept: number[] = [];
  let offset = 0;
  for (const seg of s) {
    const sizes = seg.map((f) => atoms.size(f).k);
    const n = sizes.reduce((p, k) => p * k, 1);
    for (let i = 0; i < n; i++) {
      let rest = i;
      let keep = true;
      for (let j = seg.length - 1; j >= 0 && keep; j--) {
        const coord = rest % sizes[j]!;
        rest = Math.floor(rest / sizes[j]!);
        if (removed.get(seg[j]!)?.has(coord)) keep = false;
      }
      if (keep) kept.push(offset + i);
    }
    offset += n;
  }
  return kept;
}

/** An axis's size after the removals (following the batch where the axis does). */
export function keptSize(atoms: AxisAtoms, s: Structure, removed: ReadonlyMap<number, ReadonlySet<number>>): Size {
  let k = 0;
  let n = 0;
  for (const seg of s) {
    let p: Size = { k: 1, n: 0 };
    for (const f of seg) {
      const size = atoms.size(f);
      p = { k: p.k * (size.k - (removed.get(f)?.size ?? 0)), n: p.n + size.n };
    }
    k += p.k;
    n = p.n;
  }
  return { k, n };
}

/**
 * The facts the analysis reads, measured: the graph is run at batch sizes 2 and 3 with every value as
 * an output (model/imported-graph.ts), and its initializers join the constants it computes. Weights
 * the exporter merged because they start equal (torch's zero biases, BatchNorm's ones) are separated
 * first, as a GraphModel separates them: merged, they would tie the layers that share them into one group.
 */
export async function measureFacts(file: ModelProto, name: string, runtime: Runtime = sharedRuntime()): Promise<GraphFacts> {
  const proto = separateEqualInitializers(file);
  const { sizes, constants } = await measureGraph(proto, name, runtime);
  for (const t of proto.graph?.initializer ?? []) constants.set(t.name ?? '', tensorFromProto(t));
  return { proto, sizes, constants };
}
