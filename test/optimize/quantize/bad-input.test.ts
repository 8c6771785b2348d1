/** Bad input to quantize(): each a KilnError that says what was expected and what was found. */
import { describe, it } from 'node:test';
import { decodeModel, encodeModel } from '../../../src/graph/proto.js';
import { Graph } from '../../../src/graph/graph.js';
import { modelToProto } from '../../../src/graph/onnx-io.js';
import { OnnxModel } from '../../../src/model/onnx-model.js';
import { quantize, type QuantizeOptions } from '../../../src/optimize/quantize/quantize.js';
import { Tensor } from '../../../src/tensor.js';
import { rejectsWith, smallCnn } from './helpers.js';

const model = smallCnn();
const images = (n: number, shape = [28, 28, 1]) => new Tensor(Float32Array.from({ length: n * shape.reduce((a, b) => a * b, 1) }, (_, i) => (i % 7) / 7), [n, ...shape], 'float32');

describe('quantize() bad input', () => {
  it('calibration data of the wrong shape', async () => {
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: images(4, [32, 32, 3]) }), 'INVALID_SHAPE', /calibration data must have the model's input shape \[null, 28, 28, 1\] \(batch first\), got \[4, 32, 32, 3\]/);
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: new Tensor(new Float32Array(784), [784], 'float32') }), 'INVALID_SHAPE', /got \[784\]/);
  });
  it('an empty calibration set', async () => {
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: images(0) }), 'INVALID_DATA', /calibration set is empty/);
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: { images: images(0), labels: new Tensor(new Int32Array(0), [0], 'int32') } }), 'INVALID_DATA', /calibration set is empty/);
  });
  it('calibration data with NaN', async () => {
    const x = images(4);
    (x.data as Float32Array)[17] = NaN;
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: x }), 'INVALID_DATA', /calibration data contains NaN at flat index 17/);
  });
  it('static without calibration data', async () => {
    await rejectsWith(() => quantize(model, { mode: 'static' }), 'INVALID_ARGUMENT', /mode 'static' needs calibration data/);
  });
  it('a model that is already quantized (by Kiln, or QDQ from elsewhere, or float16)', async () => {
    const q = await quantize(model, { mode: 'static', calibration: images(8) });
    await rejectsWith(() => quantize(q, { mode: 'static', calibration: images(8) }), 'INVALID_ARGUMENT', /already quantized \(mode 'static'/);
    await rejectsWith(() => quantize(q.bytes, { mode: 'dynamic' }), 'INVALID_ARGUMENT', /already quantized/);
    // Without Kiln's metadata, the QDQ nodes give it away.
    const proto = decodeModel(q.bytes);
    const bare = encodeModel({ ...proto, metadataProps: [] });
    await rejectsWith(() => quantize(new OnnxModel(bare, decodeModel(bare)), { mode: 'float16' }), 'INVALID_ARGUMENT', /already quantized: it has \d+ QuantizeLinear, \d+ DequantizeLinear node\(s\)/);
    const half = await quantize(model, { mode: 'float16' });
    const bareHalf = encodeModel({ ...decodeModel(half.bytes), metadataProps: [] });
    await rejectsWith(() => quantize(bareHalf, { mode: 'static', calibration: images(8) }), 'INVALID_ARGUMENT', /already converted to float16/);
  });
  it('a float64 model, in every mode: refused by name, not reported as converted', async () => {
    const g = new Graph('double');
    const x = g.input('x', 'float64', ['N', 3]);
    g.output(g.op1('MatMul', [x, g.initializer('w', new Tensor(Float64Array.of(1, 2, 3, 4, 5, 6), [3, 2], 'float64'))]), 'y');
    const bytes = encodeModel(modelToProto(g));
    for (const mode of ['float16', 'dynamic', 'static'] as const) {
      await rejectsWith(() => quantize(bytes, { mode, calibration: images(2) }), 'INVALID_ARGUMENT', /holds float64 weights \(initializer 'w'\): quantization converts float32 models/);
    }
  });
  it('an unsupported mode', async () => {
    await rejectsWith(() => quantize(model, { mode: 'int4' } as unknown as QuantizeOptions), 'INVALID_ARGUMENT', /unsupported quantization mode "int4"; expected one of dynamic, static, float16, qat/);
    await rejectsWith(() => quantize(model, undefined as unknown as QuantizeOptions), 'INVALID_ARGUMENT', /needs options with a mode/);
  });
  it('unknown settings', async () => {
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: images(2), method: 'kl' as never }), 'INVALID_ARGUMENT', /unknown calibration method "kl"; expected one of minmax, percentile, entropy/);
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: images(2), activationType: 'int16' as never }), 'INVALID_ARGUMENT', /activationType must be 'uint8' or 'int8', got "int16"/);
    await rejectsWith(() => quantize(model, { mode: 'dynamic', weightBits: 9 }), 'INVALID_ARGUMENT', /weightBits must be an integer in \[2, 8\], got 9/);
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: images(2), calibrationSamples: 0 }), 'INVALID_ARGUMENT', /calibrationSamples must be a positive integer, got 0/);
    await rejectsWith(() => quantize(model, { mode: 'static', calibration: images(2), exclude: ['conv9'] }), 'INVALID_ARGUMENT', /no layer named 'conv9' \(layers: conv2d, max_pooling2d, conv2d_1/);
  });
  it('qat without fine-tuning data, or on a model that cannot train', async () => {
    await rejectsWith(() => quantize(model, { mode: 'qat' }), 'INVALID_ARGUMENT', /mode 'qat' needs fineTune: \{x, y, epochs\}/);
    const onnx = new OnnxModel(model.toOnnx(), decodeModel(model.toOnnx()));
    await rejectsWith(() => quantize(onnx, { mode: 'qat', fineTune: { x: images(4), y: new Tensor(new Int32Array(4), [4], 'int32') } }), 'NOT_TRAINABLE', /needs a trainable Kiln Sequential/);
    await rejectsWith(() => quantize(model, { mode: 'qat', fineTune: { x: images(4), y: new Tensor(new Int32Array(4), [4], 'int32'), epochs: 0 } }), 'INVALID_ARGUMENT', /epochs must be a positive integer, got 0/);
  });
  it('bytes that are not ONNX', async () => {
    await rejectsWith(() => quantize(new Uint8Array([1, 2, 3]), { mode: 'dynamic' }), 'NOT_ONNX', /ONNX model/);
  });
});
