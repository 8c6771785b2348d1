import { KilnError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { checkPositiveInteger } from './check.js';

/** Class indices `[...]` to float32 indicator rows `[..., numClasses]`. */
export function oneHot(labels: Tensor, numClasses: number): Tensor<'float32'> {
  checkPositiveInteger(numClasses, 'numClasses', 'oneHot');
  const out = new Float32Array(labels.size * numClasses);
  const data = labels.data as ArrayLike<number | bigint>;
  for (let i = 0; i < labels.size; i++) {
    const label = Number(data[i]);
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
      throw new KilnError('INVALID_DATA', `oneHot: expected labels in 0..${numClasses - 1}, found ${label} at index ${i}`);
    }
    out[i * numClasses + label] = 1;
  }
  return new Tensor(out, [...labels.shape, numClasses], 'float32');
}
