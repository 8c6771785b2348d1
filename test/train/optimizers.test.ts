/**
 * Optimizers (src/train/optimizers.ts): each update subgraph, built alone and run for 3 steps with
 * fixed gradients, matches Keras' update rule written out independently here in float64. The graph
 * computes in float32, so agreement is to ~2e-6 relative (Adam's bias correction 1 − β2ᵗ ≈ 0.003 loses
 * about five of float32's seven digits, as it does in Keras), while a wrong rule (a missing bias
 * correction, decay applied after the step, momentum in the wrong place) is off by ≥1e-3.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KilnError } from '../../src/errors.js';
import { Graph, type Value } from '../../src/graph/graph.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';
import { adagrad, adam, adamw, resolveOptimizer, rmsprop, sgd, type Optimizer, type OptimizerCommon } from '../../src/train/optimizers.js';
import { exponentialDecay } from '../../src/train/schedules.js';
import { runGraph } from '../autodiff/gradcheck.js';

const runtime = new Runtime();
after(() => runtime.close());

const W0 = [0.5, -1.2, 2.0, 0.03, -0.7];
/** Gradients for steps 1..3: mixed signs and magnitudes (some beyond the clip thresholds below). */
const GRADS = [
  [0.3, -2.5, 0.8, 0.01, 1.6],
  [-0.4, -1.0, 0.5, 0.02, 2.2],
  [0.2, 0.7, -1.5, -0.05, 0.9],
];

/** Runs the optimizer's update graph for every step, feeding each step's outputs back. */
async function runUpdates(opt: Optimizer): Promise<number[][]> {
  const n = W0.length;
  const g = new Graph('update');
  const w = g.input('w', 'float32', [n]);
  const grad = g.input('g', 'float32', [n]);
  const lr = g.input('lr', 'float32', []);
  const step = g.input('step', 'float32', []);
  const slots: Record<string, Value> = {};
  for (const s of opt.slots) slots[s.name] = g.input(`slot/${s.name}`, 'float32', [n]);
  const out = opt.update(g, w, grad, slots, { lr, step });
  g.output(out.w, 'new_w');
  for (const s of opt.slots) g.output(out.slots[s.name]!, `new_slot/${s.name}`);

  let weights: Float32Array = Float32Array.from(W0);
  const state: Record<string, Float32Array> = Object.fromEntries(opt.slots.map((s) => [s.name, new Float32Array(n).fill(s.initial)]));
  const trajectory: number[][] = [];
  for (let t = 1; t <= GRADS.length; t++) {
    const feeds: Record<string, Tensor> = {
      w: new Tensor(weights, [n], 'float32'),
      g: new Tensor(Float32Array.from(GRADS[t - 1]!), [n], 'float32'),
      lr: new Tensor(Float32Array.of(opt.lrAt(t - 1)), [], 'float32'),
      step: new Tensor(Float32Array.of(t), [], 'float32'),
    };
    for (const s of opt.slots) feeds[`slot/${s.name}`] = new Tensor(state[s.name]!, [n], 'float32');
    const r = await runGraph(runtime, g, feeds);
    weights = r.new_w!.data as Float32Array;
    for (const s of opt.slots) state[s.name] = r[`new_slot/${s.name}`]!.data as Float32Array;
    trajectory.push([...weights]);
  }
  return trajectory;
}

/* Keras' update rules, independently, in float64. */

type Rule = (w: number[], g: number[], t: number, lr: number) => number[];

/** Keras' base optimizer: clip the gradients, decay the weights (w − w·wd·lr), then the update. */
function keras(common: OptimizerCommon, lrAt: (step: number) => number, makeRule: () => Rule): number[][] {
  const rule = makeRule();
  let w = [...W0];
  const out: number[][] = [];
  GRADS.forEach((g0, k) => {
    const lr = lrAt(k);
    let g = [...g0];
    if (common.clipValue !== undefined) g = g.map((v) => Math.min(common.clipValue!, Math.max(-common.clipValue!, v)));
    if (common.globalClipNorm !== undefined) {
      const norm = Math.sqrt(g.reduce((a, v) => a + v * v, 0));
      g = g.map((v) => (v * common.globalClipNorm!) / Math.max(norm, common.globalClipNorm!));
    }
    if (common.weightDecay) w = w.map((v) => v - v * common.weightDecay! * lr);
    w = rule(w, g, k + 1, lr);
    out.push(w);
  });
  return out;
}

const sgdRule = (momentum: number, nesterov: boolean) => (): Rule => {
  let m = W0.map(() => 0);
  return (w, g, _t, lr) => {
    if (momentum === 0) return w.map((v, i) => v - lr * g[i]!);
    m = m.map((v, i) => momentum * v - lr * g[i]!);
    return nesterov ? w.map((v, i) => v + momentum * m[i]! - lr * g[i]!) : w.map((v, i) => v + m[i]!);
  };
};

const adamRule = (beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7) => (): Rule => {
  let m = W0.map(() => 0);
  let v = W0.map(() => 0);
  return (w, g, t, lr) => {
    m = m.map((mi, i) => mi + (g[i]! - mi) * (1 - beta1));
    v = v.map((vi, i) => vi + (g[i]! * g[i]! - vi) * (1 - beta2));
    const alpha = (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
    return w.map((wi, i) => wi - (alpha * m[i]!) / (Math.sqrt(v[i]!) + epsilon));
  };
};

const rmspropRule = (rho = 0.9, momentum = 0, epsilon = 1e-7) => (): Rule => {
  let vel = W0.map(() => 0);
  let mom = W0.map(() => 0);
  return (w, g, _t, lr) => {
    vel = vel.map((v, i) => rho * v + (1 - rho) * g[i]! * g[i]!);
    const inc = g.map((gi, i) => (gi * lr) / Math.sqrt(vel[i]! + epsilon));
    if (momentum === 0) return w.map((wi, i) => wi - inc[i]!);
    mom = mom.map((m, i) => momentum * m + inc[i]!);
    return w.map((wi, i) => wi - mom[i]!);
  };
};

const adagradRule = (initial = 0.1, epsilon = 1e-7) => (): Rule => {
  let acc = W0.map(() => initial);
  return (w, g, _t, lr) => {
    acc = acc.map((a, i) => a + g[i]! * g[i]!);
    return w.map((wi, i) => wi - (lr * g[i]!) / Math.sqrt(acc[i]! + epsilon));
  };
};

function assertTrajectory(actual: number[][], expected: number[][], what: string): void {
  expected.forEach((row, t) =>
    row.forEach((e, i) => {
      const a = actual[t]![i]!;
      assert.ok(Math.abs(a - e) <= 2e-6 * Math.max(1, Math.abs(e)), `${what}, step ${t + 1}, w[${i}]: expected ${e}, got ${a}`);
    }),
  );
  // The weights really moved, so agreement is not trivial.
  assert.ok(expected.at(-1)!.some((e, i) => Math.abs(e - W0[i]!) > 1e-3), `${what}: the update moves the weights`);
}

const CASES: [string, () => Optimizer, OptimizerCommon, () => Rule][] = [
  ['sgd', () => sgd({ learningRate: 0.1 }), {}, sgdRule(0, false)],
  ['sgd with momentum 0.9', () => sgd({ learningRate: 0.1, momentum: 0.9 }), {}, sgdRule(0.9, false)],
  ['sgd with Nesterov momentum 0.9', () => sgd({ learningRate: 0.1, momentum: 0.9, nesterov: true }), {}, sgdRule(0.9, true)],
  ['sgd with weightDecay 0.1', () => sgd({ learningRate: 0.1, weightDecay: 0.1 }), { weightDecay: 0.1 }, sgdRule(0, false)],
  ['sgd with clipValue 1', () => sgd({ learningRate: 0.1, clipValue: 1 }), { clipValue: 1 }, sgdRule(0, false)],
  ['sgd with globalClipNorm 1.5', () => sgd({ learningRate: 0.1, globalClipNorm: 1.5 }), { globalClipNorm: 1.5 }, sgdRule(0, false)],
  ['sgd with globalClipNorm above the norm (no rescaling)', () => sgd({ learningRate: 0.1, globalClipNorm: 100 }), { globalClipNorm: 100 }, sgdRule(0, false)],
  ['adam', () => adam({ learningRate: 0.05 }), {}, adamRule()],
  ['adam with beta1 0.8, beta2 0.99, epsilon 1e-3', () => adam({ learningRate: 0.05, beta1: 0.8, beta2: 0.99, epsilon: 1e-3 }), {}, adamRule(0.8, 0.99, 1e-3)],
  ['adam with weightDecay 0.2 and clipValue 1', () => adam({ learningRate: 0.05, weightDecay: 0.2, clipValue: 1 }), { weightDecay: 0.2, clipValue: 1 }, adamRule()],
  ['adam with globalClipNorm 1', () => adam({ learningRate: 0.05, globalClipNorm: 1 }), { globalClipNorm: 1 }, adamRule()],
  ['adamw (default weightDecay 0.004)', () => adamw({ learningRate: 0.05 }), { weightDecay: 0.004 }, adamRule()],
  ['adamw with weightDecay 0.1', () => adamw({ learningRate: 0.05, weightDecay: 0.1 }), { weightDecay: 0.1 }, adamRule()],
  ['rmsprop', () => rmsprop({ learningRate: 0.01 }), {}, rmspropRule()],
  ['rmsprop with rho 0.8 and momentum 0.5', () => rmsprop({ learningRate: 0.01, rho: 0.8, momentum: 0.5 }), {}, rmspropRule(0.8, 0.5)],
  ['rmsprop with weightDecay 0.05 and globalClipNorm 2', () => rmsprop({ learningRate: 0.01, weightDecay: 0.05, globalClipNorm: 2 }), { weightDecay: 0.05, globalClipNorm: 2 }, rmspropRule()],
  ['adagrad', () => adagrad({ learningRate: 0.1 }), {}, adagradRule()],
  ['adagrad with initialAccumulatorValue 0.5', () => adagrad({ learningRate: 0.1, initialAccumulatorValue: 0.5 }), {}, adagradRule(0.5)],
  ['adagrad with clipValue 0.5', () => adagrad({ learningRate: 0.1, clipValue: 0.5 }), { clipValue: 0.5 }, adagradRule()],
];

describe('optimizer updates match Keras over 3 steps', () => {
  for (const [name, make, common, rule] of CASES) {
    it(name, async () => {
      const opt = make();
      assertTrajectory(await runUpdates(opt), keras(common, (s) => opt.lrAt(s), rule), name);
    });
  }

  it('sgd with a learning-rate schedule uses lr(step − 1) at each step', async () => {
    const schedule = exponentialDecay({ initialLearningRate: 0.2, decaySteps: 1, decayRate: 0.5 });
    const opt = sgd({ learningRate: schedule, momentum: 0.5 });
    assert.deepEqual([0, 1, 2].map((s) => opt.lrAt(s)), [0.2, 0.1, 0.05]);
    assertTrajectory(await runUpdates(opt), keras({}, (s) => 0.2 * 0.5 ** s, sgdRule(0.5, false)), 'scheduled sgd');
  });

  it('an optimizer rebuilt from its serialized config updates identically', async () => {
    const opt = adam({ learningRate: exponentialDecay({ initialLearningRate: 0.05, decaySteps: 2, decayRate: 0.9, staircase: true }), weightDecay: 0.01 });
    const rebuilt = resolveOptimizer(JSON.parse(JSON.stringify({ name: opt.name, config: opt.config })));
    assert.deepEqual(await runUpdates(rebuilt), await runUpdates(opt));
  });
});

describe('optimizer defaults and validation', () => {
  it("Keras' default learning rates and AdamW's default weight decay", () => {
    assert.equal(sgd().lrAt(0), 0.01);
    for (const make of [adam, adamw, rmsprop, adagrad]) assert.equal(make().lrAt(0), 0.001);
    assert.equal(adamw().config.weightDecay, 0.004);
    assert.equal(adam().config.weightDecay, undefined);
  });

  it('names resolve case-insensitively; unknown names are refused naming them', () => {
    assert.equal(resolveOptimizer('Adam').name, 'adam');
    assert.equal(resolveOptimizer('rmsprop').name, 'rmsprop');
    assert.throws(
      () => resolveOptimizer('adamax'),
      (e: unknown) => e instanceof KilnError && e.code === 'INVALID_ARGUMENT' && e.message.includes("'adamax'") && e.message.includes('sgd'),
    );
  });

  it('refuses out-of-range hyperparameters with INVALID_ARGUMENT', () => {
    const bad: [string, () => unknown][] = [
      ['learningRate', () => sgd({ learningRate: 0 })],
      ['learningRate', () => adam({ learningRate: -1 })],
      ['momentum', () => sgd({ momentum: 1.5 })],
      ['weightDecay', () => adam({ weightDecay: -0.1 })],
      ['clipValue', () => sgd({ clipValue: 0 })],
      ['globalClipNorm', () => rmsprop({ globalClipNorm: -1 })],
      ['beta1', () => adam({ beta1: 1 })],
      ['rho', () => rmsprop({ rho: 2 })],
    ];
    for (const [what, make] of bad) {
      assert.throws(make, (e: unknown) => e instanceof KilnError && e.code === 'INVALID_ARGUMENT' && e.message.includes(what), what);
    }
  });
});
