/**
 * Each activation, run through ONNX Runtime in a dense layer with an identity kernel and a known bias,
 * against values computed here from the activation's mathematical definition.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, sequential, tensor } from '../../src/index.js';
import type { ActivationName } from '../../src/layers/index.js';
import { assertClose } from '../model/helpers.js';

const UNITS = 5;
const INPUT = [
  [-3, -0.5, 0, 0.5, 3],
  [10, -10, 2, -2, 0.25],
  [-1, -1, -1, -1, -1],
];
const BIAS = [0.1, 0, -0.2, 0, 0];

/** Slope for negative inputs of leakyRelu, documented as TF.js' / Keras' activation default. */
const LEAKY_ALPHA = 0.2;

const softmaxRow = (row: number[]) => {
  const max = Math.max(...row);
  const exps = row.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
};

const DEFINITIONS: Record<ActivationName, (row: number[]) => number[]> = {
  linear: (row) => row,
  relu: (row) => row.map((v) => Math.max(0, v)),
  sigmoid: (row) => row.map((v) => 1 / (1 + Math.exp(-v))),
  tanh: (row) => row.map((v) => (Math.exp(v) - Math.exp(-v)) / (Math.exp(v) + Math.exp(-v))),
  leakyRelu: (row) => row.map((v) => (v >= 0 ? v : LEAKY_ALPHA * v)),
  softmax: softmaxRow,
};

async function denseWithIdentityKernel(activation: ActivationName): Promise<number[][]> {
  const model = sequential({ layers: [layers.dense({ units: UNITS, activation, inputShape: [UNITS] })] });
  const identity = new Float32Array(UNITS * UNITS);
  for (let i = 0; i < UNITS; i++) identity[i * UNITS + i] = 1;
  model.setWeights({ 'dense/kernel': tensor(identity, [UNITS, UNITS]), 'dense/bias': tensor(BIAS) });
  const y = await model.predict(tensor(INPUT));
  assert.deepEqual(y.shape, [INPUT.length, UNITS]);
  return y.toArray() as number[][];
}

describe('activations computed by the exported graph match their definitions', () => {
  for (const activation of Object.keys(DEFINITIONS) as ActivationName[]) {
    it(`${activation}`, async () => {
      const rows = await denseWithIdentityKernel(activation);
      INPUT.forEach((row, r) => {
        const preActivation = row.map((v, i) => Math.fround(v + BIAS[i]!));
        assertClose(rows[r]!, DEFINITIONS[activation](preActivation), 1e-6, `${activation} row ${r}`);
      });
    });
  }

  it('softmax rows are probabilities: each in (0, 1), summing to 1', async () => {
    const rows = await denseWithIdentityKernel('softmax');
    for (const row of rows) {
      for (const p of row) assert.ok(p > 0 && p < 1, `probability ${p}`);
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-6, `row sums to ${row.reduce((a, b) => a + b, 0)}`);
    }
  });

  it('softmax on conv2d output normalizes over channels at every pixel', async () => {
    const model = sequential({ layers: [layers.conv2d({ filters: 3, kernelSize: 1, activation: 'softmax', inputShape: [2, 2, 3] })] });
    const identity = new Float32Array(9);
    for (let i = 0; i < 3; i++) identity[i * 3 + i] = 1;
    model.setWeights({ 'conv2d/kernel': tensor(identity, [3, 3, 1, 1]) });
    const pixels = [[1, 2, 3], [0, 0, 0], [-5, 5, 0], [0.1, 0.2, 0.3]];
    const y = await model.predict(tensor(pixels.flat(), [1, 2, 2, 3]));
    pixels.forEach((p, i) => assertClose((y.data as Float32Array).subarray(i * 3, i * 3 + 3), softmaxRow(p), 1e-6, `pixel ${i}`));
  });

  it("accepts Keras' snake_case 'leaky_relu' and treats an absent activation as linear", async () => {
    assert.equal(layers.dense({ units: 2, activation: 'leaky_relu' as ActivationName }).activation, 'leakyRelu');
    assert.equal(layers.dense({ units: 2 }).activation, 'linear');
  });
});
