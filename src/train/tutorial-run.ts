// Owns the browser demo's training run: the tutorial CNN on an image data set, Adam, cross-entropy from
// logits, batch 32, seeded; trained, timed and evaluated on the test split. The page (web/demo-page.ts)
// and Node (`kiln browser-demo --compare-node`, bench/browser) run this same code, so their accuracy
// and speed compare the platforms and nothing else.
import type { ImageDataset } from '../data/types.js';
import { KilnError, formatShape } from '../errors.js';
import { tutorialCnn } from '../layers/presets.js';
import type { Callback } from './callbacks.js';
import type { History } from './fit-loop.js';
import { sparseCategoricalCrossentropy } from './losses.js';
import { adam } from './optimizers.js';
import { Sequential, sequential } from './sequential.js';

export interface TutorialRunOptions {
  epochs: number;
  /** Seed of the initial weights and the shuffling. */
  seed?: number;
  batchSize?: number;
  /** Train on the first n training images only. */
  limit?: number;
  callbacks?: Callback[];
}

export interface TutorialRun {
  model: Sequential;
  history: History;
  trainImages: number;
  /** Seconds fit() took. */
  trainSeconds: number;
  /** Training images per second over the whole fit (every epoch). */
  imagesPerSecond: number;
  test: { loss: number; accuracy: number };
}

/** Checks the data is what the tutorial CNN takes: [N, H, W, C] images, int labels, the same N. */
export function checkImageDataset(data: ImageDataset): void {
  for (const split of ['train', 'test'] as const) {
    const { images, labels } = data[split];
    if (images.rank !== 4) throw new KilnError('INVALID_SHAPE', `${split} images must be [N, height, width, channels], got ${formatShape(images.shape)}`);
    if (labels.rank !== 1 || labels.shape[0] !== images.shape[0]) {
      throw new KilnError('INVALID_SHAPE', `${split} labels must be [N] with N = ${images.shape[0]} (one per image), got ${formatShape(labels.shape)}`);
    }
  }
  const [train, test] = [data.train.images.shape.slice(1), data.test.images.shape.slice(1)];
  if (formatShape(train) !== formatShape(test)) throw new KilnError('INVALID_SHAPE', `train images are ${formatShape(train)} each, test images ${formatShape(test)}: they must match`);
}

export async function trainTutorialCnn(data: ImageDataset, options: TutorialRunOptions): Promise<TutorialRun> {
  checkImageDataset(data);
  const seed = options.seed ?? 42;
  const n = Math.min(options.limit ?? Infinity, data.train.images.shape[0]!);
  const x = data.train.images.slice(0, n);
  const y = data.train.labels.slice(0, n);
  const model = sequential({ layers: tutorialCnn(x.shape.slice(1), data.classNames.length), seed, name: 'fashion_cnn' });
  model.compile({ optimizer: adam(), loss: sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  const started = performance.now();
  const history = await model.fit(x, y, { epochs: options.epochs, batchSize: options.batchSize ?? 32, seed, verbose: 0, callbacks: options.callbacks });
  const trainSeconds = (performance.now() - started) / 1000;
  const result = await model.evaluate(data.test.images, data.test.labels);
  return {
    model,
    history,
    trainImages: n,
    trainSeconds,
    imagesPerSecond: (n * history.epoch.length) / trainSeconds,
    test: { loss: result.loss, accuracy: result.accuracy! },
  };
}
