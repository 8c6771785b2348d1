import { KilnError } from '../../errors.js';
import { Tensor } from '../../tensor.js';
import type { Callback } from '../../train/callbacks.js';
import type { History } from '../../train/fit-loop.js';
import { GraphModel } from '../../train/graph-model.js';
import type { TrainableModel } from '../../train/model.js';
import type { Sequential } from '../../train/sequential.js';
import { checkFineTune, compileForFineTune, fineTuneSteps, fitFineTune, rebuildModel, type FineTuneArgs } from './fine-tune.js';
import { checkGraphMByN, selectGraphTargets, type GraphWeightSelection } from './graph-weights.js';
import { checkMByN, selectTargets, targetMasks, type PruneTarget } from './masks.js';
import { graphWeightReports, layerReports, snapshots, weightSparsity, type PruneReport, type SnapshotOptions } from './report.js';
import { checkSparsity, constantSparsity, polynomialDecay, type PruningSchedule } from './schedules.js';

/** Options of magnitude (unstructured) pruning: how sparse, on what schedule, which layers, and the fine-tuning. */
export interface MagnitudePruneOptions extends SnapshotOptions {
  /** Final fraction of each pruned kernel's weights set to zero, in [0, 1). */
  sparsity?: number;
  /** When to prune during fine-tuning, and how much (instead of `sparsity`). */
  schedule?: PruningSchedule;
  /** 'layer' (default): every pruned kernel reaches the sparsity; 'global': one magnitude threshold across them. */
  scope?: 'layer' | 'global';
  /**
   * Layers whose kernels are pruned (default: every Conv2D/Dense but the first and the last). For an
   * imported graph (GraphModel): initializer names, node names (their weight matrix or kernel), patterns
   * with `*` or a RegExp; default: every weight matrix and convolution kernel but the first and the
   * classifier head (biases and normalization parameters are never pruned unless named).
   */
  layers?: string[] | GraphWeightSelection;
  /** TF-MOT's m-by-n sparsity: m zeros in every n consecutive weights along the input axis, e.g. [2, 4]. */
  sparsityMByN?: [number, number];
  /** Train after pruning, with the masks inside the training step. Without it the model is pruned once. */
  fineTune?: FineTuneArgs;
}

/** What `prune` returns: the pruned copy and its before/after report. */
export interface PruneResult<M extends Sequential | GraphModel = Sequential> {
  /** The pruned model, of the original's kind: a trainable Sequential, or a GraphModel saving as the original graph (the original is left untouched). */
  model: M;
  /** Sizes, FLOPs, accuracy, latency and per-layer sparsity before and after. */
  report: PruneReport;
}

/**
 * The schedule used when only a sparsity is given: polynomial decay from 0 to the target over the first
 * ~70% of fine-tuning, recomputing masks ~20 times (at most every 100 steps, TF-MOT's default), so the
 * remaining steps recover accuracy at the final sparsity.
 */
export function defaultSchedule(finalSparsity: number, totalSteps: number): PruningSchedule {
  const frequency = Math.max(1, Math.min(100, Math.round(totalSteps / 20)));
  const endStep = Math.max(1, frequency * Math.floor((0.7 * totalSteps) / frequency));
  return polynomialDecay({ initialSparsity: 0, finalSparsity, beginStep: 0, endStep, frequency });
}

/** The parts of a pruning schedule a caller chose; what it leaves out comes from defaultSchedule. */
export interface ScheduleChoice {
  /** TF-MOT's PolynomialDecay (default) or ConstantSparsity. */
  kind?: 'polynomial' | 'constant';
  /** First pruning step (default 0). */
  beginStep?: number;
  /** Last pruning step (default: ~70% of the fine-tuning steps; −1: no end, constant only). */
  endStep?: number;
  /** Steps between mask updates (default: ~1/20 of the steps, at most 100). */
  frequency?: number;
  /** Polynomial exponent (default 3). */
  power?: number;
  /** Polynomial: sparsity at the begin step (default 0). */
  initialSparsity?: number;
}

/**
 * The schedule `choice` describes for `sparsity` over `totalSteps` fine-tuning steps, filling what it
 * leaves out from defaultSchedule's (a constant schedule runs from step 0 to the end); undefined when it
 * chooses nothing, so the caller's default applies.
 */
export function scheduleFromChoice(choice: ScheduleChoice, sparsity: number, totalSteps: number): PruningSchedule | undefined {
  if (Object.values(choice).every((v) => v === undefined)) return undefined;
  const base = defaultSchedule(sparsity, totalSteps).config;
  if (choice.kind === 'constant') {
    return constantSparsity({ targetSparsity: sparsity, beginStep: choice.beginStep ?? 0, endStep: choice.endStep ?? -1, frequency: choice.frequency ?? base.frequency! });
  }
  return polynomialDecay({
    initialSparsity: choice.initialSparsity ?? 0,
    finalSparsity: sparsity,
    beginStep: choice.beginStep ?? 0,
    endStep: choice.endStep ?? base.endStep!,
    power: choice.power ?? 3,
    frequency: choice.frequency ?? base.frequency!,
  });
}

type MaskRule = { sparsity: number; scope: 'layer' | 'global' } | { mByN: [number, number] };

/**
 * Recomputes the pruning masks from the live weights on the schedule's steps and installs them in the
 * compiled training step. The mask for step s is set when step s − 1 has finished (before training for
 * s = 0); while fit() already has step s queued, it takes effect one step later.
 */
class PruningCallback implements Callback {
  readonly updates: { step: number; sparsity: number }[] = [];
  /** The masks installed last: reapplied after fit, in case a callback restored older weights. */
  lastMasks: Uint8Array[] | undefined;

  constructor(
    private readonly model: TrainableModel,
    private readonly targets: readonly PruneTarget[],
    private readonly schedule: PruningSchedule,
    private readonly mByN: [number, number] | undefined,
    private readonly scope: 'layer' | 'global',
  ) {}

  async onTrainBegin(): Promise<void> {
    await this.update(0);
  }

  async onBatchEnd(step: number): Promise<void> {
    await this.update(step + 1);
  }

  private async update(step: number): Promise<void> {
    if (!this.schedule.shouldPrune(step)) return;
    const sparsity = this.mByN ? this.mByN[0] / this.mByN[1] : this.schedule.sparsityAt(step);
    const weights = await this.model.currentWeights();
    const rule: MaskRule = this.mByN ? { mByN: this.mByN } : { sparsity, scope: this.scope };
    this.lastMasks = targetMasks(weights, this.targets, rule);
    await this.model.setTrainingMask(flatMask(this.model, this.targets, this.lastMasks));
    this.updates.push({ step, sparsity });
  }
}

/** The flat 0/1 mask over the training step's parameter vector: 1 everywhere but the targets' pruned weights. */
function flatMask(model: TrainableModel, targets: readonly PruneTarget[], masks: readonly Uint8Array[]): Float32Array {
  const layout = model.trainingLayout();
  const total = layout.reduce((n, l) => Math.max(n, l.offset + l.size), 0);
  const flat = new Float32Array(total).fill(1);
  targets.forEach((t, k) => {
    const slot = layout.find((l) => l.name === t.name);
    if (!slot) throw new KilnError('INVALID_ARGUMENT', `weight '${t.name}' is not trainable, so it cannot be pruned`);
    flat.set(masks[k]!, slot.offset);
  });
  return flat;
}

/** Zeroes pruned weights in place as +0 (a masked update can leave −0, which compresses worse). */
function applyMasks(model: TrainableModel, targets: readonly PruneTarget[], masks: readonly Uint8Array[] | undefined): void {
  const values = new Map<string, Tensor>();
  for (const [name, t] of model.weights) {
    const data = Float32Array.from(t.data as Float32Array, (v) => (v === 0 ? 0 : v));
    const k = targets.findIndex((x) => x.name === name);
    if (k >= 0 && masks) {
      const m = masks[k]!;
      for (let i = 0; i < data.length; i++) if (m[i] === 0) data[i] = 0;
    }
    values.set(name, new Tensor(data, [...t.shape], 'float32'));
  }
  model.setWeights(values);
}

/** A layer model's selection: layer names only. */
function layerNames(layers: MagnitudePruneOptions['layers']): string[] | undefined {
  if (layers instanceof RegExp) throw new KilnError('INVALID_ARGUMENT', `prune: a Kiln layer model's layers are chosen by name (a list of layer names), not by a RegExp (${String(layers)})`);
  return layers as string[] | undefined;
}

function hasPruningTurn(schedule: PruningSchedule, totalSteps: number): boolean {
  for (let s = 0; s <= totalSteps; s++) if (schedule.shouldPrune(s)) return true;
  return false;
}

/**
 * Unstructured magnitude pruning: zeroes the smallest-magnitude weights of the chosen kernels. With
 * `fineTune`, the masks live inside the compiled training step (gradient and update both masked, so
 * pruned weights stay exactly zero) and are recomputed on the schedule's steps; the exported model is a
 * plain ONNX file whose pruned weights are exact zeros.
 */
export async function magnitudePrune<M extends Sequential | GraphModel>(model: M, options: MagnitudePruneOptions): Promise<PruneResult<M>> {
  const { sparsity, schedule } = options;
  const mByN = options.sparsityMByN === undefined ? undefined : checkMByN(options.sparsityMByN);
  const given = [sparsity !== undefined, schedule !== undefined].filter(Boolean).length;
  if (given === 2) throw new KilnError('INVALID_ARGUMENT', 'prune: give either sparsity or schedule (whose final sparsity is the target), not both');
  if (mByN && sparsity !== undefined) throw new KilnError('INVALID_ARGUMENT', `prune: sparsityMByN [${mByN}] fixes the sparsity at ${mByN[0]}/${mByN[1]}; leave sparsity out`);
  if (given === 0 && !mByN) throw new KilnError('INVALID_ARGUMENT', 'prune: give a sparsity (e.g. sparsity: 0.8), a schedule, sparsityMByN or structured: {ratio}');
  if (sparsity !== undefined) checkSparsity(sparsity, 'prune: sparsity');
  if (schedule !== undefined && (typeof schedule !== 'object' || typeof schedule.shouldPrune !== 'function')) {
    throw new KilnError('INVALID_ARGUMENT', 'prune: schedule must come from constantSparsity({...}) or polynomialDecay({...})');
  }
  const scope = options.scope ?? 'layer';
  if (scope !== 'layer' && scope !== 'global') throw new KilnError('INVALID_ARGUMENT', `prune: scope must be 'layer' or 'global', got ${JSON.stringify(scope)}`);
  const graph = model instanceof GraphModel ? model : undefined;
  const targets = graph ? selectGraphTargets(graph, options.layers) : selectTargets(model as Sequential, layerNames(options.layers));
  if (graph && mByN) checkGraphMByN(graph, targets, mByN);
  if (options.fineTune) checkFineTune(options.fineTune);
  else if (schedule) throw new KilnError('INVALID_ARGUMENT', 'prune: a schedule says when to prune during fine-tuning; give fineTune: {x, y, epochs} too (or a plain sparsity to prune once)');

  const pruned = (graph ? graph.clone() : rebuildModel(model as Sequential)) as M;
  let followed: PruningSchedule | undefined;
  let updates: { step: number; sparsity: number }[] | undefined;
  let history: History | undefined;
  if (options.fineTune) {
    const totalSteps = fineTuneSteps(options.fineTune);
    followed =
      schedule ??
      (mByN
        ? constantSparsity({ targetSparsity: mByN[0] / mByN[1], beginStep: 0, frequency: Math.max(1, Math.min(100, Math.round(totalSteps / 20))) })
        : defaultSchedule(sparsity!, totalSteps));
    if (!hasPruningTurn(followed, totalSteps)) {
      throw new KilnError('INVALID_ARGUMENT', `prune: the ${followed.name} schedule (${JSON.stringify(followed.config)}) never prunes within the ${totalSteps} steps of fine-tuning`);
    }
    compileForFineTune(pruned, options.fineTune, { flatMask: true });
    const callback = new PruningCallback(pruned, targets, followed, mByN, scope);
    history = await fitFineTune(pruned, options.fineTune, [callback]);
    updates = callback.updates;
    applyMasks(pruned, targets, callback.lastMasks);
  } else {
    const rule: MaskRule = mByN ? { mByN } : { sparsity: sparsity!, scope };
    applyMasks(pruned, targets, targetMasks(pruned.weights, targets, rule));
  }

  const [before, after] = await snapshots(model, pruned, options);
  const weights = weightSparsity(pruned);
  const targeted = weights.filter((w) => targets.some((t) => t.name === w.name));
  const sum = (ws: typeof weights, f: 'zeros' | 'elements') => ws.reduce((n, w) => n + w[f], 0);
  const report: PruneReport = {
    method: 'magnitude',
    before,
    after,
    layers: graph ? graphWeightReports(pruned as GraphModel, new Set(targets.map((t) => t.name))) : layerReports(model as Sequential, pruned as Sequential, new Set(targets.map((t) => t.layer))),
    weights,
    sparsity: sum(weights, 'zeros') / Math.max(1, sum(weights, 'elements')),
    targetSparsity: sum(targeted, 'zeros') / Math.max(1, sum(targeted, 'elements')),
    ...(followed ? { schedule: { name: followed.name, config: followed.config } } : {}),
    ...(updates ? { maskUpdates: updates } : {}),
    ...(history ? { history: [history.history] } : {}),
  };
  return { model: pruned, report };
}
