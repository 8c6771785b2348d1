/**
 * The reverse walk (src/autodiff/gradients.ts): gradients that meet at a value are summed, ops whose
 * rule says "no gradient flows" contribute nothing, ops without a rule are refused with NO_GRADIENT
 * naming the op (only when a gradient would have to pass through them), and every operator Kiln
 * registers is either gradient-checked in test/ops/ or declared here as having no gradient.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addGradients } from '../../src/autodiff/gradients.js';
import { KilnError } from '../../src/errors.js';
import { Graph, type Value } from '../../src/graph/graph.js';
import { opDefinition, registeredOps } from '../../src/ops/index.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';
import { assertGradients, runGraph } from './gradcheck.js';

const runtime = new Runtime();
after(() => runtime.close());

function noGradient(...fragments: string[]) {
  return (error: unknown) => {
    assert.ok(error instanceof KilnError, `expected a KilnError, got ${String(error)}`);
    assert.equal(error.code, 'NO_GRADIENT');
    for (const f of fragments) assert.ok(error.message.includes(f), `message "${error.message}" should mention "${f}"`);
    return true;
  };
}

describe('addGradients: the walk', () => {
  it('sums the gradients that meet at a value: d(x·x + x)/dx = 2x + 1', async () => {
    const r = await assertGradients(runtime, {
      inputs: { x: { shape: [2, 3] } },
      build: (g, v) => g.op1('Add', [g.op1('Mul', [v.x!, v.x!]), v.x!]),
    });
    // With loss = Σ (x² + x)·R, the gradient is (2x + 1)·R exactly, so it matches the numeric one closely.
    assert.ok(r.errors.x! < 1e-3);
  });

  it('differentiates a chain of several ops and several parameters at once', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [4, 3] }, w: { shape: [3, 2] }, b: { shape: [2] } },
      build: (g, v) => g.op1('Softmax', [g.op1('Tanh', [g.op1('Gemm', [v.x!, v.w!, v.b!])])]),
    });
  });

  it('ops whose rule lets no gradient through (Floor, Sign) add nothing', async () => {
    const r = await assertGradients(runtime, {
      inputs: { x: { shape: [2, 3], fill: Float32Array.of(0.13, -0.42, 0.77, 1.31, -1.52, 0.05) } },
      // The finite difference of Floor(x)+Sign(x) is 0 away from integers and 0, so both sides see only x.
      build: (g, v) => [v.x!, g.op1('Floor', [v.x!]), g.op1('Sign', [v.x!])],
    });
    assert.ok(r.errors.x! < 1e-3);
  });

  it('a parameter reached only through no-gradient ops is refused, naming it', () => {
    const g = new Graph();
    const p = g.input('p', 'float32', [3]);
    const loss = g.op1('ReduceSum', [g.op1('Floor', [p])], { keepdims: 0 });
    assert.throws(() => addGradients(g, loss, [p]), noGradient("'p'"));
  });

  it('a parameter the loss does not depend on is refused, naming it', () => {
    const g = new Graph();
    const p = g.input('p', 'float32', [3]);
    const unused = g.input('unused_weight', 'float32', [3]);
    const loss = g.op1('ReduceSum', [g.op1('Mul', [p, p])], { keepdims: 0 });
    g.op1('Neg', [unused]);
    assert.throws(() => addGradients(g, loss, [p, unused]), noGradient("'unused_weight'", 'does not depend'));
  });

  const indices = (g: Graph) => g.constant(new Tensor(BigInt64Array.from([0n, 1n, 0n, 1n, 0n, 1n, 0n, 1n]), [2, 4], 'int64'));
  const withoutRule: [string, (g: Graph, x: Value) => Value][] = [
    ['GatherElements', (g, x) => g.op1('GatherElements', [x, indices(g)], { axis: 1 })],
    ['ScatterElements', (g, x) => g.op1('ScatterElements', [x, indices(g), x], { axis: 1 })],
    ['ConvTranspose', (g, x) => g.op1('ConvTranspose', [g.op1('Reshape', [x, g.int64s([1, 2, 2, 2])]), g.constant(new Tensor(new Float32Array(8).fill(1), [2, 1, 2, 2], 'float32'))])],
  ];
  for (const [op, emit] of withoutRule) {
    it(`an op without a gradient rule (${op}) on the path is refused with NO_GRADIENT naming it`, () => {
      const g = new Graph();
      const x = g.input('x', 'float32', [2, 4]);
      const loss = g.op1('ReduceSum', [emit(g, x)], { keepdims: 0 });
      assert.throws(() => addGradients(g, loss, [x]), noGradient(`'${op}'`, 'no gradient rule'));
    });
  }

  it('an op without a rule is fine off the path from the parameters to the loss', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 2]);
    const c = g.input('c', 'float32', [2, 2]);
    // GatherElements has no gradient rule but only reads c, which is not differentiated.
    const picks = g.constant(new Tensor(BigInt64Array.of(1n, 0n, 0n, 0n), [2, 2], 'int64'));
    const gathered = g.op1('GatherElements', [c, picks], { axis: 1 });
    const loss = g.op1('ReduceSum', [g.op1('Mul', [x, gathered])], { keepdims: 0 });
    const grads = addGradients(g, loss, [x]);
    g.output(grads.get('x')!, 'dx');
    const cv = new Tensor(Float32Array.of(1, 2, 3, 4), [2, 2], 'float32');
    const out = await runGraph(runtime, g, { x: new Tensor(Float32Array.of(5, 6, 7, 8), [2, 2], 'float32'), c: cv });
    // Row 0 picks c[0][1], c[0][0]; row 1 picks c[1][0] twice.
    assert.deepEqual([...(out.dx!.data as Float32Array)], [2, 1, 3, 3]);
  });
});

/*
 * Every registered op must be accounted for. When an op gains a gradient rule it needs a finite-
 * difference check in test/ops/ (and its name moved to CHECKED); a new op without a rule goes to
 * NO_RULE and is refused by the walk.
 */
const CHECKED = [
  // test/ops/elementwise.test.ts
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Neg', 'Identity', 'Exp', 'Log', 'Sqrt', 'Abs', 'Reciprocal', 'Clip', 'Cast', 'Where', 'Erf',
  // test/ops/activation.test.ts
  'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Softmax', 'LogSoftmax', 'Elu', 'Selu', 'Softplus', 'HardSigmoid', 'HardSwish', 'PRelu', 'Gelu',
  // test/ops/conv.test.ts, pool.test.ts, matmul.test.ts
  'Conv', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'Gemm', 'MatMul',
  // test/ops/shape.test.ts
  'Flatten', 'Reshape', 'Transpose', 'Concat', 'Split', 'Unsqueeze', 'Squeeze', 'Slice', 'Pad', 'Gather', 'Expand', 'Tile', 'Resize',
  // test/ops/reduce.test.ts
  'ReduceSum', 'ReduceMean', 'ReduceMax', 'CumSum',
  // test/ops/normalization.test.ts
  'BatchNormalization', 'Dropout', 'LayerNormalization', 'InstanceNormalization',
  // test/optimize/quantize/quantization-ops.test.ts (straight-through estimator, checked against its definition)
  'QuantizeLinear', 'DequantizeLinear',
];
/** Rules that state that no gradient flows (comparisons, rounding, indices, shapes). */
const NO_GRADIENT_FLOWS = ['Constant', 'ConstantOfShape', 'Sign', 'Floor', 'Ceil', 'Round', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Not', 'Shape', 'Size', 'ArgMax', 'OneHot'];
const NO_RULE = ['ConvTranspose', 'ScatterElements', 'ScatterND', 'GatherElements', 'DynamicQuantizeLinear', 'MatMulInteger', 'ConvInteger'];

describe('operator coverage', () => {
  it('every registered op is gradient-checked, declared gradient-free, or has no rule', () => {
    const accounted = new Set([...CHECKED, ...NO_GRADIENT_FLOWS, ...NO_RULE]);
    const missing = registeredOps().filter((op) => !accounted.has(op));
    assert.deepEqual(missing, [], `ops with no test accounting for their gradient: ${missing.join(', ')}`);
    for (const op of [...CHECKED, ...NO_GRADIENT_FLOWS]) assert.ok(opDefinition(op)?.gradient, `${op} has a gradient rule`);
    for (const op of NO_RULE) assert.equal(opDefinition(op)?.gradient, undefined, `${op} has no gradient rule`);
  });
});
