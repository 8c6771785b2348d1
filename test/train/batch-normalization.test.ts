/**
 * Training-mode batch normalization as the layer composes it (src/layers/batch-normalization.ts, built
 * from ReduceMean/Sub/Mul/Sqrt so the generic rules differentiate through the batch statistics): the
 * training graph's parameter gradients match finite differences of the training-mode loss, and one fit
 * step updates the moving statistics as momentum·old + (1 − momentum)·batch. Statistics are per feature
 * (Keras' axis −1): per channel for images, per feature for [features] and [steps, features] inputs.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, optimizers, sequential, Tensor, type Sequential } from '../../src/index.js';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import { Random } from '../../src/random.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { assertGradients, type InputSpec } from '../autodiff/gradcheck.js';
import { weightsOf } from './helpers.js';

const runtime = new Runtime();
after(() => runtime.close());

function randomInput(shape: number[], seed: number): Tensor<'float32'> {
  const rng = new Random(seed);
  return new Tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1)), shape, 'float32');
}

/**
 * Checks d loss / d (every trainable parameter) of the model's training graph, with the parameters as
 * the perturbed inputs and a fixed batch x; the moving statistics are fed but not differentiated.
 */
async function checkTrainingGradients(model: Sequential, x: Tensor<'float32'>): Promise<void> {
  const infos = model.paramInfos();
  const inputs: Record<string, InputSpec> = {};
  for (const p of infos) {
    inputs[p.name] = { shape: p.spec.shape, fill: Float32Array.from(model.getWeights().get(p.name)!.data as Float32Array) };
  }
  await assertGradients(runtime, {
    inputs,
    wrt: infos.filter((p) => p.spec.trainable).map((p) => p.name),
    batch: x.shape[0],
    feeds: { input: x },
    build: (g, v) => model.buildGraph({ training: true, graph: g, paramValue: (_g, info) => v[info.name]! }).output,
  });
}

/**
 * Runs the model's training-mode graph forward on x (weights as initializers) and returns its output
 * and the new moving statistics of the layer named `bn`.
 */
async function runTrainingGraph(model: Sequential, x: Tensor<'float32'>, bn = 'batch_normalization'): Promise<{ y: Tensor; movingMean: Tensor; movingVariance: Tensor }> {
  const graph = new Graph('training_forward');
  const { updates } = model.buildGraph({ training: true, paramsAsInputs: false, graph });
  graph.output(updates.get(`${bn}/moving_mean`)!, 'moving_mean');
  graph.output(updates.get(`${bn}/moving_variance`)!, 'moving_variance');
  const session = await runtime.load(encodeModel(modelToProto(graph)));
  try {
    const out = await runtime.run(session, { input: x });
    return { y: out.output!, movingMean: out.moving_mean!, movingVariance: out.moving_variance! };
  } finally {
    await runtime.release(session);
  }
}

/** Per-feature batch mean and biased variance of x, features on the last axis (every other axis is reduced). */
function featureStats(x: Tensor<'float32'>): { mean: number[]; variance: number[] } {
  const f = x.shape.at(-1)!;
  const n = x.size / f;
  const mean = Array.from({ length: f }, (_, j) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += x.data[i * f + j]!;
    return sum / n;
  });
  const variance = mean.map((m, j) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (x.data[i * f + j]! - m) ** 2;
    return sum / n;
  });
  return { mean, variance };
}

function assertNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance, `${what}[${i}]: expected ${expected[i]}, got ${actual[i]}`);
  }
}

/**
 * Training mode on x, features last: y = (x − mean_f) / sqrt(var_f + ε) · gamma_f + beta_f with the batch's
 * per-feature statistics, and the moving statistics become momentum·old + (1 − momentum)·batch, per feature.
 */
async function checkTrainingForward(inputShape: number[], batch: number, seed: number): Promise<void> {
  const features = inputShape.at(-1)!;
  const [epsilon, momentum] = [1e-3, 0.8];
  const gamma = Array.from({ length: features }, (_, j) => 0.5 + j * 0.3);
  const beta = Array.from({ length: features }, (_, j) => j - 1);
  const oldMean = Array.from({ length: features }, (_, j) => 0.1 * j);
  const oldVariance = Array.from({ length: features }, (_, j) => 1 + 0.2 * j);
  const model = sequential({ layers: [layers.batchNormalization({ epsilon, momentum, inputShape })] });
  const vector = (v: number[]) => new Tensor(Float32Array.from(v), [v.length], 'float32');
  model.setWeights({
    'batch_normalization/gamma': vector(gamma),
    'batch_normalization/beta': vector(beta),
    'batch_normalization/moving_mean': vector(oldMean),
    'batch_normalization/moving_variance': vector(oldVariance),
  });
  // Features of different scales and offsets, so statistics taken over the wrong axis are far off.
  const raw = randomInput([batch, ...inputShape], seed);
  const x = new Tensor(Float32Array.from(raw.data, (v, i) => v * (1 + (i % features)) + 3 * (i % features)), raw.shape, 'float32');
  const { mean, variance } = featureStats(x);
  const expected = Array.from(x.data, (v, i) => {
    const j = i % features;
    return ((v - mean[j]!) / Math.sqrt(variance[j]! + epsilon)) * gamma[j]! + beta[j]!;
  });
  const { y, movingMean, movingVariance } = await runTrainingGraph(model, x);
  assert.deepEqual(y.shape, x.shape);
  assertNear(y.data as Float32Array, expected, 1e-4, 'training-mode output');
  assert.deepEqual(movingMean.shape, [features]);
  assert.deepEqual(movingVariance.shape, [features]);
  assertNear(movingMean.data as Float32Array, mean.map((m, j) => momentum * oldMean[j]! + (1 - momentum) * m), 1e-5, 'moving_mean');
  assertNear(movingVariance.data as Float32Array, variance.map((v, j) => momentum * oldVariance[j]! + (1 - momentum) * v), 1e-5, 'moving_variance');
}

describe('training-mode batch normalization', () => {
  it('dense → batchNormalization → dense: parameter gradients match finite differences', async () => {
    const model = sequential({
      seed: 5,
      layers: [
        // No bias before batch norm: the mean subtraction cancels it, its gradient is exactly 0.
        layers.dense({ units: 4, useBias: false, inputShape: [3] }),
        layers.batchNormalization(),
        layers.dense({ units: 2, activation: 'tanh' }),
      ],
    });
    // Non-trivial gamma and beta, so their gradients are not just those at the initial 1 and 0.
    model.setWeights({ 'batch_normalization/gamma': new Tensor(Float32Array.of(1.2, 0.7, -0.9, 1.5), [4], 'float32'), 'batch_normalization/beta': new Tensor(Float32Array.of(0.1, -0.3, 0.2, 0), [4], 'float32') });
    await checkTrainingGradients(model, randomInput([6, 3], 1));
  });

  it('conv2d → batchNormalization → flatten → dense (statistics over batch and space)', async () => {
    const model = sequential({
      seed: 6,
      layers: [
        layers.conv2d({ filters: 2, kernelSize: 2, useBias: false, inputShape: [3, 3, 2] }),
        layers.batchNormalization({ epsilon: 1e-2 }),
        layers.flatten(),
        layers.dense({ units: 2 }),
      ],
    });
    await checkTrainingGradients(model, randomInput([4, 3, 3, 2], 2));
  });

  it('one fit step sets moving statistics to momentum·old + (1 − momentum)·batch (biased variance)', async () => {
    const model = sequential({
      seed: 7,
      layers: [layers.dense({ units: 3, inputShape: [2] }), layers.batchNormalization({ momentum: 0.9 }), layers.dense({ units: 1 })],
    });
    model.compile({ optimizer: optimizers.sgd({ learningRate: 0.1 }), loss: 'mse' });
    const x = randomInput([5, 2], 3);
    const y = randomInput([5, 1], 4);
    const w = weightsOf(model);
    // The batch statistics of the first dense layer's output, from the weights before the step.
    const h = [0, 1, 2, 3, 4].map((i) => [0, 1, 2].map((u) => w['dense/bias']![u]! + x.data[i * 2]! * w['dense/kernel']![u]! + x.data[i * 2 + 1]! * w['dense/kernel']![3 + u]!));
    const mean = [0, 1, 2].map((u) => h.reduce((a, r) => a + r[u]!, 0) / 5);
    const variance = [0, 1, 2].map((u) => h.reduce((a, r) => a + (r[u]! - mean[u]!) ** 2, 0) / 5);
    await model.fit(x, y, { epochs: 1, batchSize: 5, shuffle: false, verbose: 0 });
    const after1 = weightsOf(model);
    mean.forEach((m, u) => assert.ok(Math.abs(after1['batch_normalization/moving_mean']![u]! - 0.1 * m) <= 1e-6, `moving_mean[${u}]: expected ${0.1 * m}, got ${after1['batch_normalization/moving_mean']![u]}`));
    variance.forEach((v, u) =>
      assert.ok(Math.abs(after1['batch_normalization/moving_variance']![u]! - (0.9 + 0.1 * v)) <= 1e-6, `moving_variance[${u}]: expected ${0.9 + 0.1 * v}, got ${after1['batch_normalization/moving_variance']![u]}`),
    );
    // evaluate() (inference mode) uses the moving statistics, not the batch's.
    const inference = await model.predict(x);
    const w1 = after1;
    const expected = [0, 1, 2, 3, 4].map((i) => {
      const z = [0, 1, 2].map((u) => {
        const hu = w1['dense/bias']![u]! + x.data[i * 2]! * w1['dense/kernel']![u]! + x.data[i * 2 + 1]! * w1['dense/kernel']![3 + u]!;
        const n = (hu - w1['batch_normalization/moving_mean']![u]!) / Math.sqrt(w1['batch_normalization/moving_variance']![u]! + 1e-3);
        return n * w1['batch_normalization/gamma']![u]! + w1['batch_normalization/beta']![u]!;
      });
      return z.reduce((a, zu, u) => a + zu * w1['dense_1/kernel']![u]!, w1['dense_1/bias']![0]!);
    });
    expected.forEach((e, i) => assert.ok(Math.abs(inference.data[i]! - e) <= 1e-5, `prediction ${i}: expected ${e}, got ${inference.data[i]}`));
  });
  it('on [batch 4, 5 features]: output is (x − mean_f) / sqrt(var_f + ε) · gamma + beta per feature, moving statistics per feature', async () => {
    await checkTrainingForward([5], 4, 21);
  });

  it('on [steps, features]: statistics per feature over batch and steps, not per step', async () => {
    await checkTrainingForward([4, 5], 3, 22);
    await checkTrainingForward([2, 3, 4, 5], 2, 23);
  });

  it('[steps, features] → batchNormalization → flatten → dense: parameter gradients match finite differences', async () => {
    const model = sequential({
      seed: 8,
      layers: [layers.activation({ activation: 'linear', inputShape: [3, 4] }), layers.batchNormalization({ epsilon: 1e-2 }), layers.flatten(), layers.dense({ units: 2, activation: 'tanh' })],
    });
    model.setWeights({ 'batch_normalization/gamma': new Tensor(Float32Array.of(1.2, 0.7, -0.9, 1.5), [4], 'float32'), 'batch_normalization/beta': new Tensor(Float32Array.of(0.1, -0.3, 0.2, 0), [4], 'float32') });
    await checkTrainingGradients(model, randomInput([3, 3, 4], 9));
  });

  it('fit on [steps, features] updates the moving statistics per feature, and predict uses them', async () => {
    const model = sequential({
      seed: 9,
      layers: [layers.batchNormalization({ momentum: 0.9, inputShape: [4, 5] }), layers.flatten(), layers.dense({ units: 1 })],
    });
    model.compile({ optimizer: optimizers.sgd({ learningRate: 0.1 }), loss: 'mse' });
    const raw = randomInput([6, 4, 5], 10);
    const x = new Tensor(Float32Array.from(raw.data, (v, i) => v + 2 * (i % 5)), raw.shape, 'float32');
    const { mean, variance } = featureStats(x);
    await model.fit(x, randomInput([6, 1], 11), { epochs: 1, batchSize: 6, shuffle: false, verbose: 0 });
    const w = weightsOf(model);
    assertNear(w['batch_normalization/moving_mean']!, mean.map((m) => 0.1 * m), 1e-5, 'moving_mean');
    assertNear(w['batch_normalization/moving_variance']!, variance.map((v) => 0.9 + 0.1 * v), 1e-5, 'moving_variance');
    // Inference on the same data: the normalized values per feature, through the dense layer.
    const y = await model.predict(x);
    const expected = [0, 1, 2, 3, 4, 5].map((n) =>
      Array.from({ length: 20 }, (_, k) => {
        const f = k % 5;
        const z = (x.data[n * 20 + k]! - w['batch_normalization/moving_mean']![f]!) / Math.sqrt(w['batch_normalization/moving_variance']![f]! + 1e-3);
        return (z * w['batch_normalization/gamma']![f]! + w['batch_normalization/beta']![f]!) * w['dense/kernel']![k]!;
      }).reduce((a, b) => a + b, w['dense/bias']![0]!),
    );
    assertNear(y.data as Float32Array, expected, 1e-4, 'predict');
  });
});
