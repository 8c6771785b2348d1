import { KilnError } from '../errors.js';
import type { Attrs, Graph, Value } from '../graph/graph.js';
import type { NodeProto } from '../graph/proto.js';
import { Tensor } from '../tensor.js';
import { RECURRENT_GATES, isRecurrentOp } from '../ops/recurrent.js';
import { isOnnx } from './training-mode-nodes.js';

/*
 * Recurrent layers in training: ONNX's LSTM, GRU and RNN nodes (what torch.onnx.export writes for nn.LSTM,
 * nn.GRU and nn.RNN) unrolled over the sequence into the ops they are made of — MatMul, Add, Split, Sigmoid, Tanh,
 * Mul — whose gradient rules Kiln has, so backpropagation through time is autodiff over the unrolled
 * steps. What this file owns: which recurrent nodes can be unrolled (the forms PyTorch and Keras
 * export: default activations (ReLU too for RNN), no peepholes, no clipping, every sequence at full length), and the
 * unrolled computation, step for step ONNX's definition (gates i, o, f, c for LSTM; z, r, h for GRU; one for RNN).
 * Inference keeps the node itself, which ONNX Runtime runs in one kernel.
 */

const DEFAULT_ACTIVATIONS: Record<string, string[]> = { LSTM: ['Sigmoid', 'Tanh', 'Tanh'], GRU: ['Sigmoid', 'Tanh'], RNN: ['Tanh'] };

/** Whether a node is a recurrent layer this file unrolls in training. */
export function isRecurrent(n: NodeProto): boolean {
  return isOnnx(n) && isRecurrentOp(n.opType);
}

/** Why a recurrent node cannot be unrolled, or undefined when it can. */
export function unrollProblem(n: NodeProto, attrs: Attrs, sequenceLength: number | string | null | undefined): string | undefined {
  const type = n.opType!;
  const activations = Array.isArray(attrs.activations) ? (attrs.activations as string[]) : undefined;
  const dirs = attrs.direction === 'bidirectional' ? 2 : 1;
  // nn.RNN(nonlinearity='relu') exports Relu in every direction.
  const relu = type === 'RNN' && activations?.every((a) => a === 'Relu') && activations.length === dirs;
  if (activations && !relu && activations.join() !== Array(dirs).fill(DEFAULT_ACTIVATIONS[type]!).flat().join()) return `activations ${activations.join(', ')} (only the defaults, ${DEFAULT_ACTIVATIONS[type]!.join(', ')})`;
  if (attrs.clip !== undefined) return 'clip';
  if (type === 'LSTM' && attrs.input_forget === 1) return 'input_forget';
  if (type === 'LSTM' && (n.input?.[7] ?? '') !== '') return 'peepholes (input P)';
  if ((n.input?.[4] ?? '') !== '') return 'sequence_lens (sequences of different lengths)';
  if (typeof sequenceLength !== 'number') return 'a sequence length known only at run time (give it with dimensions / --dimension)';
  return undefined;
}

/**
 * The node's outputs (Y, Y_h, Y_c for LSTM; Y, Y_h for GRU and RNN) computed by the unrolled steps, in the
 * node's layout. `inputs` are the node's inputs as values of `graph` ('' for an omitted one);
 * `sequenceLength` is the measured number of steps.
 */
export function unrolledRecurrent(graph: Graph, n: NodeProto, attrs: Attrs, inputs: string[], sequenceLength: number | undefined): Value[] {
  const type = n.opType!;
  const problem = unrollProblem(n, attrs, sequenceLength);
  if (problem) throw new KilnError('NO_GRADIENT', `${type} node '${n.name ?? ''}': Kiln trains recurrent layers unrolled, and cannot unroll one with ${problem}`);
  const steps = sequenceLength!;
  const hidden = Number(attrs.hidden_size);
  const gates = RECURRENT_GATES[type]!;
  const layout = attrs.layout === 1 ? 1 : 0;
  const value = (k: number) => (inputs[k] ? graph.value(inputs[k]!) : undefined);
  const t = value(0)!.dtype;
  // [T, N, I] whatever the layout.
  const x = layout === 1 ? graph.op1('Transpose', [value(0)!], { perm: [1, 0, 2] }) : value(0)!;
  const direction = typeof attrs.direction === 'string' ? attrs.direction : 'forward';
  const order = direction === 'bidirectional' ? ['forward', 'reverse'] : [direction];
  const scalarIndex = (i: number) => graph.constant(new Tensor(BigInt64Array.of(BigInt(i)), [], 'int64'), 'recurrent_step');
  const take = (v: Value, i: number) => graph.op1('Gather', [v, scalarIndex(i)], { axis: 0 });
  const transposed = (v: Value) => graph.op1('Transpose', [v], { perm: [1, 0] });
  /** v cut into `parts` equal pieces along `axis` (gates, biases, steps). */
  const split = (v: Value, parts: number, size: number, axis: number) =>
    graph.op('Split', [v, graph.int64s(Array<number>(parts).fill(size), 'split')], { axis }, { outputs: parts });
  const batch = graph.op1('Gather', [graph.op1('Shape', [x]), graph.int64s([1], 'recurrent_axis')]);
  const zeros = () => graph.op1('ConstantOfShape', [graph.op1('Concat', [batch, graph.int64s([hidden], 'recurrent_hidden')], { axis: 0 })], { value: new Tensor(new Float32Array(1), [1], t) });
  const ys: Value[] = [];
  const lastH: Value[] = [];
  const lastC: Value[] = [];
  order.forEach((dir, d) => {
    const w = take(value(1)!, d); // [G·H, I]
    const r = take(value(2)!, d); // [G·H, H]
    const b = value(3) ? take(value(3)!, d) : undefined; // [2·G·H]: input biases, then recurrent
    const [wb, rb] = b ? split(b, 2, gates * hidden, 0) : [undefined, undefined];
    // Every step's input projection at once: [T, N, G·H].
    let projected = graph.op1('MatMul', [x, transposed(w)]);
    if (wb) projected = graph.op1('Add', [projected, type === 'GRU' ? wb : graph.op1('Add', [wb, rb!])]);
    const recurrentT = transposed(r);
    // Initial states are [D, N, H], or [N, D, H] in layout 1.
    const initial = (v: Value | undefined) => (v ? graph.op1('Gather', [v, scalarIndex(d)], { axis: layout }) : zeros());
    let h = initial(value(5));
    let c = type === 'LSTM' ? initial(value(6)) : undefined;
    // The steps' rows by one Split, whose gradient is one Concat (a Gather per step would scatter each row's
    // gradient into a zeros tensor of the whole sequence: quadratic in its length).
    const rows = split(projected, steps, 1, 0);
    // GRU's recurrent weights and biases per gate, the same at every step.
    const [rz, rr, rh] = type === 'GRU' ? split(recurrentT, 3, hidden, 1) : [];
    const [rbz, rbr, rbh] = type === 'GRU' && rb ? split(rb, 3, hidden, 0) : [];
    const outputs: Value[] = new Array<Value>(steps);
    const times = Array.from({ length: steps }, (_, i) => (dir === 'reverse' ? steps - 1 - i : i));
    for (const step of times) {
      const xs = graph.op1('Squeeze', [rows[step]!, graph.int64s([0], 'axes')]); // [N, G·H]
      if (type === 'RNN') {
        // h' = f(x·Wᵀ + h·Rᵀ + Wb + Rb), f tanh or (nn.RNN(nonlinearity='relu')) Relu
        const activation = Array.isArray(attrs.activations) && attrs.activations[0] === 'Relu' ? 'Relu' : 'Tanh';
        h = graph.op1(activation, [graph.op1('Add', [xs, graph.op1('MatMul', [h, recurrentT])])]);
      } else if (type === 'LSTM') {
        const all = graph.op1('Add', [xs, graph.op1('MatMul', [h, recurrentT])]);
        const [i, o, f, cand] = split(all, 4, hidden, 1) as [Value, Value, Value, Value];
        c = graph.op1('Add', [graph.op1('Mul', [graph.op1('Sigmoid', [f]), c!]), graph.op1('Mul', [graph.op1('Sigmoid', [i]), graph.op1('Tanh', [cand])])]);
        h = graph.op1('Mul', [graph.op1('Sigmoid', [o]), graph.op1('Tanh', [c])]);
      } else {
        // GRU: z, r, h gates; with linear_before_reset the reset gate scales (h·Rh + Rbh), else h before Rh.
        const [xz, xr, xh] = split(xs, 3, hidden, 1) as [Value, Value, Value];
        const plus = (v: Value, bias: Value | undefined) => (bias ? graph.op1('Add', [v, bias]) : v);
        const z = graph.op1('Sigmoid', [graph.op1('Add', [xz, plus(graph.op1('MatMul', [h, rz!]), rbz)])]);
        const reset = graph.op1('Sigmoid', [graph.op1('Add', [xr, plus(graph.op1('MatMul', [h, rr!]), rbr)])]);
        const recurrent = attrs.linear_before_reset === 1 ? graph.op1('Mul', [reset, plus(graph.op1('MatMul', [h, rh!]), rbh)]) : plus(graph.op1('MatMul', [graph.op1('Mul', [reset, h]), rh!]), rbh);
        const candidate = graph.op1('Tanh', [graph.op1('Add', [xh, recurrent])]);
        // h' = (1 − z)·candidate + z·h
        h = graph.op1('Add', [graph.op1('Mul', [graph.op1('Sub', [graph.scalar(1, t), z]), candidate]), graph.op1('Mul', [z, h])]);
      }
      outputs[step] = graph.op1('Unsqueeze', [h, graph.int64s([0], 'axes')]);
    }
    ys.push(graph.op1('Unsqueeze', [graph.op1('Concat', outputs, { axis: 0 }), graph.int64s([1], 'axes')])); // [T, 1, N, H]
    lastH.push(graph.op1('Unsqueeze', [h, graph.int64s([0], 'axes')]));
    if (c) lastC.push(graph.op1('Unsqueeze', [c, graph.int64s([0], 'axes')]));
  });
  const stack = (vs: Value[], axis: number) => (vs.length === 1 ? vs[0]! : graph.op1('Concat', vs, { axis }));
  let y = stack(ys, 1); // [T, D, N, H]
  let yh = stack(lastH, 0); // [D, N, H]
  let yc = type === 'LSTM' ? stack(lastC, 0) : undefined;
  if (layout === 1) {
    y = graph.op1('Transpose', [y], { perm: [2, 0, 1, 3] }); // [N, T, D, H]
    yh = graph.op1('Transpose', [yh], { perm: [1, 0, 2] }); // [N, D, H]
    if (yc) yc = graph.op1('Transpose', [yc], { perm: [1, 0, 2] });
  }
  return yc ? [y, yh, yc] : [y, yh];
}
