/**
 * Losses (src/train/losses.ts): each loss graph, run in the Runtime on a 2–3 example batch, equals the
 * value worked out by hand (the formula is next to each number), and the cross-entropies from logits
 * have the gradients their closed forms say.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addGradients } from '../../src/autodiff/gradients.js';
import { KilnError } from '../../src/errors.js';
import { Graph } from '../../src/graph/graph.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';
import {
  binaryCrossentropy,
  categoricalCrossentropy,
  meanSquaredError,
  resolveLoss,
  sparseCategoricalCrossentropy,
  type Loss,
} from '../../src/train/losses.js';
import { runGraph } from '../autodiff/gradcheck.js';

const runtime = new Runtime();
after(() => runtime.close());

function f32(rows: number[][]): Tensor<'float32'> {
  return new Tensor(Float32Array.from(rows.flat()), [rows.length, rows[0]!.length], 'float32');
}

/** Runs loss.build on (output, labels) and returns the scalar loss and d loss / d output. */
async function runLoss(loss: Loss, output: Tensor<'float32'>, labels: Tensor): Promise<{ loss: number; grad: Float32Array }> {
  const g = new Graph('loss');
  const out = g.input('output', 'float32', ['N', ...output.shape.slice(1)]);
  const spec = loss.labelSpec(output.shape.slice(1) as number[]);
  const y = g.input('labels', spec.dtype, ['N', ...spec.shape]);
  const value = loss.build(g, out, y);
  assert.deepEqual(value.shape, [], `${loss.name} is a scalar`);
  const grads = addGradients(g, value, [out]);
  g.output(value, 'loss');
  g.output(grads.get('output')!, 'grad');
  const r = await runGraph(runtime, g, { output, labels });
  return { loss: Number(r.loss!.data[0]), grad: r.grad!.data as Float32Array };
}

function assertNear(actual: number, expected: number, what: string, tolerance = 1e-5): void {
  assert.ok(Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)), `${what}: expected ${expected}, got ${actual}`);
}

const int64 = (v: number[]) => new Tensor(BigInt64Array.from(v, BigInt), [v.length], 'int64');

describe('loss values on small batches', () => {
  it('sparseCategoricalCrossentropy from logits', async () => {
    // mean over rows of −log softmax(z)[y]: rows [2, 1, 0.1]→0, [0.5, 2.5, −1]→1, [0, 0, 0]→2 (= log 3)
    const { loss } = await runLoss(sparseCategoricalCrossentropy({ fromLogits: true }), f32([[2, 1, 0.1], [0.5, 2.5, -1], [0, 0, 0]]), int64([0, 1, 2]));
    assertNear(loss, 0.5562735040227439, 'loss');
  });

  it('sparseCategoricalCrossentropy from probabilities', async () => {
    // (−log 0.7 − log 0.3) / 2
    const { loss } = await runLoss(sparseCategoricalCrossentropy(), f32([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]), int64([0, 2]));
    assertNear(loss, 0.7803238741323343, 'loss');
  });

  it('sparseCategoricalCrossentropy from probabilities normalizes rows and clips 0 to ε = 1e-7 (as Keras)', async () => {
    // [2, 1, 1] → [0.5, 0.25, 0.25]: −log 0.5; [0, 3, 1] → p₀ = 0, clipped to 1e-7: −log 1e-7 = 16.118
    const { loss } = await runLoss(sparseCategoricalCrossentropy(), f32([[2, 1, 1], [0, 3, 1]]), int64([0, 0]));
    assertNear(loss, (0.6931471805599453 + 16.11809565095832) / 2, 'loss');
  });

  it('categoricalCrossentropy from probabilities, one-hot and soft labels', async () => {
    // row 1: −log 0.7; row 2: −(0.2 log 0.1 + 0.3 log 0.6 + 0.5 log 0.3)
    const { loss } = await runLoss(categoricalCrossentropy(), f32([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]), f32([[1, 0, 0], [0.2, 0.3, 0.5]]));
    assertNear(loss, 0.7862130259151534, 'loss');
  });

  it('categoricalCrossentropy from logits', async () => {
    const { loss } = await runLoss(categoricalCrossentropy({ fromLogits: true }), f32([[2, 1, 0.1], [0.5, 2.5, -1]]), f32([[1, 0, 0], [0.2, 0.3, 0.5]]));
    assertNear(loss, 1.360104111700061, 'loss');
  });

  it('binaryCrossentropy from logits, stable for logits of ±30', async () => {
    // mean of max(x, 0) − x·z + log(1 + e^−|x|); (30, z=0) and (−30, z=1) each cost ≈ 30
    const { loss } = await runLoss(binaryCrossentropy({ fromLogits: true }), f32([[1.5, -0.5], [0, 30], [-30, 2]]), f32([[1, 0], [1, 0], [1, 1]]));
    assertNear(loss, 10.249260908960993, 'loss');
  });

  it('binaryCrossentropy from probabilities', async () => {
    // mean of −(z log p + (1 − z) log(1 − p))
    const { loss } = await runLoss(binaryCrossentropy(), f32([[0.9, 0.2], [0.6, 0.05], [0.5, 0.999]]), f32([[1, 0], [0, 0], [1, 1]]));
    assertNear(loss, 0.331705962354545, 'loss');
  });

  it('meanSquaredError', async () => {
    // (0.25 + 0 + 1 + 1 + 0.25 + 4) / 6
    const { loss } = await runLoss(meanSquaredError(), f32([[1, 2], [3, 4], [0, -1]]), f32([[1.5, 2], [2, 5], [0.5, 1]]));
    assertNear(loss, 1.0833333333333333, 'loss');
  });
});

describe('loss gradients', () => {
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

  it('sparseCategoricalCrossentropy from logits: (softmax(z) − onehot(y)) / N', async () => {
    const z = [[2, 1, 0.1], [0.5, 2.5, -1]];
    const y = [0, 2];
    const { grad } = await runLoss(sparseCategoricalCrossentropy({ fromLogits: true }), f32(z), int64(y));
    z.forEach((row, i) => {
      const e = row.map(Math.exp);
      const s = e.reduce((a, b) => a + b, 0);
      row.forEach((_, j) => assertNear(grad[i * 3 + j]!, (e[j]! / s - (j === y[i] ? 1 : 0)) / 2, `grad[${i}][${j}]`, 1e-6));
    });
  });

  it('binaryCrossentropy from logits: (σ(x) − z) / count, also at x = 0 exactly', async () => {
    // x = 0 is where max(x, 0) and |x| have kinks; the loss itself is smooth there, slope σ(0) − z = ±0.5.
    const x = [[0, 0], [1.5, -2], [0, 3]];
    const z = [[1, 0], [0, 1], [0, 1]];
    const { grad } = await runLoss(binaryCrossentropy({ fromLogits: true }), f32(x), f32(z));
    x.flat().forEach((xi, k) => assertNear(grad[k]!, (sigmoid(xi) - z.flat()[k]!) / 6, `grad at x = ${xi}, z = ${z.flat()[k]}`, 1e-6));
  });

  it('meanSquaredError: 2 (ŷ − y) / count', async () => {
    const { grad } = await runLoss(meanSquaredError(), f32([[1, 2], [3, 4]]), f32([[1.5, 2], [2, 5]]));
    assert.deepEqual([...grad], [-0.25, 0, 0.5, -0.5]);
  });
});

describe('sparseCategoricalCrossentropy over positions (token labels, ignoreClass, axis)', () => {
  // One sequence of two positions: logits [2, 1, 0.1] labelled 0 (loss log(e² + e + e^0.1) − 2 =
  // 0.41703), [0.5, 2.5, −1] labelled 2 (loss log(e^0.5 + e^2.5 + e^−1) + 1 = 3.65318).
  const logits = new Tensor(Float32Array.of(2, 1, 0.1, 0.5, 2.5, -1), [1, 2, 3], 'float32');
  const labels = (v: number[]) => new Tensor(BigInt64Array.from(v, BigInt), [1, 2], 'int64');

  it('averages over every position of [N, T, classes] (classes on the last axis, as Keras)', async () => {
    const { loss } = await runLoss(sparseCategoricalCrossentropy({ fromLogits: true }), logits, labels([0, 2]));
    assertNear(loss, (0.4170300162778333 + 3.6531782071222882) / 2, 'loss');
  });

  it('leaves the ignored class out of the mean and the gradient (PyTorch ignore_index = −100)', async () => {
    const { loss, grad } = await runLoss(sparseCategoricalCrossentropy({ fromLogits: true, ignoreClass: -100 }), logits, labels([0, -100]));
    assertNear(loss, 0.4170300162778333, 'loss of the one labelled position');
    // softmax([2, 1, 0.1]) − onehot(0), over 1 counted position; nothing at the ignored one.
    [0.6590011388859679 - 1, 0.2424329707047139, 0.09856589040931818, 0, 0, 0].forEach((g, i) => assertNear(grad[i]!, g, `d loss / d logit ${i}`));
  });

  it('a batch whose labels are all ignored has loss 0 and no gradient', async () => {
    const { loss, grad } = await runLoss(sparseCategoricalCrossentropy({ fromLogits: true, ignoreClass: -100 }), logits, labels([-100, -100]));
    assert.equal(loss, 0);
    assert.ok(grad.every((g) => g === 0));
  });

  it('axis 1 reads classes as PyTorch does ([N, classes, T]): the same loss as the last axis of the transpose', async () => {
    const channelsFirst = new Tensor(Float32Array.of(2, 0.5, 1, 2.5, 0.1, -1), [1, 3, 2], 'float32');
    const loss = sparseCategoricalCrossentropy({ fromLogits: true, axis: 1, ignoreClass: 255 });
    assert.deepEqual(loss.labelSpec([3, 2]), { dtype: 'int64', shape: [2] });
    assertNear((await runLoss(loss, channelsFirst, labels([0, 2]))).loss, (0.4170300162778333 + 3.6531782071222882) / 2, 'loss');
    assertNear((await runLoss(loss, channelsFirst, labels([255, 2]))).loss, 3.6531782071222882, 'loss without the void class');
  });

  it('labels take the output shape without its class axis; the batch axis is no class axis', () => {
    assert.deepEqual(sparseCategoricalCrossentropy().labelSpec([10]), { dtype: 'int64', shape: [] });
    assert.deepEqual(sparseCategoricalCrossentropy().labelSpec([12, 3]), { dtype: 'int64', shape: [12] });
    assert.deepEqual(sparseCategoricalCrossentropy({ axis: 1 }).labelSpec([21, 8, 8]), { dtype: 'int64', shape: [8, 8] });
    assert.throws(() => sparseCategoricalCrossentropy({ axis: 0 }).labelSpec([10]), (e: unknown) => e instanceof KilnError && /axis 0 is not a class axis of an output of rank 2/.test(e.message));
    assert.throws(() => sparseCategoricalCrossentropy({ ignoreClass: 0.5 }), (e: unknown) => e instanceof KilnError && /ignoreClass must be an integer, got 0.5/.test(e.message));
  });

  it('a classifier saved before keeps its config; given options are recorded for the saved model', () => {
    assert.deepEqual(sparseCategoricalCrossentropy({ fromLogits: true }).config, { fromLogits: true });
    const loss = resolveLoss({ name: 'sparseCategoricalCrossentropy', config: { fromLogits: true, ignoreClass: -100, axis: -1 } });
    assert.deepEqual(loss.config, { fromLogits: true, axis: -1, ignoreClass: -100 });
  });
});

describe('resolveLoss', () => {
  it('accepts Keras names in camelCase and snake_case', () => {
    assert.equal(resolveLoss('sparseCategoricalCrossentropy').name, 'sparseCategoricalCrossentropy');
    assert.equal(resolveLoss('sparse_categorical_crossentropy').name, 'sparseCategoricalCrossentropy');
    assert.equal(resolveLoss('mse').name, 'meanSquaredError');
    assert.deepEqual(resolveLoss({ name: 'binaryCrossentropy', config: { fromLogits: true } }).config, { fromLogits: true });
  });
  it('refuses an unknown name with INVALID_ARGUMENT naming it', () => {
    assert.throws(
      () => resolveLoss('hinge'),
      (e: unknown) => e instanceof KilnError && e.code === 'INVALID_ARGUMENT' && e.message.includes("'hinge'") && e.message.includes('sparseCategoricalCrossentropy'),
    );
  });
});
