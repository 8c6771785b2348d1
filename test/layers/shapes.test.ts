/**
 * Every layer's output shape and parameter count against the formulas Keras documents, computed here
 * independently, and against what the exported ONNX graph really produces under ONNX Runtime.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, sequential, tensor, type Tensor } from '../../src/index.js';
import type { Layer } from '../../src/layers/index.js';
import { assertClose, randomInput, runExported } from '../model/helpers.js';

/** Keras: 'valid' → floor((n − k) / s) + 1, 'same' → ceil(n / s). */
function kerasLength(n: number, k: number, s: number, padding: 'valid' | 'same'): number {
  return padding === 'same' ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1;
}

const asPair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

/**
 * Builds a one-layer model on `inputShape` and checks, for a batch of 2: the layer's
 * computeOutputShape, the model's output shape, the graph's inferred output shape, the shape
 * `predict` returns, and the shape ONNX Runtime produces from the exported bytes.
 */
async function checkShapes(layer: Layer, inputShape: number[], expected: number[], expectedParams: number): Promise<void> {
  assert.deepEqual(layer.computeOutputShape(inputShape), expected, 'computeOutputShape');
  assert.equal(layer.countParams(inputShape), expectedParams, 'layer.countParams');
  const model = sequential({ layers: [layers.activation({ activation: 'linear', inputShape }), layer] });
  assert.deepEqual(model.outputShape, expected, 'model.outputShape');
  assert.equal(model.countParams().total, expectedParams, 'model.countParams().total');
  assert.deepEqual(model.buildGraph().output.shape, ['N', ...expected], 'shape inferred for the graph output');
  const x = randomInput([2, ...inputShape]);
  const predicted = await model.predict(x);
  assert.deepEqual(predicted.shape, [2, ...expected], 'predict().shape');
  const produced = await runExported(model, x);
  assert.deepEqual(produced.shape, [2, ...expected], 'shape ONNX Runtime produces from the exported model');
  // predict must return the graph's numbers, not just a buffer of the right size.
  assert.deepEqual(Array.from(predicted.data), Array.from(produced.data as Float32Array));
}

describe('conv2d output shape and params follow Keras', () => {
  const cases: { kernelSize: number | [number, number]; strides?: number | [number, number]; padding?: 'valid' | 'same'; useBias?: boolean; input: number[] }[] = [
    { kernelSize: 3, input: [7, 9, 3] },
    { kernelSize: 3, padding: 'same', input: [7, 9, 3] },
    { kernelSize: 3, strides: 2, input: [7, 9, 3] },
    { kernelSize: 3, strides: 2, padding: 'same', input: [7, 9, 3] },
    { kernelSize: 2, strides: 2, padding: 'same', input: [5, 5, 1] },
    { kernelSize: [3, 2], strides: [2, 1], padding: 'same', input: [8, 7, 2] },
    { kernelSize: [1, 4], strides: [1, 3], input: [4, 10, 2] },
    { kernelSize: 3, useBias: false, input: [6, 6, 3] },
    { kernelSize: 3, strides: 2, padding: 'same', useBias: false, input: [9, 4, 2] },
    { kernelSize: 5, padding: 'same', input: [3, 3, 1] },
  ];
  for (const c of cases) {
    const padding = c.padding ?? 'valid';
    const [kh, kw] = asPair(c.kernelSize);
    const [sh, sw] = asPair(c.strides ?? 1);
    const [h, w, cin] = c.input as [number, number, number];
    const filters = 4;
    const useBias = c.useBias ?? true;
    const expected = [kerasLength(h, kh, sh, padding), kerasLength(w, kw, sw, padding), filters];
    const params = kh * kw * cin * filters + (useBias ? filters : 0);
    it(`kernel ${kh}x${kw}, strides ${sh}x${sw}, ${padding}, useBias ${useBias} on [${c.input}] → [${expected}], ${params} params`, async () => {
      const layer = layers.conv2d({ filters, kernelSize: c.kernelSize, strides: c.strides, padding: c.padding, useBias: c.useBias });
      await checkShapes(layer, c.input, expected, params);
    });
  }

  it("pads 'same' as TensorFlow does: the extra row and column go at the end", async () => {
    // A 2x2 all-ones kernel, stride 1, on a 3x3 image: total padding 1 per axis, all of it after.
    const model = sequential({ layers: [layers.conv2d({ filters: 1, kernelSize: 2, padding: 'same', useBias: false, inputShape: [3, 3, 1] })] });
    model.setWeights({ 'conv2d/kernel': tensor(new Float32Array(4).fill(1), [1, 1, 2, 2]) });
    const y = await model.predict(tensor([[[[1], [2], [3]], [[4], [5], [6]], [[7], [8], [9]]]]));
    // out[i][j] = sum of x[i..i+1][j..j+1] with zeros past the end.
    assert.deepEqual(Array.from(y.data), [12, 16, 9, 24, 28, 15, 15, 17, 9]);
  });

  it('stores the kernel as [filters, channels, kh, kw] and adds the bias per filter', async () => {
    const model = sequential({ layers: [layers.conv2d({ filters: 2, kernelSize: 1, inputShape: [1, 2, 3] })] });
    // filter 0 picks channel 0; filter 1 sums channels 1 and 2, plus bias 10.
    model.setWeights({
      'conv2d/kernel': tensor([1, 0, 0, 0, 1, 1], [2, 3, 1, 1]),
      'conv2d/bias': tensor([0, 10]),
    });
    const y = await model.predict(tensor([[[[1, 2, 3], [4, 5, 6]]]]));
    assert.deepEqual(y.shape, [1, 1, 2, 2]);
    assert.deepEqual(Array.from(y.data), [1, 15, 4, 21]);
  });
});

describe('pooling output shapes follow Keras (strides default to poolSize)', () => {
  const cases: { poolSize?: number | [number, number]; strides?: number | [number, number]; padding?: 'valid' | 'same'; input: number[] }[] = [
    { input: [7, 9, 2] },
    { poolSize: 2, padding: 'same', input: [7, 9, 2] },
    { poolSize: 3, input: [7, 9, 2] },
    { poolSize: 3, padding: 'same', input: [7, 9, 2] },
    { poolSize: 3, strides: 1, input: [7, 9, 2] },
    { poolSize: 3, strides: 2, padding: 'same', input: [8, 5, 3] },
    { poolSize: [2, 3], input: [6, 10, 1] },
    { poolSize: [2, 3], strides: [1, 2], padding: 'same', input: [5, 7, 1] },
  ];
  for (const kind of ['maxPooling2d', 'averagePooling2d'] as const) {
    for (const c of cases) {
      const padding = c.padding ?? 'valid';
      const [ph, pw] = asPair(c.poolSize ?? 2);
      const [sh, sw] = asPair(c.strides ?? c.poolSize ?? 2);
      const [h, w, ch] = c.input as [number, number, number];
      const expected = [kerasLength(h, ph, sh, padding), kerasLength(w, pw, sw, padding), ch];
      it(`${kind} pool ${ph}x${pw}, strides ${sh}x${sw}, ${padding} on [${c.input}] → [${expected}]`, async () => {
        const layer = layers[kind]({ poolSize: c.poolSize, strides: c.strides, padding: c.padding });
        assert.deepEqual(layer.strides, [sh, sw], 'strides default to poolSize');
        await checkShapes(layer, c.input, expected, 0);
      });
    }
  }

  const image3x3 = () => tensor([[[[-1], [-2], [-3]], [[-4], [-5], [-6]], [[-7], [-8], [-9]]]]);

  it("maxPooling2d 'same' never picks a padded position", async () => {
    // Pool 2, stride 2 on 3x3: one padded row/column at the end. All inputs are negative, so a zero pad
    // that took part would win every edge window.
    const model = sequential({ layers: [layers.maxPooling2d({ poolSize: 2, padding: 'same', inputShape: [3, 3, 1] })] });
    const y = await model.predict(image3x3());
    assert.deepEqual(Array.from(y.data), [-1, -3, -7, -9]);
  });

  it("averagePooling2d 'same' leaves padded positions out of the average", async () => {
    const model = sequential({ layers: [layers.averagePooling2d({ poolSize: 2, padding: 'same', inputShape: [3, 3, 1] })] });
    const y = await model.predict(image3x3());
    assertClose(y.data, [(-1 - 2 - 4 - 5) / 4, (-3 - 6) / 2, (-7 - 8) / 2, -9]);
  });
});

describe('globalAveragePooling2d, flatten, dense, dropout, batchNormalization, activation', () => {
  it('globalAveragePooling2d: [h, w, c] → [c], no params', async () => {
    await checkShapes(layers.globalAveragePooling2d(), [5, 3, 4], [4], 0);
  });

  it('globalAveragePooling2d averages each channel over height and width', async () => {
    const model = sequential({ layers: [layers.globalAveragePooling2d({ inputShape: [2, 2, 2] })] });
    const y = await model.predict(tensor([[[[1, 10], [2, 20]], [[3, 30], [4, 40]]]]));
    assertClose(y.data, [2.5, 25]);
  });

  it('flatten: [h, w, c] → [h·w·c] and [a, b] → [a·b], no params', async () => {
    await checkShapes(layers.flatten(), [5, 3, 4], [60], 0);
    await checkShapes(layers.flatten(), [4, 5], [20], 0);
  });

  it('dense: [n] → [units], n·units + units params (n·units without bias)', async () => {
    await checkShapes(layers.dense({ units: 4 }), [6], [4], 6 * 4 + 4);
    await checkShapes(layers.dense({ units: 3, useBias: false }), [5], [3], 5 * 3);
  });

  it('dropout: shape unchanged, no params, and the identity at inference', async () => {
    await checkShapes(layers.dropout({ rate: 0.5 }), [6], [6], 0);
    await checkShapes(layers.dropout({ rate: 0.3 }), [4, 3, 2], [4, 3, 2], 0);
    const model = sequential({ layers: [layers.dropout({ rate: 0.9, inputShape: [5] })] });
    const x = randomInput([3, 5]);
    const y = await model.predict(x);
    assert.deepEqual(Array.from(y.data), Array.from(x.data));
  });

  it('batchNormalization: shape unchanged, 4·C params of which 2·C (moving statistics) non-trainable', async () => {
    await checkShapes(layers.batchNormalization(), [5, 3, 4], [5, 3, 4], 4 * 4);
    await checkShapes(layers.batchNormalization(), [6], [6], 4 * 6);
    const model = sequential({ layers: [layers.conv2d({ filters: 8, kernelSize: 3, inputShape: [6, 6, 1] }), layers.batchNormalization()] });
    const counts = model.countParams();
    assert.equal(counts.total, 3 * 3 * 1 * 8 + 8 + 4 * 8);
    assert.equal(counts.total - counts.trainable, 2 * 8);
    const summary = model.summary(() => undefined);
    assert.match(summary, /Non-trainable params: 16$/m);
    assert.match(summary, /batch_normalization \(BatchNormalization\)\s+\[null, 4, 4, 8\]\s+32$/m);
  });

  it('batchNormalization at inference computes (x − mean) / sqrt(var + epsilon) · gamma + beta per channel', async () => {
    const model = sequential({ layers: [layers.batchNormalization({ epsilon: 0.01, inputShape: [1, 2, 2] })] });
    model.setWeights({
      'batch_normalization/gamma': tensor([2, 1]),
      'batch_normalization/beta': tensor([0, 5]),
      'batch_normalization/moving_mean': tensor([1, 0]),
      'batch_normalization/moving_variance': tensor([4, 0.99]),
    });
    const y = await model.predict(tensor([[[[3, 1], [5, -1]]]]));
    const expected = [((3 - 1) / Math.sqrt(4.01)) * 2, 1 / Math.sqrt(1) + 5, ((5 - 1) / Math.sqrt(4.01)) * 2, -1 / Math.sqrt(1) + 5];
    assertClose(y.data, expected, 1e-5);
  });

  it('batchNormalization works on a rank-2 input [steps, features], normalizing features as Keras (axis −1) does', async () => {
    // 4 parameters per feature (gamma, beta, moving mean, moving variance), none per step.
    await checkShapes(layers.batchNormalization(), [4, 5], [4, 5], 4 * 5);
  });

  it('batchNormalization at inference on [steps, features] uses each feature\'s statistics, at every step', async () => {
    const [features, epsilon] = [5, 0.01];
    const gamma = [2, 1, -1, 0.5, 3];
    const beta = [0, 5, 1, -2, 0.25];
    const movingMean = [1, 0, -1, 2, 0.5];
    const movingVariance = [4, 0.99, 0.25, 9, 1];
    for (const inputShape of [[4, features], [2, 3, features]]) {
      const model = sequential({ layers: [layers.batchNormalization({ epsilon, inputShape })] });
      model.setWeights({
        'batch_normalization/gamma': tensor(gamma),
        'batch_normalization/beta': tensor(beta),
        'batch_normalization/moving_mean': tensor(movingMean),
        'batch_normalization/moving_variance': tensor(movingVariance),
      });
      const x = randomInput([2, ...inputShape], 11);
      // Row-major with features last: element i belongs to feature i % features.
      const expected = Array.from(x.data as Float32Array, (v, i) => {
        const f = i % features;
        return ((v - movingMean[f]!) / Math.sqrt(movingVariance[f]! + epsilon)) * gamma[f]! + beta[f]!;
      });
      const y = await model.predict(x);
      assert.deepEqual(y.shape, [2, ...inputShape]);
      assertClose(y.data, expected, 1e-5, `predict on [${inputShape}]`);
      assertClose((await runExported(model, x)).data as Float32Array, expected, 1e-5, `exported model on [${inputShape}]`);
    }
  });

  it('activation: shape unchanged, no params', async () => {
    await checkShapes(layers.activation({ activation: 'relu' }), [3, 2, 5], [3, 2, 5], 0);
    await checkShapes(layers.activation({ activation: 'softmax' }), [7], [7], 0);
  });

  it('activation softmax normalizes the last (channel) axis of images and of [steps, features] inputs', async () => {
    for (const inputShape of [[2, 3, 4], [3, 4]]) {
      const model = sequential({ layers: [layers.activation({ activation: 'softmax', inputShape })] });
      const x = randomInput([2, ...inputShape], 3);
      const y: Tensor = await model.predict(x);
      const last = inputShape.at(-1)!;
      for (let row = 0; row < y.size / last; row++) {
        const xs = Array.from(x.data as Float32Array).slice(row * last, (row + 1) * last);
        const max = Math.max(...xs);
        const exps = xs.map((v) => Math.exp(v - max));
        const sum = exps.reduce((a, b) => a + b, 0);
        assertClose((y.data as Float32Array).subarray(row * last, (row + 1) * last), exps.map((e) => e / sum), 1e-5, `input [${inputShape}] row ${row}`);
      }
    }
  });
});
