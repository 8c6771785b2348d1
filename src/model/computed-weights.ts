// Owns folding the weights a file computes from its own constants (torch.onnx.export with
// do_constant_folding=False: an LSTM's W built by Slice and Concat of weight_ih_l0's gate blocks, a
// Linear's weight behind a Transpose) into initializers, so that what reads weights — quantization —
// sees them as the constants they are. ONNX Runtime folds the same subgraphs as a session loads; the
// values are computed by it here too, once, not by Kiln.
import { KilnError } from '../errors.js';
import { tensorToProto } from '../graph/onnx-io.js';
import { encodeModel, type ModelProto, type NodeProto } from '../graph/proto.js';
import { RECURRENT_GATES } from '../ops/recurrent.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Tensor } from '../tensor.js';

/** Which inputs of an op are weights, by op type. */
const WEIGHT_INPUTS: Readonly<Record<string, readonly number[]>> = {
  Conv: [1, 2],
  ConvTranspose: [1, 2],
  Gemm: [1, 2],
  MatMul: [1],
  ...Object.fromEntries(Object.keys(RECURRENT_GATES).map((op) => [op, [1, 2, 3]])),
};

/** Ops whose output is not a function of their inputs alone: never folded. */
const NOT_FOLDED = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli', 'Dropout', 'If', 'Loop', 'Scan']);

/**
 * The file with every weight input (see WEIGHT_INPUTS) that is computed from initializers and Constant
 * nodes alone replaced by an initializer holding its value (named as the value), and the nodes and
 * initializers nothing reads any more removed; the file itself where there is none.
 */
export async function foldComputedWeights(proto: ModelProto, runtime: Runtime, file = 'the model'): Promise<ModelProto> {
  const graph = proto.graph ?? {};
  const nodes = graph.node ?? [];
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) if (o) producer.set(o, n);
  // Values no graph input reaches, in the nodes' (topological) order.
  const constant = new Set(initializers);
  for (const n of nodes) {
    if ((n.domain ?? '') !== '' || NOT_FOLDED.has(n.opType ?? '')) continue;
    if ((n.input ?? []).every((i) => !i || constant.has(i))) for (const o of n.output ?? []) if (o) constant.add(o);
  }
  const computed = new Set<string>();
  for (const n of nodes) {
    if ((n.domain ?? '') !== '') continue;
    for (const k of WEIGHT_INPUTS[n.opType ?? ''] ?? []) {
      const v = n.input?.[k];
      // A value of a node of several outputs (a Split of a packed weight) is left: the node stays for the others.
      const maker = v ? producer.get(v) : undefined;
      if (v && constant.has(v) && maker && maker.opType !== 'Constant' && (maker.output ?? []).length === 1) computed.add(v);
    }
  }
  if (computed.size === 0) return proto;

  // The nodes the computed weights need, run once with those weights as outputs.
  const needed = new Set<NodeProto>();
  const visit = (v: string) => {
    const n = producer.get(v);
    if (!n || needed.has(n)) return;
    needed.add(n);
    for (const i of n.input ?? []) if (i) visit(i);
  };
  for (const v of computed) visit(v);
  const probe: ModelProto = {
    ...proto,
    graph: { name: 'computed_weights', node: nodes.filter((n) => needed.has(n)), initializer: graph.initializer, input: [], output: [...computed].map((name) => ({ name })) },
  };
  let values: Record<string, Tensor>;
  const session = await runtime.load(encodeModel(probe));
  try {
    values = await runtime.run(session, {});
  } catch (err) {
    throw new KilnError('RUNTIME_ERROR', `${file}: computing its weights ${[...computed].join(', ')} from its constants failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await runtime.release(session);
  }

  // The computed weights become initializers; whatever only they read goes.
  let kept = nodes.filter((n) => !computed.has(n.output?.[0] ?? ''));
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  for (;;) {
    const read = new Set([...outputs, ...kept.flatMap((n) => n.input ?? [])]);
    const live = kept.filter((n) => (n.output ?? []).some((o) => o && read.has(o)));
    if (live.length === kept.length) break;
    kept = live;
  }
  const read = new Set([...outputs, ...kept.flatMap((n) => n.input ?? [])]);
  const initializer = [...(graph.initializer ?? []).filter((t) => read.has(t.name ?? '')), ...[...computed].map((name) => tensorToProto(name, values[name]!))];
  const input = (graph.input ?? []).filter((i) => !initializers.has(i.name ?? '') || read.has(i.name ?? ''));
  return { ...proto, graph: { ...graph, node: kept, initializer, input } };
}
