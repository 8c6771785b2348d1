/**
 * Kiln's channels-last data meeting models PyTorch exported, wherever Kiln runs a file as it is:
 * the input adapter (layout, then the declared mean/std), quantization calibrated on the data set,
 * `bench`, and `kiln.client` against `kiln serve` — all without a layout flag.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { bench } from '../../src/bench/index.js';
import { embedded } from '../../src/data/embedded.js';
import { KilnError } from '../../src/errors.js';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';
import { adaptInput, declaredPreprocessing } from '../../src/model/input-adapter.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { quantize } from '../../src/optimize/quantize/index.js';
import { client, serve, type ServerHandle } from '../../src/serve/index.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';

const RESNET = 'test/fixtures/exported/resnet.onnx';
const nchwDesc = { name: 'input', dtype: 'float32', shape: ['batch', 2, 2, 3] as (string | number)[] };

/** A [1, 2, 3, 2] channels-last image whose value encodes (row, column, channel). */
function image(): Tensor<'float32'> {
  const data = new Float32Array(12);
  for (let h = 0; h < 2; h++) for (let w = 0; w < 3; w++) for (let c = 0; c < 2; c++) data[(h * 3 + w) * 2 + c] = 100 * c + 10 * h + w;
  return new Tensor(data, [1, 2, 3, 2], 'float32');
}

describe('adaptInput', () => {
  it('transposes channels-last images for a channels-first input, then applies mean/std per channel', () => {
    const x = adaptInput(image(), nchwDesc, { mean: [1, 100], std: [2, 10] });
    assert.deepEqual(x.shape, [1, 2, 2, 3]);
    // channel 0: (10h + w - 1) / 2; channel 1: (100 + 10h + w - 100) / 10
    assert.deepEqual([...x.data], [-0.5, 0, 0.5, 4.5, 5, 5.5, 0, 0.1, 0.2, 1, 1.1, 1.2].map((v) => Math.fround(v)));
  });

  it('leaves data that already has the input shape as it is, and never transposes for a declared nhwc model', () => {
    const x = image();
    assert.equal(adaptInput(x, { name: 'input', dtype: 'float32', shape: [null, 2, 3, 2] }), x);
    assert.equal(adaptInput(x, nchwDesc, { layout: 'nhwc' }), x, 'left for the shape check to name');
  });

  it('flattens images for a vector input; data that fits no layout names both shapes and --layout', () => {
    assert.deepEqual(adaptInput(image(), { name: 'v', dtype: 'float32', shape: [null, 12] }).shape, [1, 12]);
    assert.throws(
      () => adaptInput(image(), { name: 'input', dtype: 'float32', shape: [null, 5, 5] }),
      (e: unknown) => e instanceof KilnError && e.code === 'INVALID_SHAPE' && /\[null, 5, 5\]/.test(e.message) && /\[null, 2, 3, 2\]/.test(e.message) && /--layout/.test(e.message),
    );
    assert.throws(() => adaptInput(image(), nchwDesc, { mean: [1, 2, 3] }), /--mean has 3 values; the model's input has 2 channels/);
  });

  it('transposes channels-last volumes [N, D, H, W, C] for a channels-first input [N, C, D, H, W], mean/std per channel', () => {
    // Value 1000·c + 100·d + 10·h + w at (d, h, w, c): depth 2, 2 × 3 pixels, 2 channels.
    const data = new Float32Array(24);
    for (let d = 0; d < 2; d++) for (let h = 0; h < 2; h++) for (let w = 0; w < 3; w++) for (let c = 0; c < 2; c++) data[((d * 2 + h) * 3 + w) * 2 + c] = 1000 * c + 100 * d + 10 * h + w;
    const x = adaptInput(new Tensor(data, [1, 2, 2, 3, 2], 'float32'), { name: 'clip', dtype: 'float32', shape: ['batch', 2, 2, 2, 3] }, { mean: [0, 1000] });
    assert.deepEqual(x.shape, [1, 2, 2, 2, 3]);
    const positions = [0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112];
    assert.deepEqual([...x.data], [...positions, ...positions], 'channel by channel, each (d, h, w) in order, the mean taken off');
  });

  it("reads a model file's declared preprocessing from its metadata", () => {
    const proto = decodeModel(readFileSync(RESNET));
    assert.deepEqual(declaredPreprocessing(proto), {});
    proto.metadataProps = [{ key: 'kiln.preprocessing', value: JSON.stringify({ layout: 'nchw', mean: [0.5], std: [0.25] }) }];
    assert.deepEqual(new OnnxModel(encodeModel(proto), proto).preprocessing, { layout: 'nchw', mean: [0.5], std: [0.25] });
  });
});

describe("a PyTorch export (channels-first ResNet) with Kiln's channels-last data", () => {
  let server: ServerHandle;
  before(async () => {
    server = await serve({ model: RESNET, name: 'resnet', host: '127.0.0.1', port: 0, logLevel: 'silent' });
  });
  after(() => server.close());

  it('quantizes statically, calibrated and evaluated on the data set', async () => {
    const data = await embedded();
    const q = await quantize(await OnnxModel.load(RESNET), { mode: 'static', calibration: data.train.images.slice(0, 128), evaluate: { x: data.test.images.slice(0, 256), y: data.test.labels.slice(0, 256) } });
    const e = q.report.evaluation!;
    assert.ok(e.before.accuracy! > 0.4 && Math.abs(e.after.accuracy! - e.before.accuracy!) < 0.05, JSON.stringify(e));
    // The library takes the loaded GraphModel as well: quantized as the file it saves.
    const fromModel = await quantize(await GraphModel.load(RESNET), { mode: 'static', calibration: data.train.images.slice(0, 64) });
    assert.deepEqual(decodeModel(fromModel.bytes).graph!.output!.map((o) => o.name), ['logits']);
  });

  it('is benched on the data set', async () => {
    const data = await embedded();
    const r = await bench([RESNET], { x: data.test.images.slice(0, 256), y: data.test.labels.slice(0, 256) }, { repetitions: 1, latencyRuns: 2, warmup: 1, throughputBatches: 1 });
    assert.ok(r.models[0]!.accuracy > 0.4, String(r.models[0]!.accuracy));
  });

  it('is served, and kiln.client predicts from channels-last images what ONNX Runtime gives for the channels-first batch', async () => {
    const data = await embedded();
    const nhwc = data.test.images.slice(0, 4);
    const viaServer = await client(server.url).predict('resnet', nhwc);
    const direct = await (await OnnxModel.load(RESNET)).predict(new Tensor(nhwc.data as Float32Array, [4, 1, 28, 28], 'float32')); // one channel: same order
    assert.deepEqual(viaServer.shape, [4, 10]);
    (viaServer.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - (direct.data as Float32Array)[i]!) < 1e-5));
  });
});
