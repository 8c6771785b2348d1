import type { Attrs, Graph, Value } from '../graph/graph.js';
import { broadcastShapes, requireInput, type InferredValue, noGradientFlows, type OpDefinition } from '../graph/op-definition.js';
import type { DType } from '../tensor.js';
import { onnxTypeCode } from '../graph/dtype.js';
import { reduceToShape } from './reduce-to-shape.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const ELEMENTWISE_OPS: readonly OpDefinition[] = ops;

/*
 * Elementwise arithmetic. Binary ops broadcast; their gradient rules sum the incoming gradient back
 * over the broadcast axes (reduceToShape) so each input gets a gradient of its own shape.
 */

const sameAsFirst = (inputs: (Value | null)[], _a: Attrs, _g: Graph, type: string): InferredValue[] => {
  const x = requireInput(inputs, 0, type);
  return [{ dtype: x.dtype, shape: x.shape }];
};

function binaryShape(type: string, outDtype?: DType) {
  return (inputs: (Value | null)[]): InferredValue[] => {
    const a = requireInput(inputs, 0, type);
    const b = requireInput(inputs, 1, type);
    return [{ dtype: outDtype ?? a.dtype, shape: broadcastShapes(a.shape, b.shape, type) }];
  };
}

ops.push({
  type: 'Add',
  infer: binaryShape('Add'),
  // dy to both inputs, each summed back over the axes it was broadcast along
  gradient: ({ graph, inputs, gradOutputs: [dy] }) => [reduceToShape(graph, dy!, inputs[0]!), reduceToShape(graph, dy!, inputs[1]!)],
});

ops.push({
  type: 'Sub',
  infer: binaryShape('Sub'),
  // dy to a, −dy to b, each summed back over its broadcast axes
  gradient: ({ graph, inputs, gradOutputs: [dy] }) => [
    reduceToShape(graph, dy!, inputs[0]!),
    reduceToShape(graph, graph.op1('Neg', [dy!]), inputs[1]!),
  ],
});

ops.push({
  type: 'Mul',
  infer: binaryShape('Mul'),
  // d(a·b) = dy·b for a and dy·a for b, summed back over broadcast axes
  gradient: ({ graph, inputs: [a, b], gradOutputs: [dy] }) => [
    reduceToShape(graph, graph.op1('Mul', [dy!, b!]), a!),
    reduceToShape(graph, graph.op1('Mul', [dy!, a!]), b!),
  ],
});

ops.push({
  type: 'Div',
  infer: binaryShape('Div'),
  // d(a/b)/da = 1/b ; d(a/b)/db = -a/b^2 = -(a/b)/b
  gradient: ({ graph, inputs: [a, b], outputs: [y], gradOutputs: [dy] }) => [
    reduceToShape(graph, graph.op1('Div', [dy!, b!]), a!),
    reduceToShape(graph, graph.op1('Neg', [graph.op1('Div', [graph.op1('Mul', [dy!, y!]), b!])]), b!),
  ],
});

ops.push({
  type: 'Pow',
  infer: binaryShape('Pow'),
  /*
   * d(aᵇ)/da = b·aᵇ⁻¹; d(aᵇ)/db = aᵇ·ln(a), defined for a > 0. The walk asks for the exponent's
   * gradient only when it depends on a parameter; exponents are constants in exported formulas
   * (x², x^0.5), where the exponent branch is built but never reaches a parameter. An integer exponent
   * (PyTorch's x ** 2 with an int64 2) has no gradient.
   */
  gradient: ({ graph, inputs: [a, b], outputs: [y], gradOutputs: [dy] }) => {
    const exponent = b!.dtype === a!.dtype ? b! : graph.op1('Cast', [b!], { to: onnxTypeCode(a!.dtype) });
    const one = graph.scalar(1, a!.dtype);
    const da = graph.op1('Mul', [dy!, graph.op1('Mul', [exponent, graph.op1('Pow', [a!, graph.op1('Sub', [exponent, one])])])]);
    const floatExponent = b!.dtype === 'float32' || b!.dtype === 'float64';
    const db = floatExponent ? reduceToShape(graph, graph.op1('Mul', [dy!, graph.op1('Mul', [y!, graph.op1('Log', [a!])])]), b!) : null;
    return [reduceToShape(graph, da, a!), db];
  },
});

ops.push({
  type: 'Erf',
  infer: (i, a, g) => sameAsFirst(i, a, g, 'Erf'),
  // d erf(x) = 2/√π · exp(−x²)
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => {
    const negSquare = graph.op1('Neg', [graph.op1('Mul', [x!, x!])]);
    return [graph.op1('Mul', [dy!, graph.op1('Mul', [graph.op1('Exp', [negSquare]), graph.scalar(2 / Math.sqrt(Math.PI), x!.dtype)])])];
  },
});

/** The shape rule of ops taking 1..N inputs (Max, Min, Sum, Mean), all broadcast together. */
function variadicShape(type: string) {
  return (inputs: (Value | null)[]): InferredValue[] => {
    const first = requireInput(inputs, 0, type);
    let shape = first.shape;
    for (let k = 1; k < inputs.length; k++) shape = broadcastShapes(shape, requireInput(inputs, k, type).shape, type);
    return [{ dtype: first.dtype, shape }];
  };
}

/* Max and Min take 1..N inputs (ONNX), all broadcast together. */
for (const type of ['Max', 'Min']) {
  ops.push({
    type,
    infer: variadicShape(type),
    // The gradient goes to the input that won, to the first of them on ties (so it is never doubled).
    gradient: ({ graph, inputs, outputs: [y], gradOutputs: [dy] }) => {
      if (inputs.length === 1) return [dy!];
      const to = onnxTypeCode(y!.dtype);
      let unclaimed: Value | null = null; // 1 where no earlier input won
      return inputs.map((x) => {
        const equal = graph.op1('Cast', [graph.op1('Equal', [x!, y!])], { to });
        const wins = unclaimed ? graph.op1('Mul', [equal, unclaimed]) : equal;
        unclaimed = graph.op1('Sub', [unclaimed ?? graph.scalar(1, y!.dtype), wins]);
        return reduceToShape(graph, graph.op1('Mul', [dy!, wins]), x!);
      });
    },
  });
}

/* Sum and Mean take 1..N inputs (ONNX), all broadcast together. */
for (const type of ['Sum', 'Mean']) {
  ops.push({
    type,
    infer: variadicShape(type),
    // dy to every input (Sum) or dy/n (Mean, n inputs), each summed back over the axes it was broadcast along
    gradient: ({ graph, inputs, gradOutputs: [dy] }) => {
      const share = type === 'Mean' && inputs.length > 1 ? graph.op1('Mul', [dy!, graph.scalar(1 / inputs.length, dy!.dtype)]) : dy!;
      return inputs.map((x) => reduceToShape(graph, share, x!));
    },
  });
}

ops.push({
  type: 'Mod',
  infer: binaryShape('Mod'),
  /*
   * Float Mod is C's fmod (fmod = 1, which ONNX requires for floats): a − trunc(a/b)·b, so da = dy and
   * db = −dy·trunc(a/b); integer Mod (index arithmetic) has none.
   */
  gradient: ({ graph, inputs: [a, b], gradOutputs: [dy] }) => {
    if (a!.dtype !== 'float32' && a!.dtype !== 'float64') return [null, null];
    const quotient = graph.op1('Div', [a!, b!]);
    const truncated = graph.op1('Where', [graph.op1('Less', [quotient, graph.scalar(0, a!.dtype)]), graph.op1('Ceil', [quotient]), graph.op1('Floor', [quotient])]);
    return [reduceToShape(graph, dy!, a!), reduceToShape(graph, graph.op1('Neg', [graph.op1('Mul', [dy!, truncated])]), b!)];
  },
});

ops.push({
  type: 'Neg',
  infer: (i, a, g) => sameAsFirst(i, a, g, 'Neg'),
  // d(−x) = −dy
  gradient: ({ graph, gradOutputs: [dy] }) => [graph.op1('Neg', [dy!])],
});

ops.push({
  type: 'Identity',
  infer: (i, a, g) => sameAsFirst(i, a, g, 'Identity'),
  // passes dy unchanged
  gradient: ({ gradOutputs: [dy] }) => [dy!],
});

ops.push({
  type: 'Exp',
  infer: (i, a, g) => sameAsFirst(i, a, g, 'Exp'),
  // d eˣ = eˣ, the output itself
  gradient: ({ graph, outputs: [y], gradOutputs: [dy] }) => [graph.op1('Mul', [dy!, y!])],
});

ops.push({
  type: 'Log',
  infer: (i, a, g) => sameAsFirst(i, a, g, 'Log'),
  // d ln x = 1/x
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => [graph.op1('Div', [dy!, x!])],
});

ops.push({
  type: 'Sqrt',
  infer: (i, a, g) => sameAsFirst(i, a, g, 'Sqrt'),
  // d sqrt(x) = 1 / (2 sqrt(x))
  gradient: ({ graph, outputs: [y], gradOutputs: [dy] }) => [
    graph.op1('Div', [dy!, graph.op1('Mul', [y!, graph.scalar(2, y!.dtype)])]),
  ],
});

ops.push({
  type: 'Abs',
  infer: (i, a, g) => sameAsFirst(i, a, g, 'Abs'),
  // d|x| = sign(x) (0 at x = 0)
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => [graph.op1('Mul', [dy!, graph.op1('Sign', [x!])])],
});

ops.push({
  type: 'Reciprocal',
  infer: (i, a, g) => sameAsFirst(i, a, g, 'Reciprocal'),
  // d(1/x) = −1/x² = −y²
  gradient: ({ graph, outputs: [y], gradOutputs: [dy] }) => [graph.op1('Neg', [graph.op1('Mul', [dy!, graph.op1('Mul', [y!, y!])])])],
});

ops.push({
  type: 'Clip',
  infer: (i, a, g) => sameAsFirst(i, a, g, 'Clip'),
  // Gradient passes where the input was inside [min, max].
  gradient: ({ graph, inputs: [x, lo, hi], outputs: [y], gradOutputs: [dy] }) => {
    const inside = graph.op1('Cast', [graph.op1('Equal', [x!, y!])], { to: onnxTypeCode(dy!.dtype) });
    void lo;
    void hi;
    return [graph.op1('Mul', [dy!, inside]), null, null];
  },
  nonDifferentiableInputs: [1, 2],
});

/* Ops with no gradient: comparisons, casts, rounding. They appear in masks and metrics. */
for (const type of ['Sign', 'Floor', 'Ceil', 'Round']) {
  ops.push({ type, infer: (i, a, g) => sameAsFirst(i, a, g, type), gradient: noGradientFlows });
}
for (const type of ['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual']) {
  ops.push({ type, infer: binaryShape(type, 'bool'), gradient: noGradientFlows });
}
for (const type of ['And', 'Or', 'Xor']) {
  ops.push({ type, infer: binaryShape(type, 'bool'), gradient: noGradientFlows });
}
ops.push({ type: 'Not', infer: (i, a, g) => sameAsFirst(i, a, g, 'Not'), gradient: noGradientFlows });
for (const type of ['IsNaN', 'IsInf']) {
  ops.push({ type, infer: (i, a, g) => [{ dtype: 'bool', shape: sameAsFirst(i, a, g, type)[0]!.shape }], gradient: noGradientFlows });
}

const CAST_TO: Record<number, DType> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };
ops.push({
  type: 'Cast',
  infer: (inputs, attrs) => {
    const x = requireInput(inputs, 0, 'Cast');
    return [{ dtype: CAST_TO[attrs.to as number] ?? 'float32', shape: x.shape }];
  },
  // Casting between float types passes the gradient (cast back); from bool/int masks there is none.
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) =>
    x!.dtype === 'float32' || x!.dtype === 'float64' ? [graph.op1('Cast', [dy!], { to: x!.dtype === 'float64' ? 11 : 1 })] : [null],
});

ops.push({
  type: 'CastLike',
  nonDifferentiableInputs: [1],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'CastLike');
    return [{ dtype: requireInput(inputs, 1, 'CastLike').dtype, shape: x.shape }];
  },
  // PyTorch 2's exports write it for constants typed like an input: the gradient is dy cast back to x's float type.
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => (x!.dtype === 'float32' || x!.dtype === 'float64' ? [graph.op1('CastLike', [dy!, x!]), null] : [null, null]),
});

ops.push({
  type: 'Where',
  infer: (inputs) => {
    const c = requireInput(inputs, 0, 'Where');
    const a = requireInput(inputs, 1, 'Where');
    const b = requireInput(inputs, 2, 'Where');
    return [{ dtype: a.dtype, shape: broadcastShapes(broadcastShapes(c.shape, a.shape, 'Where'), b.shape, 'Where') }];
  },
  // dy to a where the condition holds and to b elsewhere, summed back over broadcast axes; none to the condition
  gradient: ({ graph, inputs: [c, a, b], gradOutputs: [dy] }) => {
    const zero = graph.op1('Mul', [dy!, graph.scalar(0, dy!.dtype)]);
    return [null, reduceToShape(graph, graph.op1('Where', [c!, dy!, zero]), a!), reduceToShape(graph, graph.op1('Where', [c!, zero, dy!]), b!)];
  },
  nonDifferentiableInputs: [0],
});
