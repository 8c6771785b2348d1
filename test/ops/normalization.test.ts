/**
 * BatchNormalization (inference form) and Dropout gradient rules (src/ops/normalization.ts).
 * BatchNormalization is checked against finite differences with respect to x, scale and bias (the
 * running mean and variance are statistics, not differentiated). Dropout's mask is random on every
 * run, so instead of finite differences the gradient is compared with mask / (1 − ratio) × upstream,
 * reading the mask the same run produced.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addGradients } from '../../src/autodiff/gradients.js';
import { Graph, type Value } from '../../src/graph/graph.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';
import { Random } from '../../src/random.js';
import { assertGradients, runGraph } from '../autodiff/gradcheck.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['BatchNormalization', 'Dropout', 'LayerNormalization', 'InstanceNormalization', 'LRN'];

const runtime = new Runtime();
after(() => runtime.close());

describe('BatchNormalization (inference form) gradient', () => {
  for (const shape of [[2, 3, 2, 2], [4, 3]]) {
    it(`x [${shape}]: with respect to x, scale and bias`, async () => {
      await assertGradients(runtime, {
        inputs: {
          x: { shape },
          scale: { shape: [3] },
          bias: { shape: [3] },
          mean: { shape: [3] },
          variance: { shape: [3], fill: 'positive' },
        },
        wrt: ['x', 'scale', 'bias'],
        build: (g, v) => g.op1('BatchNormalization', [v.x!, v.scale!, v.bias!, v.mean!, v.variance!], { epsilon: 1e-3 }),
      });
    });
  }
});

describe("BatchNormalization over its input's own batch statistics (training form)", () => {
  // mean = ReduceMean(x), variance = ReduceMean((x − mean)²) over all but the channel, as
  // imported-graph.ts builds a training BatchNormalization: the rule takes the gradient through the
  // statistics in closed form. Treated as constants (the inference rule), dx would be off.
  const build = (g: Graph, v: Record<string, Value>, rank: number) => {
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const mean = g.op1('ReduceMean', [v.x!], { axes, keepdims: 0 });
    const centered = g.op1('Sub', [v.x!, g.op1('Reshape', [mean, g.int64s([1, -1, ...Array(rank - 2).fill(1)])])]);
    const variance = g.op1('ReduceMean', [g.op1('Mul', [centered, centered])], { axes, keepdims: 0 });
    return g.op1('BatchNormalization', [v.x!, v.scale!, v.bias!, mean, variance], { epsilon: 1e-3 });
  };
  for (const [shape, symbolic] of [[[3, 2, 2, 3], false], [[5, 3], false], [[3, 2, 2, 2], true]] as const) {
    it(`x [${shape}]${symbolic ? ', symbolic batch' : ''}: with respect to x, scale and bias`, async () => {
      await assertGradients(runtime, {
        inputs: { x: { shape: [...shape] }, scale: { shape: [shape[1]] }, bias: { shape: [shape[1]] } },
        wrt: ['x', 'scale', 'bias'],
        build: (g, v) => build(g, v, shape.length),
        ...(symbolic ? { symbolicBatch: ['x'] } : {}),
      });
    });
  }

  it('builds the closed form: no gradient node reaches back through the ReduceMean statistics', () => {
    const g = new Graph('bn_train');
    const x = g.input('x', 'float32', [4, 2, 3, 3]);
    const scale = g.input('scale', 'float32', [2]);
    const bias = g.input('bias', 'float32', [2]);
    const y = build(g, { x, scale, bias }, 4);
    const before = g.nodes.length;
    addGradients(g, g.op1('ReduceSum', [g.op1('Mul', [y, y])], { keepdims: 0 }), [x, scale, bias]);
    const backward = g.nodes.slice(before);
    // The loss's ReduceSum expands its gradient once; autodiff through the two ReduceMean statistics
    // would expand theirs back to x's shape too.
    assert.equal(backward.filter((n) => n.opType === 'Expand').length, 1, backward.map((n) => n.opType).join(' '));
  });
});

function randomTensor(shape: number[], seed: number): Tensor<'float32'> {
  const rng = new Random(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(Float32Array.from({ length: n }, () => rng.uniform(-1, 1)), shape, 'float32');
}

/**
 * A training-mode Dropout's run (outputs y, mask, dx): the mask keeps some but not all units, and
 * y = x·mask/(1 − ratio), dx = dy·mask/(1 − ratio) with that mask — the forward's own.
 */
function assertDropped(out: Record<string, Tensor>, xs: Tensor, dy: Tensor, ratio: number): void {
  const m = out.mask!.data as Uint8Array;
  const kept = m.reduce((a, b) => a + (b ? 1 : 0), 0);
  assert.ok(kept > 0.3 * m.length && kept < m.length, `the mask keeps some but not all units (${kept} of ${m.length})`);
  const ys = out.y!.data as Float32Array;
  const dx = out.dx!.data as Float32Array;
  for (let i = 0; i < m.length; i++) {
    const scale = (m[i] ? 1 : 0) / (1 - ratio);
    assert.ok(Math.abs(ys[i]! - Number(xs.data[i]) * scale) <= 1e-6, `y[${i}] = x·mask/(1−ratio)`);
    assert.ok(Math.abs(dx[i]! - Number(dy.data[i]) * scale) <= 1e-6, `dx[${i}]: expected ${Number(dy.data[i]) * scale}, got ${dx[i]}`);
  }
}

describe('Dropout gradient', () => {
  for (const ratio of [0.3, 0.5]) {
    it(`training mode, ratio ${ratio}: dx = mask / (1 − ratio) · dy, with the op's own mask`, async () => {
      const shape = [8, 25];
      const g = new Graph('dropout');
      const x = g.input('x', 'float32', shape);
      const upstream = g.input('upstream', 'float32', shape);
      const ratioValue = g.constant(new Tensor(Float32Array.of(ratio), [], 'float32'), 'ratio');
      const training = g.constant(new Tensor(Uint8Array.of(1), [], 'bool'), 'training_mode');
      const [y, mask] = g.op('Dropout', [x, ratioValue, training], { seed: 7 }, { outputs: 2 });
      const loss = g.op1('ReduceSum', [g.op1('Mul', [y!, upstream])], { keepdims: 0 });
      const grads = addGradients(g, loss, [x]);
      g.output(y!, 'y');
      g.output(mask!, 'mask');
      g.output(grads.get('x')!, 'dx');
      const xs = randomTensor(shape, 1);
      const dy = randomTensor(shape, 2);
      assertDropped(await runGraph(runtime, g, { x: xs, upstream: dy }), xs, dy, ratio);
    });
  }

  it('training mode, a node written without its mask output (ONNX test training_dropout*): the rule adds one and uses it', async () => {
    const shape = [6, 20];
    const ratio = 0.4;
    const g = new Graph('dropout_no_mask');
    const x = g.input('x', 'float32', shape);
    const upstream = g.input('upstream', 'float32', shape);
    const ratioValue = g.input('ratio', 'float32', []);
    const training = g.constant(new Tensor(Uint8Array.of(1), [], 'bool'), 'training_mode');
    const y = g.op1('Dropout', [x, ratioValue, training], { seed: 11 });
    const node = g.producer(y.name)!;
    assert.equal(node.outputs.length, 1);
    const loss = g.op1('ReduceSum', [g.op1('Mul', [y, upstream])], { keepdims: 0 });
    const grads = addGradients(g, loss, [x]);
    assert.equal(node.outputs.length, 2, 'the forward node now writes its mask');
    g.output(y, 'y');
    g.output(g.value(node.outputs[1]!), 'mask');
    g.output(grads.get('x')!, 'dx');
    const xs = randomTensor(shape, 3);
    const dy = randomTensor(shape, 4);
    assertDropped(await runGraph(runtime, g, { x: xs, upstream: dy, ratio: new Tensor(Float32Array.of(ratio), [], 'float32') }), xs, dy, ratio);
  });

  it('inference mode (no training_mode input): Dropout is the identity, so is its gradient', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 4] } },
      build: (g, v) => g.op('Dropout', [v.x!, g.constant(new Tensor(Float32Array.of(0.4), [], 'float32'), 'ratio')], {}, { outputs: 2 })[0]!,
    });
  });

  it('training_mode false: the identity as well', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 4] } },
      build: (g, v) =>
        g.op('Dropout', [v.x!, g.constant(new Tensor(Float32Array.of(0.4), [], 'float32'), 'ratio'), g.constant(new Tensor(Uint8Array.of(0), [], 'bool'), 'training_mode')], {}, { outputs: 2 })[0]!,
    });
  });
});

describe('Dropout gradient with training_mode fed at run time', () => {
  for (const trainingMode of [true, false]) {
    it(`training_mode ${trainingMode}`, async () => {
      const shape = [4, 25];
      const ratio = 0.25;
      const g = new Graph('dropout_runtime_mode');
      const x = g.input('x', 'float32', shape);
      const mode = g.input('training_mode', 'bool', []);
      const upstream = g.input('upstream', 'float32', shape);
      const [y, mask] = g.op('Dropout', [x, g.constant(new Tensor(Float32Array.of(ratio), [], 'float32'), 'ratio'), mode], { seed: 3 }, { outputs: 2 });
      const loss = g.op1('ReduceSum', [g.op1('Mul', [y!, upstream])], { keepdims: 0 });
      g.output(mask!, 'mask');
      g.output(addGradients(g, loss, [x]).get('x')!, 'dx');
      const dy = randomTensor(shape, 5);
      const out = await runGraph(runtime, g, { x: randomTensor(shape, 4), training_mode: new Tensor(Uint8Array.of(trainingMode ? 1 : 0), [], 'bool'), upstream: dy });
      const m = out.mask!.data as Uint8Array;
      const dx = out.dx!.data as Float32Array;
      for (let i = 0; i < dx.length; i++) {
        const expected = trainingMode ? (m[i] ? dy.data[i]! / (1 - ratio) : 0) : dy.data[i]!;
        assert.ok(Math.abs(dx[i]! - expected) <= 1e-6, `dx[${i}]: expected ${expected}, got ${dx[i]}`);
      }
    });
  }
});

describe('LayerNormalization gradient (opset 17)', () => {
  it('last axis (transformer blocks): x, Scale and B', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [2, 3, 5] }, scale: { shape: [5] }, b: { shape: [5] } },
      build: (g, v) => g.op1('LayerNormalization', [v.x!, v.scale!, v.b!], { epsilon: 1e-3 }),
    });
  });
  it('axis 1 of a rank-4 input (normalized over [C, H, W]), without B', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [2, 2, 3, 2] }, scale: { shape: [2, 3, 2] } },
      build: (g, v) => g.op1('LayerNormalization', [v.x!, v.scale!], { axis: 1 }),
    });
  });
  it('axis −2 with a Scale broadcast from [1, 4]', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 2, 4] }, scale: { shape: [1, 4] }, b: { shape: [4] } },
      build: (g, v) => g.op1('LayerNormalization', [v.x!, v.scale!, v.b!], { axis: -2 }),
    });
  });
  it('the Mean and InvStdDev outputs feed the loss too', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 4] }, scale: { shape: [4] }, b: { shape: [4] } },
      build: (g, v) => g.op('LayerNormalization', [v.x!, v.scale!, v.b!], { epsilon: 0.1 }, { outputs: 3 }),
    });
  });
  it('a symbolic batch dimension', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 2, 4] }, scale: { shape: [4] }, b: { shape: [4] } },
      symbolicBatch: ['x'],
      build: (g, v) => g.op1('LayerNormalization', [v.x!, v.scale!, v.b!]),
    });
  });
  it('normalizing over a symbolic dimension: the count is taken at run time', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [3, 4] }, scale: { shape: [1] } },
      symbolicBatch: ['x'],
      build: (g, v) => g.op1('LayerNormalization', [g.op1('Transpose', [v.x!], { perm: [1, 0] }), v.scale!]),
    });
  });
});

describe('LayerNormalization shapes', () => {
  it('Mean and InvStdDev keep the normalized axes as 1', () => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', ['N', 3, 4]);
    const [y, mean, inv] = g.op('LayerNormalization', [x, g.input('s', 'float32', [3, 4])], { axis: 1 }, { outputs: 3 });
    assert.deepEqual(y!.shape, ['N', 3, 4]);
    assert.deepEqual(mean!.shape, ['N', 1, 1]);
    assert.deepEqual(inv!.shape, ['N', 1, 1]);
  });
});

describe('InstanceNormalization gradient', () => {
  it('[2, 3, 3, 2] images: input, scale and B', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [2, 3, 3, 2] }, scale: { shape: [3] }, b: { shape: [3] } },
      build: (g, v) => g.op1('InstanceNormalization', [v.x!, v.scale!, v.b!], { epsilon: 1e-3 }),
    });
  });
  it('rank 3 ([N, C, L]) with a symbolic batch', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [2, 2, 5] }, scale: { shape: [2] }, b: { shape: [2] } },
      symbolicBatch: ['x'],
      build: (g, v) => g.op1('InstanceNormalization', [v.x!, v.scale!, v.b!]),
    });
  });
});

/*
 * LRN, as the classic Model Zoo CNNs (AlexNet, GoogLeNet) use it. ONNX Runtime's kernel takes odd sizes
 * and 4-D inputs only (the rule itself covers even, lopsided windows and any rank).
 */
describe('LRN gradient', () => {
  for (const [size, shape] of [[3, [2, 5, 3, 3]], [5, [2, 6, 2, 3]], [1, [1, 3, 2, 2]], [7, [1, 4, 2, 2]]] as const) {
    it(`size ${size} over ${shape[1]} channels of [${shape.join(', ')}]`, async () => {
      await assertGradients(runtime, { inputs: { x: { shape: [...shape] } }, build: (g, v) => g.op1('LRN', [v.x!], { size, alpha: 0.5, beta: 0.75, bias: 1.5 }) });
    });
  }
  it('the default alpha, beta and bias', async () => {
    await assertGradients(runtime, { inputs: { x: { shape: [2, 4, 2, 2] } }, build: (g, v) => g.op1('LRN', [v.x!], { size: 3 }) });
  });
});
