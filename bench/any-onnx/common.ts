/*
 * Shared by the bench/any-onnx benches (finetune.ts, transfer.ts) and the benches that shrink exported
 * models (bench/prune, bench/distill): where the exported fixtures and the PyTorch reference scripts
 * live, running a reference script as a child and reading its one JSON line, Kiln's side of a training
 * run (a GraphModel fit timed over its training loop only, as the references time theirs), a fixture
 * trained on to convergence (cached), checking a fixture flag, and picking classes out of a labeled image set.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { losses, optimizers, Tensor } from '../../src/index.js';
import { selectRows, type ModelInputs } from '../../src/model/input-rows.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { cosineOverTraining } from '../train/common.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: this file runs from dist/bench/any-onnx, the .onnx and .py files stay in the source tree. */
const ROOT = resolve(here, '../../..');

/** The exported fixtures (test/fixtures/exported/README.md), in the order the benches run them. */
export const FIXTURES = ['resnet', 'resnet_fused', 'mlp', 'dwsep', 'vit13', 'vit17', 'resnet_wide', 'vit_wide'] as const;
/** What a bench runs unless told otherwise: the wide ones (4× the width) are asked for by name. */
export const DEFAULT_FIXTURES = FIXTURES.filter((f) => !f.endsWith('_wide'));

/**
 * Every fixture takes N × 1 × 28 × 28 (channels first) and Kiln's Fashion-MNIST is [N, 28, 28, 1]; the
 * layout is declared, as a user who knows the model would, though fit's automatic switch finds it too.
 */
export const FIXTURE_OPTIONS = { layout: 'nchw' } as const;

/**
 * Exits 2 before any work when a fixture flag names one the bench does not know, naming each unknown
 * value and the known ones (as bench/args.ts treats a bad flag).
 */
export function exitOnUnknownFixtures(script: string, flag: string, values: readonly string[], known: readonly string[]): void {
  const unknown = values.filter((v) => !known.includes(v));
  if (unknown.length === 0) return;
  console.error(`${script}: ${flag}: unknown fixture ${unknown.map((f) => `'${f}'`).join(', ')} (known: ${known.join(', ')})`);
  process.exit(2);
}

export function fixturePath(name: string): string {
  return resolve(ROOT, 'test/fixtures/exported', `${name}.onnx`);
}

export function torchScript(name: 'torch_finetune.py' | 'torch_transfer.py' | 'torch_finetune_text.py'): string {
  return resolve(ROOT, 'bench/any-onnx', name);
}

/**
 * Runs a reference script and parses the JSON object it prints as its last stdout line. A failure
 * throws with the exit status and the script's stderr, so a broken reference is never a silent gap.
 */
export function runTorch<T>(python: string, script: string, args: string[], env: NodeJS.ProcessEnv): T {
  const r = spawnSync(python, [script, ...args], { env, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${python} ${script} ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${script} printed no JSON line (last stdout line: '${line}'); stderr:\n${r.stderr}`);
  }
}

/**
 * model.fit, timed from the first batch's setup to the last step (onTrainBegin → onTrainEnd): the
 * compiled step and its session are made before onTrainBegin, as torch builds its model before its
 * loop, so neither side's figure includes setup, loading or evaluation.
 */
export async function timedFit(
  model: GraphModel,
  x: ModelInputs,
  y: Tensor,
  args: { epochs: number; batchSize: number; seed: number; replicas?: number; orders?: readonly Int32Array[] },
): Promise<{ seconds: number; loss: number }> {
  let t0 = 0;
  let t1 = 0;
  const timing = { onTrainBegin: () => void (t0 = performance.now()), onTrainEnd: () => void (t1 = performance.now()) };
  if (args.orders) {
    // A given batch order (the same the PyTorch reference reads): one unshuffled epoch per order,
    // the optimizer's state carried from one fit to the next; the gathers stay outside the timing.
    let seconds = 0;
    let loss = NaN;
    for (const order of args.orders) {
      const h = await model.fit(selectRows(x, order), y.gather(order), { epochs: 1, batchSize: args.batchSize, shuffle: false, verbose: 0, replicas: args.replicas, callbacks: [timing] });
      seconds += (t1 - t0) / 1000;
      loss = h.history.loss!.at(-1)!;
    }
    return { seconds, loss };
  }
  const h = await model.fit(x, y, {
    epochs: args.epochs,
    batchSize: args.batchSize,
    seed: args.seed,
    verbose: 0,
    replicas: args.replicas,
    callbacks: [timing],
  });
  return { seconds: (t1 - t0) / 1000, loss: h.history.loss!.at(-1)! };
}

/**
 * The examples whose label is in [lo, hi), labels shifted down by `shift` (5–9 → 0–4 for a 5-way
 * head), the first `limit` of them at most, in their original order (as torch_transfer.py's x[y >= 5][:limit]).
 */
export function selectClasses(x: Tensor<'float32'>, y: Tensor<'int32'>, lo: number, hi: number, shift = 0, limit?: number): { x: Tensor<'float32'>; y: Tensor<'int32'> } {
  const labels = y.data as Int32Array;
  const idx: number[] = [];
  for (let i = 0; i < labels.length && (limit === undefined || idx.length < limit); i++) if (labels[i]! >= lo && labels[i]! < hi) idx.push(i);
  const picked = y.gather(idx).data as Int32Array;
  return { x: x.gather(idx), y: new Tensor(Int32Array.from(picked, (v) => v - shift), [idx.length], 'int32') };
}

/**
 * A fixture fine-tuned `epochs` epochs on every given training image, Adam from 1e-3 decayed to 0 along a
 * cosine, fit seed 42: the trained model a user brings to pruning or distillation (make_fixtures.py
 * stopped the fixtures after 100 steps, far from converged, so fine-tuning them "after pruning" would
 * mostly measure more training). Written once to `cacheDir` and reused by later runs; returns its path
 * and the seconds training took (0 when cached). `epochs` 0 is the fixture as exported.
 */
export async function trainedFixture(
  name: string,
  epochs: number,
  data: { x: Tensor<'float32'>; y: Tensor<'int32'> },
  { batchSize = 64, cacheDir, log = console.log }: { batchSize?: number; cacheDir: string; log?: (line: string) => void },
): Promise<{ file: string; seconds: number }> {
  if (epochs === 0) {
    log(`${name}: as exported`);
    return { file: fixturePath(name), seconds: 0 };
  }
  const images = data.x.shape[0]!;
  const file = join(cacheDir, `${name}-fixture-e${epochs}-cosine${batchSize === 64 ? '' : `-b${batchSize}`}${images === 60000 ? '' : `-n${images}`}.onnx`);
  if (existsSync(file)) {
    log(`${name}: cached ${file} (fine-tuned ${epochs} epochs)`);
    return { file, seconds: 0 };
  }
  mkdirSync(cacheDir, { recursive: true });
  const model = await GraphModel.load(fixturePath(name), FIXTURE_OPTIONS);
  model.compile({
    optimizer: optimizers.adam({ learningRate: cosineOverTraining(1e-3, epochs, images, batchSize) }),
    loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }),
    metrics: ['accuracy'],
  });
  const t0 = performance.now();
  await model.fit(data.x, data.y, { epochs, batchSize, seed: 42, verbose: 0 });
  const seconds = (performance.now() - t0) / 1000;
  await model.save(file);
  model.dispose();
  log(`${name}: fine-tuned ${epochs} epochs on ${images} images in ${seconds.toFixed(0)} s, saved ${file}`);
  return { file, seconds };
}

export function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
