import type { Graph, Node, Value } from '../graph/graph.js';
import { onnxTypeCode } from '../graph/dtype.js';
import { noGradientFlows, normalizeAxis, sameShape, type OpDefinition } from '../graph/op-definition.js';
import { reduceToShape } from './reduce-to-shape.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const ACTIVATION_OPS: readonly OpDefinition[] = ops;

/*
 * Activations. Masks are built as a Cast of a comparison and multiplied in: on large tensors that is
 * several times faster in ONNX Runtime than Where. Where a derivative can be written with the
 * forward output y (Elu, Selu, Sigmoid), it is, so the rule adds no exponentials.
 */


const FLOAT = 1;

function positiveMask(graph: Graph, y: Value): Value {
  return graph.op1('Cast', [graph.op1('Greater', [y, graph.scalar(0, y.dtype)])], { to: y.dtype === 'float64' ? 11 : FLOAT });
}

ops.push({
  type: 'Relu',
  infer: sameShape('Relu'),
  // dy where the output is positive, 0 elsewhere
  gradient: ({ graph, outputs: [y], gradOutputs: [dy] }) => [graph.op1('Mul', [dy!, positiveMask(graph, y!)])],
});

ops.push({
  type: 'LeakyRelu',
  infer: sameShape('LeakyRelu'),
  // slope is 1 where x > 0 and alpha elsewhere: alpha + (1 - alpha) * mask
  gradient: ({ graph, node, inputs: [x], gradOutputs: [dy] }) => {
    const alpha = typeof node.attrs.alpha === 'number' ? node.attrs.alpha : 0.01;
    const mask = positiveMask(graph, x!);
    const slope = graph.op1('Add', [graph.op1('Mul', [mask, graph.scalar(1 - alpha, x!.dtype)]), graph.scalar(alpha, x!.dtype)]);
    return [graph.op1('Mul', [dy!, slope])];
  },
});

ops.push({
  type: 'Sigmoid',
  infer: sameShape('Sigmoid'),
  // dσ(x) = y·(1 − y)
  gradient: ({ graph, outputs: [y], gradOutputs: [dy] }) => {
    const oneMinus = graph.op1('Sub', [graph.scalar(1, y!.dtype), y!]);
    return [graph.op1('Mul', [dy!, graph.op1('Mul', [y!, oneMinus])])];
  },
});

ops.push({
  type: 'Tanh',
  infer: sameShape('Tanh'),
  // d tanh(x) = 1 − y²
  gradient: ({ graph, outputs: [y], gradOutputs: [dy] }) => {
    const oneMinusSq = graph.op1('Sub', [graph.scalar(1, y!.dtype), graph.op1('Mul', [y!, y!])]);
    return [graph.op1('Mul', [dy!, oneMinusSq])];
  },
});

function softmaxAxis(node: { attrs: Record<string, unknown> }, y: Value): number {
  const axis = typeof node.attrs.axis === 'number' ? node.attrs.axis : -1;
  return normalizeAxis(axis, y.shape?.length ?? 0);
}

ops.push({
  type: 'Softmax',
  infer: sameShape('Softmax'),
  // dx = y * (dy - sum(dy * y, axis))
  gradient: ({ graph, node, outputs: [y], gradOutputs: [dy] }) => {
    const axes = graph.int64s([softmaxAxis(node, y!)], 'axes');
    const dot = graph.op1('ReduceSum', [graph.op1('Mul', [dy!, y!]), axes], { keepdims: 1 });
    return [graph.op1('Mul', [y!, graph.op1('Sub', [dy!, dot])])];
  },
});

ops.push({
  type: 'LogSoftmax',
  infer: sameShape('LogSoftmax'),
  // dx = dy - softmax(x) * sum(dy, axis), with softmax(x) = exp(y)
  gradient: ({ graph, node, outputs: [y], gradOutputs: [dy] }) => {
    const axes = graph.int64s([softmaxAxis(node, y!)], 'axes');
    const total = graph.op1('ReduceSum', [dy!, axes], { keepdims: 1 });
    return [graph.op1('Sub', [dy!, graph.op1('Mul', [graph.op1('Exp', [y!]), total])])];
  },
});

function floatAttr(node: Node, name: string, fallback: number): number {
  const v = node.attrs[name];
  return typeof v === 'number' ? v : fallback;
}

/** 1 where the comparison holds, else 0, in the value's float type. */
function maskOf(graph: Graph, cond: Value, like: Value): Value {
  return graph.op1('Cast', [cond], { to: onnxTypeCode(like.dtype) });
}

ops.push({
  type: 'Elu',
  infer: sameShape('Elu'),
  // y = alpha·(eˣ − 1) for x ≤ 0, so dy/dx = y + alpha there, and 1 for x > 0.
  gradient: ({ graph, node, inputs: [x], outputs: [y], gradOutputs: [dy] }) => {
    const alpha = graph.scalar(floatAttr(node, 'alpha', 1), x!.dtype);
    const pos = positiveMask(graph, x!);
    const negSlope = graph.op1('Add', [y!, alpha]);
    const slope = graph.op1('Add', [pos, graph.op1('Mul', [graph.op1('Sub', [graph.scalar(1, x!.dtype), pos]), negSlope])]);
    return [graph.op1('Mul', [dy!, slope])];
  },
});

ops.push({
  type: 'Selu',
  infer: sameShape('Selu'),
  // y = gamma·x for x > 0, gamma·alpha·(eˣ − 1) otherwise: slope gamma, or y + gamma·alpha.
  gradient: ({ graph, node, inputs: [x], outputs: [y], gradOutputs: [dy] }) => {
    const alpha = floatAttr(node, 'alpha', 1.67326319217681884765625);
    const gamma = floatAttr(node, 'gamma', 1.05070102214813232421875);
    const pos = positiveMask(graph, x!);
    const negSlope = graph.op1('Add', [y!, graph.scalar(gamma * alpha, x!.dtype)]);
    const slope = graph.op1('Add', [
      graph.op1('Mul', [pos, graph.scalar(gamma, x!.dtype)]),
      graph.op1('Mul', [graph.op1('Sub', [graph.scalar(1, x!.dtype), pos]), negSlope]),
    ]);
    return [graph.op1('Mul', [dy!, slope])];
  },
});

ops.push({
  type: 'Softplus',
  infer: sameShape('Softplus'),
  // d log(1 + eˣ) = sigmoid(x)
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => [graph.op1('Mul', [dy!, graph.op1('Sigmoid', [x!])])],
});

/** alpha·x + beta, and 1 where it lies strictly inside (0, 1) (the linear part of the hard curves). */
function hardLinearPart(graph: Graph, x: Value, alpha: number, beta: number): { inner: Value; inside: Value } {
  const inner = graph.op1('Add', [graph.op1('Mul', [x, graph.scalar(alpha, x.dtype)]), graph.scalar(beta, x.dtype)]);
  const above = graph.op1('Greater', [inner, graph.scalar(0, x.dtype)]);
  const below = graph.op1('Less', [inner, graph.scalar(1, x.dtype)]);
  return { inner, inside: maskOf(graph, graph.op1('And', [above, below]), x) };
}

ops.push({
  type: 'HardSigmoid',
  infer: sameShape('HardSigmoid'),
  // max(0, min(1, alpha·x + beta)): slope alpha inside the linear part, 0 where clipped.
  gradient: ({ graph, node, inputs: [x], gradOutputs: [dy] }) => {
    const alpha = floatAttr(node, 'alpha', 0.2);
    const { inside } = hardLinearPart(graph, x!, alpha, floatAttr(node, 'beta', 0.5));
    return [graph.op1('Mul', [dy!, graph.op1('Mul', [inside, graph.scalar(alpha, x!.dtype)])])];
  },
});

ops.push({
  type: 'HardSwish',
  infer: sameShape('HardSwish'),
  // x·h(x) with h = max(0, min(1, x/6 + 1/2)): the derivative is h(x) + x/6 inside the linear part.
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => {
    const { inner, inside } = hardLinearPart(graph, x!, 1 / 6, 0.5);
    const h = graph.op1('Clip', [inner, graph.scalar(0, x!.dtype), graph.scalar(1, x!.dtype)]);
    const slope = graph.op1('Add', [h, graph.op1('Mul', [inside, graph.op1('Mul', [x!, graph.scalar(1 / 6, x!.dtype)])])]);
    return [graph.op1('Mul', [dy!, slope])];
  },
});

ops.push({
  type: 'PRelu',
  /*
   * The slope broadcasts to X unidirectionally ([C, 1, 1] per channel, [1] shared), so y has X's shape
   * (before opset 7 a [C] slope meant per channel, which the same rule covers).
   */
  infer: sameShape('PRelu'),
  // dx = dy where x > 0, dy·slope elsewhere; dslope = dy·x where x ≤ 0, summed back to the slope's shape.
  gradient: ({ graph, inputs: [x, slope], gradOutputs: [dy] }) => {
    const pos = positiveMask(graph, x!);
    const neg = graph.op1('Sub', [graph.scalar(1, x!.dtype), pos]);
    const dx = graph.op1('Mul', [dy!, graph.op1('Add', [pos, graph.op1('Mul', [neg, slope!])])]);
    const dSlope = reduceToShape(graph, graph.op1('Mul', [dy!, graph.op1('Mul', [x!, neg])]), slope!);
    return [reduceToShape(graph, dx, x!), dSlope];
  },
});

/*
 * Gelu is an opset-20 op: ONNX Runtime 1.30 runs it only in a model that declares opset 20 (it does
 * with Kiln's IR version 8; test/ops/activation.test.ts), not at the opset 17 Kiln writes by default.
 * PyTorch exports GELU at opsets 13–18 as x·0.5·(1 + Erf(x/√2)) (or the tanh form), which the Erf,
 * Mul and Add rules differentiate.
 */
ops.push({
  type: 'Gelu',
  infer: sameShape('Gelu'),
  gradient: ({ graph, node, inputs: [x], gradOutputs: [dy] }) => {
    const t = x!.dtype;
    const c = (v: number) => graph.scalar(v, t);
    const mul = (a: Value, b: Value) => graph.op1('Mul', [a, b]);
    const add = (a: Value, b: Value) => graph.op1('Add', [a, b]);
    if (node.attrs.approximate === 'tanh') {
      // y = x/2·(1 + tanh(u)), u = √(2/π)·(x + 0.044715x³): dy/dx = (1 + th)/2 + x/2·(1 − th²)·du/dx
      const k = Math.sqrt(2 / Math.PI);
      const x2 = mul(x!, x!);
      const u = mul(c(k), add(x!, mul(c(0.044715), mul(x2, x!))));
      const th = graph.op1('Tanh', [u]);
      const du = mul(c(k), add(c(1), mul(c(3 * 0.044715), x2)));
      const sech2 = graph.op1('Sub', [c(1), mul(th, th)]);
      const slope = add(mul(c(0.5), add(c(1), th)), mul(mul(c(0.5), x!), mul(sech2, du)));
      return [mul(dy!, slope)];
    }
    // y = x·Φ(x): dy/dx = Φ(x) + x·φ(x), Φ(x) = (1 + erf(x/√2))/2, φ(x) = exp(−x²/2)/√(2π)
    const cdf = mul(c(0.5), add(c(1), graph.op1('Erf', [mul(x!, c(Math.SQRT1_2))])));
    const pdf = mul(c(1 / Math.sqrt(2 * Math.PI)), graph.op1('Exp', [mul(c(-0.5), mul(x!, x!))]));
    return [mul(dy!, add(cdf, mul(x!, pdf)))];
  },
});

ops.push({
  type: 'Celu',
  infer: sameShape('Celu'),
  // y = max(0, x) + min(0, alpha·(e^(x/alpha) − 1)): slope 1 for x > 0, e^(x/alpha) = y/alpha + 1 elsewhere.
  gradient: ({ graph, node, inputs: [x], outputs: [y], gradOutputs: [dy] }) => {
    const alpha = floatAttr(node, 'alpha', 1);
    const pos = positiveMask(graph, x!);
    const negSlope = graph.op1('Add', [graph.op1('Mul', [y!, graph.scalar(1 / alpha, x!.dtype)]), graph.scalar(1, x!.dtype)]);
    const slope = graph.op1('Add', [pos, graph.op1('Mul', [graph.op1('Sub', [graph.scalar(1, x!.dtype), pos]), negSlope])]);
    return [graph.op1('Mul', [dy!, slope])];
  },
});

ops.push({
  type: 'Softsign',
  infer: sameShape('Softsign'),
  // y = x/(1 + |x|): dy/dx = 1/(1 + |x|)²
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => {
    const denominator = graph.op1('Add', [graph.scalar(1, x!.dtype), graph.op1('Abs', [x!])]);
    return [graph.op1('Div', [dy!, graph.op1('Mul', [denominator, denominator])])];
  },
});

ops.push({
  type: 'ThresholdedRelu',
  infer: sameShape('ThresholdedRelu'),
  // y = x where x > alpha, else 0: dy passes where x > alpha.
  gradient: ({ graph, node, inputs: [x], gradOutputs: [dy] }) => {
    const above = graph.op1('Greater', [x!, graph.scalar(floatAttr(node, 'alpha', 1), x!.dtype)]);
    return [graph.op1('Mul', [dy!, maskOf(graph, above, x!)])];
  },
});

ops.push({
  type: 'Shrink',
  infer: sameShape('Shrink'),
  // y = x − bias above lambd, x + bias below −lambd, 0 between: dy passes where |x| > lambd.
  gradient: ({ graph, node, inputs: [x], gradOutputs: [dy] }) => {
    const lambd = graph.scalar(floatAttr(node, 'lambd', 0.5), x!.dtype);
    const outside = graph.op1('Or', [graph.op1('Greater', [x!, lambd]), graph.op1('Less', [x!, graph.op1('Neg', [lambd])])]);
    return [graph.op1('Mul', [dy!, maskOf(graph, outside, x!)])];
  },
});

ops.push({
  type: 'Mish',
  infer: sameShape('Mish'),
  // y = x·tanh(softplus(x)): dy/dx = t + x·(1 − t²)·σ(x), t = tanh(softplus(x)) (opset 18; earlier exports write the three ops).
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => {
    const t = graph.op1('Tanh', [graph.op1('Softplus', [x!])]);
    const sech2 = graph.op1('Sub', [graph.scalar(1, x!.dtype), graph.op1('Mul', [t, t])]);
    const slope = graph.op1('Add', [t, graph.op1('Mul', [x!, graph.op1('Mul', [sech2, graph.op1('Sigmoid', [x!])])])]);
    return [graph.op1('Mul', [dy!, slope])];
  },
});

// Hardmax is a one-hot of the maximum: piecewise constant, so no gradient flows (argmax's).
ops.push({ type: 'Hardmax', infer: sameShape('Hardmax'), gradient: noGradientFlows });
