/** Shared fixtures for the pruning tests: small seeded models and data. */
import { Random } from '../../../src/random.js';
import { Tensor } from '../../../src/tensor.js';
import { layers, sequential, type Sequential } from '../../../src/index.js';

export { kilnError } from '../../train/helpers.js';
export { makeTempDir } from '../../model/helpers.js';

/** n seeded images [n, ...shape] in [0, 1) with labels in [0, classes). */
export function randomImages(n: number, shape: number[], classes = 10, seed = 3): { x: Tensor<'float32'>; y: Tensor<'int32'> } {
  const rng = new Random(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const x = new Tensor(Float32Array.from({ length: n * size }, () => rng.next()), [n, ...shape], 'float32');
  const y = new Tensor(Int32Array.from({ length: n }, () => rng.int(classes)), [n], 'int32');
  return { x, y };
}

/** The tutorial CNN on 28×28×1 images (Fashion-MNIST's shape): 93,322 parameters. */
export function tutorialCnn(seed = 1): Sequential {
  return sequential({ seed, layers: layers.tutorialCnn([28, 28, 1]) });
}

/** A small dense classifier: dense(16) → dense(16) → dense(16) → dense(3) on 6 features. */
export function denseNet(seed = 5): Sequential {
  return sequential({
    seed,
    layers: [
      layers.dense({ units: 16, activation: 'relu', inputShape: [6] }),
      layers.dense({ units: 16, activation: 'relu' }),
      layers.dense({ units: 16, activation: 'relu' }),
      layers.dense({ units: 3 }),
    ],
  });
}

/** Features that make a learnable 3-class problem (the label is the largest of three feature sums). */
export function denseData(n: number, seed = 9): { x: Tensor<'float32'>; y: Tensor<'int32'> } {
  const rng = new Random(seed);
  const x = Float32Array.from({ length: n * 6 }, () => rng.uniform(-1, 1));
  const y = Int32Array.from({ length: n }, (_, i) => {
    const s = [0, 1, 2].map((c) => x[i * 6 + 2 * c]! + x[i * 6 + 2 * c + 1]!);
    return s.indexOf(Math.max(...s));
  });
  return { x: new Tensor(x, [n, 6], 'float32'), y: new Tensor(y, [n], 'int32') };
}

export function zerosOf(t: Tensor): number {
  let z = 0;
  for (const v of t.data as Float32Array) if (v === 0) z++;
  return z;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}
