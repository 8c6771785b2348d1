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

/**
 * A gradient check of a graph that is already built, on given input values (the conformance cases'
 * own inputs: test/conformance/gradients.test.ts). The loss is the same Σ_k ReduceSum(y_k · R_k) over
 * the graph's float outputs (float32 or float64: R_k takes the output's dtype); the finite
 * differences run on the forward model alone (the graph plus the loss, serialized before
 * addGradients), the analytic gradient on the gradient model. Inputs may be float32 or float64; the
 * step is taken in the input's own precision.
 *
 * At most `maxElements` elements per input are perturbed, a seeded sample (a cap on runtime: each
 * element costs three forward runs). Besides the central difference, each sampled element's one-sided
 * differences (f(x+h) − f(x))/h and (f(x) − f(x−h))/h are kept: where they disagree by O(1) the input
 * sits on a kink (ReLU at 0, a tie of Max, a Clip bound) and no finite difference is defined there.
 */
export interface GraphGradCase {
  /** The graph with its outputs; it gains the loss and gradient nodes. */
  graph: Graph;
  /** A value for every graph input. */
  feeds: Record<string, Tensor>;
  /** Float inputs to differentiate with respect to. */
  wrt: string[];
  h: number;
  maxElements?: number;
  seed?: number;
  opset?: number;
}

export interface InputGradCheck {
  /** Flat indices of the perturbed elements. */
  sampled: number[];
  /** analytic and central-difference gradient at the sampled elements */
  analytic: Float64Array;
  numeric: Float64Array;
  /** |right − left one-sided difference| at the sampled elements */
  oneSidedGap: Float64Array;
  /** ‖analytic − numeric‖₂ / max(‖analytic‖₂, ‖numeric‖₂) over the sample */
  error: number;
}

export interface GraphGradCheck {
  /** per differentiated input */
  inputs: Record<string, InputGradCheck>;
  /** the forward model's outputs at the given values (the graph's own outputs, by name) */
  outputs: Record<string, Tensor>;
}

export async function graphGradientCheck(runtime: Runtime, c: GraphGradCase): Promise<GraphGradCheck> {
  const { graph } = c;
  const rng = new Random(c.seed ?? 1234);
  const floats = graph.outputs.filter((y) => y.dtype === 'float32' || y.dtype === 'float64');
  assert.ok(floats.length > 0, 'the graph has no float output to build a loss from');
  let loss: Value | undefined;
  for (const y of floats) {
    const r = graph.constant(weightsFor(concreteShape(y.shape, undefined, `output '${y.name}'`), y.dtype, rng), 'R');
    const term = graph.op1('ReduceSum', [graph.op1('Mul', [y, r])], { keepdims: 0 });
    loss = loss ? graph.op1('Add', [loss, term]) : term;
  }
  graph.output(loss!, 'gradcheck/loss');
  const forwardBytes = encodeModel(modelToProto(graph, {}, c.opset));
  const inputs = c.wrt.map((n) => graph.value(n));
  const grads = addGradients(graph, loss!, inputs);
  for (const n of c.wrt) graph.output(grads.get(n)!, `gradcheck/grad/${n}`);
  const gradientBytes = encodeModel(modelToProto(graph, {}, c.opset));

  const results: Record<string, InputGradCheck> = {};
  const gradientSession = await runtime.load(gradientBytes);
  try {
    const out = await runtime.run(gradientSession, c.feeds, { fetch: c.wrt.map((n) => `gradcheck/grad/${n}`) });
    for (const n of c.wrt) {
      const g = out[`gradcheck/grad/${n}`]!;
      assert.deepEqual([...g.shape], [...c.feeds[n]!.shape], `gradient of '${n}' has the input's shape`);
      results[n] = { sampled: [], analytic: Float64Array.from(g.data as Float32Array), numeric: new Float64Array(0), oneSidedGap: new Float64Array(0), error: 0 };
    }
  } finally {
    await runtime.release(gradientSession);
  }

  const forward = await runtime.load(forwardBytes);
  let outputs: Record<string, Tensor>;
  try {
    outputs = await runtime.run(forward, c.feeds);
    const lossAt = async (name: string, data: Float32Array | Float64Array) => {
      const t = c.feeds[name]!;
      const out = await runtime.run(forward, { ...c.feeds, [name]: new Tensor(data as Float32Array, [...t.shape], t.dtype) }, { fetch: ['gradcheck/loss'] });
      return Number(out['gradcheck/loss']!.data[0]);
    };
    for (const n of c.wrt) {
      const base = c.feeds[n]!.data as Float32Array | Float64Array;
      const size = base.length;
      const cap = c.maxElements ?? size;
      const sampled = size <= cap ? Array.from({ length: size }, (_, i) => i) : [...rng.permutation(size).slice(0, cap)].sort((a, b) => a - b);
      const f0 = await lossAt(n, base);
      const numeric = new Float64Array(sampled.length);
      const gap = new Float64Array(sampled.length);
      for (const [k, i] of sampled.entries()) {
        const plus = base.slice();
        const minus = base.slice();
        plus[i] = base[i]! + c.h;
        minus[i] = base[i]! - c.h;
        const fp = await lossAt(n, plus);
        const fm = await lossAt(n, minus);
        // The steps actually taken in the input's precision, not the nominal h.
        const up = plus[i]! - base[i]!;
        const down = base[i]! - minus[i]!;
        numeric[k] = (fp - fm) / (up + down);
        gap[k] = Math.abs((fp - f0) / up - (f0 - fm) / down);
      }
      const analytic = Float64Array.from(sampled, (i) => results[n]!.analytic[i]!);
      const diff = Float64Array.from(numeric, (v, k) => analytic[k]! - v);
      const error = norm(diff) / Math.max(norm(numeric), norm(analytic), 1e-12);
      results[n] = { sampled, analytic, numeric, oneSidedGap: gap, error };
    }
  } finally {
    await runtime.release(forward);
  }
  return { inputs: results, outputs };
}
