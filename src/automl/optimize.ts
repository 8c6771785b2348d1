/**
 * `optimizeModel()`: the smallest or fastest version of a trained model (a Kiln Sequential, or an
 * imported graph another tool exported: a GraphModel) within an accuracy budget,
 * as Intel Neural Compressor's accuracy-aware tuning and NNCF's compression search do. It makes the
 * candidates of candidates.ts — structured pruning or a distilled student, unstructured sparsity, a
 * quantization mode — each narrow or sparse model fine-tuned briefly and shared by the candidates
 * below it; scores every candidate on the evaluation data; measures all of them (and the original)
 * in one interleaved run (accuracy, latency at batch 1 and 64, size); and returns the Pareto front
 * and the candidate that best meets the objective while losing at most `maxAccuracyDrop` points.
 */
import { KilnError } from '../errors.js';
import { bench, type BenchEntry } from '../bench/bench.js';
import { distill } from '../optimize/distill/distill.js';
import { prune } from '../optimize/prune/prune.js';
import { quantize, type CalibrationData } from '../optimize/quantize/quantize.js';
import { fileFeeds } from '../model/input-adapter.js';
import { checkInputsForm, examplesIn, sliceInputs, type ModelInputs } from '../model/input-rows.js';
import { OnnxModel } from '../model/onnx-model.js';
import { parseOnnx } from '../model/read-model.js';
import { Runtime } from '../runtime/runtime.js';
import { concatRows, Tensor } from '../tensor.js';
import { GraphModel } from '../train/graph-model.js';
import { evaluateClassifier } from '../train/metrics.js';
import { Sequential } from '../train/sequential.js';
import { compileForFineTune, rebuildModel } from '../optimize/prune/fine-tune.js';
import { allConfigs, configName, searchOrder, shrinkName, type CompressionConfig, type SearchChoices, type Shrink } from './candidates.js';
import { paretoFront } from './pareto.js';

/**
 * What `kiln optimize` compresses: a Kiln layer model, or an imported graph (a PyTorch / tf2onnx export
 * loaded as a GraphModel), whose pruned, sparse and quantized versions keep its input and output names.
 */
export type OptimizableModel = Sequential | GraphModel;

/** What `kiln optimize` minimizes within the accuracy budget: latency at batch 64, or gzip-compressed size. */
export type OptimizeObjective = 'latency' | 'size';

/** Options of {@link optimizeModel}: the data, the accuracy budget, the objective, and the search's choices and limits. */
export interface OptimizeOptions extends SearchChoices {
  /** Training data: fine-tuning, distillation and int8 calibration. */
  train: {
    /** Training inputs, one example per row of the first dimension (tensors by input name for a model of several). */
    x: ModelInputs;
    /** Training labels (class indices). */
    y: Tensor;
  };
  /** The data the accuracy budget is held on (and the measurements made on): the test split, as INC's eval set. */
  evaluation: {
    /** Evaluation inputs, one example per row of the first dimension (tensors by input name for a model of several). */
    x: ModelInputs;
    /** Evaluation labels (class indices). */
    y: Tensor;
  };
  /** Most accuracy the chosen model may lose, in percentage points (default 0.5). */
  maxAccuracyDrop?: number;
  /** 'latency' (at batch 64) or 'size' (gzip-compressed file bytes). */
  objective: OptimizeObjective;
  /** No new candidate starts after this long; the final measurement runs after it. */
  timeBudgetMs?: number;
  /** Fine-tuning epochs after pruning and sparsification (default 1). */
  fineTuneEpochs?: number;
  /** Epochs a distilled student trains (default 3). */
  distillEpochs?: number;
  /** Batch size of fine-tuning and distillation (default 64). */
  batchSize?: number;
  /** Seed of fine-tuning, students and calibration (default 42). */
  seed?: number;
  /** Timing settings of the final measurement (bench): rounds and calls per round. */
  measurement?: {
    /** Interleaved measurement rounds (default 3). */
    repetitions?: number;
    /** Batch-1 calls timed per round for latency (default 50). */
    latencyRuns?: number;
    /** Batches of 64 timed per round for throughput (default 5). */
    throughputBatches?: number;
  };
  /** Called with one line of progress text per stage, candidate and measurement. */
  onProgress?: (line: string) => void;
}

/** One model `kiln optimize` made (or the original), with its accuracy, latencies and sizes. */
export interface Candidate {
  /** The candidate's name: 'original', or its configuration's name (as float, pruned50, student25-sparse80-int8). */
  name: string;
  /** Absent for the original model. */
  config?: CompressionConfig;
  /** The model as an ONNX file. */
  bytes: Uint8Array;
  /** Accuracy on the evaluation data, a fraction. */
  accuracy: number;
  /** Median latency at batch 1 and of one batch of 64, ms (from the final measurement). */
  latencyMs1: number;
  /** Time of one batch of 64, ms: 64,000 over the measured throughput (examples per second). */
  latencyMs64: number;
  /** Size of the ONNX file, bytes. */
  fileBytes: number;
  /** Size of the ONNX file after gzip compression, bytes. */
  gzipBytes: number;
  /** The size the objective and the front use: gzipBytes. */
  sizeBytes: number;
  /** Number of parameters of the model. */
  parameters: number;
  /** Seconds spent making it (its own stages; shared stages counted where first made). */
  seconds: number;
  /** Within maxAccuracyDrop of the original. */
  withinBudget: boolean;
  /** The original's batch-64 latency over this one's, and its gzip size over this one's. */
  speedup64: number;
  /** The original's gzip size over this one's. */
  compression: number;
}

/** What {@link optimizeModel} returns: every candidate, the Pareto front, and the chosen model. */
export interface OptimizeResult {
  /** The objective the candidate was chosen for. */
  objective: OptimizeObjective;
  /** The accuracy budget used, in percentage points. */
  maxAccuracyDrop: number;
  /** The uncompressed model, measured alongside the candidates. */
  original: Candidate;
  /** Every candidate made, in the order tried. */
  candidates: Candidate[];
  /** The Pareto front over accuracy, latency at batch 1 and 64, and size, the original included. */
  front: Candidate[];
  /** The candidate within the accuracy budget that is fastest at batch 64 (latency) or smallest (size); absent when none is. */
  chosen?: Candidate;
  /**
   * The chosen model and the original timed again, alone and with more rounds (7), interleaved: the
   * speed-up to quote, less exposed to a busy machine than the all-candidates measurement.
   */
  check?: {
    /** The original's median latency at batch 1, ms. */
    originalMs1: number;
    /** The chosen model's median latency at batch 1, ms. */
    chosenMs1: number;
    /** The original's time of one batch of 64, ms. */
    originalMs64: number;
    /** The chosen model's time of one batch of 64, ms. */
    chosenMs64: number;
    /** originalMs1 over chosenMs1. */
    speedup1: number;
    /** originalMs64 over chosenMs64. */
    speedup64: number;
    /** Interleaved rounds the check ran. */
    repetitions: number;
  };
  /** Candidates not made, and why (a parent stage already below the budget, or the time budget spent). */
  skipped: {
    /** The candidate's configuration name. */
    name: string;
    /** Why it was not made. */
    reason: string;
  }[];
  /** What the search left out of its defaults for this model, and why (e.g. students of an imported graph). */
  notes: string[];
  /** Whether the time budget ran out before every candidate was tried. */
  budgetSpent: boolean;
  /** Wall-clock seconds the whole search took. */
  seconds: number;
}

/**
 * Accuracy of a model file on labelled data, in the search's runtime (its session released after). The
 * data is fed in the layout and normalization the file declares or its input shape asks for (an
 * imported graph's channels-first input, a student's channels-last one).
 */
async function accuracyOf(bytes: Uint8Array, data: { x: ModelInputs; y: Tensor }, runtime: Runtime): Promise<number> {
  const described = new OnnxModel(bytes, parseOnnx(bytes));
  const session = await runtime.load(bytes);
  try {
    const n = examplesIn(data.x);
    const parts: Tensor[] = [];
    for (let start = 0; start < n; start += 256) parts.push(Object.values(await runtime.run(session, fileFeeds(sliceInputs(data.x, start, start + 256), described.inputs, described.preprocessing)))[0]!);
    return evaluateClassifier(data.y, concatRows(parts) as Tensor<'float32'>).accuracy;
  } finally {
    await runtime.release(session).catch(() => undefined);
  }
}

function checkOptions(model: unknown, o: OptimizeOptions): void {
  if (!(model instanceof Sequential) && !(model instanceof GraphModel)) {
    throw new KilnError('NOT_TRAINABLE', 'kiln optimize needs a trainable model: a Kiln Sequential (as kiln train saves it) or an imported graph (a GraphModel, as kiln.loadModel returns a PyTorch or tf2onnx export)');
  }
  checkInputsForm(o.train?.x, 'train.x');
  checkInputsForm(o.evaluation?.x, 'evaluation.x');
  // The data checked against the model's input before any work (shape, type, layout); on a copy of an
  // imported graph, whose input check may settle its layout.
  const probe = model instanceof GraphModel ? model.clone() : model;
  probe.inputRows(o.train.x, 'train.x');
  probe.inputRows(o.evaluation.x, 'evaluation.x');
  if (o.objective !== 'latency' && o.objective !== 'size') throw new KilnError('INVALID_ARGUMENT', `objective must be 'latency' or 'size', got ${JSON.stringify(o.objective)}`);
  const drop = o.maxAccuracyDrop ?? 0.5;
  if (!(Number.isFinite(drop) && drop >= 0 && drop <= 100)) throw new KilnError('INVALID_ARGUMENT', `maxAccuracyDrop is in percentage points, from 0 to 100; got ${drop}`);
  if (o.timeBudgetMs !== undefined && !(o.timeBudgetMs > 0)) throw new KilnError('INVALID_ARGUMENT', `the time budget must be positive, got ${o.timeBudgetMs} ms`);
  for (const [k, v] of [['fineTuneEpochs', o.fineTuneEpochs], ['distillEpochs', o.distillEpochs], ['batchSize', o.batchSize]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new KilnError('INVALID_ARGUMENT', `${k} must be a positive integer, got ${v}`);
  }
  for (const r of [...(o.pruneRatios ?? []), ...(o.sparsities ?? [])]) if (!(r > 0 && r < 1)) throw new KilnError('INVALID_ARGUMENT', `pruning ratios and sparsities must be in (0, 1), got ${r}`);
  for (const r of o.studentRatios ?? []) if (!(r > 0 && r < 1)) throw new KilnError('INVALID_ARGUMENT', `student parameter ratios must be in (0, 1), got ${r}`);
  if (examplesIn(o.evaluation.x) === 0 || examplesIn(o.train.x) === 0) throw new KilnError('INVALID_DATA', 'optimize needs training and evaluation examples');
}

/**
 * Seconds one epoch of fine-tuning takes here, from a timed probe: a copy of the model trained on 8
 * batches after one warm-up batch (compiling and loading the step are not counted).
 */
async function fineTuneEpochSeconds(model: OptimizableModel, train: { x: ModelInputs; y: Tensor }, batchSize: number): Promise<number> {
  const probe = model instanceof GraphModel ? model.clone() : rebuildModel(model);
  compileForFineTune(probe, train);
  const n = examplesIn(train.x);
  const rows = Math.min(n, 8 * batchSize);
  await probe.fit(sliceInputs(train.x, 0, Math.min(n, batchSize)), train.y.slice(0, Math.min(n, batchSize)), { epochs: 1, batchSize, verbose: 0 });
  const t0 = performance.now();
  await probe.fit(sliceInputs(train.x, 0, rows), train.y.slice(0, rows), { epochs: 1, batchSize, verbose: 0 });
  const seconds = (performance.now() - t0) / 1000;
  probe.dispose();
  return (seconds / Math.ceil(rows / batchSize)) * Math.ceil(n / batchSize);
}

/**
 * Searches compressions of a trained model (pruning or distillation, sparsity, quantization) and
 * returns every candidate measured, the Pareto front, and the best one within the accuracy budget.
 * An imported graph (GraphModel) is pruned through its channel dependency groups and keeps its input
 * and output names in every pruned, sparse and quantized candidate; distilled students are tried for
 * it only when `studentRatios` asks for them, since a student is a Kiln layer model with its own input
 * (channels-last, under another name), not a drop-in replacement for the file.
 */
export async function optimizeModel(model: OptimizableModel, options: OptimizeOptions): Promise<OptimizeResult> {
  const started = performance.now();
  checkOptions(model, options);
  const progress = options.onProgress ?? (() => undefined);
  const drop = options.maxAccuracyDrop ?? 0.5;
  const fineTuneEpochs = options.fineTuneEpochs ?? 1;
  const distillEpochs = options.distillEpochs ?? 3;
  const batchSize = options.batchSize ?? 64;
  const seed = options.seed ?? 42;
  const notes: string[] = [];
  const choices: SearchChoices = { ...options };
  if (model instanceof GraphModel && options.studentRatios === undefined) {
    choices.studentRatios = [];
    notes.push('distilled students not tried: a student is a Kiln layer model reading channels-last images under its own input name, not a drop-in replacement for this imported graph (ask for them with studentRatios / --student-ratios)');
  }
  for (const note of notes) progress(note);
  const runtime = new Runtime();
  try {
    const originalBytes = model.toOnnx();
    const t0 = performance.now();
    const originalAccuracy = await accuracyOf(originalBytes, options.evaluation, runtime);
    const evaluationSeconds = (performance.now() - t0) / 1000;
    const floor = originalAccuracy - drop / 100;
    progress(`original: accuracy ${(100 * originalAccuracy).toFixed(2)}% on ${examplesIn(options.evaluation.x)} examples; the budget allows down to ${(100 * floor).toFixed(2)}%`);
    if (options.timeBudgetMs !== undefined) {
      const epoch = await fineTuneEpochSeconds(model, options.train, batchSize);
      const one = fineTuneEpochs * epoch + 2 * evaluationSeconds;
      if (options.timeBudgetMs / 1000 < one) {
        throw new KilnError(
          'INVALID_ARGUMENT',
          `a budget of ${(options.timeBudgetMs / 1000).toFixed(0)} s is too small for one candidate: fine-tuning one takes about ${one.toFixed(0)} s here (${fineTuneEpochs} epoch${fineTuneEpochs > 1 ? 's' : ''} of ${examplesIn(options.train.x)} examples at ${epoch.toFixed(1)} s each, plus its evaluation); give a larger budget, or fewer training images`,
        );
      }
    }

    const fineTune = { x: options.train.x, y: options.train.y, epochs: fineTuneEpochs, batchSize, seed, verbose: 0 as const };
    /** Narrow and sparse models by stage key, made once; a string where making it failed (why). */
    const stages = new Map<string, { model: OptimizableModel; accuracy: number; seconds: number } | string>();
    /**
     * Makes a stage once. A stage the model cannot take (a ratio that would empty a channel group, an
     * imported graph with no group pruning can follow) is recorded with Kiln's reason, and the
     * candidates built on it are reported as not made: the search goes on with the others.
     */
    const stage = async (key: string, make: () => Promise<OptimizableModel>, describe: (m: OptimizableModel) => string) => {
      if (!stages.has(key)) {
        const t = performance.now();
        try {
          const made = await make();
          const accuracy = await accuracyOf(made.toOnnx(), options.evaluation, runtime);
          stages.set(key, { model: made, accuracy, seconds: (performance.now() - t) / 1000 });
          if (made !== model) progress(`${key}: ${describe(made)}accuracy ${(100 * accuracy).toFixed(2)}% (${((performance.now() - t) / 1000).toFixed(1)} s)`);
        } catch (err) {
          if (!(err instanceof KilnError)) throw err;
          stages.set(key, err.message);
          progress(`${key}: not made (${err.message})`);
        }
      }
      return stages.get(key)!;
    };
    const shrunk = (s: Shrink) =>
      stage(
        shrinkName(s),
        async () => {
          if (s.method === 'none') return model;
          if (s.method === 'prune') return model instanceof GraphModel ? (await prune(model, { structured: { ratio: s.ratio }, fineTune })).model : (await prune(model, { structured: { ratio: s.ratio }, fineTune })).model;
          return (await distill({ teacher: model, x: options.train.x, y: options.train.y, epochs: distillEpochs, batchSize, seed, verbose: 0, studentOptions: { maxParameterRatio: s.ratio, seed } })).student;
        },
        (m) => `${m.countParams().total} parameters, `,
      );
    const sparse = async (s: Shrink, sparsity: number) => {
      const base = await shrunk(s);
      if (sparsity === 0 || typeof base === 'string') return base;
      const key = `${shrinkName(s)}-sparse${Math.round(sparsity * 100)}`;
      return stage(key, async () => (base.model instanceof GraphModel ? (await prune(base.model, { sparsity, fineTune })).model : (await prune(base.model, { sparsity, fineTune })).model), () => '');
    };

    // A stage already this far below the budget is not worth building on: sparsity and quantization lose accuracy, they do not win it back.
    const hopeless = (accuracy: number) => accuracy < floor - 0.01;
    const made: { config: CompressionConfig; bytes: Uint8Array; accuracy: number; seconds: number }[] = [];
    const skipped: OptimizeResult['skipped'] = [];
    let budgetSpent = false;
    for (const config of searchOrder(allConfigs(choices), options.objective)) {
      const name = configName(config);
      if (options.timeBudgetMs !== undefined && performance.now() - started >= options.timeBudgetMs) {
        budgetSpent = true;
        skipped.push({ name, reason: 'time budget spent' });
        continue;
      }
      const narrow = await shrunk(config.shrink);
      if (typeof narrow === 'string') {
        skipped.push({ name, reason: `${shrinkName(config.shrink)} could not be made: ${narrow}` });
        continue;
      }
      if (config.shrink.method !== 'none' && hopeless(narrow.accuracy)) {
        skipped.push({ name, reason: `${shrinkName(config.shrink)} already scores ${(100 * narrow.accuracy).toFixed(2)}%` });
        continue;
      }
      const base = await sparse(config.shrink, config.sparsity);
      if (typeof base === 'string') {
        skipped.push({ name, reason: `${shrinkName(config.shrink)}-sparse${Math.round(config.sparsity * 100)} could not be made: ${base}` });
        continue;
      }
      if (config.sparsity > 0 && hopeless(base.accuracy)) {
        skipped.push({ name, reason: `${shrinkName(config.shrink)}-sparse${Math.round(config.sparsity * 100)} already scores ${(100 * base.accuracy).toFixed(2)}%` });
        continue;
      }
      if (config.quantization === 'none') {
        if (base.model === model) continue;
        made.push({ config, bytes: base.model.toOnnx(), accuracy: base.accuracy, seconds: base.seconds });
        continue;
      }
      const t = performance.now();
      let q: Awaited<ReturnType<typeof quantize>>;
      try {
        // Calibration on the training inputs: one tensor, or tensors by input name for a model of several.
        const calibration = options.train.x as CalibrationData;
        q = await quantize(base.model, config.quantization === 'int8' ? { mode: 'static', calibration, seed } : { mode: 'float16' });
      } catch (err) {
        if (!(err instanceof KilnError)) throw err;
        skipped.push({ name, reason: `${config.quantization} could not be made: ${err.message}` });
        progress(`${name}: not made (${err.message})`);
        continue;
      }
      const accuracy = await accuracyOf(q.bytes, options.evaluation, runtime);
      made.push({ config, bytes: q.bytes, accuracy, seconds: (performance.now() - t) / 1000 });
      progress(`${name}: accuracy ${(100 * accuracy).toFixed(2)}%`);
    }

    progress(`measuring ${made.length + 1} models (latency at batch 1 and 64, size), interleaved`);
    const m = options.measurement ?? {};
    const measured = await bench(
      [{ name: 'original', model: originalBytes }, ...made.map((c) => ({ name: configName(c.config), model: c.bytes }))],
      options.evaluation,
      { batchSize: 64, repetitions: m.repetitions ?? 3, latencyRuns: m.latencyRuns ?? 50, throughputBatches: m.throughputBatches ?? 5, warmup: 10 },
    );
    const toCandidate = (entry: BenchEntry, bytes: Uint8Array, seconds: number, config?: CompressionConfig): Candidate => ({
      name: entry.name,
      ...(config ? { config } : {}),
      bytes,
      accuracy: entry.accuracy,
      latencyMs1: entry.latencyP50Ms,
      latencyMs64: (64 * 1000) / entry.throughput,
      fileBytes: entry.fileBytes,
      gzipBytes: entry.gzipBytes,
      sizeBytes: entry.gzipBytes,
      parameters: entry.parameters,
      seconds,
      withinBudget: entry.accuracy >= floor - 1e-12,
      speedup64: 0,
      compression: 0,
    });
    const original = toCandidate(measured.models[0]!, originalBytes, 0);
    const candidates = made.map((c, i) => toCandidate(measured.models[i + 1]!, c.bytes, c.seconds, c.config));
    for (const c of [original, ...candidates]) {
      c.speedup64 = original.latencyMs64 / c.latencyMs64;
      c.compression = original.sizeBytes / c.sizeBytes;
    }
    const front = paretoFront([original, ...candidates]);
    const key = (c: Candidate) => (options.objective === 'latency' ? c.latencyMs64 : c.sizeBytes);
    const chosen = candidates.filter((c) => c.withinBudget).sort((a, b) => key(a) - key(b) || b.accuracy - a.accuracy)[0];
    let check: OptimizeResult['check'];
    if (chosen) {
      const repetitions = 7;
      progress(`timing ${chosen.name} against the original again (${repetitions} rounds)`);
      const again = await bench([{ name: 'original', model: originalBytes }, { name: chosen.name, model: chosen.bytes }], { x: sliceInputs(options.evaluation.x, 0, 256), y: options.evaluation.y.slice(0, 256) }, {
        batchSize: 64,
        repetitions,
        latencyRuns: m.latencyRuns ?? 50,
        throughputBatches: m.throughputBatches ?? 5,
        warmup: 10,
      });
      const [o, c] = again.models as [BenchEntry, BenchEntry];
      const ms64 = (e: BenchEntry) => (64 * 1000) / e.throughput;
      check = { originalMs1: o.latencyP50Ms, chosenMs1: c.latencyP50Ms, originalMs64: ms64(o), chosenMs64: ms64(c), speedup1: o.latencyP50Ms / c.latencyP50Ms, speedup64: ms64(o) / ms64(c), repetitions };
    }
    return { objective: options.objective, maxAccuracyDrop: drop, original, candidates, front, ...(chosen ? { chosen } : {}), ...(check ? { check } : {}), skipped, notes, budgetSpent, seconds: (performance.now() - started) / 1000 };
  } finally {
    await runtime.close();
  }
}
