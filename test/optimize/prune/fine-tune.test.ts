/**
 * Magnitude pruning during fine-tuning (src/optimize/prune/magnitude.ts): masks live in the compiled
 * training step, so pruned weights stay exactly zero through Adam; masks are recomputed on the
 * schedule's steps to the schedule's sparsity; the export is a plain ONNX model with exact zeros that
 * onnxruntime-node and `kiln serve` run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { client, prune, pruning, serve, type Sequential } from '../../../src/index.js';
import { decodeModel } from '../../../src/graph/proto.js';
import { tensorFromProto } from '../../../src/graph/onnx-io.js';
import type { Tensor } from '../../../src/tensor.js';
import { denseData, denseNet, makeTempDir, maxAbsDiff, randomImages, tutorialCnn, zerosOf } from './helpers.js';

const { constantSparsity, polynomialDecay, prunedCount } = pruning;
const data = denseData(96);

function snapshot(weights: Map<string, Tensor>): Map<string, Float32Array> {
  return new Map([...weights].map(([k, t]) => [k, Float32Array.from(t.data as Float32Array)]));
}

describe('masks inside the training step', () => {
  it('keep pruned weights exactly zero at every step of an Adam fine-tune, while the others train', async () => {
    const model = denseNet();
    const targets = ['dense_1/kernel', 'dense_2/kernel'];
    let firstZeros: Map<string, number[]> | undefined;
    let checks = 0;
    const watcher = {
      async onBatchEnd(_step: number, _logs: unknown, m: unknown) {
        const w = await (m as Sequential).currentWeights();
        const zeros = new Map(targets.map((name) => [name, [...(w.get(name)!.data as Float32Array)].flatMap((v, i) => (v === 0 ? [i] : []))]));
        firstZeros ??= zeros;
        for (const name of targets) assert.deepEqual(zeros.get(name), firstZeros.get(name), `${name}: the zero set changed at a step`);
        checks++;
      },
    };
    const start = snapshot(model.weights);
    // One mask at step 0 and never again (frequency beyond the run): Adam's momentum must not revive it.
    const { model: pruned, report } = await prune(model, {
      schedule: constantSparsity({ targetSparsity: 0.6, beginStep: 0, frequency: 1000 }),
      fineTune: { x: data.x, y: data.y, epochs: 3, batchSize: 16, optimizer: 'adam', verbose: 0, callbacks: [watcher] },
    });
    assert.equal(checks, 18);
    assert.deepEqual(report.maskUpdates, [{ step: 0, sparsity: 0.6 }]);
    for (const name of targets) {
      const t = pruned.weights.get(name)!;
      assert.equal(zerosOf(t), prunedCount(t.size, 0.6), name);
      assert.deepEqual(firstZeros!.get(name)!.length, prunedCount(t.size, 0.6));
      // +0, never −0: masked updates must not leave negative zeros in the export.
      for (const v of t.data as Float32Array) if (v === 0) assert.ok(Object.is(v, 0));
    }
    // The kept weights and the untouched layers did train.
    assert.ok(maxAbsDiff(pruned.weights.get('dense/kernel')!.data as Float32Array, start.get('dense/kernel')!) > 1e-3);
    assert.ok(maxAbsDiff(pruned.weights.get('dense_1/bias')!.data as Float32Array, start.get('dense_1/bias')!) > 1e-4);
    assert.equal(zerosOf(pruned.weights.get('dense/kernel')!), 0);
  });

  it("recompute masks on the schedule's steps: after step s the targets hold the sparsity of the latest pruning turn ≤ s + 1", async () => {
    const schedule = polynomialDecay({ initialSparsity: 0.1, finalSparsity: 0.7, beginStep: 2, endStep: 10, power: 2, frequency: 2 });
    const seen: { step: number; zeros: number }[] = [];
    const watcher = {
      async onBatchEnd(step: number, _logs: unknown, m: unknown) {
        const w = await (m as Sequential).currentWeights();
        seen.push({ step, zeros: zerosOf(w.get('dense_1/kernel')!) });
      },
    };
    const { model: pruned, report } = await prune(denseNet(), { schedule, fineTune: { x: data.x, y: data.y, epochs: 2, batchSize: 16, verbose: 0, callbacks: [watcher] } });
    assert.deepEqual(report.maskUpdates!.map((u) => u.step), [2, 4, 6, 8, 10]);
    for (const u of report.maskUpdates!) assert.equal(u.sparsity, schedule.sparsityAt(u.step));
    for (const { step, zeros } of seen) {
      const turns = report.maskUpdates!.filter((u) => u.step <= step + 1);
      const expected = turns.length ? prunedCount(256, turns.at(-1)!.sparsity) : 0;
      assert.equal(zeros, expected, `after step ${step}`);
    }
    assert.equal(zerosOf(pruned.weights.get('dense_1/kernel')!), prunedCount(256, 0.7));
    assert.equal(report.schedule!.name, 'polynomialDecay');
  });

  it('with only a sparsity, follows a polynomial schedule that reaches it, global scope included', async () => {
    const { model: pruned, report } = await prune(denseNet(), { sparsity: 0.8, scope: 'global', layers: ['dense_1', 'dense_2'], fineTune: { x: data.x, y: data.y, epochs: 2, batchSize: 16, verbose: 0 } });
    assert.equal(report.schedule!.name, 'polynomialDecay');
    assert.equal(report.maskUpdates!.at(-1)!.sparsity, 0.8);
    const zeros = zerosOf(pruned.weights.get('dense_1/kernel')!) + zerosOf(pruned.weights.get('dense_2/kernel')!);
    assert.equal(zeros, prunedCount(512, 0.8));
    assert.equal(report.targetSparsity, prunedCount(512, 0.8) / 512);
  });
});

describe('the exported pruned model', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  let file: string;
  let pruned: Sequential;
  const { x, y } = randomImages(32, [28, 28, 1]);

  before(async () => {
    temp = await makeTempDir('kiln-prune-test-');
    file = join(temp.dir, 'pruned.onnx');
    const result = await prune(tutorialCnn(), { sparsity: 0.8, fineTune: { x, y, epochs: 1, batchSize: 16, verbose: 0 }, evaluation: { x, y } });
    pruned = result.model;
    assert.equal(result.report.targetSparsity, 0.8);
    assert.ok(result.report.after.gzipBytes * 3 < result.report.before.gzipBytes, `gzip ${result.report.after.gzipBytes} vs ${result.report.before.gzipBytes}`);
    assert.equal(typeof result.report.after.accuracy, 'number');
    await pruned.save(file);
  });
  after(() => temp.remove());

  it('is plain ONNX (no mask) whose pruned initializers are exact zeros, and onnxruntime-node runs it', async () => {
    const bytes = await readFile(file);
    const proto = decodeModel(bytes);
    assert.ok(!proto.graph!.input!.some((i) => /mask/.test(i.name ?? '')));
    assert.deepEqual(proto.graph!.input!.map((i) => i.name), ['input']);
    const init = new Map(proto.graph!.initializer!.map((t) => [t.name, tensorFromProto(t)]));
    for (const name of ['conv2d_1/kernel', 'conv2d_2/kernel', 'dense/kernel']) {
      const t = init.get(name)!;
      assert.equal(zerosOf(t), prunedCount(t.size, 0.8), name);
    }
    assert.equal(zerosOf(init.get('conv2d/kernel')!), 0);
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) });
    const expected = await pruned.predict(x);
    assert.deepEqual(out.output!.dims, [32, 10]);
    assert.ok(maxAbsDiff(out.output!.data as Float32Array, expected.data as Float32Array) < 1e-5);
  });

  it('is served by kiln serve (loopback, port 0) and answers one inference', async () => {
    const server = await serve({ model: file, host: '127.0.0.1', port: 0, logLevel: 'silent' });
    try {
      const result = await client(server.url).predict('pruned', x.slice(0, 2));
      const expected = await pruned.predict(x.slice(0, 2));
      assert.deepEqual([...result.shape], [2, 10]);
      assert.ok(maxAbsDiff(result.data as Float32Array, expected.data as Float32Array) < 1e-5);
    } finally {
      await server.close();
    }
  });
});
