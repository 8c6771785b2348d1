/**
 * Models training at the same time in one process share the runtime worker; each keeps its own
 * training state there (CompiledSteps.stateScope). Before that, every model's weights were the
 * worker's one 'state/params', and two concurrent fits trained each other's weights.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { datasets, layers, sequential, type Sequential } from '../../src/index.js';

function model(seed: number): Sequential {
  const m = sequential({ seed, layers: [layers.flatten({ inputShape: [28, 28, 1] }), layers.dense({ units: 16, activation: 'relu' }), layers.dense({ units: 10 })] });
  m.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return m;
}

const flat = (m: Sequential) => [...m.weights.values()].flatMap((t) => Array.from(t.data as Float32Array));

describe('fit() on several models at once', () => {
  it('trains each model exactly as alone', async () => {
    const { train } = await datasets.embedded();
    const x = train.images.slice(0, 256);
    const y = train.labels.slice(0, 256);
    const args = { epochs: 2, batchSize: 32, verbose: 0 as const, seed: 3, replicas: 1 };
    const alone = [model(1), model(2)];
    for (const m of alone) await m.fit(x, y, args);
    const together = [model(1), model(2)];
    await Promise.all(together.map((m) => m.fit(x, y, args)));
    for (let k = 0; k < 2; k++) assert.deepEqual(flat(together[k]!), flat(alone[k]!), `model ${k + 1}`);
    // A third model evaluated while the others train reads its own weights, too.
    const third = model(3);
    const before = await third.evaluate(x, y);
    const [after] = await Promise.all([third.evaluate(x, y), together[0]!.fit(x, y, { ...args, epochs: 1 })]);
    assert.deepEqual(after, before);
  });
});
