/**
 * Graph rewrite passes (src/graph/passes.ts): each keeps what the graph computes (checked by running
 * both versions in ONNX Runtime) and removes or shrinks work.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, OnnxModel, tensor, type Tensor } from '../../src/index.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';
import { commuteReluMaxPool, convolutionsAsGemm, elideOutputIdentities, eliminateDeadNodes, trimUnreadRows } from '../../src/graph/passes.js';
import { addGradients } from '../../src/autodiff/gradients.js';
import { Random } from '../../src/random.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { losses, optimizers, layers, sequential } from '../../src/index.js';
import { compileTraining } from '../../src/train/training-step.js';
import { assertGradients } from '../autodiff/gradcheck.js';

const runtime = new Runtime();
after(() => runtime.close());

function runnable(graph: Graph): OnnxModel {
  const bytes = encodeModel(modelToProto(graph));
  return new OnnxModel(bytes, decodeModel(bytes));
}

function randomTensor(shape: number[], seed: number): Tensor<'float32'> {
  const rng = new Random(seed);
  return tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.next() * 2 - 1), shape) as Tensor<'float32'>;
}

/** x → Conv → Relu → MaxPool 2×2 → (optionally something else reading the Relu) */
function convReluPool(extraReader: boolean, reluIsOutput = false) {
  const g = new Graph();
  const x = g.input('x', 'float32', ['N', 2, 7, 7]);
  const w = g.initializer('w', randomTensor([3, 2, 3, 3], 1));
  const relu = g.op1('Relu', [g.op1('Conv', [x, w])]);
  const pooled = g.op1('MaxPool', [relu], { kernel_shape: [2, 2], strides: [2, 2] });
  g.output(pooled, 'y');
  if (extraReader) g.output(g.op1('ReduceSum', [relu], { keepdims: 0 }), 'total');
  if (reluIsOutput) g.output(relu);
  return g;
}

describe('commuteReluMaxPool', () => {
  it('swaps a Relu whose only reader is a MaxPool, and the graph computes the same', async () => {
    const before = runnable(convReluPool(false));
    const g = convReluPool(false);
    assert.equal(commuteReluMaxPool(g), 1);
    assert.deepEqual(
      g.nodes.map((n) => n.opType),
      ['Conv', 'MaxPool', 'Relu', 'Identity'],
    );
    // The value between them now holds the pooled pre-activation.
    assert.deepEqual(g.value(g.nodes[1]!.outputs[0]!).shape, ['N', 3, 2, 2]);
    const x = randomTensor([2, 2, 7, 7], 2);
    const a = (await before.run({ x })).y!;
    const b = (await runnable(g).run({ x })).y!;
    assert.deepEqual(Array.from(b.data as Float32Array), Array.from(a.data as Float32Array));
  });

  it('leaves the pair alone when the Relu output is read elsewhere or is a graph output', () => {
    for (const g of [convReluPool(true), convReluPool(false, true)]) {
      assert.equal(commuteReluMaxPool(g), 0);
      assert.deepEqual(g.nodes.slice(0, 3).map((n) => n.opType), ['Conv', 'Relu', 'MaxPool']);
    }
  });

  it('gradients through the swapped pair match finite differences', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [1, 2, 6, 6], fill: 'distinct' } },
      build: (g, v) => {
        const pooled = g.op1('MaxPool', [g.op1('Relu', [v.x!])], { kernel_shape: [2, 2], strides: [2, 2] });
        assert.equal(commuteReluMaxPool(g), 1);
        return pooled;
      },
    });
  });
});

describe('elideOutputIdentities', () => {
  it('lets the producer write the output name, its other readers follow, and the graph computes the same', async () => {
    const build = () => {
      const g = new Graph();
      const x = g.input('x', 'float32', [3]);
      const doubled = g.op1('Mul', [x, g.scalar(2)]);
      g.output(doubled, 'twice'); // an Identity, and doubled is read again below
      g.output(g.op1('Add', [doubled, g.scalar(1)]), 'plus'); // another
      g.output(x, 'same'); // the Identity of a graph input stays
      return g;
    };
    const g = build();
    assert.equal(elideOutputIdentities(g), 2);
    assert.deepEqual(g.nodes.map((n) => n.opType), ['Mul', 'Add', 'Identity']);
    assert.deepEqual(g.nodes[1]!.inputs[0], 'twice', 'the Add reads the renamed value');
    const x = tensor(Float32Array.of(1, 2, 3), [3]);
    const want = await runnable(build()).run({ x });
    const got = await runnable(g).run({ x });
    for (const k of ['twice', 'plus', 'same']) assert.deepEqual(Array.from(got[k]!.data as Float32Array), Array.from(want[k]!.data as Float32Array), k);
    assert.equal(elideOutputIdentities(g), 0);
  });

  it('leaves none in the compiled training step', () => {
    const model = sequential({ seed: 1, layers: [layers.dense({ units: 3, inputShape: [4] }), layers.dense({ units: 2 })] });
    const compiled = compileTraining(model, losses.sparseCategoricalCrossentropy({ fromLogits: true }), optimizers.adam(), null);
    const graph = decodeModel(compiled.trainStep).graph!;
    assert.deepEqual(graph.node!.filter((n) => n.opType === 'Identity').map((n) => n.output![0]), []);
    assert.deepEqual(graph.output!.map((o) => o.name).sort(), ['loss', 'new/m', 'new/params', 'new/v', 'output']);
  });
});

describe('eliminateDeadNodes', () => {
  it('removes nodes that no output needs and keeps the result', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [4]);
    const used = g.op1('Mul', [x, g.scalar(2)]);
    g.op1('Exp', [g.op1('Neg', [x])]); // read by nothing
    g.output(g.op1('Add', [used, g.scalar(1)]), 'y');
    assert.equal(eliminateDeadNodes(g), 2);
    assert.deepEqual(g.nodes.map((n) => n.opType), ['Mul', 'Add', 'Identity']);
    const y = (await runnable(g).run({ x: tensor(Float32Array.of(0, 1, 2, 3), [4]) })).y!;
    assert.deepEqual(Array.from(y.data as Float32Array), [1, 3, 5, 7]);
    assert.equal(eliminateDeadNodes(g), 0);
  });

  it('the compiled training step computes no gradient for the input images', () => {
    const model = sequential({
      seed: 1,
      layers: [
        layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [20, 20, 3] }), // the second conv: 7x7 outputs, a Conv
        layers.maxPooling2d({ poolSize: 2 }),
        layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }),
        layers.flatten(),
        layers.dense({ units: 2 }),
      ],
    });
    const compiled = compileTraining(model, losses.sparseCategoricalCrossentropy({ fromLogits: true }), optimizers.adam(), null);
    const nodes = decodeModel(compiled.trainStep).graph!.node!;
    // Two convolutions: only the second needs its input's gradient (a ConvTranspose).
    assert.equal(nodes.filter((n) => n.opType === 'ConvTranspose').length, 1);
    // Both Relus now run after their pooling (the first) or feed the flatten (the second, unchanged).
    const order = nodes.map((n) => n.opType).filter((t) => t === 'MaxPool' || t === 'Relu');
    assert.deepEqual(order.slice(0, 3), ['MaxPool', 'Relu', 'Relu']);
  });
});

describe('convolutionsAsGemm', () => {
  const cases: [string, number[], number[], Record<string, number[]>, boolean][] = [
    ['3x3, bias', [3, 2, 6, 6], [4, 2, 3, 3], {}, true],
    ['stride 2, asymmetric pads, no bias', [2, 3, 7, 6], [2, 3, 3, 2], { strides: [2, 2], pads: [1, 0, 2, 1] }, false],
    ['dilation 2, pads 2', [2, 2, 5, 5], [3, 2, 3, 3], { dilations: [2, 2], pads: [2, 2, 2, 2] }, true],
  ];
  for (const [label, xShape, wShape, attrs, bias] of cases) {
    it(`computes what Conv computes: ${label}`, async () => {
      const build = () => {
        const g = new Graph();
        const x = g.input('x', 'float32', ['N', ...xShape.slice(1)]);
        const w = g.initializer('w', randomTensor(wShape, 4));
        const inputs = bias ? [x, w, g.initializer('b', randomTensor([wShape[0]!], 5))] : [x, w];
        g.output(g.op1('Relu', [g.op1('Conv', inputs, attrs)]), 'y');
        return g;
      };
      const g = build();
      assert.equal(convolutionsAsGemm(g), 1);
      assert.ok(!g.nodes.some((n) => n.opType === 'Conv'));
      assert.deepEqual(g.value(g.nodes.find((n) => n.opType === 'Relu')!.inputs[0]!).shape![0], 'N');
      const x = randomTensor(xShape, 6);
      const want = (await runnable(build()).run({ x })).y!.data as Float32Array;
      const got = (await runnable(g).run({ x })).y!.data as Float32Array;
      assert.equal(got.length, want.length);
      got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-5, `element ${i}: ${v} vs ${want[i]}`));
    });
  }

  it('leaves convolutions with more output positions than the limit, and grouped ones, alone', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['N', 2, 9, 9]);
    g.output(g.op1('Conv', [x, g.initializer('w', randomTensor([2, 2, 3, 3], 1))]), 'y'); // 7x7 = 49 positions
    g.output(g.op1('Conv', [x, g.initializer('g', randomTensor([2, 1, 3, 3], 1))], { group: 2, strides: [3, 3] }), 'z');
    assert.equal(convolutionsAsGemm(g), 0);
    assert.equal(convolutionsAsGemm(g, 49), 1, 'with a limit of 49 the first one is');
    assert.deepEqual(g.nodes.filter((n) => n.opType === 'Conv').map((n) => n.attrs.group), [2]);
  });

  it('gradients through the rewritten convolution match finite differences (input, weights, bias)', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [2, 2, 5, 5] }, w: { shape: [3, 2, 3, 3] }, b: { shape: [3] } },
      symbolicBatch: ['x'],
      build: (g, v) => {
        const y = g.op1('Conv', [v.x!, v.w!, v.b!], { strides: [2, 2], pads: [1, 1, 1, 1] });
        const out = g.op1('Mul', [y, g.scalar(1)]);
        assert.equal(convolutionsAsGemm(g), 1);
        return out;
      },
    });
  });

  it('the compiled training step runs the tutorial CNN’s third convolution (4x4 outputs) as one Gemm', () => {
    const model = sequential({ seed: 1, layers: layers.tutorialCnn([32, 32, 3], 10) });
    const compiled = compileTraining(model, losses.sparseCategoricalCrossentropy({ fromLogits: true }), optimizers.adam(), null);
    const nodes = decodeModel(compiled.trainStep).graph!.node!;
    // conv1 and conv2 forward, and conv1's few-channel weight gradient (patches by a one-hot Conv).
    assert.equal(nodes.filter((n) => n.opType === 'Conv').length, 3);
    assert.ok(nodes.some((n) => n.input!.some((i) => i.startsWith('im2col_gather'))));
  });
});

describe('trimUnreadRows', () => {
  /** x [N, 2, 9, 8] → Conv 3x3 → 7x6 (no pads) or 8x7 (pads at the start) → MaxPool 2x2 */
  function convPool(pads: number[], extraReader = false) {
    const g = new Graph();
    const x = g.input('x', 'float32', ['N', 2, 9, 8]);
    const conv = g.op1('Conv', [x, g.initializer('w', randomTensor([3, 2, 3, 3], 2)), g.initializer('b', randomTensor([3], 3))], { pads });
    g.output(g.op1('MaxPool', [conv], { kernel_shape: [2, 2], strides: [2, 2] }), 'y');
    if (extraReader) g.output(g.op1('ReduceSum', [conv], { keepdims: 0 }), 'total');
    return g;
  }

  it('crops the input to the rows and columns the pool reads, and the graph computes the same', async () => {
    for (const pads of [[0, 0, 0, 0], [1, 1, 0, 0]]) {
      const g = convPool(pads);
      assert.equal(trimUnreadRows(g), 1);
      const conv = g.nodes.find((n) => n.opType === 'Conv')!;
      assert.equal(g.producer(conv.inputs[0]!)!.opType, 'Slice');
      assert.deepEqual(g.value(conv.outputs[0]!).shape!.slice(2), pads[0] ? [8, 6] : [6, 6]);
      const x = randomTensor([2, 2, 9, 8], 7);
      const want = (await runnable(convPool(pads)).run({ x })).y!;
      const got = (await runnable(g).run({ x })).y!;
      assert.deepEqual(Array.from(got.data as Float32Array), Array.from(want.data as Float32Array));
    }
  });

  it('leaves it alone when the pool reads everything, something else reads the conv, or the conv pads at the end', () => {
    const even = new Graph();
    const x = even.input('x', 'float32', ['N', 2, 8, 8]);
    even.output(even.op1('MaxPool', [even.op1('Conv', [x, even.initializer('w', randomTensor([3, 2, 3, 3], 2))], { pads: [1, 1, 1, 1] })], { kernel_shape: [2, 2], strides: [2, 2] }), 'y');
    assert.equal(trimUnreadRows(even), 0, 'pads at the end');
    assert.equal(trimUnreadRows(convPool([1, 1, 0, 0], true)), 0, 'a second reader');
  });

  /**
   * x [N, 2, 12, 11] → Conv 3x3 → 10x9 → Relu → MaxPool 2x2 → 5x4 → Conv 2x2 → 4x3 → MaxPool 2x2 → 2x1:
   * the last pool reads 4x2 of the second conv, so it computes 4x2 from 5x3 of the first pool, which
   * reads 10x6 of the first conv, which needs 12x8 of x.
   */
  function chain(reluReaders = 1) {
    const g = new Graph();
    const x = g.input('x', 'float32', ['N', 2, 12, 11]);
    const relu = g.op1('Relu', [g.op1('Conv', [x, g.initializer('w1', randomTensor([3, 2, 3, 3], 4)), g.initializer('b1', randomTensor([3], 5))])]);
    const conv2 = g.op1('Conv', [g.op1('MaxPool', [relu], { kernel_shape: [2, 2], strides: [2, 2] }), g.initializer('w2', randomTensor([2, 3, 2, 2], 6))]);
    g.output(g.op1('MaxPool', [conv2], { kernel_shape: [2, 2], strides: [2, 2] }), 'y');
    if (reluReaders > 1) g.output(g.op1('ReduceSum', [relu], { keepdims: 0 }), 'total');
    return g;
  }

  it('carries the crop up through pools and elementwise ops to the first convolution, and the graph computes the same', async () => {
    const g = chain();
    assert.equal(trimUnreadRows(g), 2, 'the first pool (10x9 → 5x4) starts a trim of its own');
    const convs = g.nodes.filter((n) => n.opType === 'Conv');
    assert.deepEqual(convs.map((c) => g.value(c.outputs[0]!).shape!.slice(2)), [[10, 6], [4, 2]]);
    assert.equal(g.producer(convs[0]!.inputs[0]!)!.opType, 'Slice', 'the first conv reads a crop of x');
    assert.equal(convs[1]!.inputs[0], g.nodes.find((n) => n.opType === 'MaxPool')!.outputs[0], 'no Slice left between the first pool and the second conv');
    assert.equal(g.nodes.filter((n) => n.opType === 'Slice').length, 1);
    const x = randomTensor([2, 2, 12, 11], 8);
    const want = (await runnable(chain()).run({ x })).y!;
    const got = (await runnable(g).run({ x })).y!;
    assert.deepEqual(got.shape, [2, 2, 2, 1]);
    assert.deepEqual(Array.from(got.data as Float32Array), Array.from(want.data as Float32Array));
  });

  it('stops at a value something else reads, cropping the convolution below it instead', async () => {
    const g = chain(2);
    assert.equal(trimUnreadRows(g), 1);
    const convs = g.nodes.filter((n) => n.opType === 'Conv');
    assert.deepEqual(convs.map((c) => g.value(c.outputs[0]!).shape!.slice(2)), [[10, 9], [4, 2]]);
    assert.equal(g.producer(convs[1]!.inputs[0]!)!.opType, 'Slice');
    const x = randomTensor([2, 2, 12, 11], 9);
    const want = await runnable(chain(2)).run({ x });
    const got = await runnable(g).run({ x });
    for (const k of ['y', 'total']) assert.deepEqual(Array.from(got[k]!.data as Float32Array), Array.from(want[k]!.data as Float32Array), k);
  });

  it('gives the same gradients as the untrimmed chain', async () => {
    // Compared with the untrimmed graph's own gradients rather than finite differences: two convs and
    // pools of random weights leave near-ties within any usable step h. The rules themselves are
    // checked against finite differences in test/ops/.
    const withGradients = (trim: boolean) => {
      const g = chain();
      if (trim) assert.equal(trimUnreadRows(g), 2);
      const y = g.value('y');
      const loss = g.op1('ReduceSum', [g.op1('Mul', [y, g.constant(randomTensor([2, 2, 2, 1], 10))])], { keepdims: 0 });
      const grads = addGradients(g, loss, ['x', 'w1', 'b1', 'w2'].map((n) => g.value(n)));
      for (const [n, v] of grads) g.output(v, `grad_${n}`);
      return runnable(g);
    };
    const x = randomTensor([2, 2, 12, 11], 11);
    const want = await withGradients(false).run({ x });
    const got = await withGradients(true).run({ x });
    for (const n of ['x', 'w1', 'b1', 'w2']) {
      const [a, b] = [got[`grad_${n}`]!.data as Float32Array, want[`grad_${n}`]!.data as Float32Array];
      assert.ok(b.some((v) => v !== 0), `${n}: the untrimmed gradient is not all zero`);
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-5 * (1 + Math.abs(b[i]!)), `${n}[${i}]: ${a[i]} vs ${b[i]}`);
    }
  });

  it('gradients through the trimmed convolution match finite differences', async () => {
    await assertGradients(runtime, {
      inputs: { x: { shape: [1, 2, 6, 6], fill: 'distinct' }, w: { shape: [2, 2, 2, 2] } },
      build: (g, v) => {
        const pooled = g.op1('MaxPool', [g.op1('Conv', [v.x!, v.w!])], { kernel_shape: [2, 2], strides: [2, 2] }); // 5x5 → 2x2
        assert.equal(trimUnreadRows(g), 1);
        return pooled;
      },
    });
  });
});
