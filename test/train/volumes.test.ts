/**
 * 3-D models as PyTorch exports them (video clips, medical volumes: inputs [N, C, D, H, W]). The
 * `vol3d` fixture (test/fixtures/exported: Conv3d dense, strided and depthwise, BatchNorm3d, MaxPool3d,
 * ConvTranspose3d, AvgPool3d) fine-tunes, and the saved file runs as it did; its gradients equal
 * PyTorch's in graph-model-gradients.test.ts, its structured pruning is checked in
 * test/optimize/prune/graph-structured.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeModel } from '../../src/graph/proto.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { sparseCategoricalCrossentropy } from '../../src/train/losses.js';
import { adam } from '../../src/train/optimizers.js';
import { EXPORTED_DIR } from '../fixtures/exported/reference.js';

const FILE = `${EXPORTED_DIR}/vol3d.onnx`;
const FRAMES = 4;
const AREA = 28 * 28;

/**
 * Clips [n, 1, 4, 28, 28] of faint noise with a bright 10 × 10 square at a seeded place in the first
 * k + 1 frames: class k (0–3) is how many frames show it.
 */
function clipTask(n: number, seed: number): { x: Tensor<'float32'>; y: Tensor<'int64'> } {
  let state = seed * 7919 + 1;
  const random = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
  const x = new Float32Array(n * FRAMES * AREA);
  const y = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % FRAMES;
    y[i] = BigInt(k);
    const clip = i * FRAMES * AREA;
    for (let j = 0; j < FRAMES * AREA; j++) x[clip + j] = 0.3 * random();
    const [top, left] = [Math.floor(random() * 18), Math.floor(random() * 18)];
    for (let f = 0; f <= k; f++) for (let r = top; r < top + 10; r++) for (let c = left; c < left + 10; c++) x[clip + f * AREA + r * 28 + c] = 1;
  }
  return { x: new Tensor(x, [n, 1, FRAMES, 28, 28], 'float32'), y: new Tensor(y, [n], 'int64') };
}

describe('3-D models: inputs [N, C, D, H, W]', () => {
  it('a PyTorch Conv3d export fine-tunes on clips, and its saved file predicts as the trained model does', async () => {
    const model = await GraphModel.load(FILE);
    assert.deepEqual(model.inputShape, [1, FRAMES, 28, 28]);
    model.compile({ optimizer: adam({ learningRate: 3e-3 }), loss: sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    const train = clipTask(256, 1);
    const test = clipTask(64, 2);
    const before = await model.evaluate(test.x, test.y);
    await model.fit(train.x, train.y, { epochs: 12, batchSize: 32, verbose: 0, seed: 1 });
    const after = await model.evaluate(test.x, test.y);
    assert.ok(after.loss < before.loss / 2, `loss ${before.loss} → ${after.loss}`);
    assert.ok(after.accuracy! > 0.9, `accuracy ${before.accuracy} → ${after.accuracy}`);

    const saved = await GraphModel.fromProto(decodeModel(model.toOnnx()), 'vol3d-tuned.onnx');
    const [ours, theirs] = await Promise.all([model.predict(test.x), saved.predict(test.x)]);
    assert.deepEqual(ours.shape, [64, 10]);
    const a = ours.data as Float32Array;
    const b = theirs.data as Float32Array;
    assert.ok(a.every((v, i) => Math.abs(v - b[i]!) <= 1e-5 * Math.max(1, Math.abs(v))), 'the saved file predicts what the trained model predicts');
  });

  it('channels-last clips [N, 4, 28, 28, 1] (as Keras Conv3D takes them) feed the channels-first model without a flag', async () => {
    const { x } = clipTask(8, 3);
    const channelsLast = new Tensor(x.data, [8, FRAMES, 28, 28, 1], 'float32'); // one channel: the same bytes
    const [asExported, fedChannelsLast] = await Promise.all([GraphModel.load(FILE), GraphModel.load(FILE)]);
    const [a, b] = await Promise.all([asExported.predict(x), fedChannelsLast.predict(channelsLast)]);
    assert.deepEqual(fedChannelsLast.inputShape, [FRAMES, 28, 28, 1]);
    assert.deepEqual(Array.from(b.data), Array.from(a.data));
    // Settled: the other layout later is an error naming both shapes and --layout.
    await assert.rejects(fedChannelsLast.predict(x), /the model takes \[null, 4, 28, 28, 1\].*--layout nchw feeds channels-last data \[N, D, H, W, C\]/);
  });
});
