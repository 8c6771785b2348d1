/**
 * kiln.bench (src/bench/): its numbers for a Kiln model agree with evaluate(), countParams() and
 * modelCost(); variants keep their order and names; FLOPs of quantized graphs count their integer
 * convolutions and matrix products; `kiln bench` prints the table and --json.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { bench, loadModel, modelCost, OnnxModel, Random, Tensor, type Sequential } from '../../src/index.js';
import { measureFlops } from '../../src/bench/cost.js';
import { percentile, median } from '../../src/bench/timing.js';
import { main } from '../../src/cli/main.js';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { makeTempDir } from '../model/helpers.js';
import { EXPORTED_DIR } from '../fixtures/exported/reference.js';
import { tinyData, trainedTinyCnn, writeIdxDataset, type TinyData } from './fixtures.js';

const QUICK = { repetitions: 2, latencyRuns: 20, warmup: 2, throughputBatches: 2 };

describe('bench', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  let data: TinyData;
  let model: Sequential;
  let file: string;
  let sparseFile: string;
  let variant: Sequential;

  before(async () => {
    temp = await makeTempDir('kiln-bench-test-');
    data = await tinyData();
    model = await trainedTinyCnn(data);
    file = join(temp.dir, 'tiny.onnx');
    await model.save(file);
    // A "pruned" variant: every other weight of the dense kernel set to zero.
    const kernel = model.weights.get('dense/kernel')!;
    const sparse = Float32Array.from(kernel.data as Float32Array, (v, i) => (i % 2 ? 0 : v));
    variant = (await loadModel(file)) as Sequential;
    variant.setWeights({ 'dense/kernel': new Tensor(sparse, kernel.shape, 'float32') });
    sparseFile = join(temp.dir, 'tiny-sparse.onnx');
    await variant.save(sparseFile);
  });
  after(() => temp.remove());

  it("agrees with evaluate(), countParams() and modelCost() for a Kiln model", async () => {
    const report = await bench([file], { x: data.test.images, y: data.test.labels }, QUICK);
    const [entry] = report.models;
    assert.ok(entry);
    const evaluated = await model.evaluate(data.test.images, data.test.labels);
    const n = data.test.images.shape[0]!;
    // The exported graph and the evaluation step run different convolution kernels (initializer vs
    // sliced weights), so one float32 near-tie may flip; in practice they agree exactly.
    assert.ok(Math.abs(entry.accuracy - evaluated.accuracy!) <= 1 / n, `bench accuracy ${entry.accuracy}, evaluate ${evaluated.accuracy}`);
    assert.ok(Math.abs(entry.macroF1 - evaluated.macroF1!) <= 0.01, `bench macro F1 ${entry.macroF1}, evaluate ${evaluated.macroF1}`);
    const cost = modelCost(model);
    assert.equal(entry.parameters, model.countParams().total);
    assert.equal(entry.parameters, cost.parameters);
    assert.equal(entry.nonZeroParameters, cost.nonZeroParameters);
    assert.equal(entry.flops, cost.flops);
    assert.equal(entry.fileBytes, (await stat(file)).size);
    assert.equal(entry.gzipBytes, cost.gzipBytes);
    assert.equal(entry.name, 'tiny');
    assert.ok(entry.latencyP50Ms > 0 && entry.latencyP50Ms <= entry.latencyP99Ms, `p50 ${entry.latencyP50Ms}, p99 ${entry.latencyP99Ms}`);
    assert.ok(entry.throughput > 0);
    assert.deepEqual(entry.history, JSON.parse(model.metadata.get('kiln.history')!));
    assert.ok(entry.metadata['kiln.training'], 'keeps the training configuration');
    assert.equal(report.testExamples, n);
    assert.deepEqual(report.settings, { batchSize: 64, ...QUICK });
  });

  it('measures several variants side by side, in the order given', async () => {
    const report = await bench([file, { name: 'half-zero', model: sparseFile }], { x: data.test.images, y: data.test.labels }, QUICK);
    assert.deepEqual(report.models.map((m) => m.name), ['tiny', 'half-zero']);
    const [dense, sparse] = report.models as [NonNullable<(typeof report.models)[0]>, NonNullable<(typeof report.models)[0]>];
    assert.equal(sparse.parameters, dense.parameters);
    assert.equal(sparse.nonZeroParameters, modelCost(variant).nonZeroParameters);
    assert.ok(dense.nonZeroParameters - sparse.nonZeroParameters >= 6000, `${dense.nonZeroParameters} → ${sparse.nonZeroParameters}`);
    assert.ok(sparse.gzipBytes < dense.gzipBytes, 'zeros compress');
    assert.equal(sparse.flops, dense.flops, 'dense kernels run every multiply');
  });

  it('counts the FLOPs of quantized graphs (DequantizeLinear → Conv, MatMulInteger) from the shapes ONNX Runtime produces', async () => {
    const g = new Graph('quantized');
    const x = g.input('x', 'float32', ['N', 1, 5, 5]);
    const rng = new Random(1);
    const wq = g.initializer('w_q', new Tensor(Int8Array.from({ length: 18 }, () => Math.round(rng.uniform(-100, 100))), [2, 1, 3, 3], 'int8'));
    const w = g.op1('DequantizeLinear', [wq, g.scalar(0.01), g.constant(new Tensor(Int8Array.of(0), [], 'int8'))]);
    const conv = g.op1('Conv', [x, w], { kernel_shape: [3, 3] });
    const flat = g.op1('Flatten', [conv], { axis: 1 });
    const [q, , zp] = g.op('DynamicQuantizeLinear', [flat], {}, { outputs: 3 });
    const mq = g.initializer('m_q', new Tensor(Uint8Array.from({ length: 18 * 4 }, () => Math.floor(rng.uniform(0, 255))), [18, 4], 'uint8'));
    const out = g.op1('MatMulInteger', [q!, mq, zp!]);
    g.output(g.op1('Cast', [out], { to: 1 }), 'scores');
    const bytes = encodeModel(modelToProto(g));
    const runtime = new Runtime();
    try {
      const flops = await measureFlops(new OnnxModel(bytes, decodeModel(bytes)), new Tensor(new Float32Array(25), [1, 1, 5, 5], 'float32'), runtime);
      // Conv: 2 × (2·3·3 outputs) × (1·3·3 taps) = 324; MatMulInteger: 2 × 4 outputs × 18 = 144.
      assert.equal(flops, 324 + 144);
    } finally {
      await runtime.close();
    }
  });

  it("counts a recurrent model's LSTM, GRU and RNN layers (the rnn fixture), as modelCost and the pruning report do", async () => {
    const bytes = await readFile(`${EXPORTED_DIR}/rnn.onnx`);
    const runtime = new Runtime();
    try {
      const flops = await measureFlops(new OnnxModel(bytes, decodeModel(bytes)), new Tensor(new Float32Array(28 * 28), [1, 1, 28, 28], 'float32'), runtime);
      // Per step and direction W [gates·H, I] and R [gates·H, H] multiply the input and the state:
      // LSTM 2·28·2·48·(28 + 12), GRU 2·28·36·(24 + 12), RNN 2·28·12·(12 + 12); the head 2·12·10.
      assert.equal(flops, 215_040 + 72_576 + 16_128 + 240);
    } finally {
      await runtime.close();
    }
  });

  it('takes nearest-rank percentiles and medians', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.equal(percentile(samples, 0.5), 50);
    assert.equal(percentile(samples, 0.99), 99);
    assert.equal(percentile([3], 0.99), 3);
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  it('kiln bench prints a table, or JSON with --json', async () => {
    const dir = await writeIdxDataset(join(temp.dir, 'data'), data);
    const quick = ['--repetitions', '1', '--latency-runs', '5', '--warmup', '1', '--dataset', dir];
    const lines: string[] = [];
    assert.equal(await main(['bench', file, sparseFile, ...quick, '--json'], (l) => lines.push(l)), 0);
    const parsed = JSON.parse(lines.join('\n'));
    assert.deepEqual(parsed.models.map((m: { name: string }) => m.name), ['tiny', 'tiny-sparse']);
    assert.equal(parsed.testExamples, 200);
    const table: string[] = [];
    assert.equal(await main(['bench', file, ...quick, '--limit', '50'], (l) => table.push(l)), 0);
    const text = table.join('\n');
    for (const column of ['Model', 'Params', 'FLOPs', 'Size', 'Gzip', 'Accuracy', 'Macro F1', 'p50 ms', 'p99 ms', 'img/s @64']) assert.ok(text.includes(column), `table has ${column}:\n${text}`);
    assert.ok(text.includes('50 test examples'), text);
    const errors: string[] = [];
    assert.equal(await main(['bench', '--dataset', dir], () => undefined, (l) => errors.push(l)), 1);
    assert.match(errors.join('\n'), /give one or more model files/);
  });
});

