/**
 * Quantization-aware training: the compiled training step carries fake quantization, fine-tuning
 * with it recovers the accuracy that post-training quantization loses, and the result exports to the
 * same QDQ form (batch normalization folded first).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { tensorFromProto } from '../../../src/graph/onnx-io.js';
import { decodeModel } from '../../../src/graph/proto.js';
import { dense, flatten } from '../../../src/layers/index.js';
import { fakeQuantStepOptions, foldBatchNormLayers } from '../../../src/optimize/quantize/qat.js';
import { quantize } from '../../../src/optimize/quantize/quantize.js';
import { compileTraining } from '../../../src/train/training-step.js';
import { sparseCategoricalCrossentropy } from '../../../src/train/losses.js';
import { sequential, type Sequential } from '../../../src/train/sequential.js';
import { adam } from '../../../src/train/optimizers.js';
import { batchNormCnn, fashion, opCounts, smallCnn, trained } from './helpers.js';

/** flatten → dense 64 relu → dense 10: small enough to train in a second or two. */
function mlp(): Sequential {
  return sequential({ seed: 1, layers: [flatten({ inputShape: [28, 28, 1] }), dense({ units: 64, activation: 'relu' }), dense({ units: 10 })] });
}

describe('quantization-aware training', () => {
  let model: Sequential;
  before(async () => {
    model = await trained(mlp(), 4000, 3);
  });

  it('puts fake quantization of kernels and layer outputs into the compiled training step', () => {
    const step = compileTraining(model, sparseCategoricalCrossentropy({ fromLogits: true }), adam(), 'sparse', fakeQuantStepOptions(model));
    const ops = opCounts(step.trainStep);
    // Two kernels and the hidden layer's output; the logits stay float.
    assert.equal(ops.QuantizeLinear, 3, JSON.stringify(ops));
    assert.equal(ops.DequantizeLinear, 3);
  });

  it('trains the kernels of convolutions that stay float (minConvReduction) fake-quantized at 8 bits, as the export stores them', () => {
    const cnn = smallCnn();
    const step = (options: Parameters<typeof fakeQuantStepOptions>[1]) => opCounts(compileTraining(cnn, sparseCategoricalCrossentropy({ fromLogits: true }), adam(), 'sparse', fakeQuantStepOptions(cnn, options)).trainStep);
    // Four kernels and three hidden outputs, whether or not the convolutions compute in float.
    assert.equal(step({ weightBits: 2, minConvReduction: 128 }).QuantizeLinear, 7);
    assert.equal(step({ weightBits: 2, minConvReduction: 0 }).QuantizeLinear, 7);
    // A kernel's fake quantization divides its largest |w| by qmax (qat.ts): 1 at 2 bits, 127 at 8.
    const proto = decodeModel(compileTraining(cnn, sparseCategoricalCrossentropy({ fromLogits: true }), adam(), 'sparse', fakeQuantStepOptions(cnn, { weightBits: 2, minConvReduction: 128 })).trainStep);
    const constants = new Map([
      ...(proto.graph!.initializer ?? []).map((t) => [t.name!, t] as const),
      ...proto.graph!.node!.filter((n) => n.opType === 'Constant').map((n) => [n.output![0]!, n.attribute![0]!.t!] as const),
    ]);
    const reducedMax = new Set(proto.graph!.node!.filter((n) => n.opType === 'Max' && proto.graph!.node!.some((m) => m.opType === 'ReduceMax' && m.output![0] === n.input![0])).map((n) => n.output![0]!));
    const qmax = proto.graph!.node!.filter((n) => n.opType === 'Div' && reducedMax.has(n.input![0]!)).map((n) => (tensorFromProto(constants.get(n.input![1]!)!).data as Float32Array)[0]);
    assert.deepEqual(qmax, [127, 127, 1, 1], 'conv2d and conv2d_1 (9 and 72 products per output) at 8 bits, the Dense kernels at the 2 bits asked for');
  });

  it('recovers the accuracy post-training quantization loses (2-bit weights on a small problem)', async () => {
    const d = await fashion();
    const x = d.train.images.slice(0, 4000);
    const y = d.train.labels.slice(0, 4000);
    const evaluate = { x: d.test.images, y: d.test.labels, latencyRuns: 1 };
    // Ternary weights (2 bits: −1, 0, 1 times a per-channel scale) make the loss large enough to see.
    const ptq = await quantize(model, { mode: 'static', calibration: x, weightBits: 2, evaluate });
    const qat = await quantize(model, { mode: 'qat', weightBits: 2, fineTune: { x, y, epochs: 2, learningRate: 1e-3 }, evaluate });
    const float = ptq.report.evaluation!.before.accuracy!;
    const afterPtq = ptq.report.evaluation!.after.accuracy!;
    const afterQat = qat.report.evaluation!.after.accuracy!;
    assert.ok(afterPtq < float - 0.03, `2-bit post-training quantization should lose accuracy: ${float} → ${afterPtq}`);
    assert.ok(afterQat >= float - 0.01, `QAT: ${afterQat}, float ${float}`);
    assert.ok(afterQat >= afterPtq + 0.03, `QAT ${afterQat} vs post-training ${afterPtq}`);
    assert.equal(qat.report.fineTune?.epochs, 2);
    assert.equal(qat.report.fineTune?.history.loss?.length, 2);
    // The export is the same QDQ form, with the trained 2-bit weights.
    const proto = decodeModel(qat.bytes);
    const w = proto.graph!.initializer!.find((t) => t.name === 'dense/kernel/int8')!;
    assert.ok(new Set(new Int8Array(w.rawData!.buffer, w.rawData!.byteOffset, w.rawData!.length)).size <= 3, 'ternary weights');
    assert.ok(qat.report.layers.every((l) => l.precision === 'int8' || l.layer === 'flatten'));
  });

  it('folds batch normalization before fine-tuning and exports without it', async () => {
    const m = await trained(batchNormCnn(), 1000);
    const folded = foldBatchNormLayers(m);
    assert.deepEqual(folded.folded, ['batch_normalization']);
    assert.deepEqual(folded.model.layers.map((l) => l.className), ['Conv2D', 'Conv2D', 'MaxPooling2D', 'Flatten', 'Dense']);
    const d = await fashion();
    const x = d.test.images.slice(0, 16);
    const a = (await m.predict(x)).data as Float32Array;
    const b = (await folded.model.predict(x)).data as Float32Array;
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-4 * Math.max(1, Math.abs(v)), `output ${i}: ${v} vs ${b[i]}`));
    const q = await quantize(m, { mode: 'qat', fineTune: { x: d.train.images.slice(0, 512), y: d.train.labels.slice(0, 512), epochs: 1 } });
    assert.deepEqual(q.report.foldedBatchNorm, ['batch_normalization']);
    assert.equal(opCounts(q.bytes).BatchNormalization ?? 0, 0);
    assert.equal((await q.predict(x)).shape[1], 10);
  });
});
