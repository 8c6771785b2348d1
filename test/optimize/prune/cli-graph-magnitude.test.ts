/**
 * `kiln prune` on a PyTorch export (test/fixtures/exported/resnet.onnx, dwsep.onnx) over a tiny
 * 28×28 IDX data set: it prunes with fine-tuning, prints one row per weight, saves the original graph
 * with zeros in it; --layers takes a /regex/; bad input exits 1 and leaves an existing --out alone.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMain as run } from '../../cli/helpers.js';
import { writeRandomIdxDir } from '../../data/random-idx-dir.js';
import { decodeModel } from '../../../src/graph/proto.js';
import { tensorFromProto } from '../../../src/graph/onnx-io.js';
import { makeTempDir, zerosOf } from './helpers.js';

const RESNET = 'test/fixtures/exported/resnet.onnx';
let temp: Awaited<ReturnType<typeof makeTempDir>>;

before(async () => {
  temp = await makeTempDir('kiln-prune-graph-cli-');
  await writeRandomIdxDir(temp.dir, { seed: 5, train: 32, test: 16 });
});
after(() => temp.remove());

function initializers(bytes: Uint8Array) {
  return new Map(decodeModel(bytes).graph!.initializer!.map((t) => [t.name!, tensorFromProto(t)]));
}

describe('kiln prune on an exported model', () => {
  it('--sparsity with --layout nchw fine-tunes, prints a row per weight, saves the original graph with sparse kernels', async () => {
    const out = join(temp.dir, 'pruned.onnx');
    const r = await run(['prune', RESNET, '--sparsity', '0.5', '--dataset', temp.dir, '--epochs', '1', '--batch-size', '8', '--layout', 'nchw', '--latency-batch', '4', '--out', out]);
    assert.equal(r.code, 0, r.err);
    for (const text of ['Weight (op)', 'block1.conv1.0.weight (Conv) *', 'stem.0.0.weight (Conv) ', 'head.weight (Gemm) ', 'Latency, batch 4', 'polynomialDecay', `Saved ${out}`]) {
      assert.ok(r.out.includes(text), `output should mention ${text}:\n${r.out}`);
    }
    assert.doesNotMatch(r.out, /FLOPs per example\s+0\s/);
    const saved = initializers(await readFile(out));
    assert.equal(zerosOf(saved.get('block2.conv2.0.weight')!), 1152);
    assert.equal(zerosOf(saved.get('stem.0.0.weight')!), 0);
    const proto = decodeModel(await readFile(out));
    assert.deepEqual([proto.graph!.input!.map((i) => i.name), proto.graph!.output!.map((o) => o.name)], [['input'], ['logits']]);
  });

  it('--m-by-n 2:4 --layers /regex/ --json: the chosen kernels in 2:4 blocks', async () => {
    const out = join(temp.dir, 'nm.onnx');
    const r = await run(['prune', RESNET, '--m-by-n', '2:4', '--layers', '/^block2\\.conv/', '--dataset', temp.dir, '--epochs', '0', '--latency-batch', '0', '--json', '--out', out]);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.deepEqual(report.layers.filter((l: { pruned: boolean }) => l.pruned).map((l: { name: string }) => l.name), ['block2.conv1.0.weight', 'block2.conv2.0.weight']);
    assert.equal(report.targetSparsity, 0.5);
    assert.equal(zerosOf(initializers(await readFile(out)).get('block2.conv1.0.weight')!), 576);
  });

  it('bad input exits 1 with the reason and leaves an existing --out as it was', async () => {
    const out = join(temp.dir, 'keep.onnx');
    await writeFile(out, 'previous model');
    const cases: [string[], RegExp][] = [
      [['prune', 'test/fixtures/exported/dwsep.onnx', '--m-by-n', '2:4'], /'features\.2\.0\.weight' \[16, 1, 3, 3\].*not a multiple of 4/],
      [['prune', RESNET, '--sparsity', '0.5', '--layers', 'attention*'], /'attention\*' matches no weight matrix or kernel/],
      [['prune', RESNET, '--sparsity', '0.5', '--layers', '/[/'], /not a valid regular expression/],
      [['prune', RESNET, '--sparsity', '1'], /sparsity.*\[0, 1\)/],
      [['prune', RESNET, '--sparsity', '0.5', '--heads', '0.5'], /--heads belongs to structured pruning: add --structured/],
      [['prune', RESNET, '--sparsity', '0.5', '--layout', 'nhwc'], /INVALID_SHAPE|layout/],
    ];
    for (const [argv, message] of cases) {
      const r = await run([...argv, '--dataset', temp.dir, '--epochs', '1', '--batch-size', '8', '--latency-batch', '0', '--out', out]);
      assert.equal(r.code, 1, `${argv.join(' ')}: ${r.out}`);
      assert.match(r.err, message);
      assert.equal(await readFile(out, 'utf8'), 'previous model', `${argv.join(' ')} overwrote --out`);
    }
  });
});
