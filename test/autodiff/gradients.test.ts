/**
 * The reverse walk (src/autodiff/gradients.ts): gradients that meet at a value are summed, ops whose
 * rule says "no gradient flows" contribute nothing, ops without a rule are refused with NO_GRADIENT
 * naming the op (only when a gradient would have to pass through them), and every operator Kiln
 * knows that has a gradient rule is gradient-checked by a test file that declares it (GRADIENT_CHECKED).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { addGradients } from '../../src/autodiff/gradients.js';
import { KilnError } from '../../src/errors.js';
import { Graph, type Value } from '../../src/graph/graph.js';
import { opDefinition, registeredOps } from '../../src/ops/index.js';
import { noGradientFlows } from '../../src/graph/op-definition.js';
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

  // Ops Kiln has no rules for, written as imported nodes are (their shapes given).
  const unknown = (op: string, attrs: Record<string, number | number[]>) => (g: Graph, x: Value) => g.importNode(op, [x.name], attrs, [{ name: op.toLowerCase(), dtype: 'float32', shape: [2, 4] }])[0]!;
  const withoutRule: [string, (g: Graph, x: Value) => Value][] = [
    ['LpNormalization', unknown('LpNormalization', { axis: 1, p: 2 })],
    ['MeanVarianceNormalization', unknown('MeanVarianceNormalization', { axes: [0, 1] })],
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
    // LpNormalization has no gradient rule but only reads c, which is not differentiated.
    const normalized = g.importNode('LpNormalization', [c.name], { axis: 1, p: 1 }, [{ name: 'normalized', dtype: 'float32', shape: [2, 2] }])[0]!;
    const loss = g.op1('ReduceSum', [g.op1('Mul', [x, normalized])], { keepdims: 0 });
    const grads = addGradients(g, loss, [x]);
    g.output(grads.get('x')!, 'dx');
    const cv = new Tensor(Float32Array.of(1, 3, 2, 2), [2, 2], 'float32');
    const out = await runGraph(runtime, g, { x: new Tensor(Float32Array.of(5, 6, 7, 8), [2, 2], 'float32'), c: cv });
    // Each row of c divided by its L1 norm.
    assert.deepEqual([...(out.dx!.data as Float32Array)], [0.25, 0.75, 0.5, 0.5]);
  });
});

/*
 * Every op with a gradient rule is gradient-checked: the test files that check rules against finite
 * differences each export GRADIENT_CHECKED, the ops they check, and this test reads those declarations
 * from the sources (importing the files would run their tests here). Ops whose rule says no gradient
 * flows (noGradientFlows) and ops without a rule need no check; the op table says which they are.
 */
const TEST_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test');

/** Each test file's declared GRADIENT_CHECKED list, by path relative to test/. */
function declaredGradientChecks(): Map<string, string[]> {
  const declared = new Map<string, string[]>();
  for (const file of readdirSync(TEST_ROOT, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.test.ts')).sort()) {
    const m = /export const GRADIENT_CHECKED\b[^=]*=\s*\[([^\]]*)\]/.exec(readFileSync(path.join(TEST_ROOT, file), 'utf8'));
    if (m) declared.set(file, [...m[1]!.matchAll(/'([^']+)'/g)].map((q) => q[1]!));
  }
  return declared;
}

describe('operator coverage', () => {
  const declared = declaredGradientChecks();
  const checked = new Set([...declared.values()].flat());

  it('every op with a gradient rule (other than "no gradient flows") is gradient-checked by some test file', () => {
    const withRule = registeredOps().filter((op) => opDefinition(op)?.gradient && opDefinition(op)!.gradient !== noGradientFlows);
    const missing = withRule.filter((op) => !checked.has(op));
    assert.deepEqual(missing, [], `ops with a gradient rule but no finite-difference test (add one and list the op in that file's GRADIENT_CHECKED): ${missing.join(', ')}`);
  });

  it('every declared op has a real gradient rule, and its test file names it', () => {
    assert.ok(declared.size > 0, 'no test file declares GRADIENT_CHECKED');
    for (const [file, ops] of declared) {
      const source = readFileSync(path.join(TEST_ROOT, file), 'utf8').replace(/export const GRADIENT_CHECKED\b[^=]*=\s*\[[^\]]*\]/, '');
      for (const op of ops) {
        const rule = opDefinition(op)?.gradient;
        assert.ok(rule && rule !== noGradientFlows, `${file} declares ${op}, which has no gradient rule to check`);
        assert.ok(source.includes(`'${op}'`) || source.includes(`\`${op}`), `${file} declares ${op} but never builds it`);
      }
    }
  });
});
