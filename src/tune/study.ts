/**
 * `tune()`: a hyper-parameter search over a model-building function, as KerasTuner's `tuner.search`
 * and Optuna's `study.optimize`. It owns the study's life: proposing trials (a sampler), training
 * each in segments up to its epochs with validation at every epoch and ASHA rung, stopping trials
 * early (ASHA), running up to `parallel` trials at once (each in a runtime worker of its own),
 * journaling every event so an interrupted search resumes, and saving the best trial's model.
 */
import os from 'node:os';
import { KilnError } from '../errors.js';
import { Random } from '../random.js';
import { Runtime, sharedRuntime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { INPUT_NAME } from '../model/model.js';
import type { TrainableModel } from '../train/model.js';
import { ashaPromotes, ashaRungs, type AshaOptions } from './asha.js';
import { HyperParameters } from './hyper-parameters.js';
import { parameterImportance } from './importance.js';
import { StudyJournal, type JournalRecord, type StudySignature, type TrialState } from './journal.js';
import { RandomSampler } from './samplers/random.js';
import type { Direction, ObservedTrial, Sampler } from './samplers/sampler.js';
import { TpeSampler } from './samplers/tpe.js';
import { searchSpace, type Params, type SearchSpace, type SpaceDefinition } from './space.js';

/** What the builder returns: a compiled model, and optionally the batch size to train it with. */
export type BuildResult =
  | TrainableModel
  | {
      /** The compiled model to train. */
      model: TrainableModel;
      /** Batch size to train this trial with (default: the study's batchSize). */
      batchSize?: number;
    };

/** The validation metric a trial is scored by: accuracy (maximized) or loss (minimized). */
export type ObjectiveMetric = 'val_accuracy' | 'val_loss';

/**
 * What a trial is scored by: a validation metric, optionally penalized by what the model costs —
 * value = metric − (latencyWeight · batch-1 latency in ms + sizeWeight · file size in MiB) for
 * accuracy (maximized), metric + the same for loss (minimized).
 */
export interface Objective {
  /** The validation metric scored. */
  metric: ObjectiveMetric;
  /** Penalty per millisecond of batch-1 latency (default 0: latency not measured). */
  latencyWeight?: number;
  /** Penalty per MiB of the model's ONNX file (default 0). */
  sizeWeight?: number;
}

/** Options of `tune()`: the search space, the model builder, the data, and the study's settings. */
export interface TuneOptions {
  /** The parameters searched over: a SearchSpace, or the definition to make one from. */
  space: SearchSpace | SpaceDefinition;
  /** Builds and compiles one trial's model from its parameters (read them through `hp`). */
  build: (hp: HyperParameters) => BuildResult | Promise<BuildResult>;
  /** Training examples and labels. */
  x: Tensor;
  /** Training labels, one per example of x. */
  y: Tensor;
  /** Validation pair; default: the last `validationSplit` of x and y. */
  validationData?: [Tensor, Tensor];
  /** Default 0.1 when no validationData is given. */
  validationSplit?: number;
  /** Epochs per trial (ASHA's largest resource). */
  epochs: number;
  /** Trials to finish (complete, pruned or failed), counting those already in the journal. */
  maxTrials: number;
  /** Default 'val_accuracy'. */
  objective?: ObjectiveMetric | Objective;
  /** Default 'tpe'. */
  sampler?: 'tpe' | 'random' | Sampler;
  /** ASHA early stopping ('asha' for its defaults); default off. */
  earlyStopping?: false | 'asha' | AshaOptions;
  /** Trials run at once, each in its own runtime worker (default 1). */
  parallel?: number;
  /** Seeds the sampler, every trial's initial weights and batch order (default 42). */
  seed?: number;
  /** Study journal (JSON lines); a rerun with the same file continues the study. */
  journal?: string;
  /** Where the best complete trial's model is saved (atomically), whenever a better one finishes. */
  out?: string;
  /** No trial starts once this much time has passed (trials running then finish). */
  timeBudgetMs?: number;
  /** Default batch size when the builder gives none (default 32). */
  batchSize?: number;
  /** Recorded in the journal: what the trials train, so a journal of another task is refused. */
  task?: unknown;
  /** Called as each trial ends (progress output). */
  onTrialEnd?: (trial: TrialResult, study: { finished: number; maxTrials: number; best?: TrialResult }) => void;
}

/** One trial of a study: its parameters, how it ended, its objective and metrics. */
export interface TrialResult {
  /** The trial's number in the study, from 0. */
  id: number;
  /** The parameter values the trial ran with. */
  params: Params;
  /** How the trial ended: complete, pruned (stopped early by ASHA) or failed. */
  state: TrialState;
  /** The objective: final for complete trials, the last reported one for pruned trials. */
  value?: number;
  /** Epochs trained. */
  epochs: number;
  /** The last validation (and training) metrics. */
  metrics: Record<string, number>;
  /** What the trial's model costs, as the objective's penalties use it. */
  cost?: {
    /** Median batch-1 inference latency, ms (measured only when the objective has a latencyWeight). */
    latencyMs?: number;
    /** Size of the model's ONNX file, bytes. */
    sizeBytes?: number;
    /** Number of parameters of the model. */
    parameters?: number;
  };
  /** Objective after each evaluation: at every epoch and ASHA rung. */
  curve: {
    /** Epochs trained at the evaluation. */
    epochs: number;
    /** The objective then. */
    value: number;
  }[];
  /** Why the trial failed (failed trials). */
  error?: string;
  /** Wall-clock seconds the trial took. */
  seconds: number;
  /** The file the model was saved to when it became the best. */
  saved?: string;
  /** Finished in an earlier run of the study (read from the journal). */
  fromJournal: boolean;
}

/** What `tune()` returns: every trial, the best one, and each parameter's importance. */
export interface TuneResult {
  /** The search space the study ran over. */
  space: SearchSpace;
  /** The objective trials were scored by. */
  objective: Objective;
  /** Whether the objective was maximized (accuracy) or minimized (loss). */
  direction: Direction;
  /** The sampler's name ('tpe', 'random', or a custom sampler's). */
  sampler: string;
  /** Every finished trial, by id (those from the journal included). */
  trials: TrialResult[];
  /** The best complete trial. */
  best?: TrialResult;
  /** Each parameter's importance (η² of the objective over complete trials), most important first. */
  importance: {
    /** The parameter's name. */
    name: string;
    /** Its η², from 0 (explains nothing) to 1. */
    importance: number;
  }[];
  /** Where the best model is (options.out), when it has been saved. */
  bestModelFile?: string;
  /** What this run took over from the journal. */
  resumed: {
    /** Trials the journal already held finished. */
    finished: number;
    /** Ids of the trials the journal held started but unfinished, run again. */
    rerun: number[];
  };
  /** Stopped early by timeBudgetMs. */
  budgetSpent: boolean;
  /** Wall-clock seconds this run took. */
  seconds: number;
}

function resolveObjective(o: TuneOptions['objective']): Objective {
  const objective: Objective = typeof o === 'object' ? { ...o } : { metric: o ?? 'val_accuracy' };
  if (objective.metric !== 'val_accuracy' && objective.metric !== 'val_loss') {
    throw new KilnError('INVALID_ARGUMENT', `objective metric must be 'val_accuracy' or 'val_loss', got ${JSON.stringify(objective.metric)}`);
  }
  for (const k of ['latencyWeight', 'sizeWeight'] as const) {
    const w = objective[k];
    if (w !== undefined && !(Number.isFinite(w) && w >= 0)) throw new KilnError('INVALID_ARGUMENT', `objective ${k} must be a number ≥ 0, got ${w}`);
    if (!w) delete objective[k];
  }
  return objective;
}

function resolveSampler(s: TuneOptions['sampler']): Sampler {
  if (s === undefined || s === 'tpe') return new TpeSampler();
  if (s === 'random') return new RandomSampler();
  if (typeof s === 'object' && typeof s.sample === 'function') return s;
  throw new KilnError('INVALID_ARGUMENT', `sampler must be 'tpe', 'random' or a Sampler, got ${JSON.stringify(s)}`);
}

function checkOptions(o: TuneOptions): void {
  if (typeof o.build !== 'function') throw new KilnError('INVALID_ARGUMENT', 'tune needs a build(hp) function that returns a compiled model');
  if (!(o.x instanceof Tensor) || !(o.y instanceof Tensor)) throw new KilnError('INVALID_ARGUMENT', 'tune needs training data: x and y tensors');
  if (!Number.isInteger(o.maxTrials) || o.maxTrials < 1) throw new KilnError('INVALID_ARGUMENT', `the budget must allow at least one trial: maxTrials must be a positive integer, got ${o.maxTrials}`);
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new KilnError('INVALID_ARGUMENT', `epochs per trial must be a positive integer, got ${o.epochs}`);
  const parallel = o.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1) throw new KilnError('INVALID_ARGUMENT', `parallel must be a positive integer, got ${parallel}`);
  if (o.timeBudgetMs !== undefined && !(o.timeBudgetMs > 0)) throw new KilnError('INVALID_ARGUMENT', `the time budget must be positive, got ${o.timeBudgetMs} ms`);
  const bs = o.batchSize ?? 32;
  if (!Number.isInteger(bs) || bs < 1) throw new KilnError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${bs}`);
}

/** Training and validation data, split as Keras' validation_split does (the last fraction, before shuffling). */
function splitData(o: TuneOptions): { x: Tensor; y: Tensor; vx: Tensor; vy: Tensor } {
  const n = o.x.shape[0]!;
  if (o.y.shape[0] !== n) throw new KilnError('INVALID_DATA', `x has ${n} examples but y has ${o.y.shape[0]}: they must match`);
  if (o.validationData) {
    const [vx, vy] = o.validationData;
    if (vx.shape[0] !== vy.shape[0]) throw new KilnError('INVALID_DATA', `validation x has ${vx.shape[0]} examples but y has ${vy.shape[0]}`);
    return { x: o.x, y: o.y, vx, vy };
  }
  const fraction = o.validationSplit ?? 0.1;
  if (!(fraction > 0 && fraction < 1)) throw new KilnError('INVALID_ARGUMENT', `validationSplit must be in (0, 1), got ${fraction}`);
  const cut = Math.floor(n * (1 - fraction));
  if (cut < 1 || cut >= n) throw new KilnError('INVALID_DATA', `${n} examples cannot be split into training and validation data at ${fraction}`);
  return { x: o.x.slice(0, cut), y: o.y.slice(0, cut), vx: o.x.slice(cut, n), vy: o.y.slice(cut, n) };
}

/** The points (in epochs) where a trial is evaluated: every epoch and every ASHA rung. */
function evaluationPoints(epochs: number, rungs: number[]): number[] {
  const points = new Set<number>([...Array.from({ length: epochs }, (_, i) => i + 1), ...rungs]);
  return [...points].sort((a, b) => a - b);
}

/** Median milliseconds of a batch-1 inference of the model, in `runtime` (20 timed runs after 3). */
async function batchOneLatency(model: TrainableModel, runtime: Runtime): Promise<number> {
  const session = await runtime.load(model.toOnnx());
  try {
    const input = new Tensor(new Float32Array(model.inputShape.reduce((a, b) => a * b, 1)).fill(0.5), [1, ...model.inputShape], 'float32');
    const times: number[] = [];
    for (let r = -3; r < 20; r++) {
      const t0 = performance.now();
      await runtime.run(session, { [INPUT_NAME]: input });
      if (r >= 0) times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return (times[9]! + times[10]!) / 2;
  } finally {
    await runtime.release(session).catch(() => undefined);
  }
}

/** One generator per trial, so a trial's proposal does not depend on which trials ran before in this process. */
function trialRandom(seed: number, trial: number): Random {
  return new Random((Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(trial + 1, 0x85ebca6b)) >>> 0);
}

/** A trial's events replayed from the journal. */
interface ReplayedTrial {
  params: Params;
  reports: Extract<JournalRecord, { type: 'report' }>[];
  end?: Extract<JournalRecord, { type: 'end' }>;
}

function replay(records: JournalRecord[]): Map<number, ReplayedTrial> {
  const trials = new Map<number, ReplayedTrial>();
  for (const r of records) {
    if (r.type === 'start') trials.set(r.trial, { params: r.params, reports: [] });
    else if (r.type === 'report') trials.get(r.trial)?.reports.push(r);
    else if (r.type === 'end') {
      const t = trials.get(r.trial);
      if (t) t.end = r;
    }
  }
  return trials;
}

/** Thrown inside a trial to end it as failed without stopping the search (a diverged trial). */
class TrialDiverged extends Error {}

/**
 * Searches the space: proposes up to `maxTrials` trials, trains each for `epochs` (or until ASHA stops
 * it), and returns every trial with the best one. See TuneOptions for the knobs and TuneResult for
 * what comes back. A trial whose loss or objective goes NaN is recorded as failed and the search goes
 * on; any other error in a trial is recorded and ends the search (as Optuna's `optimize` re-raises).
 */
export async function tune(options: TuneOptions): Promise<TuneResult> {
  const started = performance.now();
  checkOptions(options);
  const space = searchSpace(options.space);
  const objective = resolveObjective(options.objective);
  const direction: Direction = objective.metric === 'val_loss' ? 'minimize' : 'maximize';
  const sampler = resolveSampler(options.sampler);
  const asha = options.earlyStopping ? (options.earlyStopping === 'asha' ? {} : options.earlyStopping) : undefined;
  const rungs = asha ? ashaRungs(options.epochs, asha) : [];
  const eta = asha?.reductionFactor ?? 3;
  const points = evaluationPoints(options.epochs, rungs);
  const data = splitData(options);
  const seed = options.seed ?? 42;
  const parallel = options.parallel ?? 1;
  const better = (a: number, b: number) => (direction === 'maximize' ? a > b : a < b);

  const signature: StudySignature = {
    space: space.toJSON(),
    objective,
    epochs: options.epochs,
    earlyStopping: asha ? { minEpochs: asha.minEpochs ?? 1, reductionFactor: eta } : null,
    ...(options.task !== undefined ? { task: options.task } : {}),
  };
  const opened = options.journal ? await StudyJournal.open(options.journal, signature) : undefined;
  const journal = opened?.journal;
  const log = (r: JournalRecord) => journal?.append(r) ?? Promise.resolve();

  const results = new Map<number, TrialResult>();
  const rungValues = new Map<number, number[]>(rungs.map((r) => [r, []]));
  const rerun: { id: number; params: Params }[] = [];
  let nextId = 0;
  for (const [id, t] of replay(opened?.records ?? [])) {
    nextId = Math.max(nextId, id + 1);
    if (!t.end) {
      rerun.push({ id, params: t.params });
      continue;
    }
    space.checkParams(t.params, `study journal '${options.journal}' trial ${id}`);
    for (const r of t.reports) rungValues.get(r.epochs)?.push(r.value);
    results.set(id, {
      id,
      params: t.params,
      state: t.end.state,
      ...(t.end.value !== undefined ? { value: t.end.value } : {}),
      epochs: t.end.epochs,
      metrics: t.end.metrics ?? {},
      ...(t.end.cost ? { cost: t.end.cost } : {}),
      curve: t.reports.map((r) => ({ epochs: r.epochs, value: r.value })),
      ...(t.end.error ? { error: t.end.error } : {}),
      seconds: t.end.seconds,
      ...(t.end.saved ? { saved: t.end.saved } : {}),
      fromJournal: true,
    });
  }
  rerun.sort((a, b) => a.id - b.id);
  const resumed = { finished: results.size, rerun: rerun.map((r) => r.id) };
  const bestComplete = () => [...results.values()].filter((t) => t.state === 'complete' && t.value !== undefined).sort((a, b) => (better(a.value!, b.value!) ? -1 : better(b.value!, a.value!) ? 1 : a.id - b.id))[0];
  let bestModelFile = options.out && bestComplete()?.saved === options.out ? options.out : undefined;

  const observed = (): ObservedTrial[] =>
    [...results.values()]
      .filter((t) => (t.state === 'complete' || t.state === 'pruned') && t.value !== undefined && Number.isFinite(t.value))
      .map((t) => ({ id: t.id, params: t.params, state: t.state as 'complete' | 'pruned', value: t.value!, epochs: t.epochs }));

  // Parallel trials: a runtime worker each, their sessions sharing the cores; one trial uses the
  // process-wide worker and fit's default replicas, as a plain fit() would.
  const threads = Math.max(1, Math.floor(os.availableParallelism() / parallel));
  const runtimes = parallel > 1 ? Array.from({ length: parallel }, () => new Runtime({ intraOpThreads: threads })) : [];
  const freeSlots = Array.from({ length: parallel }, (_, i) => i);
  let saving: Promise<void> = Promise.resolve();

  const runTrial = async (id: number, params: Params, slot: number): Promise<void> => {
    const t0 = performance.now();
    const hp = new HyperParameters(space, params, id, seed);
    const built = await options.build(hp);
    const wrapped = built !== null && typeof built === 'object' && typeof (built as TrainableModel).fit !== 'function';
    const model = wrapped ? (built as { model: TrainableModel }).model : (built as TrainableModel);
    const batchSize = (wrapped ? (built as { batchSize?: number }).batchSize : undefined) ?? options.batchSize ?? 32;
    if (!model || typeof (model as TrainableModel).fit !== 'function') throw new KilnError('INVALID_ARGUMENT', 'build(hp) must return a compiled trainable model (or {model, batchSize})');
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new KilnError('INVALID_ARGUMENT', `build(hp) gave batchSize ${batchSize}; expected a positive integer`);
    const unread = hp.unread();
    if (unread.length) {
      throw new KilnError(
        'INVALID_ARGUMENT',
        `the model builder never read ${unread.map((n) => `'${n}'`).join(', ')} in trial ${id} (${JSON.stringify(params)}): a parameter it ignores would be searched for nothing. Remove it from the space, or make it conditional on the choice under which the builder reads it`,
      );
    }
    model.trainingLayout(); // throws NOT_COMPILED with its own message when build() forgot compile()
    const runtime = runtimes[slot] ?? sharedRuntime();
    if (runtimes[slot]) model.useRuntime(runtime);
    const cost: TrialResult['cost'] = {};
    const onnx = model.toOnnx();
    cost.sizeBytes = onnx.length;
    cost.parameters = model.countParams().total;
    if (objective.latencyWeight) cost.latencyMs = await batchOneLatency(model, runtime);
    const penalty = (objective.latencyWeight ?? 0) * (cost.latencyMs ?? 0) + (objective.sizeWeight ?? 0) * (cost.sizeBytes / 2 ** 20);
    const score = (metrics: Record<string, number>) => {
      const m = metrics[objective.metric]!;
      return direction === 'maximize' ? m - penalty : m + penalty;
    };

    await log({ type: 'start', trial: id, params, at: new Date().toISOString() });
    const result: TrialResult = { id, params, state: 'failed', epochs: 0, metrics: {}, cost, curve: [], seconds: 0, fromJournal: false };
    const n = data.x.shape[0]!;
    const stepsPerEpoch = Math.ceil(n / batchSize);
    const order = new Random(seed);
    let permutation = order.permutation(n);
    let done = 0; // steps trained
    try {
      for (const point of points) {
        const target = Math.round(point * stepsPerEpoch);
        while (done < target) {
          const epoch = Math.floor(done / stepsPerEpoch);
          const end = Math.min(target, (epoch + 1) * stepsPerEpoch);
          const rows = permutation.subarray((done - epoch * stepsPerEpoch) * batchSize, Math.min(n, (end - epoch * stepsPerEpoch) * batchSize));
          try {
            await model.fit(data.x.gather(rows), data.y.gather(rows), { epochs: 1, batchSize, shuffle: false, verbose: 0, seed, ...(parallel > 1 ? { replicas: 1 } : {}) });
          } catch (err) {
            if (err instanceof KilnError && err.code === 'NAN_LOSS') throw new TrialDiverged(err.message);
            throw err;
          }
          done = end;
          if (done % stepsPerEpoch === 0) permutation = order.permutation(n);
        }
        const evaluation = await model.evaluate(data.vx, data.vy, { batchSize: 256 });
        const metrics: Record<string, number> = { val_loss: evaluation.loss, ...(evaluation.accuracy !== undefined ? { val_accuracy: evaluation.accuracy } : {}) };
        if (metrics[objective.metric] === undefined) throw new KilnError('INVALID_ARGUMENT', `the objective is ${objective.metric}, but the model reports no accuracy: compile it with metrics: ['accuracy'] or tune on val_loss`);
        const value = score(metrics);
        result.metrics = metrics;
        result.epochs = point;
        if (!Number.isFinite(value)) throw new TrialDiverged(`${objective.metric} is ${metrics[objective.metric]} after ${point} epochs`);
        result.curve.push({ epochs: point, value });
        result.value = value;
        await log({ type: 'report', trial: id, epochs: point, value, metrics });
        const rung = rungValues.get(point);
        if (rung) {
          rung.push(value);
          if (!ashaPromotes(value, rung, eta, direction)) {
            result.state = 'pruned';
            break;
          }
        }
      }
      if (result.state !== 'pruned') result.state = 'complete';
    } catch (err) {
      model.dispose();
      result.state = 'failed';
      delete result.value;
      result.error = err instanceof Error ? err.message : String(err);
      if (!(err instanceof TrialDiverged)) {
        result.seconds = (performance.now() - t0) / 1000;
        await log({ type: 'end', trial: id, state: 'failed', epochs: result.epochs, metrics: result.metrics, cost, error: result.error, seconds: result.seconds });
        results.set(id, result);
        throw err;
      }
    }
    result.seconds = (performance.now() - t0) / 1000;
    if (result.state === 'complete' && options.out) {
      const best = bestComplete();
      if (!best || better(result.value!, best.value!)) {
        const file = options.out;
        // Saves one after another, so that the file ends up holding the best of trials finishing together.
        saving = saving.then(async () => {
          const current = bestComplete();
          if (!current || current.id === id || better(result.value!, current.value!)) {
            await model.save(file);
            result.saved = file;
            bestModelFile = file;
          }
        });
        await saving;
      }
    }
    model.dispose();
    results.set(id, result);
    await log({
      type: 'end',
      trial: id,
      state: result.state,
      ...(result.value !== undefined ? { value: result.value } : {}),
      epochs: result.epochs,
      metrics: result.metrics,
      cost,
      ...(result.error ? { error: result.error } : {}),
      seconds: result.seconds,
      ...(result.saved ? { saved: result.saved } : {}),
    });
    options.onTrialEnd?.(result, { finished: results.size, maxTrials: options.maxTrials, best: bestComplete() });
  };

  const running = new Map<number, Promise<void>>();
  let failure: unknown;
  let budgetSpent = false;
  try {
    for (;;) {
      while (failure === undefined && running.size < parallel && results.size + running.size < options.maxTrials) {
        if (options.timeBudgetMs !== undefined && performance.now() - started >= options.timeBudgetMs) {
          budgetSpent = true;
          break;
        }
        const again = rerun.shift();
        const id = again?.id ?? nextId++;
        const params = again?.params ?? sampler.sample(space, observed(), direction, trialRandom(seed, id));
        space.checkParams(params, `the ${sampler.name} sampler's trial ${id}`);
        const slot = freeSlots.shift()!;
        const task = runTrial(id, params, slot)
          .catch((err) => {
            failure ??= err;
          })
          .finally(() => {
            running.delete(id);
            freeSlots.push(slot);
          });
        running.set(id, task);
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
  } finally {
    await Promise.all(running.values());
    await journal?.close();
    await Promise.all(runtimes.map((r) => r.close()));
  }
  if (failure !== undefined) throw failure;

  const trials = [...results.values()].sort((a, b) => a.id - b.id);
  const best = bestComplete();
  const importance = parameterImportance(
    space,
    trials.filter((t) => t.state === 'complete' && t.value !== undefined).map((t) => ({ params: t.params, value: t.value! })),
  );
  return { space, objective, direction, sampler: sampler.name, trials, ...(best ? { best } : {}), importance, ...(bestModelFile ? { bestModelFile } : {}), resumed, budgetSpent, seconds: (performance.now() - started) / 1000 };
}
