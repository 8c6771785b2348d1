import type { Graph, Value } from '../graph/graph.js';
import { sameShape, type GradientRule, type OpDefinition } from '../graph/op-definition.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const TRIGONOMETRIC_OPS: readonly OpDefinition[] = ops;

/*
 * Trigonometric and hyperbolic functions, elementwise. Exporters write Sin and Cos for sinusoidal
 * position and time embeddings and rotary attention, and SIREN-style networks (sin activations) put
 * them on the path to the loss. Each rule multiplies dy by the derivative, built from the input x or
 * from the output y, whichever needs fewer ops.
 */


const one = (g: Graph, like: Value) => g.scalar(1, like.dtype);

/** dx = dy · f′, with f′ built by `derivative` from the input and the output. */
const times = (derivative: (g: Graph, x: Value, y: Value) => Value): GradientRule => ({ graph, inputs: [x], outputs: [y], gradOutputs: [dy] }) => [
  graph.op1('Mul', [dy!, derivative(graph, x!, y!)]),
];

ops.push({
  type: 'Sin',
  infer: sameShape('Sin'),
  // d sin x = cos x
  gradient: times((g, x) => g.op1('Cos', [x])),
});

ops.push({
  type: 'Cos',
  infer: sameShape('Cos'),
  // d cos x = −sin x
  gradient: times((g, x) => g.op1('Neg', [g.op1('Sin', [x])])),
});

ops.push({
  type: 'Tan',
  infer: sameShape('Tan'),
  // d tan x = 1 + tan² x (from the output)
  gradient: times((g, _x, y) => g.op1('Add', [one(g, y), g.op1('Mul', [y, y])])),
});

ops.push({
  type: 'Asin',
  infer: sameShape('Asin'),
  // d asin x = 1/√(1 − x²)
  gradient: times((g, x) => g.op1('Reciprocal', [g.op1('Sqrt', [g.op1('Sub', [one(g, x), g.op1('Mul', [x, x])])])])),
});

ops.push({
  type: 'Acos',
  infer: sameShape('Acos'),
  // d acos x = −1/√(1 − x²)
  gradient: times((g, x) => g.op1('Neg', [g.op1('Reciprocal', [g.op1('Sqrt', [g.op1('Sub', [one(g, x), g.op1('Mul', [x, x])])])])])),
});

ops.push({
  type: 'Atan',
  infer: sameShape('Atan'),
  // d atan x = 1/(1 + x²)
  gradient: times((g, x) => g.op1('Reciprocal', [g.op1('Add', [one(g, x), g.op1('Mul', [x, x])])])),
});

ops.push({
  type: 'Sinh',
  infer: sameShape('Sinh'),
  // d sinh x = cosh x
  gradient: times((g, x) => g.op1('Cosh', [x])),
});

ops.push({
  type: 'Cosh',
  infer: sameShape('Cosh'),
  // d cosh x = sinh x
  gradient: times((g, x) => g.op1('Sinh', [x])),
});

ops.push({
  type: 'Asinh',
  infer: sameShape('Asinh'),
  // d asinh x = 1/√(x² + 1)
  gradient: times((g, x) => g.op1('Reciprocal', [g.op1('Sqrt', [g.op1('Add', [g.op1('Mul', [x, x]), one(g, x)])])])),
});

ops.push({
  type: 'Acosh',
  infer: sameShape('Acosh'),
  // d acosh x = 1/√(x² − 1)
  gradient: times((g, x) => g.op1('Reciprocal', [g.op1('Sqrt', [g.op1('Sub', [g.op1('Mul', [x, x]), one(g, x)])])])),
});

ops.push({
  type: 'Atanh',
  infer: sameShape('Atanh'),
  // d atanh x = 1/(1 − x²)
  gradient: times((g, x) => g.op1('Reciprocal', [g.op1('Sub', [one(g, x), g.op1('Mul', [x, x])])])),
});
