/* Shared helpers for the training benches: the models, random data, the cosine learning-rate schedule over a training, finding a Python with PyTorch, the machine's CPU. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import ort from 'onnxruntime-node';
import { Random, Tensor, layers, losses, optimizers, schedules, sequential, type Sequential } from '../../src/index.js';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';

/** The tutorial CNN (TensorFlow's CIFAR-10 tutorial): 122,570 parameters. */
export function tutorialCnn(seed = 42): Sequential {
  return sequential({
    seed,
    layers: [
      layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [32, 32, 3] }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
      layers.flatten(),
      layers.dense({ units: 64, activation: 'relu' }),
      layers.dense({ units: 10 }),
    ],
  });
}

/** The Fashion-MNIST CNN: Conv32-Pool-Conv64-Pool-Dense128-Dense10 on [28, 28, 1]. */
export function fashionCnn(seed = 42): Sequential {
  return sequential({
    seed,
    layers: [
      layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.flatten(),
      layers.dense({ units: 128, activation: 'relu' }),
      layers.dense({ units: 10 }),
    ],
  });
}

export function compileForClassification(model: Sequential, learningRate = 1e-3, metrics: string[] = []): void {
  model.compile({ optimizer: optimizers.adam({ learningRate }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics });
}

/** n random images [n, 32, 32, 3] in [0, 1) and int32 labels in [0, 10). */
export function randomImages(n: number, seed = 1): { x: Tensor<'float32'>; y: Tensor<'int32'> } {
  const rng = new Random(seed);
  const x = new Float32Array(n * 32 * 32 * 3);
  for (let i = 0; i < x.length; i++) x[i] = rng.next();
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = rng.int(10);
  return { x: new Tensor(x, [n, 32, 32, 3], 'float32'), y: new Tensor(y, [n], 'int32') };
}

/** Peak resident set size of this process (and its in-process worker threads), MiB. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * A Python that imports torch (and any other `modules`): $KILN_BENCH_PYTHON, else Debian's /usr/bin/python3
 * (python3-torch installs there, not into a pyenv), else python3 on PATH. Undefined when none does.
 */
export function findTorchPython(env: NodeJS.ProcessEnv, modules: string[] = ['torch']): string | undefined {
  const candidates = [process.env.KILN_BENCH_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', `import ${modules.join(', ')}`], { env, stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return py;
  }
  return undefined;
}

/** PyTorch's fastest configuration on this machine (see /work/shared/design/architecture.md). */
export function torchEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LD_LIBRARY_PATH: ['/usr/lib/x86_64-linux-gnu/openblas-pthread', process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
    OPENBLAS_NUM_THREADS: '1',
    MALLOC_MMAP_THRESHOLD_: '33554432',
    MALLOC_TRIM_THRESHOLD_: '134217728',
  };
}

/** The SIMD extensions that decide which kernels ONNX Runtime and PyTorch's oneDNN/OpenBLAS pick. */
const SIMD_FLAGS = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_int8', 'amx_bf16'];

/**
 * The CPU as a bench should print it: model, core count and the SIMD extensions present (from
 * /proc/cpuinfo; elsewhere the model alone), since two machines with one model name can differ in
 * what the hypervisor exposes, and that moves both Kiln's and PyTorch's figures.
 */
export function cpuDescription(): string {
  const model = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  let simd = 'SIMD flags unknown (no /proc/cpuinfo)';
  try {
    const flags = new Set(/^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? []);
    simd = SIMD_FLAGS.filter((f) => flags.has(f)).join(' ') || 'no AVX';
  } catch {
    // Not Linux: the model name is all there is.
  }
  return `${model}, ${os.availableParallelism()} cores; ${simd}`;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  return [line(header), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...rows.map(line)].join('\n');
}

/**
 * ONNX Runtime's speed on one Gemm [m, k] x [k, n] on `threads` intra-op threads: the best of `runs`
 * timed runs after `warmups` untimed ones. The benches compare the training step's matrix products
 * against it.
 */
export async function bestGemm(m: number, k: number, n: number, threads: number, runs: number, warmups: number): Promise<{ ms: number; gflops: number; label: string }> {
  const g = new Graph('peak_gemm');
  g.output(g.op1('Gemm', [g.input('a', 'float32', [m, k]), g.input('b', 'float32', [k, n])]), 'c');
  const session = await ort.InferenceSession.create(encodeModel(modelToProto(g)), { intraOpNumThreads: threads, graphOptimizationLevel: 'extended' });
  const feeds = { a: new ort.Tensor('float32', Float32Array.from({ length: m * k }, (_, i) => (i % 7) / 7), [m, k]), b: new ort.Tensor('float32', Float32Array.from({ length: k * n }, (_, i) => (i % 5) / 5), [k, n]) };
  for (let i = 0; i < warmups; i++) await session.run(feeds);
  let ms = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    ms = Math.min(ms, performance.now() - t0);
  }
  await session.release();
  return { ms, gflops: (2 * m * k * n) / ms / 1e6, label: `Gemm [${m}, ${k}] x [${k}, ${n}]` };
}

/**
 * A learning rate from `initial` down to 0 along a cosine over a whole training of `epochs` epochs of
 * `images` examples in batches of `batchSize` (one step per batch): the benches' "cosine decay".
 */
export function cosineOverTraining(initial: number, epochs: number, images: number, batchSize: number) {
  return schedules.cosineDecay({ initialLearningRate: initial, decaySteps: epochs * Math.ceil(images / batchSize) });
}
