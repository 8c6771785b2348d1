/**
 * Small, fast fixtures for the distillation, bench and report tests: a few hundred images of the
 * embedded Fashion-MNIST subset, a tiny CNN trained on them, and the same images written as an IDX
 * data set directory for the CLI commands.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { datasets, layers, losses, optimizers, sequential, type Sequential, type Tensor } from '../../src/index.js';
import { encodeIdx } from '../../src/data/idx.js';

export interface TinyData {
  train: { images: Tensor<'float32'>; labels: Tensor<'int32'> };
  test: { images: Tensor<'float32'>; labels: Tensor<'int32'> };
}

export async function tinyData(nTrain = 600, nTest = 200): Promise<TinyData> {
  const data = await datasets.embedded();
  return {
    train: { images: data.train.images.slice(0, nTrain), labels: data.train.labels.slice(0, nTrain) },
    test: { images: data.test.images.slice(0, nTest), labels: data.test.labels.slice(0, nTest) },
  };
}

/** Conv8(3×3) relu → MaxPool 2 → Flatten → Dense 10 (logits): 13,610 parameters. */
export function tinyCnn(seed = 1, filters = 8): Sequential {
  return sequential({
    seed,
    name: 'tiny_cnn',
    layers: [
      layers.conv2d({ filters, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.flatten(),
      layers.dense({ units: 10 }),
    ],
  });
}

export function compileClassifier(model: Sequential, learningRate = 3e-3): void {
  model.compile({ optimizer: optimizers.adam({ learningRate }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
}

export async function trainedTinyCnn(data: TinyData, epochs = 3, seed = 1): Promise<Sequential> {
  const model = tinyCnn(seed);
  compileClassifier(model);
  await model.fit(data.train.images, data.train.labels, { epochs, batchSize: 32, validationSplit: 0.2, verbose: 0 });
  return model;
}

/** Writes the data as the four MNIST-style IDX files `loadDataset(dir)` recognizes. */
export async function writeIdxDataset(dir: string, data: TinyData): Promise<string> {
  await mkdir(dir, { recursive: true });
  const pixels = (t: Tensor) => Uint8Array.from(t.data as Float32Array, (v) => Math.round(v * 255));
  const labels = (t: Tensor) => Uint8Array.from(t.data as Int32Array);
  const [n, h, w] = data.train.images.shape as [number, number, number];
  const m = data.test.images.shape[0]!;
  await writeFile(join(dir, 'train-images-idx3-ubyte'), encodeIdx([n, h, w], pixels(data.train.images)));
  await writeFile(join(dir, 'train-labels-idx1-ubyte'), encodeIdx([n], labels(data.train.labels)));
  await writeFile(join(dir, 't10k-images-idx3-ubyte'), encodeIdx([m, h, w], pixels(data.test.images)));
  await writeFile(join(dir, 't10k-labels-idx1-ubyte'), encodeIdx([m], labels(data.test.labels)));
  return dir;
}
