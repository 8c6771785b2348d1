/**
 * Gradient checking against central finite differences, shared by the op tests (test/ops/) and the
 * autodiff tests.
 *
 * The harness builds a Graph with float32 inputs, applies the op under test, reduces every output to a
 * scalar loss = Σ_k ReduceSum(y_k · R_k) with fixed random R_k (so every output element, and its
 * position, matters), calls `addGradients(graph, loss, inputs)`, serializes the graph with
 * `encodeModel(modelToProto(graph))` and runs it in a `Runtime`. The numeric gradient re-runs the same
 * session with each input element moved by ±h. The op's outputs are graph outputs as well, and each
 * shape the op's shape rule inferred must equal the shape ONNX Runtime produced (so every gradient
 * case is a shape-rule case too). `opset` sets the opset the test model declares.
 *
 * Why h ≈ 1e-2 and a normwise tolerance of about 2e-2: everything runs in float32 (ε ≈ 6e-8). The
 * loss is a sum of a few dozen O(1) terms, so each evaluation carries a rounding error of about
 * 1e-6; divided by 2h that is ~1e-4 in a gradient element, while the truncation error of the central
 * difference is O(h²) ≈ 1e-4. A much smaller h lets rounding dominate, a much larger one truncation.
 * A wrong rule (a missing factor, a transposed kernel, a gradient on the wrong element) is off by
 * O(1) relative to the gradient, far above either. Inputs are kept away from kinks (ReLU and Abs at 0,
 * MaxPool / ReduceMax ties, Clip bounds) by more than h, so the finite difference is well defined.
 */
import assert from 'node:assert/strict';
import { addGradients } from '../../src/autodiff/gradients.js';
import { Graph, type Shape, type Value } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import { Random } from '../../src/random.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { Tensor, type DType } from '../../src/tensor.js';

/** How an input's values are drawn (all seeded). */
export type Fill =
  /** uniform in [-1, 1) */
  | 'uniform'
  /** ±uniform(0.2, 1): at least 0.2 from 0 (ReLU, LeakyReLU, Abs kinks) */
  | 'awayFromZero'
  /** uniform(0.5, 1.5): for Log, Sqrt, divisors, Pow bases */
  | 'positive'
  /** a shuffled grid with spacing 0.05 > 2h: no ties, and ±h never changes which element is largest */
  | 'distinct'
  | Float32Array;

export interface InputSpec {
  shape: number[];
  fill?: Fill;
}

export interface GradCase {
  inputs: Record<string, InputSpec>;
  /** Emits the op under test; every returned value feeds the loss. */
  build: (graph: Graph, x: Record<string, Value>) => Value | Value[];
  /** Inputs to differentiate with respect to (default: all). */
  wrt?: string[];
  /** Declare the first dimension of these inputs as the symbolic batch dimension 'N'. */
  symbolicBatch?: string[];
  /** Size of the symbolic batch dimension when only inputs the build declares itself carry it. */
  batch?: number;
  /** Fixed feeds for inputs that the build function declares itself (e.g. a model's 'input'). */
  feeds?: Record<string, Tensor>;
  h?: number;
  tolerance?: number;
  seed?: number;
  /**
   * The opset the test model declares (default: Kiln's, DEFAULT_OPSET). Ops whose later input forms
   * are under test (ReduceMean's axes input, opset 18) need the model to say so to run.
   */
  opset?: number;
}

export interface GradCheckResult {
  loss: number;
  analytic: Record<string, Float32Array>;
  numeric: Record<string, Float64Array>;
  /** ‖analytic − numeric‖₂ / max(‖analytic‖₂, ‖numeric‖₂) per input. */
  errors: Record<string, number>;
}

export function fillValues(fill: Fill, size: number, rng: Random): Float32Array {
  if (fill instanceof Float32Array) {
    assert.equal(fill.length, size, 'explicit input values have the wrong length');
    return Float32Array.from(fill);
  }
  const out = new Float32Array(size);
  switch (fill) {
    case 'uniform':
      for (let i = 0; i < size; i++) out[i] = rng.uniform(-1, 1);
      break;
    case 'awayFromZero':
      for (let i = 0; i < size; i++) out[i] = (rng.next() < 0.5 ? -1 : 1) * rng.uniform(0.2, 1);
      break;
    case 'positive':
      for (let i = 0; i < size; i++) out[i] = rng.uniform(0.5, 1.5);
      break;
    case 'distinct': {
      const order = rng.permutation(size);
      for (let i = 0; i < size; i++) out[i] = (order[i]! - size / 2) * 0.05;
      break;
    }
  }
  return out;
}

function productOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/** A constant tensor of the value's dtype and (static) shape with seeded values in [-1, 1). */
function weightsFor(shape: number[], dtype: DType, rng: Random): Tensor {
  const n = productOf(shape);
  if (dtype === 'float64') return new Tensor(Float64Array.from({ length: n }, () => rng.uniform(-1, 1)), shape, 'float64');
  return new Tensor(Float32Array.from({ length: n }, () => rng.uniform(-1, 1)), shape, 'float32');
}

/** Static shape of an output, with the symbolic batch dimension replaced by its actual size. */
function concreteShape(shape: Shape | null, batch: number | undefined, what: string): number[] {
  assert.ok(shape, `${what}: the op's shape rule gave no shape`);
  return shape.map((d) => {
    if (typeof d === 'number') return d;
    assert.ok(d === 'N' && batch !== undefined, `${what}: dimension ${String(d)} is not static`);
    return batch;
  });
}

/** Builds the gradient-check graph, runs it, and computes finite differences. */
export async function gradientCheck(runtime: Runtime, c: GradCase): Promise<GradCheckResult> {
  const rng = new Random(c.seed ?? 1234);
  const graph = new Graph('gradcheck');
  const values: Record<string, Float32Array> = {};
  const inputs: Record<string, Value> = {};
  let batch: number | undefined = c.batch;
  for (const [name, spec] of Object.entries(c.inputs)) {
    values[name] = fillValues(spec.fill ?? 'uniform', productOf(spec.shape), rng);
    const symbolic = c.symbolicBatch?.includes(name) ?? false;
    if (symbolic) batch = spec.shape[0];
    inputs[name] = graph.input(name, 'float32', symbolic ? ['N', ...spec.shape.slice(1)] : spec.shape);
  }
  const built = c.build(graph, inputs);
  const outputs = Array.isArray(built) ? built : [built];
  let loss: Value | undefined;
  outputs.forEach((y, k) => {
    const r = graph.constant(weightsFor(concreteShape(y.shape, batch, `output ${k}`), y.dtype, rng), 'R');
    const term = graph.op1('ReduceSum', [graph.op1('Mul', [y, r])], { keepdims: 0 });
    loss = loss ? graph.op1('Add', [loss, term]) : term;
  });
  const wrt = c.wrt ?? Object.keys(c.inputs);
  const grads = addGradients(graph, loss!, wrt.map((n) => inputs[n]!));
  graph.output(loss!, 'loss');
  for (const n of wrt) graph.output(grads.get(n)!, `grad/${n}`);
  // The op's outputs too: each shape its rule inferred must be the shape ONNX Runtime produces.
  outputs.forEach((y, k) => graph.output(y, `output/${k}`));
  const session = await runtime.load(encodeModel(modelToProto(graph, {}, c.opset)));
  try {
    const feeds = (override?: [string, Float32Array]): Record<string, Tensor> => ({
      ...c.feeds,
      ...Object.fromEntries(
        Object.entries(c.inputs).map(([name, spec]) => [name, new Tensor(override?.[0] === name ? override[1] : values[name]!, spec.shape, 'float32')]),
      ),
    });
    const lossOf = async (name: string, data: Float32Array) => {
      const out = await runtime.run(session, feeds([name, data]), { fetch: ['loss'] });
      return Number(out.loss!.data[0]);
    };
    const out = await runtime.run(session, feeds());
    outputs.forEach((y, k) => {
      const inferred = concreteShape(y.shape, batch, `output ${k}`);
      assert.deepEqual([...out[`output/${k}`]!.shape], inferred, `output ${k}: the shape rule inferred [${inferred}], ONNX Runtime produced another`);
    });
    const analytic: Record<string, Float32Array> = {};
    const numeric: Record<string, Float64Array> = {};
    const errors: Record<string, number> = {};
    const h = c.h ?? 1e-2;
    for (const name of wrt) {
      const g = out[`grad/${name}`]!;
      assert.deepEqual([...g.shape], c.inputs[name]!.shape, `gradient of '${name}' has the input's shape`);
      analytic[name] = g.data as Float32Array;
      const base = values[name]!;
      const num = new Float64Array(base.length);
      for (let i = 0; i < base.length; i++) {
        const plus = Float32Array.from(base);
        const minus = Float32Array.from(base);
        plus[i] = base[i]! + h;
        minus[i] = base[i]! - h;
        // The step actually taken in float32, not the nominal 2h.
        num[i] = ((await lossOf(name, plus)) - (await lossOf(name, minus))) / (plus[i]! - minus[i]!);
      }
      numeric[name] = num;
      const diff = Float64Array.from(num, (v, i) => analytic[name]![i]! - v);
      errors[name] = norm(diff) / Math.max(norm(num), norm(analytic[name]!), 1e-12);
    }
    return { loss: Number(out.loss!.data[0]), analytic, numeric, errors };
  } finally {
    await runtime.release(session);
  }
}

/**
 * Runs a gradient check and asserts, for each input, that the analytic gradient matches the numeric one
 * (normwise relative error ≤ tolerance, and no single element off by more than tolerance·‖numeric‖∞)
 * and that the gradient is not trivially zero.
 */
export async function assertGradients(runtime: Runtime, c: GradCase): Promise<GradCheckResult> {
  const r = await gradientCheck(runtime, c);
  const tolerance = c.tolerance ?? 2e-2;
  if (process.env.GRADCHECK_VERBOSE) console.log('gradcheck errors', JSON.stringify(r.errors));
  for (const [name, err] of Object.entries(r.errors)) {
    const a = r.analytic[name]!;
    const n = r.numeric[name]!;
    let worst = 0;
    let maxAbs = 0;
    for (let i = 0; i < n.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(n[i]!));
      if (Math.abs(a[i]! - n[i]!) > Math.abs(a[worst]! - n[worst]!)) worst = i;
    }
    const detail = `d loss/d ${name}: normwise error ${err.toExponential(2)}; worst element [${worst}] analytic ${a[worst]} vs numeric ${n[worst]}`;
    assert.ok(maxAbs > 1e-3, `d loss/d ${name} is (numerically) zero: the check would prove nothing`);
    assert.ok(err <= tolerance, detail);
    assert.ok(Math.abs(a[worst]! - n[worst]!) <= tolerance * maxAbs, detail);
  }
  return r;
}

/** Builds, serializes and runs a graph once (for checks that are not finite differences). */
export async function runGraph(runtime: Runtime, graph: Graph, feeds: Record<string, Tensor>, opset?: number): Promise<Record<string, Tensor>> {
  const session = await runtime.load(encodeModel(modelToProto(graph, {}, opset)));
  try {
    return await runtime.run(session, feeds);
  } finally {
    await runtime.release(session);
  }
}
