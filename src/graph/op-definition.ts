/**
 * What an operator definition is (OpDefinition: shape rule, gradient rule) and the helpers the shape
 * rules share. The definitions themselves are in src/ops/, and the table of them in src/ops/index.ts.
 */
import { KilnError, formatShape } from '../errors.js';
import type { DType } from '../tensor.js';
import type { Attrs, Graph, Node, Shape, Value } from './graph.js';

export interface InferredValue {
  dtype: DType;
  shape: Shape | null;
}

/** What a gradient rule gets: the forward node, its values and the gradients reaching its outputs. */
export interface GradientContext {
  graph: Graph;
  node: Node;
  inputs: (Value | null)[];
  outputs: Value[];
  /** Gradient of the loss with respect to each output (null where no gradient flows). */
  gradOutputs: (Value | null)[];
  options: GradientOptions;
}

/** Choices between gradient formulations that differ in exactness and speed. */
export interface GradientOptions {
  /**
   * MaxPool windows whose maximum occurs more than once: 'first' sends the gradient to the first
   * occurrence in row-major order, as PyTorch does (exact parity; default); 'all' sends it to every
   * tied position, which skips the tie-break's extra passes over the input (1.15–1.21× a small CNN's
   * training step: bench/train/maxpool-ties.ts) at the price of a larger gradient on uniform image
   * regions.
   */
  maxPoolTies?: 'first' | 'all';
}

/** Returns the gradient of the loss with respect to each input (null where none flows or is needed). */
export type GradientRule = (ctx: GradientContext) => (Value | null)[];

/**
 * One operator as Kiln knows it: its shape rule and, where it is differentiable, its gradient rule,
 * written side by side in one file under src/ops/.
 */
export interface OpDefinition {
  type: string;
  /** outputCount: how many outputs the node has (Split without split sizes divides by it). */
  infer: (inputs: (Value | null)[], attrs: Attrs, graph: Graph, outputCount: number) => InferredValue[];
  gradient?: GradientRule;
  /** Inputs that never carry a gradient (shapes, axes, indices): the walk skips them. */
  nonDifferentiableInputs?: number[];
}

/**
 * The gradient rule of ops through which no gradient flows (comparisons, rounding, indices, shapes):
 * the walk differentiates through them, and they contribute nothing. One shared rule, so the op table
 * can tell "no gradient flows" from "no rule" (which the walk refuses).
 */
export const noGradientFlows: GradientRule = () => [];

/* Helpers shared by the shape rules. */

/** The shape rule of ops whose output is their first input's type and shape (activations, elementwise functions). */
export const sameShape = (type: string) => (inputs: (Value | null)[]): InferredValue[] => {
  const x = requireInput(inputs, 0, type);
  return [{ dtype: x.dtype, shape: x.shape }];
};

export function requireInput(inputs: (Value | null)[], k: number, opType: string): Value {
  const v = inputs[k];
  if (!v) throw new KilnError('INVALID_ARGUMENT', `${opType}: input ${k} is required`);
  return v;
}

/** Numpy-style broadcasting of two shapes (ONNX multidirectional broadcasting). */
export function broadcastShapes(a: Shape | null, b: Shape | null, opType: string): Shape | null {
  if (!a || !b) return null;
  const rank = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    const da = i < rank - a.length ? 1 : a[i - (rank - a.length)]!;
    const db = i < rank - b.length ? 1 : b[i - (rank - b.length)]!;
    if (da === 1) out.push(db);
    else if (db === 1) out.push(da);
    else if (da === db) out.push(da);
    else if (typeof da === 'number' && typeof db === 'number') {
      throw new KilnError('INVALID_SHAPE', `${opType}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
    } else out.push(typeof da === 'number' ? da : typeof db === 'number' ? db : da);
  }
  return out;
}

export function intsAttr(attrs: Attrs, name: string, fallback: number[]): number[] {
  const v = attrs[name];
  return Array.isArray(v) ? (v as number[]) : fallback;
}

export function intAttr(attrs: Attrs, name: string, fallback: number): number {
  const v = attrs[name];
  return typeof v === 'number' ? v : fallback;
}

export function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Integer values of a constant int64/int32 input, or undefined when it is computed at run time. */
export function constantInts(graph: Graph, value: Value | null): number[] | undefined {
  if (!value) return undefined;
  const t = graph.constantValue(value.name);
  if (!t) return undefined;
  return Array.from(t.data as ArrayLike<number | bigint>, (x) => Number(x));
}
