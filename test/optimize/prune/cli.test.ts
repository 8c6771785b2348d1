/**
 * `kiln prune` (src/cli/prune.ts) on a tiny IDX data set: magnitude and structured pruning print the
 * before/after comparison (parameters, FLOPs, file sizes raw and gzip, accuracy, latency) and save a
 * model `kiln info` shows as sparse.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runMain as run } from '../../cli/helpers.js';
import { writeRandomIdxDir } from '../../data/random-idx-dir.js';
import { layers, loadModel, sequential, type Sequential } from '../../../src/index.js';
import { makeTempDir, zerosOf } from './helpers.js';

let temp: Awaited<ReturnType<typeof makeTempDir>>;
let modelFile: string;

before(async () => {
  temp = await makeTempDir('kiln-prune-cli-');
  await writeRandomIdxDir(temp.dir, { seed: 11, train: 32, test: 16, side: 8 });
  modelFile = join(temp.dir, 'model.onnx');
  await sequential({
    layers: [
      layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [8, 8, 1] }),
      layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu' }),
      layers.flatten(),
      layers.dense({ units: 16, activation: 'relu' }),
      layers.dense({ units: 10 }),
    ],
  }).save(modelFile);
});
after(() => temp.remove());

describe('kiln prune', () => {
  it('--sparsity fine-tunes with a schedule, prints the comparison and per-layer sparsity, saves a sparse model', async () => {
    const out = join(temp.dir, 'pruned.onnx');
    const r = await run(['prune', modelFile, '--sparsity', '0.75', '--dataset', temp.dir, '--epochs', '1', '--batch-size', '8', '--latency-batch', '4', '--out', out]);
    assert.equal(r.code, 0, r.err);
    for (const text of ['Parameters', 'FLOPs per example', 'File size, gzip', 'Test accuracy', 'Latency, batch 4', 'conv2d_1 (Conv2D) *', '75.00%', 'polynomialDecay', `Saved ${out}`]) {
      assert.ok(r.out.includes(text), `output should mention ${text}:\n${r.out}`);
    }
    const model = (await loadModel(out)) as Sequential;
    assert.equal(zerosOf(model.weights.get('conv2d_1/kernel')!), 216);
    assert.equal(zerosOf(model.weights.get('dense/kernel')!), 0.75 * 128 * 16);
    const info = await run(['info', out]);
    assert.match(info.out, /conv2d_1\/kernel\s+\[8, 4, 3, 3\]\s+288\s+75\.0%/);
  });

  it('--structured --json reports fewer parameters and FLOPs; bad flags exit 1 with a clear error', async () => {
    const out = join(temp.dir, 'small.onnx');
    const r = await run(['prune', modelFile, '--structured', '0.5', '--dataset', temp.dir, '--epochs', '1', '--batch-size', '8', '--latency-batch', '0', '--json', '--out', out]);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.equal(report.method, 'structured');
    assert.ok(report.after.parameters < report.before.parameters / 2);
    assert.ok(report.after.flops < report.before.flops / 2);
    assert.equal(report.after.latencyMs, undefined);
    const model = (await loadModel(out)) as Sequential;
    assert.deepEqual(model.weights.get('conv2d_1/kernel')!.shape, [4, 2, 3, 3]);

    const budget = await run(['prune', modelFile, '--structured', '--parameters', '0.5', '--dataset', temp.dir, '--epochs', '0', '--latency-batch', '0', '--json', '--out', join(temp.dir, 'budget.onnx')]);
    assert.equal(budget.code, 0, budget.err);
    const found = JSON.parse(budget.out);
    assert.ok(found.after.parameters <= found.before.parameters / 2 && found.ratio > 0 && found.ratio < 0.5, budget.out);

    const both = await run(['prune', modelFile, '--sparsity', '0.5', '--structured', '0.5', '--dataset', temp.dir]);
    assert.equal(both.code, 1);
    assert.match(both.err, /exactly one of --sparsity, --m-by-n or --structured/);
    const bad = await run(['prune', modelFile, '--sparsity', '1.5', '--dataset', temp.dir, '--epochs', '0']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /INVALID_ARGUMENT.*sparsity.*\[0, 1\)/);
    const badLayer = await run(['prune', modelFile, '--sparsity', '0.5', '--layers', 'nope', '--dataset', temp.dir, '--epochs', '0']);
    assert.match(badLayer.err, /no layer named 'nope'/);
  });
});
