import { gzipSync } from 'node:zlib';
import { KilnError } from '../../errors.js';
import { tensorFromProto } from '../../graph/onnx-io.js';
import { decodeModel, encodeModel, type ModelProto, type TensorProto } from '../../graph/proto.js';
import type { Tensor } from '../../tensor.js';
import { GraphModel } from '../../train/graph-model.js';
import { countedNodes, nodesFlops } from '../../model/cost.js';
import { isRecurrentOp } from '../../ops/recurrent.js';
import { notWeights } from '../../model/imported-graph.js';
import { evaluateClassifier } from '../../train/metrics.js';
import { formatSize } from './axis-atoms.js';
import { checkFineTune, fitFineTune, type FineTuneArgs } from './fine-tune.js';
import { defaultLoss } from '../../train/default-loss.js';
import { checkParametersFraction, keptUnits, ratioForBudget } from './budget.js';
import { analyzeGraph, measureFacts, unitIndex, type Blocker, type ChannelGroup, type GraphAnalysis, type GraphFacts, type GroupKind } from './graph-groups.js';
import { expectedSizes, shrinkGraph, type Removals } from './graph-shrink.js';
import { fileInputs, measureModelLatency, type ModelSnapshot, type SnapshotOptions } from './report.js';
import { topIndices } from './structured.js';
import { taylorGradients, type TaylorData } from './taylor.js';

/*
 * Structured pruning of a model another tool exported (a GraphModel): its channel dependency groups
 * are found from the graph (graph-groups.ts), each group's units are scored over all of the group's
 * weights, the lowest go from every tensor of the group (graph-shrink.ts), the smaller graph is checked
 * against the shapes the analysis expects by running it, reopened as a GraphModel and fine-tuned. What
 * a user of Torch-Pruning would expect: residual blocks prune as one group, depthwise convolutions
 * follow their input, a transformer loses whole attention heads and MLP hidden units, and the input,
 * the output (the classes) and anything the analysis cannot follow stay whole — listed with the node
 * and the reason.
 */

/**
 * What ranks the units of a group: the L1 or L2 norm of each unit's weights over the whole group
 * ('l1', 'l2'), the |scale| of the group's BatchNormalization(s) ('bnScale'), or first-order Taylor
 * importance, Σ |w · ∂L/∂w| over the unit's weights with the loss's gradient on a few batches of data
 * ('taylor', taylor.ts).
 */
export type GraphCriterion = 'l1' | 'l2' | 'bnScale' | 'taylor';

/** How much structured pruning of an imported graph removes, and how it ranks and selects groups. */
export interface GraphStructuredArgs {
  /**
   * Fraction of the units removed from every prunable group, in [0, 1): convolution channels, hidden
   * units of MatMul/Gemm layers and attention heads (unless `mlp` or `heads` say otherwise).
   */
  ratio?: number;
  /**
   * Fraction of the model's parameters to remove, instead of `ratio`: the ratio that removes the fewest
   * units while keeping at most (1 − parameters) of them (budget.ts) is applied as `ratio` would be,
   * each group keeping one unit at least. Removing half of every group's channels removes ~75% of a
   * convolution network's parameters (each kernel loses half its outputs and half its inputs), so "50%
   * of the parameters" is a gentler cut. The report gives the ratio found.
   */
  parameters?: number;
  /** Fraction of the attention heads removed (whole heads: their q, k, v columns and out-projection rows). */
  heads?: number;
  /** Fraction of the hidden units of MatMul/Gemm layers removed (an MLP's hidden layer). */
  mlp?: number;
  /** Fraction of the dimensions of every head removed (the same ones in each head); default 0. */
  headDims?: number;
  /**
   * What ranks units: the L1 or L2 norm of all of a unit's weights in the group, each tensor's scores
   * normalized by their mean so that no tensor dominates by its size (Torch-Pruning's group norm), or
   * the |scale| of the group's BatchNormalization(s), or first-order Taylor importance on data
   * ('taylor': `data`, else the fine-tuning data). Default 'l1'.
   */
  criterion?: GraphCriterion;
  /** Criterion 'taylor': the examples whose loss gradient ranks the units (default: fineTune's x and y, 8 batches). */
  data?: TaylorData;
  /** Remove the units in this many rounds, each followed by fine-tuning (fineTune.epochs per round), re-scoring on the model the last round left. Default 1. */
  iterations?: number;
  /** Prune only the groups these names match (producing node names or weight names; `*` is a wildcard). */
  groups?: string[];
}

export interface GraphStructuredPruneOptions extends SnapshotOptions {
  /** What to remove: the ratios, the criterion and which groups. */
  structured: GraphStructuredArgs;
  /** Fine-tuning of the pruned model; none when absent. */
  fineTune?: FineTuneArgs;
}

/** One channel dependency group in a {@link GraphPruneReport}: what it is, and whether and how it was pruned. */
export interface GraphGroupReport {
  /** What the group's units are (channels, hidden units, attention heads or head dimensions). */
  kind: GroupKind;
  /** Nodes whose weights produce the group's units. */
  producers: string[];
  /** Every weight the group slices, as 'name[axis]'. */
  weights: string[];
  /** Units before → after. */
  units: [number, number];
  /** Whether units of the group were removed. */
  pruned: boolean;
  /** The original indices of the units kept (pruned groups). */
  keptUnits?: number[];
  /** Why the group was left whole: which node, and what it does (empty for groups that could be pruned). */
  leftWhole: Blocker[];
}

/** What structured pruning of an imported graph did: the model before and after, and every group. */
export interface GraphPruneReport {
  /** Always 'structured'. */
  method: 'structured';
  /** Parameters, FLOPs, size (and accuracy/latency when asked) of the model passed in. */
  before: ModelSnapshot;
  /** The same measurements of the pruned (and fine-tuned, if asked) model. */
  after: ModelSnapshot;
  /** Every channel dependency group of the graph, pruned or left whole, in graph order. */
  groups: GraphGroupReport[];
  /** With `structured.parameters`: the ratio found, applied to every group the explicit ratios left open. */
  ratio?: number;
  /** Fine-tuning history. */
  history?: Record<string, number[]>[];
}

/** What {@link graphStructuredPrune} returns. */
export interface GraphPruneResult {
  /** The pruned model (a new GraphModel; the one passed in is unchanged). */
  model: GraphModel;
  /** What was removed, and the model's measurements before and after. */
  report: GraphPruneReport;
}

const KIND_WORDS: Record<GroupKind, string> = { channels: 'channels', units: 'hidden units', heads: 'attention heads', headDims: 'head dimensions' };

function checkFraction(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
    throw new KilnError('INVALID_ARGUMENT', `${what} must be a number in [0, 1) (the fraction of units removed), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The removal ratio of each kind of group, validated; kinds `structured.parameters` sets are left out (`open`). */
function kindRatios(s: GraphStructuredArgs): { ratios: Record<GroupKind, number>; open: GroupKind[] } {
  if (typeof s !== 'object' || s === null) throw new KilnError('INVALID_ARGUMENT', 'structured must be an object, e.g. structured: {ratio: 0.5}');
  const known = ['ratio', 'parameters', 'heads', 'mlp', 'headDims', 'criterion', 'data', 'iterations', 'groups'];
  const unknown = Object.keys(s).filter((k) => !known.includes(k) && (s as Record<string, unknown>)[k] !== undefined);
  if (unknown.length) throw new KilnError('INVALID_ARGUMENT', `structured pruning of an imported graph takes ${known.join(', ')}; got ${unknown.join(', ')}`);
  if (s.ratio === undefined && s.parameters === undefined && s.heads === undefined && s.mlp === undefined && s.headDims === undefined) {
    throw new KilnError('INVALID_ARGUMENT', 'structured pruning needs a ratio (e.g. structured: {ratio: 0.5}), a parameters fraction, or heads / mlp / headDims ratios');
  }
  checkParametersFraction(s);
  const ratio = s.ratio === undefined ? 0 : checkFraction(s.ratio, 'structured.ratio');
  const open: GroupKind[] = s.parameters === undefined ? [] : ['channels', ...(s.mlp === undefined ? ['units' as const] : []), ...(s.heads === undefined ? ['heads' as const] : [])];
  return {
    ratios: {
      channels: ratio,
      units: s.mlp === undefined ? ratio : checkFraction(s.mlp, 'structured.mlp'),
      heads: s.heads === undefined ? ratio : checkFraction(s.heads, 'structured.heads'),
      headDims: s.headDims === undefined ? 0 : checkFraction(s.headDims, 'structured.headDims'),
    },
    open,
  };
}

/** Units a group keeps when `ratio` of them go (an explicit ratio that leaves none is an error, below). */
const unitsLeft = (g: ChannelGroup, ratio: number) => Math.round(g.units * (1 - ratio));

/** Float initializers that count as parameters: BatchNormalization running statistics, tied copies, non-finite constants and scalars left out (as PyTorch counts). */
function parameterTensors(analysis: GraphAnalysis, proto: ModelProto): TensorProto[] {
  // Tied copies and tensors of ±∞ (a causal mask) are no parameters either.
  const copies = notWeights(proto);
  return (proto.graph?.initializer ?? []).filter((t) => t.dataType === 1 && !analysis.statistics.has(t.name ?? '') && !copies.has(t.name ?? '') && (t.dims ?? []).length > 0);
}

/**
 * The ratio for the `open` kinds that removes at least `fraction` of the parameters (budget.ts), from
 * the parameter count the analysis predicts for the shrunk graph: each weight's kept size along every
 * axis a group runs through. Kinds with an explicit ratio keep it; a searched group keeps a unit at least.
 */
function ratioForParameters(analysis: GraphAnalysis, candidates: readonly ChannelGroup[], ratios: Record<GroupKind, number>, open: readonly GroupKind[], fraction: number): number {
  const counted = parameterTensors(analysis, analysis.facts.proto);
  const total = counted.reduce((sum, t) => sum + (t.dims ?? []).reduce((p: number, d) => p * Number(d), 1), 0);
  const searched = candidates.filter((g) => open.includes(g.kind));
  if (searched.length === 0) {
    throw new KilnError('INVALID_ARGUMENT', `structured.parameters: no group of ${open.map((k) => KIND_WORDS[k]).join(' or ')} can be pruned, so no ratio removes parameters`);
  }
  const parametersAt = (ratio: number) => {
    const removals = new Map<number, Set<number>>();
    for (const g of candidates) {
      const keep = keptUnits(g.units, open.includes(g.kind) ? ratio : ratios[g.kind]);
      if (keep < g.units) removals.set(g.leaf, new Set(Array.from({ length: g.units - keep }, (_, u) => u)));
    }
    return counted.reduce((sum, t) => sum + (expectedSizes(analysis, removals, t.name ?? '') ?? []).reduce((p, size) => p * size.k, 1), 0);
  };
  return ratioForBudget({
    parametersAt,
    units: searched.map((g) => g.units),
    total,
    fraction,
    shortfall: (fewest) =>
      `structured.parameters ${fraction}: pruning every group of ${open.map((k) => KIND_WORDS[k]).join(' or ')} down to its last unit removes only ${(100 * (1 - fewest / total)).toFixed(1)}% of the ${total} parameters (the rest is in groups left whole, groups with their own ratio and weights no group reaches)`,
  });
}

function groupLabel(g: ChannelGroup): string {
  return `the ${g.units} ${KIND_WORDS[g.kind]} of ${g.producers.join(' + ')}`;
}

function namePattern(name: string): RegExp {
  return new RegExp(`^${name.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** Which groups a selection names (every group when there is none); a name matching nothing is an error. */
function selectGroups(analysis: GraphAnalysis, names: string[] | undefined): Set<ChannelGroup> {
  if (names === undefined) return new Set(analysis.groups);
  if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string' || n === '')) {
    throw new KilnError('INVALID_ARGUMENT', `structured.groups must be a non-empty list of node or weight names, got ${JSON.stringify(names)}`);
  }
  const chosen = new Set<ChannelGroup>();
  for (const name of names) {
    const re = namePattern(name);
    const matching = analysis.groups.filter((g) => g.producers.some((p) => re.test(p)) || g.members.some((m) => re.test(m.tensor)));
    if (matching.length === 0) {
      const producers = analysis.groups.flatMap((g) => g.producers);
      throw new KilnError('INVALID_ARGUMENT', `structured.groups: '${name}' matches no group; groups are produced by ${producers.join(', ')}`);
    }
    for (const g of matching) {
      if (g.blockers.length > 0) {
        const output = g.blockers.find((b) => b.node === '(graph output)');
        throw new KilnError(
          'INVALID_ARGUMENT',
          output
            ? `structured pruning cannot remove units of ${groupLabel(g)}: ${output.why}`
            : `structured pruning cannot remove units of ${groupLabel(g)} ('${name}'): ${g.blockers.map((b) => `${b.node} (${b.op}) ${b.why}`).join('; ')}`,
        );
      }
      chosen.add(g);
    }
  }
  return chosen;
}

/**
 * One score per unit of a group: its weights' L1 or L2 norm — or, for 'taylor', Σ |w · gradient| —
 * in each tensor of the group (running statistics excluded: they describe the data, not what the unit
 * contributes), each tensor's scores divided by their mean, averaged over the tensors; or the |scale|
 * of its BatchNormalization(s).
 */
export function groupScores(analysis: GraphAnalysis, group: ChannelGroup, weights: ReadonlyMap<string, Tensor>, criterion: GraphCriterion, gradients?: ReadonlyMap<string, Float32Array>): Float64Array {
  const total = new Float64Array(group.units);
  let tensors = 0;
  if (criterion === 'taylor' && !gradients) throw new KilnError('INVALID_ARGUMENT', "structured pruning: criterion 'taylor' needs the weights' gradients");
  const members =
    criterion === 'bnScale'
      ? group.members.filter((m) => analysis.batchNormScales.has(m.tensor))
      : criterion === 'taylor'
        ? group.members.filter((m) => !m.statistic && gradients!.has(m.tensor))
        : group.members.filter((m) => !m.statistic);
  if (criterion === 'bnScale' && members.length === 0) {
    throw new KilnError('INVALID_ARGUMENT', `structured pruning: criterion 'bnScale' ranks units by the BatchNormalization scale of their group, and ${groupLabel(group)} has none; use 'l1' or 'l2'`);
  }
  const perTensor: Float64Array[] = [];
  for (const m of members) {
    const t = weights.get(m.tensor);
    if (!t || t.dtype !== 'float32') continue;
    const unit = unitIndex(analysis.atoms, analysis.atoms.structure(analysis.axes.get(m.tensor)![m.axis]!), group.leaf);
    const data = t.data as Float32Array;
    const grad = criterion === 'taylor' ? gradients!.get(m.tensor)! : undefined;
    const inner = t.shape.slice(m.axis + 1).reduce((p, d) => p * d, 1);
    const dim = t.shape[m.axis]!;
    const sums = new Float64Array(group.units);
    for (let i = 0; i < data.length; i++) {
      const u = unit[Math.floor(i / inner) % dim]!;
      if (u < 0) continue;
      const v = data[i]!;
      sums[u] += criterion === 'l2' ? v * v : grad ? Math.abs(v * grad[i]!) : Math.abs(v);
    }
    if (criterion === 'l2') for (let u = 0; u < sums.length; u++) sums[u] = Math.sqrt(sums[u]!);
    perTensor.push(sums);
  }
  const means = perTensor.map((sums) => sums.reduce((a, b) => a + b, 0) / sums.length);
  // Taylor: a tensor the loss does not depend on (a bias before a training-mode BatchNorm, whose
  // gradient is zero but for round-off) would weigh its noise as much as the real tensors once
  // normalized by its mean, so tensors far below the group's largest are left out.
  const floor = criterion === 'taylor' ? 1e-6 * Math.max(0, ...means) : 0;
  perTensor.forEach((sums, k) => {
    const mean = means[k]!;
    if (!(mean > 0) || mean < floor) return;
    for (let u = 0; u < sums.length; u++) total[u] += sums[u]! / mean;
    tensors++;
  });
  if (tensors > 1) for (let u = 0; u < total.length; u++) total[u] /= tensors;
  return total;
}

/** Parameters of a graph (those {@link parameterTensors} counts), and how many are non-zero. */
function parameterCount(analysis: GraphAnalysis, proto: ModelProto): { parameters: number; nonZero: number } {
  let parameters = 0;
  let nonZero = 0;
  for (const t of parameterTensors(analysis, proto)) {
    const data = tensorFromProto(t).data as Float32Array;
    parameters += data.length;
    for (const v of data) if (v !== 0) nonZero++;
  }
  return { parameters, nonZero };
}

/** FLOPs per example of the Conv, ConvTranspose, Gemm, MatMul and recurrent nodes, from the shapes measured at batch 2 and 3. */
export function graphFactsFlops(facts: GraphFacts): number {
  const nodes = countedNodes(facts.proto);
  const initializers = new Map((facts.proto.graph?.initializer ?? []).map((t) => [t.name ?? '', (t.dims ?? []).map(Number)]));
  const at = (batch: 0 | 1) => nodesFlops(nodes, (v) => facts.sizes.get(v)?.[batch] ?? initializers.get(v));
  return at(1) - at(0);
}

async function snapshot(model: GraphModel, analysis: GraphAnalysis, facts: GraphFacts, options: SnapshotOptions): Promise<ModelSnapshot> {
  const bytes = model.toOnnx();
  const { parameters, nonZero } = parameterCount(analysis, facts.proto);
  const snap: ModelSnapshot = { parameters, nonZeroParameters: nonZero, flops: graphFactsFlops(facts), fileBytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length };
  if (options.evaluation) {
    const scores = await model.predict(options.evaluation.x, { batchSize: 256 });
    snap.accuracy = evaluateClassifier(options.evaluation.y as never, scores as never).accuracy;
  }
  return snap;
}

/**
 * Shrinks, then runs the smaller graph to check every value has the shape the analysis expects; a group
 * whose removal changes a shape some other way (sizes computed at run time by ops the analysis does
 * not rewrite) is left whole and the rest are shrunk again.
 */
async function shrinkChecked(analysis: GraphAnalysis, removals: Map<number, Set<number>>, file: string): Promise<{ proto: ModelProto; facts: GraphFacts; dropped: Map<number, Blocker> }> {
  const dropped = new Map<number, Blocker>();
  for (let attempt = 0; ; attempt++) {
    const proto = shrinkGraph(analysis, removals);
    let facts: GraphFacts;
    try {
      facts = await measureFacts(decodeModel(encodeModel(proto)), file);
    } catch (err) {
      // Sizes read at run time (Shape, Size) and used where no rewrite follows them: leave the groups
      // whose sizes such nodes read whole, and try again.
      const readers = shapeReaders(analysis, removals);
      if (readers.size === 0 || attempt >= 4) {
        throw new KilnError('RUNTIME_ERROR', `structured pruning wrote a graph ONNX Runtime cannot run (${(err as Error).message}); nothing was changed`, { cause: err });
      }
      for (const [leaf, b] of readers) {
        removals.delete(leaf);
        dropped.set(leaf, { ...b, why: `${b.why}, and the graph pruned there does not run (${(err as Error).message.split('\n')[0]})` });
      }
      continue;
    }
    const wrong: { value: string; axes: number[]; expected: string; got: string }[] = [];
    for (const value of analysis.axes.keys()) {
      const got = facts.sizes.get(value);
      const expected = got && expectedSizes(analysis, removals, value);
      if (!got || !expected) continue;
      const axes = expected.length !== got[0].length ? expected.map((_, i) => i) : expected.flatMap((s, i) => (got[0][i] === s.k * (s.n ? 2 : 1) && got[1][i] === s.k * (s.n ? 3 : 1) ? [] : [i]));
      if (axes.length > 0) wrong.push({ value, axes, expected: expected.map(formatSize).join('×'), got: got[0].join('×') + ' at batch 2' });
    }
    if (wrong.length === 0) return { proto, facts, dropped };
    // The groups to blame: those in the wrong value's own axes, else those in the axes whose sizes a
    // Shape (or Size) node upstream of it reads.
    const culprits = new Map<number, Blocker>();
    for (const w of wrong) {
      const suspects = [w.value, ...shapeReadsBehind(analysis.facts.proto, w.value)];
      for (const v of suspects) {
        const atoms = analysis.axes.get(v) ?? [];
        for (const atom of v === w.value ? w.axes.map((a) => atoms[a]) : atoms) {
          if (atom === undefined) continue;
          for (const leaf of analysis.atoms.leavesUnder(atom)) {
            if (removals.has(leaf) && !culprits.has(leaf)) culprits.set(leaf, { node: w.value, op: '', why: `its shape is computed at run time from the size of '${v}' (measured ${w.got}, expected ${w.expected})` });
          }
        }
      }
      if (culprits.size > 0) break;
    }
    if (culprits.size === 0 || attempt >= 4) {
      throw new KilnError('RUNTIME_ERROR', `structured pruning: the smaller graph computes '${wrong[0]!.value}' as ${wrong[0]!.got}, the analysis expected ${wrong[0]!.expected}; nothing was changed`);
    }
    for (const [leaf, blocker] of culprits) {
      removals.delete(leaf);
      dropped.set(leaf, blocker);
    }
  }
}

/** The pruned groups whose sizes a Shape or Size node reads, with that node. */
function shapeReaders(analysis: GraphAnalysis, removals: ReadonlyMap<number, ReadonlySet<number>>): Map<number, Blocker> {
  const out = new Map<number, Blocker>();
  for (const n of analysis.facts.proto.graph?.node ?? []) {
    if ((n.opType !== 'Shape' && n.opType !== 'Size') || !n.input?.[0]) continue;
    for (const atom of analysis.axes.get(n.input[0]) ?? []) {
      if (atom === undefined) continue;
      for (const leaf of analysis.atoms.leavesUnder(atom)) {
        if (removals.has(leaf) && !out.has(leaf)) out.set(leaf, { node: n.name ?? '', op: n.opType, why: `reads the size of '${n.input[0]}' at run time` });
      }
    }
  }
  return out;
}

/** The values whose sizes Shape/Size nodes read on the way to `value` (through any node inputs). */
function shapeReadsBehind(proto: ModelProto, value: string): string[] {
  const producer = new Map((proto.graph?.node ?? []).flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));
  const seen = new Set<string>();
  const reads: string[] = [];
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop()!;
    const n = producer.get(v);
    if (!n || seen.has(v)) continue;
    seen.add(v);
    if ((n.opType === 'Shape' || n.opType === 'Size') && n.input?.[0]) reads.push(n.input[0]);
    else stack.push(...(n.input ?? []).filter((i) => i));
  }
  return reads;
}

/** A group's identity across rounds: its kind, producers and weights (node and weight names survive shrinking). */
function groupKey(g: ChannelGroup): string {
  return `${g.kind}|${g.producers.join(',')}|${g.members.map((m) => `${m.tensor}[${m.axis}]`).join(',')}`;
}

/**
 * Structured pruning of an imported graph: removes the lowest-scoring units of every prunable channel
 * dependency group (a copy; the model passed in is unchanged), checks the smaller graph, fine-tunes it
 * when `fineTune` is given and reports parameters, FLOPs, sizes (and accuracy/latency when asked)
 * before and after, with every group pruned or left whole and why. With `iterations` k > 1 it does
 * so in k rounds, each removing 1/k of the ratio's units (of the original count) and fine-tuning, the
 * groups re-analyzed and the units re-scored on the model the previous round left (Torch-Pruning's
 * iterative steps with a linear schedule).
 */
export async function graphStructuredPrune(model: GraphModel, options: GraphStructuredPruneOptions): Promise<GraphPruneResult> {
  if (!options || typeof options !== 'object') throw new KilnError('INVALID_ARGUMENT', 'prune: give options, e.g. {structured: {ratio: 0.5}}');
  const s = options.structured;
  const { ratios, open } = kindRatios(s);
  const criterion = s.criterion ?? 'l1';
  if (!['l1', 'l2', 'bnScale', 'taylor'].includes(criterion)) throw new KilnError('INVALID_ARGUMENT', `structured.criterion must be 'l1', 'l2', 'bnScale' or 'taylor', got ${JSON.stringify(criterion)}`);
  const iterations = s.iterations ?? 1;
  if (!Number.isInteger(iterations) || iterations < 1) throw new KilnError('INVALID_ARGUMENT', `structured.iterations must be a positive integer, got ${JSON.stringify(s.iterations)}`);
  if (options.fineTune) checkFineTune(options.fineTune);
  const ft = options.fineTune;
  const taylorData: TaylorData | undefined = s.data ?? (ft ? { x: ft.x, y: ft.y, batchSize: ft.batchSize ?? 64 } : undefined);
  if (criterion === 'taylor' && !taylorData) {
    throw new KilnError('INVALID_ARGUMENT', "structured pruning: criterion 'taylor' ranks units by the loss's gradient on data: give structured.data {x, y} or fineTune");
  }

  await model.currentWeights();
  const file = model.name;
  const facts = await measureFacts(decodeModel(model.toOnnx()), file);
  const analysis = analyzeGraph(facts);
  const selected = selectGroups(analysis, s.groups);
  const candidates = analysis.groups.filter((g) => g.blockers.length === 0 && selected.has(g));
  const found = s.parameters === undefined ? undefined : ratioForParameters(analysis, candidates, ratios, open, s.parameters);
  if (found !== undefined) for (const kind of open) ratios[kind] = found;
  // What the ratios leave of each group, in original units; checked before any work.
  const finalUnits = new Map<string, number>();
  const originalUnits = new Map(analysis.groups.map((g) => [groupKey(g), g.units]));
  for (const g of candidates) {
    const ratio = ratios[g.kind];
    if (ratio === 0) continue;
    const keep = found !== undefined && open.includes(g.kind) ? keptUnits(g.units, ratio) : unitsLeft(g, ratio);
    if (keep < 1) {
      throw new KilnError('INVALID_ARGUMENT', `structured pruning: removing ${ratio} of ${groupLabel(g)} would leave none; a ratio below ${(1 - 0.5 / g.units).toFixed(3)} keeps at least one`);
    }
    if (keep < g.units) finalUnits.set(groupKey(g), keep);
  }
  if (finalUnits.size === 0) {
    const pruneable = analysis.groups.filter((g) => g.blockers.length === 0);
    const why = pruneable.length === 0 ? `no group can be pruned: ${analysis.groups.map((g) => `${groupLabel(g)} (${g.blockers[0]?.node}: ${g.blockers[0]?.why})`).join('; ')}` : `the ratios remove no unit of any group (${pruneable.map(groupLabel).join('; ')})`;
    throw new KilnError('INVALID_ARGUMENT', `structured pruning: ${why}`);
  }

  // Each pruned group's remaining units as indices of the original's, composed across rounds.
  const originalIndex = new Map(analysis.groups.map((g) => [groupKey(g), Array.from({ length: g.units }, (_, u) => u)]));
  const droppedBy = new Map<string, Blocker>();
  const history: Record<string, number[]>[] = [];
  let current = model;
  let currentAnalysis = analysis;
  let newFacts = facts;
  for (let round = 1; round <= iterations; round++) {
    if (round > 1) {
      await current.currentWeights();
      currentAnalysis = analyzeGraph(await measureFacts(decodeModel(current.toOnnx()), file));
    }
    const proto = currentAnalysis.facts.proto;
    const weights = new Map((proto.graph?.initializer ?? []).map((t) => [t.name ?? '', tensorFromProto(t)]));
    const gradients = criterion === 'taylor' ? await taylorGradients(current, taylorData!) : undefined;
    const removals = new Map<number, Set<number>>();
    const kept = new Map<number, number[]>();
    for (const g of currentAnalysis.groups) {
      const key = groupKey(g);
      const final = finalUnits.get(key);
      if (final === undefined || g.blockers.length > 0 || droppedBy.has(key)) continue;
      // The same group as tracked (its units as the last round left them), else left alone.
      if (originalIndex.get(key)?.length !== g.units) continue;
      const units0 = originalUnits.get(key)!;
      // A linear schedule over the original count, landing exactly on the final count.
      const target = round === iterations ? final : Math.max(final, Math.round(units0 - ((units0 - final) * round) / iterations));
      if (target >= g.units) continue;
      const keptUnits = topIndices(groupScores(currentAnalysis, g, weights, criterion, gradients), target);
      kept.set(g.leaf, keptUnits);
      removals.set(g.leaf, new Set(Array.from({ length: g.units }, (_, u) => u).filter((u) => !keptUnits.includes(u))));
    }
    if (removals.size === 0) continue;
    const shrunk = await shrinkChecked(currentAnalysis, removals, file);
    for (const [leaf, b] of shrunk.dropped) {
      kept.delete(leaf);
      const g = currentAnalysis.groups.find((x) => x.leaf === leaf)!;
      const key = groupKey(g);
      // A group an earlier round pruned stops where it is: the report says short of what.
      const short = round > 1 ? ` (from round ${round} of ${iterations}: left at ${g.units} of ${originalUnits.get(key)} units, short of ${finalUnits.get(key)})` : '';
      droppedBy.set(key, { ...b, why: b.why + short });
    }
    if (removals.size === 0) continue;
    for (const [leaf, keptUnits] of kept) {
      const key = groupKey(currentAnalysis.groups.find((g) => g.leaf === leaf)!);
      const before = originalIndex.get(key)!;
      originalIndex.set(key, keptUnits.map((k) => before[k]!));
    }
    current = await GraphModel.fromProto(shrunk.proto, file, { name: model.name, seed: model.seed, output: model.trainedOutput });
    newFacts = shrunk.facts;
    if (ft) {
      current.compile({ optimizer: ft.optimizer ?? 'adam', loss: ft.loss ?? defaultLoss(model, ft.y), metrics: ['accuracy'] });
      history.push((await fitFineTune(current, ft)).history);
    }
  }
  if (current === model) {
    const reasons = [...droppedBy].map(([key, b]) => `${groupLabel(analysis.groups.find((g) => groupKey(g) === key)!)}: ${b.node} ${b.why}`);
    throw new KilnError('INVALID_ARGUMENT', `structured pruning: no group could be pruned (${reasons.join('; ')})`);
  }
  const pruned = current;

  const newAnalysis = { ...currentAnalysis, facts: newFacts };
  const before = await snapshot(model, analysis, facts, options);
  const after = await snapshot(pruned, newAnalysis, newFacts, options);
  if (options.latency) {
    const settings = options.latency === true ? {} : options.latency;
    const [ta, tb] = await measureModelLatency([model.toOnnx(), pruned.toOnnx()], fileInputs(model), settings);
    before.latencyMs = ta;
    after.latencyMs = tb;
    before.latencyBatchSize = after.latencyBatchSize = settings.batchSize ?? 64;
  }
  const groups: GraphGroupReport[] = analysis.groups.map((g) => {
    const key = groupKey(g);
    const keptUnits = originalIndex.get(key)!.length < g.units ? originalIndex.get(key) : undefined;
    const dropped = droppedBy.get(key);
    return {
      kind: g.kind,
      producers: g.producers,
      weights: g.members.map((m) => `${m.tensor}[${m.axis}]`),
      units: [g.units, keptUnits?.length ?? g.units],
      pruned: keptUnits !== undefined,
      ...(keptUnits ? { keptUnits } : {}),
      leftWhole: dropped ? [...g.blockers, dropped] : g.blockers,
    };
  });
  return { model: pruned, report: { method: 'structured', before, after, groups, ...(found !== undefined ? { ratio: found } : {}), ...(history.length ? { history } : {}) } };
}

