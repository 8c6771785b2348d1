import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { it } from 'node:test';
import { DEBIAN_FASHION_MNIST_DIR, fashionMnist } from '../../src/data/mnist.js';
import { needs } from '../requirements.js';

it('fashionMnist() with no directory loads Debian\'s 60,000 + 10,000 images', async (t) => {
  if (!needs(t, existsSync(DEBIAN_FASHION_MNIST_DIR) ? undefined : `${DEBIAN_FASHION_MNIST_DIR} not present (apt-get install dataset-fashion-mnist)`)) return;
  const dataset = await fashionMnist();
  assert.deepEqual(dataset.train.images.shape, [60000, 28, 28, 1]);
  assert.deepEqual(dataset.train.labels.shape, [60000]);
  assert.deepEqual(dataset.test.images.shape, [10000, 28, 28, 1]);
  assert.deepEqual(dataset.test.labels.shape, [10000]);
  const counts = new Array<number>(10).fill(0);
  for (const label of dataset.train.labels.data) counts[label]!++;
  assert.deepEqual(counts, new Array(10).fill(6000), 'Fashion-MNIST has 6,000 training images per class');
  let max = 0;
  for (const value of dataset.test.images.data) max = Math.max(max, value);
  assert.equal(max, 1);
});
