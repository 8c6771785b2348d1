/**
 * torchvision's own architectures, as a user exports them, through Kiln: beyond the fixtures (small
 * models made for the tests), the networks people fine-tune — ResNet, MobileNet V2/V3, EfficientNet,
 * ShuffleNet, SqueezeNet, RegNet, DenseNet, ConvNeXt — each built fresh by torchvision (seed 0, 10
 * classes), exported by torch.onnx.export (opset 17, dynamic batch, BatchNorm kept) in
 * torch_torchvision.py. Per model, in one run: how long GraphModel.load takes; Kiln's loss and every
 * parameter's gradient on one batch against PyTorch's (the relative difference of each gradient's L2
 * norm and of a weighted sum of its elements; the worst over all parameters is printed), and both
 * against PyTorch's float64 computation of the same step — how far float32 rounding alone moves a
 * gradient in that network, the yardstick for the first figure; then training
 * speed, Kiln's `fit` against PyTorch's loop on the same weights (Adam, batch 64, random images,
 * the second of two epochs timed on each side), interleaved model by model.
 *
 *   node dist/bench/any-onnx/torchvision.js [--models resnet18,...] [--size 32] [--images 640] [--torch-threads 1,2] [--json]
 *
 * Needs Debian's python3-torch, python3-torchvision and python3-onnx (bash bench/setup.sh): the models
 * come from PyTorch, so without it there is nothing to run, and the bench says so and exits 1.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { encodeModel } from '../../src/graph/proto.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { lossGradientGraph } from '../../src/train/loss-gradients.js';
import { optimizers, losses } from '../../src/index.js';
import { benchArgs } from '../args.js';
import { cpuDescription, findTorchPython, table, torchEnv } from '../train/common.js';
import { runTorch, timedFit } from './common.js';

const MODELS = ['resnet18', 'mobilenet_v2', 'mobilenet_v3_small', 'efficientnet_b0', 'shufflenet_v2_x0_5', 'squeezenet1_1', 'regnet_x_400mf', 'densenet121', 'convnext_tiny'];

const args = benchArgs('node dist/bench/any-onnx/torchvision.js [flags]', {
  models: { type: 'string', default: MODELS.join(','), help: 'comma-separated torchvision model names (torchvision.models.<name>(num_classes=10))' },
  size: { type: 'number', default: 32, help: 'height and width of the RGB images' },
  images: { type: 'number', default: 640, help: 'images per training epoch (two epochs; the second is timed); 0: the gradient check only' },
  'batch-size': { type: 'number', default: 64, help: 'batch size of the timed training' },
  'torch-threads': { type: 'numbers', default: [1, 2], help: "torch.set_num_threads for PyTorch's training; several: each runs, the fastest counts" },
  json: { type: 'boolean', default: false, help: 'one JSON object on stdout, the progress on stderr' },
});
const say = (line: string) => (args.json ? console.error(line) : console.log(line));
const script = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../bench/any-onnx/torch_torchvision.py');

const env = torchEnv();
const python = findTorchPython(env, ['torch', 'torchvision', 'onnx']);
if (!python) {
  console.error('torchvision.js: no Python that imports torch, torchvision and onnx (bash bench/setup.sh installs them, or set KILN_BENCH_PYTHON): the models come from PyTorch, nothing to run');
  process.exit(1);
}
const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-torchvision-'));
const machine = { cpu: cpuDescription(), node: process.version, onnxruntime: ort.env.versions.node ?? '', loadAverageAtStart: os.loadavg()[0]! };
say(`machine: ${machine.cpu}; node ${machine.node}, onnxruntime-node ${machine.onnxruntime}; load average ${machine.loadAverageAtStart.toFixed(2)}`);
say(`settings: ${args.size}×${args.size}×3 images, ${args.images} per epoch, batch ${args['batch-size']}, Adam 1e-3 (epsilon 1e-8 on both sides), PyTorch threads ${args['torch-threads'].join(' and ')} (the faster counts); files in ${dir}`);

interface Export {
  parameters: number;
  loss: number;
  loss64: number;
  gradients64: Record<string, { norm: number; probe: number }>;
  input: string;
  inputShape: number[];
  labels: number[];
  gradients: Record<string, { norm: number; probe: number }>;
  torch: string;
  torchvision: string;
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

type Reduced = Record<string, { norm: number; probe: number }>;

interface Differences {
  /** Gradients compared, and how many of them are below 1/1000 of the model's largest. */
  compared: number;
  small: number;
  /** The worst relative difference of a gradient's norm (and whose), and of its probe. */
  norm: number;
  worst: string;
  probe: number;
}

/**
 * How far two sets of reduced gradients are apart. A gradient far below the model's largest is
 * compared against 1/1000 of the largest, not its own size: in MobileNet-style blocks the BatchNorm after
 * a projection feeds a 1×1 Conv and a train-mode BatchNorm, which removes any per-channel shift, so its
 * bias gradient is 0 in exact arithmetic and rounding noise on both sides.
 */
function differences(ours: Reduced, theirs: Reduced, sizes: Readonly<Record<string, number>>): Differences {
  const largest = Math.max(...Object.values(theirs).map((g) => g.norm));
  const d: Differences = { compared: 0, small: 0, norm: 0, worst: '', probe: 0 };
  for (const [name, t] of Object.entries(theirs)) {
    const o = ours[name];
    if (!o) continue;
    d.compared++;
    if (t.norm < 1e-3 * largest) d.small++;
    const scale = Math.max(t.norm, 1e-3 * largest);
    const e = Math.abs(o.norm - t.norm) / scale;
    // A probe is a signed sum: against the gradient's norm (times √size), not its own cancelling size.
    const f = Math.abs(o.probe - t.probe) / (scale * Math.sqrt(sizes[name] ?? 1));
    if (e > d.norm) [d.norm, d.worst] = [e, name];
    d.probe = Math.max(d.probe, f);
  }
  return d;
}

/** Kiln's loss and gradients on PyTorch's batch, each gradient reduced as torch_torchvision.py reduces it. */
async function kilnGradients(model: GraphModel, ref: Export, runtime: Runtime): Promise<{ loss: number; gradients: Reduced; sizes: Record<string, number> }> {
  const { graph, loss, trainable, gradients } = lossGradientGraph(model, 'labels');
  graph.output(loss, 'loss');
  gradients.forEach((g, k) => graph.output(g, `grad/${k}`));
  const session = await runtime.load(encodeModel(modelToProto(graph, {}, model.graphOpset)));
  const bytes = Buffer.from(ref.input, 'base64');
  const nchw = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  // The model was loaded channels first: its step takes [N, H, W, C] and transposes.
  const [n, c, h, w] = ref.inputShape as [number, number, number, number];
  const nhwc = new Float32Array(nchw.length);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) nhwc[(i * h * w + p) * c + ch] = nchw[(i * c + ch) * h * w + p]!;
  const feeds: Record<string, Tensor> = { input: new Tensor(nhwc, [n, h, w, c], 'float32'), labels: new Tensor(BigInt64Array.from(ref.labels, (l) => BigInt(l)), [n], 'int64') };
  for (const p of model.paramInfos()) feeds[p.name] = model.weights.get(p.name)!;
  const out = await runtime.run(session, feeds);
  await runtime.release(session);
  const reduced: Reduced = {};
  const sizes: Record<string, number> = {};
  trainable.forEach((p, k) => {
    const g = out[`grad/${k}`]!.data as Float32Array;
    let norm = 0;
    let probe = 0;
    for (let i = 0; i < g.length; i++) {
      norm += g[i]! * g[i]!;
      probe += g[i]! * ((i % 7) - 3);
    }
    reduced[p.name] = { norm: Math.sqrt(norm), probe };
    sizes[p.name] = g.length;
  });
  return { loss: (out.loss!.data as Float32Array)[0]!, gradients: reduced, sizes };
}

const runtime = new Runtime();
const rows: Record<string, unknown>[] = [];
for (const name of args.models.split(',')) {
  say(`${name}: exporting with PyTorch`);
  const ref = runTorch<Export>(python, script, ['export', '--model', name, '--dir', dir, '--size', String(args.size)], env);
  const file = path.join(dir, `${name}.onnx`);
  const t0 = performance.now();
  const model = await GraphModel.load(file, { layout: 'nchw' });
  const loadSeconds = (performance.now() - t0) / 1000;
  const { total, trainable } = model.countParams();
  const kiln = await kilnGradients(model, ref, runtime);
  const check = {
    lossError: relative(kiln.loss, ref.loss),
    vsTorch: differences(kiln.gradients, ref.gradients, kiln.sizes),
    vsFloat64: differences(kiln.gradients, ref.gradients64, kiln.sizes),
    torchVsFloat64: differences(ref.gradients, ref.gradients64, kiln.sizes),
  };
  const show = (d: Differences) => `${d.norm.toExponential(1)} (${d.worst}), probe ${d.probe.toExponential(1)}`;
  say(`${name}: ${trainable} trainable parameters (PyTorch ${ref.parameters}), loaded in ${loadSeconds.toFixed(1)} s; loss ${kiln.loss.toFixed(6)}, PyTorch ${ref.loss.toFixed(6)}, in float64 ${ref.loss64.toFixed(6)}`);
  say(`${name}: ${check.vsTorch.compared} gradients (${check.vsTorch.small} below 1/1000 of the largest, compared against that); worst relative difference of a norm — Kiln vs PyTorch ${show(check.vsTorch)}; Kiln vs float64 ${show(check.vsFloat64)}; PyTorch vs float64 ${show(check.torchVsFloat64)}`);

  if (args.images === 0) {
    rows.push({ model: name, parameters: trainable, withStatistics: total, torchParameters: ref.parameters, loadSeconds, ...check, torchLoss: ref.loss });
    model.dispose();
    continue;
  }
  const rng = { next: (() => { let s = 7; return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648); })() };
  const x = new Tensor(Float32Array.from({ length: args.images * args.size * args.size * 3 }, () => rng.next()), [args.images, args.size, args.size, 3], 'float32');
  const y = new Tensor(Int32Array.from({ length: args.images }, (_, i) => i % 10), [args.images], 'int32');
  model.compile({ optimizer: optimizers.adam({ learningRate: 1e-3, epsilon: 1e-8 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
  await timedFit(model, x, y, { epochs: 1, batchSize: args['batch-size'], seed: 1 }); // warm-up epoch
  const kilnSpeed = args.images / (await timedFit(model, x, y, { epochs: 1, batchSize: args['batch-size'], seed: 2 })).seconds;
  model.dispose();
  const torchRuns = args['torch-threads'].map((threads) =>
    runTorch<{ imagesPerSecond: number; threads: number }>(python, script, ['train', '--model', name, '--dir', dir, '--size', String(args.size), '--images', String(args.images), '--batch-size', String(args['batch-size']), '--threads', String(threads)], env),
  );
  const best = torchRuns.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a));
  say(`${name}: Kiln ${kilnSpeed.toFixed(0)} img/s, PyTorch ${torchRuns.map((r) => `${r.imagesPerSecond.toFixed(0)} (${r.threads} thread${r.threads > 1 ? 's' : ''})`).join(', ')}`);
  rows.push({ model: name, parameters: trainable, withStatistics: total, torchParameters: ref.parameters, loadSeconds, ...check, torchLoss: ref.loss, kilnImagesPerSecond: kilnSpeed, torchImagesPerSecond: best.imagesPerSecond, torchThreads: best.threads, ratio: kilnSpeed / best.imagesPerSecond });
}
await runtime.close();

const header = ['model', 'parameters', 'load s', 'loss rel. diff', 'gradients', 'Kiln vs PyTorch', 'Kiln vs float64', 'PyTorch vs float64', 'Kiln img/s', 'PyTorch img/s', 'Kiln/PyTorch'];
const worstOf = (d: Differences) => Math.max(d.norm, d.probe).toExponential(1);
const body = rows.map((r) => [
  String(r.model),
  `${r.parameters}${r.parameters === r.torchParameters ? '' : ` (PyTorch ${r.torchParameters})`}`,
  (r.loadSeconds as number).toFixed(1),
  (r.lossError as number).toExponential(1),
  `${(r.vsTorch as Differences).compared} (${(r.vsTorch as Differences).small} small)`,
  worstOf(r.vsTorch as Differences),
  worstOf(r.vsFloat64 as Differences),
  worstOf(r.torchVsFloat64 as Differences),
  r.kilnImagesPerSecond === undefined ? '' : (r.kilnImagesPerSecond as number).toFixed(0),
  r.torchImagesPerSecond === undefined ? '' : `${(r.torchImagesPerSecond as number).toFixed(0)} (${r.torchThreads} thr)`,
  r.ratio === undefined ? '' : `${(r.ratio as number).toFixed(2)}×`,
]);
say('');
say(table(header, body));
say(`load average at the end ${os.loadavg()[0]!.toFixed(2)}`);
if (args.json) console.log(JSON.stringify({ settings: { ...args }, machine, rows }));
process.exit(0);
