/**
 * layers.conv2dTranspose (Keras' Conv2DTranspose): output sizes by Keras' deconv_output_length,
 * outputs placed as TensorFlow's conv2d_transpose places them (hand-computed: a 'same' output is NOT
 * PyTorch's padding=1, output_padding=1, which starts one row earlier), training in an autoencoder,
 * a saved model that loads back, and structured pruning's refusal to carry channels through it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { layers, loadModel, modelCost, sequential, Tensor } from '../../src/index.js';
import { meanSquaredError } from '../../src/train/losses.js';
import { adam } from '../../src/train/optimizers.js';
import { prune } from '../../src/optimize/prune/prune.js';
import { kilnError, tempDir } from '../train/helpers.js';

/** Keras' deconv_output_length (dilation 1), written out independently of the layer's. */
function kerasLength(n: number, k: number, s: number, padding: 'valid' | 'same', outputPadding?: number): number {
  if (outputPadding === undefined) return padding === 'valid' ? n * s + Math.max(k - s, 0) : n * s;
  return (n - 1) * s + k - 2 * (padding === 'same' ? Math.floor(k / 2) : 0) + outputPadding;
}

/** A one-layer model on a 1-channel 2×2 input whose kernel is all ones and bias zero. */
async function ones(args: Omit<Parameters<typeof layers.conv2dTranspose>[0], 'filters'>): Promise<number[][]> {
  const model = sequential({ layers: [layers.conv2dTranspose({ filters: 1, useBias: false, inputShape: [2, 2, 1], ...args })] });
  const [kh, kw] = typeof args.kernelSize === 'number' ? [args.kernelSize, args.kernelSize] : args.kernelSize;
  model.setWeights({ 'conv2d_transpose/kernel': new Tensor(new Float32Array(kh * kw).fill(1), [1, 1, kh, kw], 'float32') });
  const y = await model.predict(new Tensor(Float32Array.of(1, 2, 3, 4), [1, 2, 2, 1], 'float32'));
  const [, h, w] = y.shape as [number, number, number, number];
  return Array.from({ length: h }, (_, r) => Array.from((y.data as Float32Array).subarray(r * w, (r + 1) * w)));
}

describe('layers.conv2dTranspose', () => {
  let t: Awaited<ReturnType<typeof tempDir>>;
  after(() => t?.remove());

  it('output sizes and parameter counts follow Keras', async () => {
    const cases: { k: number; s: number; padding: 'valid' | 'same'; outputPadding?: number; n: number }[] = [
      { k: 3, s: 2, padding: 'same', n: 7 },
      { k: 3, s: 2, padding: 'valid', n: 7 },
      { k: 2, s: 2, padding: 'valid', n: 7 },
      { k: 1, s: 2, padding: 'valid', n: 5 },
      { k: 1, s: 3, padding: 'same', n: 4 },
      { k: 3, s: 2, padding: 'same', outputPadding: 0, n: 7 },
      { k: 3, s: 2, padding: 'valid', outputPadding: 1, n: 7 },
      { k: 4, s: 3, padding: 'same', outputPadding: 2, n: 5 },
      { k: 5, s: 1, padding: 'same', n: 6 },
    ];
    for (const { k, s, padding, outputPadding, n } of cases) {
      const layer = layers.conv2dTranspose({ filters: 4, kernelSize: k, strides: s, padding, ...(outputPadding !== undefined ? { outputPadding } : {}), inputShape: [n, n + 1, 3] });
      const expected = [kerasLength(n, k, s, padding, outputPadding), kerasLength(n + 1, k, s, padding, outputPadding), 4];
      const what = JSON.stringify({ k, s, padding, outputPadding, n });
      assert.deepEqual(layer.computeOutputShape([n, n + 1, 3]), expected, what);
      assert.equal(layer.countParams([n, n + 1, 3]), 3 * 4 * k * k + 4, what);
      // What ONNX Runtime computes has that shape.
      const model = sequential({ layers: [layer] });
      const y = await model.predict(new Tensor(new Float32Array(2 * n * (n + 1) * 3).fill(0.5), [2, n, n + 1, 3], 'float32'));
      assert.deepEqual(y.shape, [2, ...expected], what);
    }
  });

  it('counts its FLOPs per input element: each is spread over filters × kH × kW outputs', () => {
    const model = sequential({ layers: [layers.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', inputShape: [5, 6, 3] })] });
    // 5·6 positions × 3 channels, each times 4 filters × 9 kernel positions, a multiply-add counting 2.
    assert.equal(modelCost(model).flops, 2 * 5 * 6 * 3 * 4 * 9);
  });

  it("places the output as TensorFlow's conv2d_transpose does (by hand: input [[1, 2], [3, 4]], kernel of ones)", async () => {
    // 'same', 3×3, stride 2: the conv2d it transposes pads its 4 rows with 0 before and 1 after, so
    // row y takes input rows i with 0 ≤ y − 2i ≤ 2: A = [[1,0],[1,0],[1,1],[0,1]], output A·X·Aᵀ.
    assert.deepEqual(await ones({ kernelSize: 3, strides: 2, padding: 'same' }), [[1, 1, 3, 2], [1, 1, 3, 2], [4, 4, 10, 6], [3, 3, 7, 4]]);
    // 'valid': nothing cut, 5 = 2·2 + (3 − 2).
    assert.deepEqual(await ones({ kernelSize: 3, strides: 2 }), [[1, 1, 3, 2, 2], [1, 1, 3, 2, 2], [4, 4, 10, 6, 6], [3, 3, 7, 4, 4], [3, 3, 7, 4, 4]]);
    // A 1×1 kernel, stride 2: each input lands at 2i, the rows between are zero (4 = 2·2).
    assert.deepEqual(await ones({ kernelSize: 1, strides: 2 }), [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]);
    // outputPadding 1 with 'same' (3×3, stride 2): (2 − 1)·2 + 3 − 2 + 1 = 4 rows, which conv2d 'same'
    // from 4 pads with 0 before: as without it.
    assert.deepEqual(await ones({ kernelSize: 3, strides: 2, padding: 'same', outputPadding: 1 }), [[1, 1, 3, 2], [1, 1, 3, 2], [4, 4, 10, 6], [3, 3, 7, 4]]);
    // outputPadding 1 with 'valid' (2×2, stride 2): (2 − 1)·2 + 2 + 1 = 5 rows, the last one no input reaches.
    assert.deepEqual(await ones({ kernelSize: 2, strides: 2, outputPadding: 1 }), [[1, 1, 2, 2, 0], [1, 1, 2, 2, 0], [3, 3, 4, 4, 0], [3, 3, 4, 4, 0], [0, 0, 0, 0, 0]]);
  });

  it('trains in an autoencoder (Conv2D stride 2 down, Conv2DTranspose stride 2 up), saves and loads back', async () => {
    t = await tempDir();
    const model = sequential({
      seed: 3,
      layers: [
        layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', inputShape: [8, 8, 1] }),
        layers.conv2dTranspose({ filters: 1, kernelSize: 3, strides: 2, padding: 'same', activation: 'sigmoid' }),
      ],
    });
    assert.deepEqual(model.outputShape, [8, 8, 1]);
    // Smooth images: a horizontal and a vertical ramp of varying slopes.
    const x = new Tensor(Float32Array.from({ length: 64 * 64 }, (_, i) => { const [n, p] = [Math.floor(i / 64), i % 64]; return 0.5 + 0.4 * Math.sin(((n % 8) + 1) * 0.2 * (n % 2 ? p % 8 : Math.floor(p / 8))); }), [64, 8, 8, 1], 'float32');
    model.compile({ optimizer: adam({ learningRate: 0.01 }), loss: meanSquaredError() });
    const before = (await model.evaluate(x, x)).loss;
    await model.fit(x, x, { epochs: 40, batchSize: 16, verbose: 0, seed: 1 });
    const trained = (await model.evaluate(x, x)).loss;
    assert.ok(trained < before / 3, `reconstruction loss ${before} → ${trained}`);
    await model.save(t.path('autoencoder.onnx'));
    const loaded = await loadModel(t.path('autoencoder.onnx'));
    assert.deepEqual(Array.from((await loaded.predict(x)).data as Float32Array), Array.from((await model.predict(x)).data as Float32Array));
    assert.equal((loaded as typeof model).layers[1]!.className, 'Conv2DTranspose');
  });

  it('refuses what Keras refuses; structured pruning carries channels into it and leaves its outputs whole when it is last', async () => {
    assert.throws(() => layers.conv2dTranspose({ filters: 2, kernelSize: 3, strides: 2, outputPadding: 2 }), kilnError('INVALID_ARGUMENT', 'outputPadding must be a non-negative integer (or a pair) less than strides [2, 2], got 2'));
    assert.throws(() => layers.conv2dTranspose({ filters: 0, kernelSize: 3 }), kilnError('INVALID_ARGUMENT', 'filters must be a positive integer'));
    const model = sequential({
      layers: [
        layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [8, 8, 1] }),
        layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
        layers.conv2dTranspose({ filters: 1, kernelSize: 2, strides: 2 }),
      ],
    });
    // Its kernel is [channels, filters, kH, kW]: the channels conv2d_1 lost go from axis 0.
    const { model: small } = await prune(model, { structured: { ratio: 0.5 } });
    assert.deepEqual(small.weights.get('conv2d_transpose/kernel')!.shape, [4, 1, 2, 2]);
    // As the last layer with weights its filters are the model's outputs.
    await assert.rejects(prune(model, { structured: { ratio: 0.5 }, layers: ['conv2d_transpose'] }), kilnError('INVALID_ARGUMENT', "cannot remove units of 'conv2d_transpose'", 'last layer'));
  });

  it('2:4 sparsity takes its blocks along the input channels, axis 0 of its kernel', async () => {
    const model = sequential({
      seed: 2,
      layers: [layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', inputShape: [6, 6, 1] }), layers.conv2dTranspose({ filters: 3, kernelSize: 2, strides: 2 }), layers.conv2d({ filters: 1, kernelSize: 1 })],
    });
    const { model: pruned } = await prune(model, { sparsityMByN: [2, 4], layers: ['conv2d_transpose'] });
    const kernel = pruned.weights.get('conv2d_transpose/kernel')!; // [4 channels, 3 filters, 2, 2]
    const w = kernel.data as Float32Array;
    for (let rest = 0; rest < 3 * 2 * 2; rest++) {
      const block = [0, 1, 2, 3].map((c) => w[c * 12 + rest]!);
      assert.equal(block.filter((v) => v !== 0).length, 2, `channels of filter position ${rest}: ${block}`);
    }
  });
});
