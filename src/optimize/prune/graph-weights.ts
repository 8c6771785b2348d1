// Owns the weights of an imported graph (GraphModel) as magnitude pruning sees them: which are weight
// matrices and convolution kernels (what TF-MOT and torch.nn.utils.prune prune), which of them are
// pruned by default (all but the first and the classifier head, as for Kiln's layer models), the
// user's selection by initializer name, node name or pattern, the input axis m:n blocks run along for
// each.
import { KilnError, formatShape } from '../../errors.js';
import type { ParameterUse } from '../../model/imported-graph.js';
import { weightMatcher, type GraphModel } from '../../train/graph-model.js';
import type { PruneTarget } from './masks.js';

/** Which weights to prune: names (of initializers or of the nodes reading them, `*` matching anything) or a RegExp. */
export type GraphWeightSelection = readonly string[] | RegExp;

/** A weight matrix or kernel: the parameter and the node that multiplies by it. */
interface KernelUse {
  use: ParameterUse;
  /** The weight read as [outer, input, inner], the input (contraction) axis in the middle. */
  view: [number, number, number];
  /** Which axis of the weight is that input axis. */
  inputAxis: number;
}

const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * The weight a node multiplies its input by, with its contraction axis: Conv's W [M, C/g, k…] (input
 * axis 1), ConvTranspose's W [C, M/g, k…] (axis 0), Gemm's B ([N, K] with transB, else [K, N]) or A,
 * MatMul's either side ([…, K, N] as B, […, M, K] as A), a recurrent layer's W and R (LSTM, GRU, RNN:
 * [directions, gates·hidden, K], the kernel and recurrent kernel TF-MOT prunes in an RNN). Rank 1
 * weights (biases, norm scales) are none.
 */
function kernelView(use: ParameterUse, shape: readonly number[]): KernelUse | undefined {
  if (shape.length < 2) return undefined;
  const r = shape.length;
  const at = (inputAxis: number): KernelUse => ({ use, inputAxis, view: [product(shape.slice(0, inputAxis)), shape[inputAxis]!, product(shape.slice(inputAxis + 1))] });
  switch (use.op) {
    case 'Conv':
      return use.input === 1 ? at(1) : undefined;
    case 'ConvTranspose':
      return use.input === 1 ? at(0) : undefined;
    case 'Gemm':
      if (r !== 2) return undefined;
      if (use.input === 1) return at(use.attrs.transB === 1 ? 1 : 0);
      if (use.input === 0) return at(use.attrs.transA === 1 ? 0 : 1);
      return undefined;
    case 'MatMul':
      if (use.input === 1) return at(r - 2);
      if (use.input === 0) return at(r - 1);
      return undefined;
    case 'LSTM':
    case 'GRU':
    case 'RNN':
      // W [directions, gates·hidden, input] and R [directions, gates·hidden, hidden]: each row is
      // multiplied by the step's input (or hidden state), so the contraction axis is the last.
      return (use.input === 1 || use.input === 2) && r === 3 ? at(2) : undefined;
    default:
      return undefined;
  }
}

/** The weights pruning can reach in a graph model, and how each is read. */
class GraphWeights {
  readonly uses: ParameterUse[];
  readonly shapes = new Map<string, number[]>();
  readonly trainable = new Set<string>();
  /** Kernels in graph order (by the first node multiplying by them). */
  readonly kernels: KernelUse[] = [];

  constructor(readonly model: GraphModel) {
    this.uses = model.parameterUses();
    for (const p of model.paramInfos()) {
      this.shapes.set(p.name, [...p.spec.shape]);
      if (p.spec.trainable) this.trainable.add(p.name);
    }
    const seen = new Set<string>();
    for (const use of this.uses) {
      if (seen.has(use.parameter)) continue;
      const k = kernelView(use, this.shapes.get(use.parameter) ?? []);
      if (k) {
        this.kernels.push(k);
        seen.add(use.parameter);
      }
    }
  }

  kernel(name: string): KernelUse | undefined {
    return this.kernels.find((k) => k.use.parameter === name);
  }

  /** What a weight is to the graph, for messages: "Conv 'stem.0' input 1". */
  describe(name: string): string {
    const use = this.uses.find((u) => u.parameter === name);
    return use ? `${use.op} '${use.node}' input ${use.input}` : 'no node';
  }

  target(name: string): PruneTarget {
    const shape = this.shapes.get(name)!;
    const k = this.kernel(name);
    // A weight that is no kernel (named explicitly): m:n blocks run along its last axis.
    const view: [number, number, number] = k ? k.view : [product(shape.slice(0, -1)), shape.at(-1) ?? 1, 1];
    return { name, layer: k?.use.node ?? this.uses.find((u) => u.parameter === name)?.node ?? name, shape, view };
  }

  /** The input axis m:n blocks run along, for messages. */
  inputAxis(name: string): number {
    return this.kernel(name)?.inputAxis ?? (this.shapes.get(name)!.length - 1);
  }
}

/**
 * The kernels pruned when the user names none: every weight matrix and convolution kernel but the
 * first (the stem, nearest the input) and the classifier head (the Gemm/MatMul weight feeding the
 * output), which TF-MOT recommends leaving dense and Kiln's layer models keep dense too. Biases,
 * normalization parameters and embeddings stay dense.
 */
function defaultKernels(weights: GraphWeights): KernelUse[] {
  const trainable = weights.kernels.filter((k) => weights.trainable.has(k.use.parameter));
  let head: string | undefined;
  try {
    head = weights.model.classifierHead().weight;
  } catch {
    // A head tied to the embedding is no kernel of its own (nothing more to spare); not a classifier (or
    // no Gemm/MatMul feeds the output): the last kernel is the output layer.
    head = weights.model.tiedHead() ? undefined : trainable.at(-1)?.use.parameter;
  }
  const first = trainable[0]?.use.parameter;
  const chosen = trainable.filter((k) => k.use.parameter !== first && k.use.parameter !== head);
  if (chosen.length === 0) {
    const all = trainable.map((k) => `${k.use.parameter} (${k.use.op})`).join(', ') || 'none';
    throw new KilnError(
      'INVALID_ARGUMENT',
      `prune: '${weights.model.name}' has ${trainable.length} trainable weight matri${trainable.length === 1 ? 'x' : 'ces'} or kernels (${all}); the first and the classifier head stay dense by default, which leaves nothing — name the weights to prune with layers: [...]`,
    );
  }
  return chosen;
}

function listed(names: readonly string[], max = 12): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')}, … (${names.length} in all)`;
}

/**
 * The weights a user's selection names. An initializer's exact name selects that weight, whatever it
 * is (a bias too: "any weight"), as long as it trains; a node's exact name selects the weight it
 * multiplies by; a pattern (`*` wildcards, or a RegExp) selects the weight matrices and kernels whose
 * name, or whose node's name, it matches. Every entry must select something.
 */
function selectedNames(weights: GraphWeights, selection: GraphWeightSelection): string[] {
  const chosen = new Set<string>();
  const kernelNames = () => weights.kernels.map((k) => k.use.parameter);
  const byPattern = (test: (name: string) => boolean, what: string) => {
    const hits = weights.kernels.filter((k) => test(k.use.parameter) || weights.uses.some((u) => u.parameter === k.use.parameter && test(u.node)));
    if (hits.length === 0) {
      const others = [...weights.shapes.keys()].filter(test);
      const why = others.length ? ` (it matches ${listed(others)}, which are no weight matrix or kernel: name a weight exactly to prune it anyway)` : '';
      throw new KilnError('INVALID_ARGUMENT', `prune: layers ${what} matches no weight matrix or kernel of '${weights.model.name}'${why}; its weight matrices and kernels are ${listed(kernelNames())}`);
    }
    for (const k of hits) chosen.add(k.use.parameter);
  };
  if (selection instanceof RegExp) {
    byPattern(weightMatcher(selection), String(selection));
    return [...chosen];
  }
  if (!Array.isArray(selection) || selection.length === 0 || selection.some((s) => typeof s !== 'string' || s === '')) {
    throw new KilnError('INVALID_ARGUMENT', `prune: layers must be a non-empty list of weight or node names (or patterns with *), or a RegExp; got ${JSON.stringify(selection)}`);
  }
  for (const entry of selection) {
    if (entry.includes('*')) {
      byPattern(weightMatcher(entry), `'${entry}'`);
      continue;
    }
    if (weights.shapes.has(entry)) {
      const stat = weights.uses.find((u) => u.parameter === entry && u.op === 'BatchNormalization' && u.input >= 3);
      if (stat) throw new KilnError('INVALID_ARGUMENT', `prune: '${entry}' is a running statistic of BatchNormalization '${stat.node}', not a weight: it cannot be pruned`);
      if (!weights.trainable.has(entry)) throw new KilnError('INVALID_ARGUMENT', `prune: weight '${entry}' is frozen (trainOnly leaves it out), so the training step cannot hold it pruned; train it, or leave it out of layers`);
      chosen.add(entry);
      continue;
    }
    const node = weights.uses.filter((u) => u.node === entry);
    if (node.length > 0) {
      const kernels = node.map((u) => weights.kernel(u.parameter)).filter((k): k is KernelUse => k !== undefined && k.use.node === entry);
      if (kernels.length === 0) {
        throw new KilnError('INVALID_ARGUMENT', `prune: node '${entry}' (${node[0]!.op}) multiplies by no weight matrix or kernel (it reads ${node.map((u) => u.parameter).join(', ')}); name a weight itself to prune it`);
      }
      for (const k of kernels) chosen.add(k.use.parameter);
      continue;
    }
    throw new KilnError('INVALID_ARGUMENT', `prune: '${weights.model.name}' has no weight or node named '${entry}'; its weight matrices and kernels are ${listed(kernelNames())}`);
  }
  for (const name of chosen) {
    if (!weights.trainable.has(name)) throw new KilnError('INVALID_ARGUMENT', `prune: weight '${name}' is frozen (trainOnly leaves it out), so the training step cannot hold it pruned`);
  }
  return [...chosen];
}

/** The weights of a graph model that magnitude pruning works on: the selection, or by default every kernel but the first and the head. */
export function selectGraphTargets(model: GraphModel, selection?: GraphWeightSelection): PruneTarget[] {
  const weights = new GraphWeights(model);
  if (weights.trainable.size === 0) throw new KilnError('NOT_TRAINABLE', `'${model.name}' has no trainable float weights: there is nothing to prune`);
  const names = selection === undefined ? defaultKernels(weights).map((k) => k.use.parameter) : selectedNames(weights, selection);
  // In the order the model lists its weights, as the report does.
  const order = [...weights.shapes.keys()];
  return names.sort((a, b) => order.indexOf(a) - order.indexOf(b)).map((name) => weights.target(name));
}

/**
 * m:n sparsity on a graph's weights needs whole blocks: every target's input axis a multiple of n
 * (2:4 is what sparse tensor cores run, and a ragged last block is no such pattern). Checked before
 * anything is pruned.
 */
export function checkGraphMByN(model: GraphModel, targets: readonly PruneTarget[], mByN: [number, number]): void {
  const weights = new GraphWeights(model);
  const [m, n] = mByN;
  for (const t of targets) {
    if (t.view[1] % n === 0) continue;
    const axis = weights.inputAxis(t.name);
    throw new KilnError(
      'INVALID_ARGUMENT',
      `prune: ${m}:${n} sparsity takes blocks of ${n} weights along the input axis; weight '${t.name}' ${formatShape(t.shape)} (${weights.describe(t.name)}) has ${t.view[1]} along axis ${axis}, not a multiple of ${n}: leave it out with layers: [...]`,
    );
  }
}
