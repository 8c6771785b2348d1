import { KilnError, formatShape } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';
import { broadcastShapes, intAttr, requireInput, type OpDefinition } from '../graph/op-definition.js';
import { reduceToShape } from './reduce-to-shape.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const MATMUL_OPS: readonly OpDefinition[] = ops;

ops.push({
  type: 'Gemm',
  infer: (inputs, attrs) => {
    const a = requireInput(inputs, 0, 'Gemm');
    const b = requireInput(inputs, 1, 'Gemm');
    if (!a.shape || !b.shape) return [{ dtype: a.dtype, shape: null }];
    const [m, ka] = intAttr(attrs, 'transA', 0) ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
    const [kb, n] = intAttr(attrs, 'transB', 0) ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
    if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb) {
      throw new KilnError('INVALID_SHAPE', `Gemm: inner dimensions differ: A ${formatShape(a.shape)} and B ${formatShape(b.shape)} give ${ka} vs ${kb}`);
    }
    return [{ dtype: a.dtype, shape: [m, n] }];
  },
  /*
   * With A' = op(A), B' = op(B) (op = transpose when the flag is set): dA' = dY·B'ᵀ and dB' = A'ᵀ·dY,
   * each written as one Gemm whose flags absorb the transposes.
   */
  gradient: ({ graph, node, inputs: [a, b, c], gradOutputs: [dy] }) => {
    const transA = intAttr(node.attrs, 'transA', 0);
    const transB = intAttr(node.attrs, 'transB', 0);
    const alpha = typeof node.attrs.alpha === 'number' ? node.attrs.alpha : 1;
    const beta = typeof node.attrs.beta === 'number' ? node.attrs.beta : 1;
    const da = transA
      ? graph.op1('Gemm', [b!, dy!], { transA: transB, transB: 1, alpha })
      : graph.op1('Gemm', [dy!, b!], { transB: transB ? 0 : 1, alpha });
    const db = transB
      ? graph.op1('Gemm', [dy!, a!], { transA: 1, transB: transA, alpha })
      : graph.op1('Gemm', [a!, dy!], { transA: transA ? 0 : 1, alpha });
    if (!c) return [da, db];
    const dyScaled = beta === 1 ? dy! : graph.op1('Mul', [dy!, graph.scalar(beta, dy!.dtype)]);
    return [da, db, reduceToShape(graph, dyScaled, c)];
  },
});

function swapLastTwo(graph: Graph, v: Value): Value {
  const rank = v.shape!.length;
  const perm = [...Array(rank).keys()];
  [perm[rank - 1], perm[rank - 2]] = [perm[rank - 2]!, perm[rank - 1]!];
  return graph.op1('Transpose', [v], { perm });
}

/*
 * MatMul as numpy.matmul: batch dims broadcast; a rank-1 left operand is a row [1, K] and a rank-1
 * right operand a column [K, 1], the added dim removed from the result again.
 */
ops.push({
  type: 'MatMul',
  infer: (inputs) => {
    const a = requireInput(inputs, 0, 'MatMul');
    const b = requireInput(inputs, 1, 'MatMul');
    if (!a.shape || !b.shape) return [{ dtype: a.dtype, shape: null }];
    if (a.shape.length < 1 || b.shape.length < 1) {
      throw new KilnError('INVALID_SHAPE', `MatMul: scalar operands are not allowed, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
    }
    const as = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
    const bs = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
    const ka = as[as.length - 1];
    const kb = bs[bs.length - 2];
    if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb) {
      throw new KilnError('INVALID_SHAPE', `MatMul: inner dimensions differ: ${formatShape(a.shape)} · ${formatShape(b.shape)}`);
    }
    const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2), 'MatMul')!;
    const rows = a.shape.length === 1 ? [] : [as[as.length - 2]!];
    const cols = b.shape.length === 1 ? [] : [bs[bs.length - 1]!];
    return [{ dtype: a.dtype, shape: [...batch, ...rows, ...cols] }];
  },
  /*
   * dA = dY·Bᵀ and dB = Aᵀ·dY, summed over broadcast batch dims. A weight [D, E] applied to a batch of
   * rows [..., T, D] (PyTorch's Linear on 3-D input): dB is one Gemm over the rows flattened to
   * [N·T, D], not a batched MatMul into [N, D, E] and a ReduceSum (one large GEMM, no [N, D, E] buffer).
   * Rank-1 operands are promoted to a row or column (and dY alike), their gradients reshaped back.
   */
  gradient: ({ graph, inputs: [a0, b0], gradOutputs: [dy0] }) => {
    const a1 = a0!.shape!.length === 1;
    const b1 = b0!.shape!.length === 1;
    const a = a1 ? graph.op1('Unsqueeze', [a0!, graph.int64s([0], 'axes')]) : a0!;
    const b = b1 ? graph.op1('Unsqueeze', [b0!, graph.int64s([1], 'axes')]) : b0!;
    let dy = dy0!;
    if (b1) dy = graph.op1('Unsqueeze', [dy, graph.int64s([-1], 'axes')]);
    if (a1) dy = graph.op1('Unsqueeze', [dy, graph.int64s([-2], 'axes')]);
    const da = reduceToShape(graph, graph.op1('MatMul', [dy, swapLastTwo(graph, b)]), a);
    const bShape = b.shape!;
    const flatRows = b.shape!.length === 2 && a.shape!.length > 2 && bShape.every((d) => typeof d === 'number');
    const db = flatRows
      ? graph.op1('Gemm', [
          graph.op1('Reshape', [a, graph.int64s([-1, bShape[0] as number], 'shape')]),
          graph.op1('Reshape', [dy, graph.int64s([-1, bShape[1] as number], 'shape')]),
        ], { transA: 1 })
      : reduceToShape(graph, graph.op1('MatMul', [swapLastTwo(graph, a), dy]), b);
    const back = (g: Value, promoted: boolean, like: Value) => (promoted ? graph.op1('Reshape', [g, graph.op1('Shape', [like])]) : g);
    return [back(da, a1, a0!), back(db, b1, b0!)];
  },
});
