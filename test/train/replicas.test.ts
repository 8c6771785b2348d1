/**
 * Data parallelism in fit (FitArgs.replicas, src/train/replicas.ts): a batch split across replicas
 * trains the same weights as one session on the whole batch (shares weighted by their rows, uneven
 * and empty shares included, extra per-batch feeds split too, resuming from a checkpoint exact);
 * replicas draw their own Dropout masks;
 * batch normalization is refused; a diverging replicated run keeps the last good weights; and the
 * default replica count follows the rule fit documents.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, losses, optimizers, sequential, Tensor } from '../../src/index.js';
import type { Layer } from '../../src/layers/index.js';
import { Random } from '../../src/random.js';
import { MAX_AUTO_REPLICAS, autoReplicas, sharedReplicaRuntime } from '../../src/train/replicas.js';
import { sharedRuntime } from '../../src/runtime/runtime.js';
import { STATE_PARAMS, compileTraining } from '../../src/train/training-step.js';
import { kilnError, maxAbsDifference, tempDir, weightsOf } from './helpers.js';

/** Seeded 6×6×1 images of 3 classes (a bright quadrant per class) and their labels. */
function images(n: number, seed = 4): { x: Tensor<'float32'>; y: Tensor<'int32'> } {
  const rng = new Random(seed);
  const x = new Float32Array(n * 36);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    for (let p = 0; p < 36; p++) {
      const [r, col] = [Math.floor(p / 6), p % 6];
      const lit = (c === 0 && r < 3 && col < 3) || (c === 1 && r >= 3 && col >= 3) || (c === 2 && r < 3 && col >= 3);
      x[i * 36 + p] = (lit ? 1 : 0) + 0.3 * rng.normal();
    }
  }
  return { x: new Tensor(x, [n, 6, 6, 1], 'float32'), y: new Tensor(y, [n], 'int32') };
}

/** The worker state namespace of a compiled model's steps (CompiledSteps.stateScope). */
function stateScope(model: unknown): string {
  return (model as { compiled: { stateScope: string } }).compiled.stateScope;
}

/** The flat parameter vector replica `r` (≥ 1) holds for `model`. */
async function replicaParams(r: number, model: unknown): Promise<number[]> {
  return Array.from((await sharedReplicaRuntime(r).getState([STATE_PARAMS], stateScope(model)))[STATE_PARAMS]!.data as Float32Array);
}

/** The model's trainable weights laid out as the training step's flat vector. */
function flatWeights(model: ReturnType<typeof convNet>): number[] {
  const flat: number[] = [];
  for (const slot of model.trainingLayout()) flat.push(...Array.from(model.getWeights().get(slot.name)!.data as Float32Array));
  return flat;
}

function convNet(extra: Layer[] = []) {
  return sequential({
    seed: 7,
    layers: [
      layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [6, 6, 1] }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.flatten(),
      ...extra,
      layers.dense({ units: 3 }),
    ],
  });
}

async function trained(replicas: number, n: number, batchSize: number, optimizer = () => optimizers.adam({ learningRate: 0.01 })) {
  const { x, y } = images(n);
  const model = convNet();
  model.compile({ optimizer: optimizer(), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  const history = await model.fit(x, y, { epochs: 2, batchSize, verbose: 0, replicas, seed: 11 });
  return { model, history: history.history, weights: weightsOf(model) };
}

describe('fit on replicas', () => {
  it('trains the same weights as one session: shares of 32 + 32 and a last batch of 11 + 11 (Adam)', async () => {
    const one = await trained(1, 150, 64);
    const two = await trained(2, 150, 64);
    assert.equal(one.model.trainingReplicas, 1);
    assert.equal(two.model.trainingReplicas, 2);
    const diff = maxAbsDifference(one.weights, two.weights);
    assert.ok(diff <= 1e-5, `weights differ by ${diff}`);
    // The reported loss is the batch's mean (shares weighted by rows), accuracy the batch's count.
    for (let e = 0; e < 2; e++) {
      assert.ok(Math.abs(one.history.loss![e]! - two.history.loss![e]!) <= 1e-5, `epoch ${e} loss ${one.history.loss![e]} vs ${two.history.loss![e]}`);
      assert.equal(one.history.accuracy![e], two.history.accuracy![e]);
    }
    // And something was learned, so the comparison is not between two untrained models.
    assert.ok(two.history.loss![1]! < two.history.loss![0]!, `loss should fall: ${two.history.loss}`);
    // The second replica took part: it holds the same trained weights as the model.
    assert.deepEqual(await replicaParams(1, two.model), flatWeights(two.model));
  });

  it('weights set by a callback between epochs reach every replica', async () => {
    const { x, y } = images(128);
    const run = async (replicas: number) => {
      const model = convNet();
      model.compile({ optimizer: optimizers.adam({ learningRate: 0.01 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
      const initial = new Map([...model.getWeights()].map(([k, t]) => [k, new Tensor(Float32Array.from(t.data as Float32Array), [...t.shape], 'float32')]));
      // After the first epoch, back to the initial weights (as early stopping restores its best).
      const reset = { onEpochEnd: (epoch: number) => (epoch === 0 ? model.setWeights(initial) : undefined) };
      await model.fit(x, y, { epochs: 2, batchSize: 64, verbose: 0, replicas, shuffle: false, callbacks: [reset] });
      return weightsOf(model);
    };
    const diff = maxAbsDifference(await run(1), await run(2));
    assert.ok(diff <= 1e-5, `weights differ by ${diff}`);
  });

  it('uneven shares (22 + 21 + 21 on three replicas) and a last batch of one row (one replica idle): SGD with momentum', async () => {
    const sgd = () => optimizers.sgd({ learningRate: 0.05, momentum: 0.9 });
    const one = await trained(1, 129, 64, sgd);
    for (const replicas of [2, 3]) {
      const many = await trained(replicas, 129, 64, sgd);
      assert.equal(many.model.trainingReplicas, replicas);
      const diff = maxAbsDifference(one.weights, many.weights);
      assert.ok(diff <= 1e-5, `${replicas} replicas: weights differ by ${diff}`);
    }
  });

  it('resuming from a checkpoint on replicas continues exactly: 1 epoch + resume to 3 = 3 uninterrupted', async () => {
    const { x, y } = images(150);
    const temp = await tempDir();
    try {
      const make = () => {
        const model = convNet();
        model.compile({ optimizer: optimizers.adam({ learningRate: 0.01 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
        return model;
      };
      const args = { batchSize: 64, verbose: 0 as const, replicas: 2, seed: 5 };
      const uninterrupted = make();
      await uninterrupted.fit(x, y, { ...args, epochs: 3 });
      await make().fit(x, y, { ...args, epochs: 1, checkpointPath: temp.path('one.ckpt') });
      const resumed = make();
      await resumed.fit(x, y, { ...args, epochs: 3, resumeFrom: temp.path('one.ckpt') });
      assert.equal(resumed.trainingReplicas, 2);
      const diff = maxAbsDifference(weightsOf(resumed), weightsOf(uninterrupted));
      assert.ok(diff <= 1e-6, `weights differ by ${diff}`);
    } finally {
      await temp.remove();
    }
  });

  it("splits fit's extra per-batch feeds by rows with the batch (a loss reading its own targets)", async () => {
    const { x, y } = images(96);
    const targets = new Tensor(Float32Array.from({ length: 96 * 3 }, (_, i) => ((i * 7) % 5) / 5), [96, 3], 'float32');
    const run = async (replicas: number) => {
      const model = convNet();
      model.compile(
        { optimizer: optimizers.adam({ learningRate: 0.01 }), loss: 'mse' },
        {
          extraInputs: [{ name: 'soft_targets', dtype: 'float32', shape: ['N', 3] }],
          // Mean squared error against the extra input instead of the labels.
          buildLoss: (g, output) => g.op1('ReduceMean', [g.op1('Pow', [g.op1('Sub', [output, g.value('soft_targets')]), g.scalar(2)])], { keepdims: 0 }),
        },
      );
      const yFloat = new Tensor(Float32Array.from({ length: 96 * 3 }, (_, i) => (i % 3 === (y.data[Math.floor(i / 3)] as number) ? 1 : 0)), [96, 3], 'float32');
      await model.fit(x, yFloat, { epochs: 2, batchSize: 64, verbose: 0, replicas, extraFeeds: (idx) => ({ soft_targets: targets.gather(idx) }) });
      return weightsOf(model);
    };
    const diff = maxAbsDifference(await run(1), await run(2));
    assert.ok(diff <= 1e-5, `weights differ by ${diff}`);
  });

  it('gives each replica its own Dropout seed, and only that differs between their steps', () => {
    const compiledOf = (withDropout: boolean) => {
      const model = convNet(withDropout ? [layers.dense({ units: 8, activation: 'relu' }), layers.dropout({ rate: 0.5 })] : []);
      return compileTraining(model, losses.sparseCategoricalCrossentropy({ fromLogits: true }), optimizers.adam(), 'sparse');
    };
    const plain = compiledOf(false).replicate(2);
    assert.deepEqual(plain.gradSteps[0], plain.gradSteps[1]);
    const dropped = compiledOf(true).replicate(2);
    assert.notDeepEqual(dropped.gradSteps[0], dropped.gradSteps[1]);
    assert.equal(dropped.gradSteps[0]!.length, dropped.gradSteps[1]!.length);
  });

  it('a model with dropout trains on replicas', async () => {
    const { x, y } = images(128);
    const model = convNet([layers.dense({ units: 8, activation: 'relu' }), layers.dropout({ rate: 0.25 })]);
    model.compile({ optimizer: optimizers.adam({ learningRate: 0.02 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    const h = await model.fit(x, y, { epochs: 15, batchSize: 64, verbose: 0, replicas: 2 });
    assert.equal(model.trainingReplicas, 2);
    assert.ok(h.history.loss![14]! < 0.5 * h.history.loss![0]!, `loss should fall by half: ${h.history.loss}`);
  });

  it('refuses replicas for batch normalization (statistics would be per replica) and defaults to one session', async () => {
    const { x, y } = images(64);
    const model = sequential({ seed: 1, layers: [layers.flatten({ inputShape: [6, 6, 1] }), layers.dense({ units: 8 }), layers.batchNormalization(), layers.dense({ units: 3 })] });
    model.compile({ optimizer: 'adam', loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
    await assert.rejects(model.fit(x, y, { batchSize: 64, verbose: 0, replicas: 2 }), kilnError('INVALID_ARGUMENT', 'replicas', 'batch normalization'));
    await model.fit(x, y, { batchSize: 64, verbose: 0 });
    assert.equal(model.trainingReplicas, 1);
    // Layer-output hooks (quantization-aware training's fake-quantized activations read the batch).
    const hooked = compileTraining(convNet(), losses.sparseCategoricalCrossentropy({ fromLogits: true }), optimizers.adam(), null, { afterLayer: (_g, _l, out) => out });
    assert.match(hooked.notReplicable ?? '', /layer outputs/);
    assert.equal(autoReplicas(hooked, 128, 2), 1);
    await assert.rejects(convNet().fit(x, y, { verbose: 0, replicas: 0 } as never), kilnError('NOT_COMPILED'));
    const net = convNet();
    net.compile({ optimizer: 'adam', loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
    await assert.rejects(net.fit(x, y, { verbose: 0, replicas: 1.5 }), kilnError('INVALID_ARGUMENT', 'replicas', '1.5'));
  });

  it('a diverging replicated run stops with NAN_LOSS, keeps the weights of the last good step, and the step queued behind it changes nothing', async () => {
    // One unit, w = 1, b = 0, MSE, SGD lr 1000, batches of 2 split 1 + 1. Step 1 is harmless; step 2
    // meets x = 1e18, whose update overflows float32; step 3 is already queued when that is known.
    const build = () => {
      const model = sequential({ layers: [layers.dense({ units: 1, inputShape: [1], kernelInitializer: 'ones' })] });
      model.compile({ optimizer: optimizers.sgd({ learningRate: 1000 }), loss: 'mse' });
      return model;
    };
    const xs = new Tensor(Float32Array.of(1e-3, 2e-3, 1e18, 1, 0.5, 0.25), [6, 1], 'float32');
    const ys = new Tensor(new Float32Array(6), [6, 1], 'float32');
    const model = build();
    await assert.rejects(model.fit(xs, ys, { epochs: 1, batchSize: 2, shuffle: false, verbose: 0, replicas: 2 }), kilnError('NAN_LOSS', 'epoch 1', 'step 2'));
    // What the worker holds once the queued step 3 has run its course.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const held = Array.from((await sharedRuntime().getState([STATE_PARAMS], stateScope(model)))[STATE_PARAMS]!.data as Float32Array);
    const heldByReplica1 = await replicaParams(1, model);
    const reference = build();
    await reference.fit(xs.slice(0, 2), ys.slice(0, 2), { epochs: 1, batchSize: 2, shuffle: false, verbose: 0, replicas: 1 });
    const good = weightsOf(reference);
    const w = weightsOf(model);
    assert.ok(Object.values(w).flat().every(Number.isFinite), `weights are finite: ${JSON.stringify(w)}`);
    assert.ok(maxAbsDifference(w, good) <= 1e-6, `${JSON.stringify(w)} vs ${JSON.stringify(good)}`);
    // The worker still holds them too: the step queued behind the failed one did not update it.
    assert.ok(Math.abs(held[0]! - good['dense/kernel']![0]!) <= 1e-6 && Math.abs(held[1]! - good['dense/bias']![0]!) <= 1e-6, `worker holds ${held}, last good ${JSON.stringify(good)}`);
    assert.deepEqual(heldByReplica1, held);
    // And the model trains again from there.
    await model.fit(xs.slice(3, 6), ys.slice(3, 6), { epochs: 1, batchSize: 2, shuffle: false, verbose: 0, replicas: 2 });
    assert.ok(Object.values(weightsOf(model)).flat().every(Number.isFinite));
    assert.ok(maxAbsDifference(weightsOf(model), good) > 1e-3, 'the second fit changed the weights');
  });

  it('a data set smaller than the batch size counts as the batch: 40 rows stay on one replica', async () => {
    const { x, y } = images(40);
    const model = convNet();
    model.compile({ optimizer: 'adam', loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
    await model.fit(x, y, { batchSize: 64, verbose: 0 });
    assert.equal(model.trainingReplicas, 1);
  });

  it('defaults to one replica per core while each gets at least 32 rows of a batch', () => {
    const training = compileTraining(convNet(), losses.sparseCategoricalCrossentropy({ fromLogits: true }), optimizers.adam(), null);
    assert.equal(autoReplicas(training, 32, 2), 1);
    assert.equal(autoReplicas(training, 63, 2), 1);
    assert.equal(autoReplicas(training, 64, 2), 2);
    assert.equal(autoReplicas(training, 128, 2), 2);
    assert.equal(autoReplicas(training, 128, 16), 4);
    assert.equal(autoReplicas(training, 512, 16), MAX_AUTO_REPLICAS);
    assert.equal(MAX_AUTO_REPLICAS, 4);
    assert.equal(autoReplicas(training, 128, 1), 1);
    assert.equal(autoReplicas({ ...training, notReplicable: 'batch normalization' }, 128, 2), 1);
  });
});
