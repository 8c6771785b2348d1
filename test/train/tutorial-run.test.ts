import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor } from '../../src/tensor.js';
import { checkImageDataset } from '../../src/train/tutorial-run.js';
import { kilnError } from './helpers.js';

/* The browser demo's run refuses data of the wrong shape before it builds anything. */

const images = (shape: number[]) => new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, 'float32');
const labels = (n: number) => new Tensor(new Int32Array(n), [n], 'int32');

test('images must be [N, H, W, C] with one label each, and the splits must agree', () => {
  const good = { images: images([4, 28, 28, 1]), labels: labels(4) };
  checkImageDataset({ train: good, test: good, classNames: ['a', 'b'] });
  assert.throws(() => checkImageDataset({ train: { images: images([4, 28, 28]), labels: labels(4) }, test: good, classNames: [] }), kilnError('INVALID_SHAPE', 'train images must be [N, height, width, channels], got [4, 28, 28]'));
  assert.throws(() => checkImageDataset({ train: good, test: { images: images([4, 28, 28, 1]), labels: labels(3) }, classNames: [] }), kilnError('INVALID_SHAPE', 'test labels must be [N] with N = 4', 'got [3]'));
  assert.throws(() => checkImageDataset({ train: good, test: { images: images([4, 32, 32, 3]), labels: labels(4) }, classNames: [] }), kilnError('INVALID_SHAPE', 'train images are [28, 28, 1] each, test images [32, 32, 3]'));
});
