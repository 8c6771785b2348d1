import { KilnError, formatShape } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';
import { broadcastShapes, defineOp, intAttr, requireInput } from '../graph/registry.js';
import { reduceToShape } from './reduce-to-shape.js';

defineOp({
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

defineOp({
  type: 'MatMul',
  infer: (inputs) => {
    const a = requireInput(inputs, 0, 'MatMul');
    const b = requireInput(inputs, 1, 'MatMul');
    if (!a.shape || !b.shape) return [{ dtype: a.dtype, shape: null }];
    if (a.shape.length < 2 || b.shape.length < 2) {
      throw new KilnError('INVALID_SHAPE', `MatMul: Kiln handles operands of rank >= 2, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
    }
    const ka = a.shape[a.shape.length - 1];
    const kb = b.shape[b.shape.length - 2];
    if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb) {
      throw new KilnError('INVALID_SHAPE', `MatMul: inner dimensions differ: ${formatShape(a.shape)} · ${formatShape(b.shape)}`);
    }
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'MatMul')!;
    return [{ dtype: a.dtype, shape: [...batch, a.shape[a.shape.length - 2]!, b.shape[b.shape.length - 1]!] }];
  },
  gradient: ({ graph, inputs: [a, b], gradOutputs: [dy] }) => [
    reduceToShape(graph, graph.op1('MatMul', [dy!, swapLastTwo(graph, b!)]), a!),
    reduceToShape(graph, graph.op1('MatMul', [swapLastTwo(graph, a!), dy!]), b!),
  ],
});
