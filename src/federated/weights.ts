// Owns the form in which federated learning moves a model's knowledge around: its trainable weights as
// a flat list of named Float32Arrays (what a client sends and the coordinator aggregates), reading
// and writing them on a model, and the small elementwise arithmetic the strategies do on them once
// per round (differences, norms, finiteness checks).
import { KilnError, formatShape } from '../errors.js';
import type { Model } from '../model/model.js';
import { Tensor } from '../tensor.js';

/** One trainable weight: its name in the model, its shape and its values (row-major). */
export interface NamedWeight {
  /** The weight's name in the model (e.g. 'conv2d_1/kernel'). */
  name: string;
  /** Its shape. */
  dims: number[];
  /** Its values, `dims` multiplied out. */
  data: Float32Array;
}

/** A model's trainable weights in the model's parameter order: what federated rounds send and average. */
export type ModelWeights = NamedWeight[];

/**
 * The model's trainable weights, copied (changing them does not change the model). Non-trainable
 * parameters (batch normalization's moving statistics) stay with each model and are not federated.
 */
export function getWeights(model: Model): ModelWeights {
  const out: ModelWeights = [];
  for (const p of model.paramInfos()) {
    if (!p.spec.trainable) continue;
    const t = model.weights.get(p.name);
    if (!t) throw new KilnError('INVALID_ARGUMENT', `model '${model.name}' has no value for its weight '${p.name}'`);
    out.push({ name: p.name, dims: [...t.shape], data: Float32Array.from(t.data as ArrayLike<number>) });
  }
  return out;
}

/**
 * Sets the model's trainable weights (copies of `weights`). Every trainable weight of the model must be
 * there once, with its shape, and finite; nothing changes on a mismatch.
 */
export function setWeights(model: Model, weights: ModelWeights): void {
  checkCompatible(getWeightSpecs(model), weights, `weights for model '${model.name}'`);
  checkFiniteWeights(weights, `weights for model '${model.name}'`);
  model.setWeights(new Map(weights.map((w) => [w.name, new Tensor(Float32Array.from(w.data), [...w.dims], 'float32')])));
}

/** A weight's name and shape, without its values. */
export interface WeightSpec {
  /** The weight's name in the model. */
  name: string;
  /** Its shape. */
  dims: number[];
}

/** Names and shapes of a model's trainable weights, in order (what `setWeights` expects). */
export function getWeightSpecs(model: Model): WeightSpec[] {
  return model.paramInfos().filter((p) => p.spec.trainable).map((p) => ({ name: p.name, dims: [...p.spec.shape] }));
}

/**
 * Checks that `got` has exactly the weights of `expected`, same names in the same order and same
 * shapes, with data of the right length; `what` names the weights in the error.
 */
export function checkCompatible(expected: readonly { name: string; dims: readonly number[] }[], got: ModelWeights, what: string): void {
  if (!Array.isArray(got)) throw new KilnError('INVALID_ARGUMENT', `${what}: expected a list of weights, got ${typeof got}`);
  if (got.length !== expected.length) {
    throw new KilnError('INVALID_SHAPE', `${what}: expected ${expected.length} weights (${expected.map((e) => e.name).join(', ')}), got ${got.length} (${got.map((g) => g?.name).join(', ')})`);
  }
  expected.forEach((e, i) => {
    const g = got[i]!;
    if (g.name !== e.name) throw new KilnError('INVALID_ARGUMENT', `${what}: weight ${i} should be '${e.name}', got '${g.name}'`);
    if (g.dims.length !== e.dims.length || g.dims.some((d, k) => d !== e.dims[k])) {
      throw new KilnError('INVALID_SHAPE', `${what}: weight '${e.name}' should have shape ${formatShape(e.dims)}, got ${formatShape(g.dims)}`);
    }
    const size = e.dims.reduce((a, b) => a * b, 1);
    if (!(g.data instanceof Float32Array) || g.data.length !== size) {
      throw new KilnError('INVALID_SHAPE', `${what}: weight '${e.name}' should hold ${size} float32 values, got ${g.data instanceof Float32Array ? g.data.length : typeof g.data}`);
    }
  });
}

/** Throws a KilnError naming the first weight holding a NaN or infinity. */
export function checkFiniteWeights(weights: ModelWeights, what: string): void {
  for (const w of weights) {
    const d = w.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i]!)) throw new KilnError('INVALID_DATA', `${what}: weight '${w.name}' holds ${d[i]} at index ${i}; NaN and infinite values are rejected`);
    }
  }
}

/** Whether every value is finite. */
export function allFinite(weights: ModelWeights): boolean {
  for (const w of weights) for (let i = 0; i < w.data.length; i++) if (!Number.isFinite(w.data[i]!)) return false;
  return true;
}

/** A copy of the weights. */
export function cloneWeights(weights: ModelWeights): ModelWeights {
  return weights.map((w) => ({ name: w.name, dims: [...w.dims], data: Float32Array.from(w.data) }));
}

/** Same names and shapes, all zeros. */
export function zerosLike(weights: ModelWeights): ModelWeights {
  return weights.map((w) => ({ name: w.name, dims: [...w.dims], data: new Float32Array(w.data.length) }));
}

/** Builds new weights of the same names and shapes, each value `f(a[i], b[i])`. */
export function combine(a: ModelWeights, b: ModelWeights, f: (x: number, y: number) => number): ModelWeights {
  checkCompatible(a, b, 'combined weights');
  return a.map((w, k) => {
    const x = w.data;
    const y = b[k]!.data;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = f(x[i]!, y[i]!);
    return { name: w.name, dims: [...w.dims], data: out };
  });
}

/** `a − b`, weight by weight: a client's update is its weights minus the global ones. */
export function subtractWeights(a: ModelWeights, b: ModelWeights): ModelWeights {
  return combine(a, b, (x, y) => x - y);
}

/** `a + b`, weight by weight. */
export function addWeights(a: ModelWeights, b: ModelWeights): ModelWeights {
  return combine(a, b, (x, y) => x + y);
}

/** Every value times `s`. */
export function scaleWeights(a: ModelWeights, s: number): ModelWeights {
  return a.map((w) => ({ name: w.name, dims: [...w.dims], data: w.data.map((v) => v * s) }));
}

/** The L2 norm of all values together (accumulated in float64). */
export function l2Norm(weights: ModelWeights): number {
  let sum = 0;
  for (const w of weights) for (let i = 0; i < w.data.length; i++) sum += w.data[i]! * w.data[i]!;
  return Math.sqrt(sum);
}

/** Number of values over all weights. */
export function countValues(weights: ModelWeights): number {
  return weights.reduce((a, w) => a + w.data.length, 0);
}

/** All values in one vector, in order (the layout of the compiled training step's parameters). */
export function flattenWeights(weights: ModelWeights): Float32Array {
  const out = new Float32Array(countValues(weights));
  let offset = 0;
  for (const w of weights) {
    out.set(w.data, offset);
    offset += w.data.length;
  }
  return out;
}
