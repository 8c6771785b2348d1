import { KilnError, formatShape } from '../errors.js';
import type { Attrs, Dim, Value } from '../graph/graph.js';
import { requireInput, type InferredValue, type OpDefinition } from '../graph/op-definition.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const RECURRENT_OPS: readonly OpDefinition[] = ops;

/*
 * Recurrent layers — LSTM, GRU and RNN, what torch.onnx.export writes for nn.LSTM, nn.GRU and nn.RNN
 * and tf2onnx for Keras's — as shape rules, so the passes that rebuild a file's graph from Kiln's rules
 * (quantization, the opset upgrade) can read models that hold them. They have no gradient rule here:
 * a recurrent node has no outputs for its steps' gates, which backpropagation through time needs, so
 * training unrolls it over its steps into ops that have rules (src/model/recurrent-unrolled.ts).
 *
 * Inputs X, W, R, B, sequence_lens, initial_h (and initial_c, P for LSTM); outputs Y, Y_h (and Y_c).
 * layout 0: X [T, N, I], Y [T, dirs, N, H], Y_h [dirs, N, H]; layout 1: X [N, T, I], Y [N, T, dirs, H],
 * Y_h [N, dirs, H]. W is [dirs, gates·H, I], R [dirs, gates·H, H].
 */

/** Each recurrent op's gate count: the blocks of gates·hidden rows in W, R and each half of B. */
export const RECURRENT_GATES: Readonly<Record<string, number>> = { LSTM: 4, GRU: 3, RNN: 1 };

/** Whether an op type is one of ONNX's recurrent layers. */
export const isRecurrentOp = (op: string | undefined): boolean => op !== undefined && Object.hasOwn(RECURRENT_GATES, op);

function recurrentShapes(type: string) {
  return (inputs: (Value | null)[], attrs: Attrs, _graph: unknown, outputCount: number): InferredValue[] => {
    const x = requireInput(inputs, 0, type);
    const w = requireInput(inputs, 1, type);
    const dirs = attrs.direction === 'bidirectional' ? 2 : 1;
    const layout = attrs.layout === 1 ? 1 : 0;
    if (x.shape && x.shape.length !== 3) throw new KilnError('INVALID_SHAPE', `${type}: input X must have rank 3 ([seq, batch, input] or, with layout 1, [batch, seq, input]), got ${formatShape(x.shape)}`);
    if (w.shape && w.shape.length !== 3) throw new KilnError('INVALID_SHAPE', `${type}: input W must have rank 3 ([directions, ${RECURRENT_GATES[type]}·hidden, input]), got ${formatShape(w.shape)}`);
    if (w.shape && typeof w.shape[0] === 'number' && w.shape[0] !== dirs) {
      throw new KilnError('INVALID_SHAPE', `${type}: W's first dimension is ${w.shape[0]}, but direction '${String(attrs.direction ?? 'forward')}' has ${dirs}`);
    }
    // hidden_size is optional in the spec: R's last dimension, else W's rows over the gate count.
    const r = inputs[2]?.shape;
    const rows = w.shape?.[1];
    const hidden: Dim | null = attrs.hidden_size !== undefined ? Number(attrs.hidden_size) : typeof r?.[2] === 'number' ? r[2] : typeof rows === 'number' ? rows / RECURRENT_GATES[type]! : null;
    const [steps, batch] = x.shape ? (layout === 0 ? [x.shape[0]!, x.shape[1]!] : [x.shape[1]!, x.shape[0]!]) : [null, null];
    const known = x.shape !== null && hidden !== null;
    const y = known ? (layout === 0 ? [steps!, dirs, batch!, hidden] : [batch!, steps!, dirs, hidden]) : null;
    const state = known ? (layout === 0 ? [dirs, batch!, hidden] : [batch!, dirs, hidden]) : null;
    return Array.from({ length: outputCount }, (_, k) => ({ dtype: x.dtype, shape: k === 0 ? y : state }));
  };
}

// No rule on the node: training unrolls it over its steps into MatMul, Add, Split, Sigmoid, Tanh and Mul
// (src/model/recurrent-unrolled.ts), whose rules make backpropagation through time.
for (const type of ['LSTM', 'GRU', 'RNN']) {
  ops.push({
    type,
    infer: recurrentShapes(type),
    // sequence_lens is an integer tensor of lengths.
    nonDifferentiableInputs: [4],
  });
}
