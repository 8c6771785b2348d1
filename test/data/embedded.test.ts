import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { embedded, embeddedDatasetDir, fashionMnistSubset } from '../../src/data/embedded.js';
import { FASHION_MNIST_CLASS_NAMES } from '../../src/data/mnist.js';

function classCounts(labels: Int32Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const label of labels) counts[label]!++;
  return counts;
}

describe('embedded Fashion-MNIST subset', () => {
  it('is found in the package root with its licence', () => {
    const dir = embeddedDatasetDir();
    assert.ok(dir.endsWith(join('data', 'fashion-mnist-subset')));
    assert.ok(existsSync(join(dir, 'LICENSE')), 'the licence ships with the data');
  });

  it('loads 10,000 training and 2,000 test images, balanced across the ten classes', async () => {
    const dataset = await embedded();
    assert.deepEqual(dataset.train.images.shape, [10000, 28, 28, 1]);
    assert.deepEqual(dataset.test.images.shape, [2000, 28, 28, 1]);
    assert.deepEqual(classCounts(dataset.train.labels.data), new Array(10).fill(1000));
    assert.deepEqual(classCounts(dataset.test.labels.data), new Array(10).fill(200));
    assert.deepEqual(dataset.classNames, FASHION_MNIST_CLASS_NAMES);
    let min = Infinity;
    let max = -Infinity;
    for (const value of dataset.train.images.data) {
      min = Math.min(min, value);
      max = Math.max(max, value);
    }
    assert.equal(min, 0);
    assert.equal(max, 1);
  });

  it('is also exported as fashionMnistSubset', () => {
    assert.equal(fashionMnistSubset, embedded);
  });
});
