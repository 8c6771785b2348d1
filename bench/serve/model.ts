/* The serve benches' model and input: the tutorial CIFAR-10 CNN and seeded 32×32×3 images. */
import { conv2d, dense, flatten, maxPooling2d } from '../../src/layers/index.js';
import { Random } from '../../src/random.js';
import { sequential } from '../../src/train/sequential.js';
import { Tensor } from '../../src/tensor.js';

/** The tutorial CNN: Conv2D 32 relu [32,32,3] → MaxPool 2 → Conv2D 64 relu → MaxPool 2 → Conv2D 64 relu → Flatten → Dense 64 relu → Dense 10. */
export function tutorialCnn() {
  return sequential({
    seed: 42,
    layers: [
      conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [32, 32, 3] }),
      maxPooling2d({ poolSize: 2 }),
      conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
      maxPooling2d({ poolSize: 2 }),
      conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
      flatten(),
      dense({ units: 64, activation: 'relu' }),
      dense({ units: 10 }),
    ],
  });
}

export function randomImages(rows: number, seed = 1): Tensor<'float32'> {
  const rng = new Random(seed);
  const data = new Float32Array(rows * 32 * 32 * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.next();
  return new Tensor(data, [rows, 32, 32, 3], 'float32');
}
