/*
 * The browser trains the same graphs with the same arithmetic: a small CNN trained a few steps in
 * headless Chromium from the built bundle (dist/browser/kiln.js, ONNX Runtime Web in its Web Worker,
 * two threads in a cross-origin-isolated page) ends with the weights Node's fit() gives after the same
 * steps from the same seed, within 1e-4.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as kiln from '../../src/index.js';
import type { WebEnvironment } from '../../src/platform/web-environment.js';
import { needsChromium, openBlankPage } from './helpers.js';

type Kiln = typeof kiln;

/** The training run, written once and run by both: Node's kiln and the page's (passed as source). */
async function trainFewSteps(k: Kiln): Promise<{ weights: Record<string, number[]>; initial: Record<string, number[]>; loss: number[] }> {
  const rng = new k.Random(3);
  const n = 64;
  const x = new k.Tensor(Float32Array.from({ length: n * 28 * 28 }, () => rng.next()), [n, 28, 28, 1], 'float32');
  const y = new k.Tensor(Int32Array.from({ length: n }, (_, i) => (i * 7) % 10), [n], 'int32');
  const model = k.sequential({
    seed: 1,
    layers: [
      k.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }),
      k.layers.maxPooling2d({ poolSize: 2 }),
      k.layers.flatten(),
      k.layers.dense({ units: 16, activation: 'relu' }),
      k.layers.dense({ units: 10 }),
    ],
  });
  const initial = Object.fromEntries([...model.getWeights()].map(([name, t]) => [name, Array.from(t.data as Float32Array)]));
  model.compile({ optimizer: 'adam', loss: k.losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  const history = await model.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0, replicas: 1 });
  const weights = Object.fromEntries([...model.getWeights()].map(([name, t]) => [name, Array.from(t.data as Float32Array)]));
  return { weights, initial, loss: history.history.loss! };
}

test('8 Adam steps in headless Chromium from the built bundle leave the weights Node leaves, within 1e-4', async (t) => {
  if (!needsChromium(t)) return;
  const session = await openBlankPage();
  try {
    const inBrowser = (await session.browser.page.evaluate(
      `(async () => { const kiln = await import('/kiln/kiln.js'); const r = await (${trainFewSteps.toString()})(kiln); return { ...r, environment: kiln.browserRuntimeInfo() }; })()`,
    )) as Awaited<ReturnType<typeof trainFewSteps>> & { environment: WebEnvironment };
    assert.equal(inBrowser.environment.crossOriginIsolated, true, 'the page is not cross-origin isolated');
    assert.equal(inBrowser.environment.simd, true);
    const inNode = await trainFewSteps(kiln);
    assert.deepEqual(Object.keys(inBrowser.weights).sort(), Object.keys(inNode.weights).sort());
    let worst = 0;
    let travelled = 0;
    let count = 0;
    for (const [name, values] of Object.entries(inNode.weights)) {
      const other = inBrowser.weights[name]!;
      const start = inBrowser.initial[name]!;
      assert.equal(other.length, values.length, name);
      assert.deepEqual(start, inNode.initial[name], `${name}: the two started from different weights`);
      for (let i = 0; i < values.length; i++) {
        worst = Math.max(worst, Math.abs(values[i]! - other[i]!));
        travelled = Math.max(travelled, Math.abs(values[i]! - start[i]!));
      }
      count += values.length;
    }
    console.log(
      `browser (${inBrowser.environment.threads} threads) vs Node after 8 steps: max |Δw| = ${worst.toExponential(2)} over ${count} weights ` +
        `(the weights moved up to ${travelled.toExponential(2)}); losses ${inBrowser.loss.map((l) => l.toFixed(5))} vs ${inNode.loss.map((l) => l.toFixed(5))}`,
    );
    // Training happened: 8 Adam steps of lr 1e-3 move weights by several 1e-3.
    assert.ok(travelled > 3e-3, `the weights barely moved (${travelled})`);
    assert.ok(worst <= 1e-4, `weights differ by up to ${worst}`);
    for (let e = 0; e < 2; e++) assert.ok(Math.abs(inBrowser.loss[e]! - inNode.loss[e]!) <= 1e-4);
  } finally {
    await session.close();
  }
});

/** Batch 64 on 2 cores: fit splits each batch across two replicas, in a browser two Web Workers. */
async function trainOnReplicas(k: Kiln): Promise<{ weights: Record<string, number[]>; replicas: number }> {
  const rng = new k.Random(5);
  const n = 128;
  const x = new k.Tensor(Float32Array.from({ length: n * 12 * 12 }, () => rng.next()), [n, 12, 12, 1], 'float32');
  const y = new k.Tensor(Int32Array.from({ length: n }, (_, i) => i % 10), [n], 'int32');
  const model = k.sequential({ seed: 2, layers: [k.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [12, 12, 1] }), k.layers.flatten(), k.layers.dense({ units: 10 })] });
  model.compile({ optimizer: 'adam', loss: k.losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
  await model.fit(x, y, { epochs: 1, batchSize: 64, verbose: 0, replicas: 2 });
  return { weights: Object.fromEntries([...model.getWeights()].map(([name, t]) => [name, Array.from(t.data as Float32Array)])), replicas: model.trainingReplicas };
}

test('data parallelism in the page: two replicas (two Web Workers) step as Node\'s two replicas do', async (t) => {
  if (!needsChromium(t)) return;
  const session = await openBlankPage();
  try {
    const inBrowser = (await session.browser.page.evaluate(`(async () => { const kiln = await import('/kiln/kiln.js'); return (${trainOnReplicas.toString()})(kiln); })()`)) as Awaited<ReturnType<typeof trainOnReplicas>>;
    const inNode = await trainOnReplicas(kiln);
    assert.equal(inBrowser.replicas, 2);
    assert.equal(inNode.replicas, 2);
    let worst = 0;
    for (const [name, values] of Object.entries(inNode.weights)) values.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - inBrowser.weights[name]![i]!))));
    assert.ok(worst <= 1e-4, `weights differ by up to ${worst}`);
  } finally {
    await session.close();
  }
});
