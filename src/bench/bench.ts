import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { KilnError } from '../errors.js';
import type { OnnxModel } from '../model/onnx-model.js';
import { fileFeeds } from '../model/input-adapter.js';
import { checkInputsForm, examplesIn, selectRows, sliceInputs, type ModelInputs } from '../model/input-rows.js';
import { asOnnxModel, classifierScores, type ClassifierSource } from '../optimize/distill/teacher.js';
import type { SessionInfo } from '../runtime/protocol.js';
import { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { evaluateClassifier } from '../train/metrics.js';
import { measureFlops, staticCost, type OnnxCost } from './cost.js';
import { median, percentile, timeCalls } from './timing.js';

/** A model to measure: a file (named after it), or any classifier under a given name. */
export type BenchModelSource =
  | string
  | {
      /** The name the report shows. */
      name: string;
      /** The model: a file, ONNX bytes, an OnnxModel or a Kiln model. */
      model: ClassifierSource;
      /** The file it came from, shown in the report. */
      file?: string;
    };

/** Options of `bench` (and `report`); `kiln bench` takes the same as flags. */
export interface BenchOptions {
  /** Batch size of the throughput measurement (default 64). */
  batchSize?: number;
  /** Untimed calls per model before measuring, at batch 1 and at the throughput batch (default 20 and 3). */
  warmup?: number;
  /** Timed rounds; each reported figure is the median over rounds (default 5). */
  repetitions?: number;
  /** Batch-1 calls per round, from which one round's p50 and p99 come (default 100). */
  latencyRuns?: number;
  /** Calls at the throughput batch size per round (default 10). */
  throughputBatches?: number;
  /** Examples per call when scoring the test set (default 256). */
  evalBatchSize?: number;
  /** Name of the data set, recorded in the report. */
  dataset?: string;
  /** Called with a line of progress now and then. */
  onProgress?: (line: string) => void;
}

/** One model's measurements. */
export interface BenchEntry extends OnnxCost {
  /** The name the report shows (a file's name without .onnx). */
  name: string;
  /** The file it came from. */
  file?: string;
  /** Test accuracy. */
  accuracy: number;
  /** Test macro F1. */
  macroF1: number;
  /** Median over rounds of each round's latency percentiles at batch 1, milliseconds. */
  latencyP50Ms: number;
  /** The same for the 99th percentile. */
  latencyP99Ms: number;
  /** Examples per second at the throughput batch size (median over rounds). */
  throughput: number;
  /** Training history stored in the model's metadata ('kiln.history'), when it has one. */
  history?: Record<string, number[]>;
  /** The model's other 'kiln.*' metadata (training, distillation, pruning, quantization settings). */
  metadata: Record<string, string>;
}

/** What `bench` measured, and where: `kiln bench --json` prints it, `kiln report --bench` reads it back. */
export interface BenchReport {
  /** When the measurements were taken (ISO 8601). */
  createdAt: string;
  /** The data set's name, when given. */
  dataset?: string;
  /** Test examples each model was scored on. */
  testExamples: number;
  /** The settings the figures were measured with. */
  settings: {
    /** Batch size of the throughput measurement. */
    batchSize: number;
    /** Untimed calls before measuring. */
    warmup: number;
    /** Timed rounds. */
    repetitions: number;
    /** Batch-1 calls per round. */
    latencyRuns: number;
    /** Throughput-batch calls per round. */
    throughputBatches: number;
  };
  /** The machine: latency and throughput only compare within one. */
  environment: {
    /** CPU model name. */
    cpu: string;
    /** Logical cores. */
    cpus: number;
    /** Operating system and architecture. */
    platform: string;
    /** Node.js version. */
    node: string;
    /** onnxruntime-node version. */
    onnxruntime: string;
    /** 1-minute load average when measuring started (others' work skews timings). */
    loadAverage: number;
  };
  /** Each model's measurements, in the order given. */
  models: BenchEntry[];
}

function onnxRuntimeVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    let dir = path.dirname(require.resolve('onnxruntime-node'));
    for (; dir !== path.dirname(dir); dir = path.dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'onnxruntime-node') return pkg.version ?? 'unknown';
      } catch {
        // not this directory
      }
    }
  } catch {
    // not resolvable from here
  }
  return 'unknown';
}

async function resolveSource(source: BenchModelSource): Promise<{ name: string; file?: string; model: OnnxModel }> {
  if (typeof source === 'string') return { name: path.basename(source).replace(/\.onnx$/i, ''), file: source, model: await asOnnxModel(source) };
  return { name: source.name, file: source.file ?? (typeof source.model === 'string' ? source.model : undefined), model: await asOnnxModel(source.model) };
}

function kilnMetadata(model: OnnxModel): { history?: Record<string, number[]>; metadata: Record<string, string> } {
  const metadata: Record<string, string> = {};
  let history: Record<string, number[]> | undefined;
  for (const [key, value] of Object.entries(model.description.metadata)) {
    if (key === 'kiln.history') {
      try {
        history = JSON.parse(value) as Record<string, number[]>;
      } catch {
        // a damaged history only costs the curves
      }
    } else if (key.startsWith('kiln.') && key !== 'kiln.model') metadata[key] = value;
  }
  return { history, metadata };
}

/**
 * Measures every model on the same test set, in one process, one after another within each round so
 * that a machine busier at one moment does not favour one model: parameters, FLOPs, file size (raw
 * and gzip), test accuracy and macro F1, latency p50/p99 at batch 1 and throughput at `batchSize`.
 * Timing runs the model bytes in a runtime worker of its own (the way `predict` and `kiln serve` run
 * them), after warm-up; each figure is the median over `repetitions` rounds.
 */
export async function bench(models: BenchModelSource[], data: { x: ModelInputs; y: Tensor }, options: BenchOptions = {}): Promise<BenchReport> {
  if (models.length === 0) throw new KilnError('INVALID_ARGUMENT', 'bench needs at least one model');
  checkInputsForm(data?.x, 'data.x');
  const n = examplesIn(data.x);
  if (n === 0) throw new KilnError('INVALID_DATA', 'bench needs at least one test example');
  if (data.y.shape[0] !== n) throw new KilnError('INVALID_DATA', `x has ${n} examples but y has ${data.y.shape[0]}: they must match`);
  const settings = {
    batchSize: options.batchSize ?? 64,
    warmup: options.warmup ?? 20,
    repetitions: options.repetitions ?? 5,
    latencyRuns: options.latencyRuns ?? 100,
    throughputBatches: options.throughputBatches ?? 10,
  };
  for (const [k, v] of Object.entries(settings)) {
    if (!Number.isInteger(v) || v < (k === 'warmup' ? 0 : 1)) throw new KilnError('INVALID_ARGUMENT', `${k} must be a ${k === 'warmup' ? 'non-negative' : 'positive'} integer, got ${v}`);
  }
  const progress = options.onProgress ?? (() => undefined);
  const runtime = new Runtime();
  const sessions: SessionInfo[] = [];
  try {
    const entries: (Omit<BenchEntry, 'latencyP50Ms' | 'latencyP99Ms' | 'throughput'> & { model: OnnxModel })[] = [];
    for (const source of models) {
      const { name, file, model } = await resolveSource(source);
      progress(`${name}: accuracy on ${n} test examples, cost`);
      const scores = await classifierScores(model, data.x, { batchSize: options.evalBatchSize });
      const report = evaluateClassifier(data.y, scores);
      const flops = await measureFlops(model, fileFeeds(sliceInputs(data.x, 0, 1), model.inputs, model.preprocessing, 'data.x'), runtime);
      entries.push({ name, file, model, ...staticCost(model), flops, accuracy: report.accuracy, macroF1: report.macroF1, ...kilnMetadata(model) });
    }

    const one = sliceInputs(data.x, 0, 1);
    const many = selectRows(data.x, Int32Array.from({ length: settings.batchSize }, (_, i) => i % n)); // rows cycled to make one batch
    const feeds = entries.map((e) => ({ one: fileFeeds(one, e.model.inputs, e.model.preprocessing, 'data.x'), many: fileFeeds(many, e.model.inputs, e.model.preprocessing, 'data.x') }));
    for (const e of entries) sessions.push(await runtime.load(e.model.bytes));
    progress(`timing ${entries.length} model(s): ${settings.repetitions} rounds of ${settings.latencyRuns} calls at batch 1 and ${settings.throughputBatches} at batch ${settings.batchSize}`);
    for (let k = 0; k < entries.length; k++) {
      await timeCalls(runtime, sessions[k]!, feeds[k]!.one, settings.warmup);
      await timeCalls(runtime, sessions[k]!, feeds[k]!.many, Math.max(1, Math.ceil(settings.warmup / 8)));
    }
    const rounds = entries.map(() => ({ p50: [] as number[], p99: [] as number[], throughput: [] as number[] }));
    for (let r = 0; r < settings.repetitions; r++) {
      // Rotating the order spreads any drift of the machine's speed evenly over the models.
      for (let j = 0; j < entries.length; j++) {
        const k = (j + r) % entries.length;
        const latency = await timeCalls(runtime, sessions[k]!, feeds[k]!.one, settings.latencyRuns);
        rounds[k]!.p50.push(percentile(latency, 0.5));
        rounds[k]!.p99.push(percentile(latency, 0.99));
        const batches = await timeCalls(runtime, sessions[k]!, feeds[k]!.many, settings.throughputBatches);
        rounds[k]!.throughput.push((settings.batchSize * batches.length * 1000) / batches.reduce((a, b) => a + b, 0));
      }
    }
    return {
      createdAt: new Date().toISOString(),
      dataset: options.dataset,
      testExamples: n,
      settings,
      environment: {
        cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
        cpus: os.cpus().length,
        platform: `${os.platform()} ${os.arch()}`,
        node: process.version,
        onnxruntime: onnxRuntimeVersion(),
        loadAverage: os.loadavg()[0]!,
      },
      models: entries.map(({ model: _model, ...e }, k) => ({
        ...e,
        latencyP50Ms: median(rounds[k]!.p50),
        latencyP99Ms: median(rounds[k]!.p99),
        throughput: median(rounds[k]!.throughput),
      })),
    };
  } finally {
    for (const s of sessions) await runtime.release(s).catch(() => undefined);
    await runtime.close();
  }
}

/** The entry with the best accuracy, ties to the faster one: what `kiln demo` suggests serving. */
export function bestModel(report: BenchReport): BenchEntry {
  return [...report.models].sort((a, b) => b.accuracy - a.accuracy || a.latencyP50Ms - b.latencyP50Ms)[0]!;
}

