/**
 * `kiln prune exported.onnx --structured --ratio 0.5` on models PyTorch exported (src/cli/prune.ts
 * over kiln.prune on a GraphModel), with a tiny 28×28 IDX data set: the comparison and the group table
 * are printed, the smaller file is saved, and a failure leaves the files as they were.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeRandomIdxDir } from '../../data/random-idx-dir.js';
import { decodeModel } from '../../../src/graph/proto.js';
import { GraphModel } from '../../../src/train/graph-model.js';
import { loadModel } from '../../../src/train/load.js';
import { runMain as run } from '../../cli/helpers.js';
import { FIXTURES } from './graph-helpers.js';
import { makeTempDir } from './helpers.js';

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
let temp: Awaited<ReturnType<typeof makeTempDir>>;

before(async () => {
  temp = await makeTempDir('kiln-prune-graph-cli-');
  await writeRandomIdxDir(temp.dir, { seed: 12, train: 32, test: 16 });
});
after(() => temp.remove());

describe('kiln prune on an exported graph', () => {
  it('--structured --ratio 0.5 --layout nchw: prints the comparison and every group, saves the smaller graph', async () => {
    const out = join(temp.dir, 'small.onnx');
    const source = `${FIXTURES}/resnet.onnx`;
    const r = await run(['prune', source, '--structured', '--ratio', '0.5', '--layout', 'nchw', '--dataset', temp.dir, '--epochs', '1', '--batch-size', '8', '--latency-batch', '4', '--out', out]);
    assert.equal(r.code, 0, r.err);
    for (const text of ['structured, removing 50.00% of each group\'s units', 'Parameters', '5,122', 'Latency, batch 4', '/stem/stem.0/stem.0.0/Conv + /block1/conv2/conv2.0/Conv', '8 → 4', "left whole: (graph output) the model's output 'logits'", `Saved ${out}`]) {
      assert.ok(r.out.includes(text), `output should mention ${text}:\n${r.out}`);
    }
    const saved = await loadModel(out);
    assert.ok(saved instanceof GraphModel);
    assert.deepEqual(saved.weights.get('stem.0.0.weight')!.shape, [4, 1, 3, 3]);
    assert.deepEqual(saved.preprocessing, { layout: 'nchw' });
    assert.deepEqual(decodeModel(readFileSync(out)).graph!.output!.map((o) => o.name), ['logits']);
  });

  it('--criterion taylor ranks by the training split even without fine-tuning (--epochs 0)', async () => {
    const out = join(temp.dir, 'taylor.onnx');
    const r = await run(['prune', `${FIXTURES}/resnet.onnx`, '--structured', '--ratio', '0.5', '--criterion', 'taylor', '--dataset', temp.dir, '--epochs', '0', '--batch-size', '8', '--latency-batch', '0', '--json', '--out', out]);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    const pruned = report.groups.filter((g: { pruned: boolean }) => g.pruned);
    assert.ok(pruned.length > 0);
    for (const g of pruned) assert.equal(g.keptUnits.length, g.units[0] / 2);
    // The ranking differs from the L1 norm's on at least one group (it reads the data, not only the weights).
    const l1 = await run(['prune', `${FIXTURES}/resnet.onnx`, '--structured', '--ratio', '0.5', '--dataset', temp.dir, '--epochs', '0', '--latency-batch', '0', '--json', '--out', join(temp.dir, 'l1.onnx')]);
    const l1Kept = JSON.parse(l1.out).groups.filter((g: { pruned: boolean }) => g.pruned).map((g: { keptUnits: number[] }) => g.keptUnits.join());
    assert.notDeepEqual(pruned.map((g: { keptUnits: number[] }) => g.keptUnits.join()), l1Kept);
  });

  it('--iterations 2 prunes in two rounds, fine-tuning after each', async () => {
    const out = join(temp.dir, 'rounds.onnx');
    const r = await run(['prune', `${FIXTURES}/resnet.onnx`, '--structured', '--ratio', '0.5', '--iterations', '2', '--dataset', temp.dir, '--epochs', '1', '--batch-size', '8', '--latency-batch', '0', '--json', '--out', out]);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.equal(report.history.length, 2);
    assert.deepEqual((await loadModel(out) as GraphModel).weights.get('stem.0.0.weight')!.shape, [4, 1, 3, 3]);
  });

  it('--structured --parameters 0.5 finds the ratio that removes half the parameters and prints it', async () => {
    const out = join(temp.dir, 'budget.onnx');
    const r = await run(['prune', `${FIXTURES}/resnet.onnx`, '--structured', '--parameters', '0.5', '--dataset', temp.dir, '--epochs', '0', '--latency-batch', '0', '--out', out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /structured, removing 50\.00% of the parameters/);
    assert.match(r.out, /Ratio that removes 50\.00% of the parameters: 0\.3\d{3} of each group's units; 45\.88% of the parameters kept\n/);
    const saved = (await loadModel(out)) as GraphModel;
    const parameters = [...saved.weights].filter(([name]) => !/running_(mean|var)/.test(name)).reduce((n, [, t]) => n + t.size, 0);
    assert.ok(parameters <= 2561, `${parameters} parameters left of 5,122`);
    const both = await run(['prune', `${FIXTURES}/resnet.onnx`, '--structured', '0.5', '--parameters', '0.5', '--dataset', temp.dir, '--out', out]);
    assert.equal(both.code, 1);
    assert.match(both.err, /give --parameters or a ratio, not both/);
    const loose = await run(['prune', `${FIXTURES}/resnet.onnx`, '--parameters', '0.5', '--dataset', temp.dir, '--out', out]);
    assert.match(loose.err, /--parameters belongs to structured pruning: add --structured/);
  });

  it('--heads and --mlp on a transformer, as JSON', async () => {
    const out = join(temp.dir, 'vit.onnx');
    const r = await run(['prune', `${FIXTURES}/vit17.onnx`, '--structured', '--heads', '0.5', '--mlp', '0.5', '--dataset', temp.dir, '--epochs', '0', '--latency-batch', '0', '--json', '--out', out]);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.deepEqual(
      report.groups.filter((g: { pruned: boolean }) => g.pruned).map((g: { kind: string; units: number[] }) => [g.kind, ...g.units]),
      [['heads', 4, 2], ['units', 64, 32], ['heads', 4, 2], ['units', 64, 32]],
    );
  });

  it('fails with a clear error and overwrites nothing: a ratio that empties a group, a missing ratio, graph flags on a layer model', async () => {
    const out = join(temp.dir, 'existing.onnx');
    await writeFile(out, 'keep me');
    const before = sha(out);
    const source = `${FIXTURES}/vit13.onnx`;
    const sourceSha = sha(source);
    const empty = await run(['prune', source, '--structured', '--heads', '0.9', '--dataset', temp.dir, '--epochs', '0', '--out', out]);
    assert.equal(empty.code, 1);
    assert.match(empty.err, /would leave none/);
    const missing = await run(['prune', source, '--structured', '--dataset', temp.dir, '--out', out]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /--structured needs a ratio/);
    const loose = await run(['prune', source, '--ratio', '0.5', '--dataset', temp.dir, '--out', out]);
    assert.match(loose.err, /--ratio belongs to structured pruning/);
    const regex = await run(['prune', source, '--structured', '--ratio', '0.5', '--layers', '/blocks/', '--dataset', temp.dir, '--out', out]);
    assert.match(regex.err, /matches its groups by names with \* wildcards, not a \/regex\//);
    assert.equal(sha(out), before);
    assert.equal(sha(source), sourceSha);
  });
});
