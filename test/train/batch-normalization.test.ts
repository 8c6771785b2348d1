/**
 * Training-mode batch normalization as the layer composes it (src/layers/batch-normalization.ts, built
 * from ReduceMean/Sub/Mul/Sqrt so the generic rules differentiate through the batch statistics): the
 * training graph's parameter gradients match finite differences of the training-mode loss, and one fit
 * step updates the moving statistics as momentum·old + (1 − momentum)·batch.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, optimizers, sequential, Tensor, type Sequential } from '../../src/index.js';
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
});
