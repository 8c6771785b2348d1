import { KilnError } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';
import { scheduleFromConfig, type LearningRateSchedule } from './schedules.js';

/*
 * Optimizers as update subgraphs. Kiln keeps all trainable parameters in ONE flat vector (and each
 * optimizer slot, e.g. Adam's m and v, in one flat vector too): a handful of elementwise ops update
 * everything, which measured faster than one update per tensor.
 */

/** Arguments every optimizer takes. */
export interface OptimizerCommon {
  /**
   * A fixed rate or a schedule over steps (`schedules.cosineDecay(...)`); default: Keras' default for the optimizer.
   */
  learningRate?: number | LearningRateSchedule;
  /** Decoupled weight decay, applied as w ← w − lr·wd·w before the update (as Keras 3 does). */
  weightDecay?: number;
  /** Clip each gradient element to [−clipValue, clipValue]. */
  clipValue?: number;
  /** Rescale the whole gradient so its global L2 norm is at most this. */
  globalClipNorm?: number;
}

/** Per-step scalar inputs of the update: the scheduled learning rate and the 1-based step number. */
export interface UpdateScalars {
  /** The learning rate for this step. */
  lr: Value;
  /** The 1-based step number (Adam's bias correction). */
  step: Value;
}

/**
 * An optimizer as the training step uses it: an update subgraph over the flat parameter vector. Made by
 * `sgd`, `adam`, `adamw`, `rmsprop`, `adagrad`.
 */
export interface Optimizer {
  /** The optimizer's name, as saved models and checkpoints record it. */
  readonly name: string;
  /** Its arguments, as saved models and checkpoints record them. */
  readonly config: Record<string, unknown>;
  /** The learning rate or its schedule. */
  readonly learningRate: number | LearningRateSchedule;
  /** Names of the flat state vectors this optimizer keeps, with their initial fill value. */
  readonly slots: {
    /** The slot's name ('m', 'v', 'velocity', ...). */
    name: string;
    /** The value every element starts at. */
    initial: number;
  }[];
  /** Emits the update: new parameters and new slot values. */
  update(
    graph: Graph,
    w: Value,
    g: Value,
    slots: Record<string, Value>,
    s: UpdateScalars,
  ): {
    /** The updated flat parameters. */
    w: Value;
    /** The updated slots by name. */
    slots: Record<string, Value | undefined>;
  };
  /** Learning rate at a 0-based step. */
  lrAt(step: number): number;
}

function checkRate(name: string, v: number | undefined, lo: number, hi: number, what: string): void {
  if (v !== undefined && !(v >= lo && v <= hi)) throw new KilnError('INVALID_ARGUMENT', `${name}: ${what} must be in [${lo}, ${hi}], got ${v}`);
}

function base(name: string, args: OptimizerCommon, defaultLr: number) {
  const learningRate = args.learningRate ?? defaultLr;
  if (typeof learningRate === 'number' && !(learningRate > 0)) throw new KilnError('INVALID_ARGUMENT', `${name}: learningRate must be > 0, got ${learningRate}`);
  checkRate(name, args.weightDecay, 0, 1, 'weightDecay');
  if (args.clipValue !== undefined && !(args.clipValue > 0)) throw new KilnError('INVALID_ARGUMENT', `${name}: clipValue must be > 0, got ${args.clipValue}`);
  if (args.globalClipNorm !== undefined && !(args.globalClipNorm > 0)) throw new KilnError('INVALID_ARGUMENT', `${name}: globalClipNorm must be > 0, got ${args.globalClipNorm}`);
  return {
    learningRate,
    lrAt: (step: number) => (typeof learningRate === 'number' ? learningRate : learningRate.at(step)),
    common: {
      learningRate: typeof learningRate === 'number' ? learningRate : { name: learningRate.name, config: learningRate.config },
      weightDecay: args.weightDecay,
      clipValue: args.clipValue,
      globalClipNorm: args.globalClipNorm,
    },
  };
}

/** Clipping and decoupled weight decay shared by all optimizers. */
function prepare(graph: Graph, args: OptimizerCommon, w: Value, g: Value, lr: Value): { w: Value; g: Value } {
  let grad = g;
  if (args.clipValue !== undefined) grad = graph.op1('Clip', [grad, graph.scalar(-args.clipValue), graph.scalar(args.clipValue)]);
  if (args.globalClipNorm !== undefined) {
    const norm = graph.op1('Sqrt', [graph.op1('ReduceSum', [graph.op1('Mul', [grad, grad])], { keepdims: 0 })]);
    // scale = clip / max(norm, clip): 1 when the norm is within bounds.
    const scale = graph.op1('Div', [graph.scalar(args.globalClipNorm), graph.op1('Max', [norm, graph.scalar(args.globalClipNorm)])]);
    grad = graph.op1('Mul', [grad, scale]);
  }
  let weights = w;
  if (args.weightDecay) weights = graph.op1('Sub', [w, graph.op1('Mul', [w, graph.op1('Mul', [lr, graph.scalar(args.weightDecay)])])]);
  return { w: weights, g: grad };
}

/** Arguments of `sgd` (default learning rate 0.01). */
export interface SgdArgs extends OptimizerCommon {
  /** Momentum μ in [0, 1] (default 0: plain gradient descent). */
  momentum?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
}

/** Keras SGD: v ← μv − lr·g; w ← w + v (Nesterov: w ← w + μv − lr·g). */
export function sgd(args: SgdArgs = {}): Optimizer {
  const b = base('sgd', args, 0.01);
  const momentum = args.momentum ?? 0;
  const nesterov = args.nesterov ?? false;
  checkRate('sgd', momentum, 0, 1, 'momentum');
  return {
    name: 'sgd',
    config: { ...b.common, momentum, nesterov },
    learningRate: b.learningRate,
    lrAt: b.lrAt,
    slots: momentum > 0 ? [{ name: 'velocity', initial: 0 }] : [],
    update(graph, w0, g0, slots, { lr }) {
      const { w, g } = prepare(graph, args, w0, g0, lr);
      const step = graph.op1('Mul', [g, lr]);
      if (momentum === 0) return { w: graph.op1('Sub', [w, step]), slots: {} };
      const mu = graph.scalar(momentum);
      const v = graph.op1('Sub', [graph.op1('Mul', [slots.velocity!, mu]), step]);
      const next = nesterov ? graph.op1('Sub', [graph.op1('Add', [w, graph.op1('Mul', [v, mu])]), step]) : graph.op1('Add', [w, v]);
      return { w: next, slots: { velocity: v } };
    },
  };
}

/** Arguments of `adam` and `adamw` (default learning rate 0.001). */
export interface AdamArgs extends OptimizerCommon {
  /** Decay of the first-moment estimate (default 0.9). */
  beta1?: number;
  /** Decay of the second-moment estimate (default 0.999). */
  beta2?: number;
  /** Added to the denominator (default 1e-7, Keras'). */
  epsilon?: number;
}

/**
 * Keras Adam: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * w ← w − lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε).
 */
function adamLike(name: 'adam' | 'adamw', args: AdamArgs, defaultDecay: number | undefined): Optimizer {
  const withDecay = { ...args, weightDecay: args.weightDecay ?? defaultDecay };
  const b = base(name, withDecay, 0.001);
  const beta1 = args.beta1 ?? 0.9;
  const beta2 = args.beta2 ?? 0.999;
  const epsilon = args.epsilon ?? 1e-7;
  checkRate(name, beta1, 0, 0.999999, 'beta1');
  checkRate(name, beta2, 0, 0.999999, 'beta2');
  return {
    name,
    config: { ...b.common, beta1, beta2, epsilon },
    learningRate: b.learningRate,
    lrAt: b.lrAt,
    slots: [
      { name: 'm', initial: 0 },
      { name: 'v', initial: 0 },
    ],
    update(graph, w0, g0, slots, { lr, step }) {
      const { w, g } = prepare(graph, withDecay, w0, g0, lr);
      const b1 = graph.scalar(beta1);
      const b2 = graph.scalar(beta2);
      const one = graph.scalar(1);
      const m = graph.op1('Add', [graph.op1('Mul', [slots.m!, b1]), graph.op1('Mul', [g, graph.scalar(1 - beta1)])]);
      const v = graph.op1('Add', [graph.op1('Mul', [slots.v!, b2]), graph.op1('Mul', [graph.op1('Mul', [g, g]), graph.scalar(1 - beta2)])]);
      const correction1 = graph.op1('Sub', [one, graph.op1('Pow', [b1, step])]);
      const correction2 = graph.op1('Sub', [one, graph.op1('Pow', [b2, step])]);
      const alpha = graph.op1('Div', [graph.op1('Mul', [lr, graph.op1('Sqrt', [correction2])]), correction1]);
      const denom = graph.op1('Add', [graph.op1('Sqrt', [v]), graph.scalar(epsilon)]);
      const next = graph.op1('Sub', [w, graph.op1('Mul', [graph.op1('Div', [m, denom]), alpha])]);
      return { w: next, slots: { m, v } };
    },
  };
}

/** Keras' Adam (default learning rate 0.001, β1 0.9, β2 0.999, ε 1e-7). */
export const adam = (args: AdamArgs = {}) => adamLike('adam', args, undefined);
/** AdamW: Adam with decoupled weight decay (Keras' default 0.004). */
export const adamw = (args: AdamArgs = {}) => adamLike('adamw', args, 0.004);

/** Arguments of `rmsprop` (default learning rate 0.001). */
export interface RmspropArgs extends OptimizerCommon {
  /** Decay of the squared-gradient average (default 0.9). */
  rho?: number;
  /** Added inside the square root (default 1e-7). */
  epsilon?: number;
  /** Momentum on the increment (default 0). */
  momentum?: number;
}

/** Keras 3 RMSprop: v ← ρv + (1−ρ)g²; w ← w − lr·g/√(v + ε) (with optional momentum on the increment). */
export function rmsprop(args: RmspropArgs = {}): Optimizer {
  const b = base('rmsprop', args, 0.001);
  const rho = args.rho ?? 0.9;
  const epsilon = args.epsilon ?? 1e-7;
  const momentum = args.momentum ?? 0;
  checkRate('rmsprop', rho, 0, 1, 'rho');
  return {
    name: 'rmsprop',
    config: { ...b.common, rho, epsilon, momentum },
    learningRate: b.learningRate,
    lrAt: b.lrAt,
    slots: [{ name: 'velocity', initial: 0 }, ...(momentum > 0 ? [{ name: 'momentum', initial: 0 }] : [])],
    update(graph, w0, g0, slots, { lr }) {
      const { w, g } = prepare(graph, args, w0, g0, lr);
      const v = graph.op1('Add', [graph.op1('Mul', [slots.velocity!, graph.scalar(rho)]), graph.op1('Mul', [graph.op1('Mul', [g, g]), graph.scalar(1 - rho)])]);
      const increment = graph.op1('Div', [graph.op1('Mul', [g, lr]), graph.op1('Sqrt', [graph.op1('Add', [v, graph.scalar(epsilon)])])]);
      if (momentum === 0) return { w: graph.op1('Sub', [w, increment]), slots: { velocity: v } };
      const mom = graph.op1('Add', [graph.op1('Mul', [slots.momentum!, graph.scalar(momentum)]), increment]);
      return { w: graph.op1('Sub', [w, mom]), slots: { velocity: v, momentum: mom } };
    },
  };
}

/** Arguments of `adagrad` (default learning rate 0.001). */
export interface AdagradArgs extends OptimizerCommon {
  /** Starting value of the squared-gradient sum (default 0.1). */
  initialAccumulatorValue?: number;
  /** Added inside the square root (default 1e-7). */
  epsilon?: number;
}

/** Keras Adagrad: a ← a + g²; w ← w − lr·g/√(a + ε), with a starting at 0.1. */
export function adagrad(args: AdagradArgs = {}): Optimizer {
  const b = base('adagrad', args, 0.001);
  const initial = args.initialAccumulatorValue ?? 0.1;
  const epsilon = args.epsilon ?? 1e-7;
  return {
    name: 'adagrad',
    config: { ...b.common, initialAccumulatorValue: initial, epsilon },
    learningRate: b.learningRate,
    lrAt: b.lrAt,
    slots: [{ name: 'accumulator', initial }],
    update(graph, w0, g0, slots, { lr }) {
      const { w, g } = prepare(graph, args, w0, g0, lr);
      const acc = graph.op1('Add', [slots.accumulator!, graph.op1('Mul', [g, g])]);
      const increment = graph.op1('Div', [graph.op1('Mul', [g, lr]), graph.op1('Sqrt', [graph.op1('Add', [acc, graph.scalar(epsilon)])])]);
      return { w: graph.op1('Sub', [w, increment]), slots: { accumulator: acc } };
    },
  };
}

const FACTORIES: Record<string, (args: never) => Optimizer> = { sgd, adam, adamw, rmsprop, adagrad };

/** An optimizer from a name ('adam') or a serialized config; objects pass through. */
export function resolveOptimizer(o: string | Optimizer | { name: string; config?: Record<string, unknown> }): Optimizer {
  if (typeof o === 'string') {
    const f = FACTORIES[o.toLowerCase()];
    if (!f) throw new KilnError('INVALID_ARGUMENT', `unknown optimizer '${o}'; expected one of ${Object.keys(FACTORIES).join(', ')}`);
    return f({} as never);
  }
  if ('update' in o) return o;
  const f = FACTORIES[o.name];
  if (!f) throw new KilnError('INVALID_ARGUMENT', `unknown optimizer '${o.name}'; expected one of ${Object.keys(FACTORIES).join(', ')}`);
  const config = { ...(o.config ?? {}) } as Record<string, unknown>;
  if (config.learningRate && typeof config.learningRate === 'object') config.learningRate = scheduleFromConfig(config.learningRate as never);
  return f(config as never);
}
