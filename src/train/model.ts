// Owns TrainableModel, the public face of training: compile(), fit(), evaluate(), the pruning mask
// and checkpoints, and the state a model keeps between fit() calls. The work is done elsewhere:
// fit-args.ts checks arguments and prepares labels, compiled-steps.ts holds the sessions and
// replicas, training-state.ts syncs weights and optimizer slots with the worker, fit-loop.ts runs
// the epochs.
import { platform } from '#platform';
import { KilnError } from '../errors.js';
import { Model } from '../model/model.js';
import type { ModelInputs } from '../model/input-rows.js';
import { Random } from '../random.js';
import { Tensor } from '../tensor.js';
import type { TrainingControl } from './callbacks.js';
import { resumePoint, saveCheckpoint } from './checkpoint.js';
import { evaluateSteps, newStateScope, openTrainingSessions, releaseSessions, type CompiledSteps } from './compiled-steps.js';
import { checkFiniteRows, checkFitArgs, checkReplicas, prepareLabels, type FitArgs, type FitData } from './fit-args.js';
import { runEpochs, type History, type PrivateSteps } from './fit-loop.js';
import { checkPrivateReplicas, PrivacyLedger, resolvePrivacy, type PrivacySpentReport } from './privacy/dp-sgd.js';
import { dpSgdGradient, DP_CLIP_INPUT, DP_NOISE_STDDEV_INPUT } from './privacy/dp-sgd-step.js';
import { resolveLoss, type Loss } from './losses.js';
import { labelClassAxis, sparseLabels } from './sparse-labels.js';
import { evaluateClassifier, labelledPositions } from './metrics.js';
import { resolveOptimizer, type Optimizer } from './optimizers.js';
import { accuracyKind, compileTraining, type FlatSlot, type TrainingStepOptions } from './training-step.js';
import { maskLiveWeights, pullState, pushState, type OptimizerProgress } from './training-state.js';

export type { FitArgs } from './fit-args.js';
export type { History } from './fit-loop.js';

/** The metadata key of what a model was last compiled with: its loss, optimizer and metrics (JSON). */
export const TRAINING_METADATA_KEY = 'kiln.training';

/** A model's last compile as its metadata records it (`TRAINING_METADATA_KEY`). */
export interface RecordedTraining {
  /** The loss by name and configuration (resolveLoss takes it). */
  loss?: { name: string; config?: Record<string, unknown> };
  /** The optimizer by name and configuration (resolveOptimizer takes it). */
  optimizer?: { name: string; config?: Record<string, unknown> };
  /** The metrics it tracked. */
  metrics?: string[];
}

/** What a model's metadata records of its last compile; undefined when nothing readable is there (the caller's defaults apply). */
export function recordedTraining(metadata: ReadonlyMap<string, string>): RecordedTraining | undefined {
  const saved = metadata.get(TRAINING_METADATA_KEY);
  if (!saved) return undefined;
  try {
    const parsed: unknown = JSON.parse(saved);
    return parsed && typeof parsed === 'object' ? (parsed as RecordedTraining) : undefined;
  } catch {
    return undefined;
  }
}

/** What `compile()` takes, as in Keras: the optimizer, the loss and the metrics to track. */
export interface CompileArgs {
  /**
   * 'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad' (Keras' defaults), or one made by `optimizers.adam({...})` etc.
   */
  optimizer: string | Optimizer;
  /**
   * 'sparseCategoricalCrossentropy', 'categoricalCrossentropy', 'binaryCrossentropy', 'meanSquaredError', or one
   * made by `losses.*` (e.g. `losses.sparseCategoricalCrossentropy({fromLogits: true})`).
   */
  loss: string | Loss;
  /** 'accuracy' (or 'acc') is computed inside the training step; others on predictions in evaluate(). */
  metrics?: string[];
}

/**
 * A model that trains, whatever its structure (Kiln layers or an imported ONNX graph): compile() turns
 * the structure's graph, the loss and the optimizer into one ONNX training step; fit() streams batches
 * to it in the runtime worker, which keeps weights and optimizer state between steps.
 */
export abstract class TrainableModel extends Model implements TrainingControl {
  /** Set to true (by a callback) to stop `fit()` after the current epoch. */
  stopTraining = false;
  private compiled: CompiledSteps | undefined;
  /** Optimizer state carried across fit() calls, as Keras keeps it: flat slots and the step count. */
  private readonly progress: OptimizerProgress = { slots: new Map(), step: 0 };
  private weightsVersion = 0;
  /** Flat 0/1 mask over trainable parameters when compiled with flatMask (pruning). */
  private trainingMask: Float32Array | undefined;
  /** Set while fit() runs: the worker holds the live weights. */
  private training = false;
  private replicasUsed = 1;
  /** DP-SGD's accounting over this model's private fit() calls since compile(). */
  private privacyLedger: PrivacyLedger | undefined;

  /** How many replicas the last fit() split its batches across (1: one session, see FitArgs.replicas). */
  get trainingReplicas(): number {
    return this.replicasUsed;
  }

  /**
   * The class axis (batch axis 0) a sparse cross-entropy takes for this model's output when the caller
   * names none: the one its saved loss had; else, given `labels`, the one they leave out (undefined:
   * the last, Keras' default); else what the model itself says (see GraphModel).
   */
  defaultClassAxis(labels?: Tensor): number | undefined {
    const recorded = recordedTraining(this.metadata)?.loss?.config?.axis;
    if (Number.isInteger(recorded)) return recorded as number;
    return labels ? labelClassAxis([null, ...this.outputShape], labels.shape) : undefined;
  }

  /**
   * Compiles the training step. `stepOptions` are the extension points the optimization passes use
   * (pruning masks, fake quantization, distillation losses).
   */
  compile(args: CompileArgs, stepOptions: TrainingStepOptions = {}): void {
    const loss = resolveLoss(args.loss);
    const optimizer = resolveOptimizer(args.optimizer);
    const metrics = args.metrics ?? [];
    for (const m of metrics) {
      if (!['accuracy', 'acc'].includes(m)) throw new KilnError('INVALID_ARGUMENT', `unknown metric '${m}'; fit() tracks 'accuracy' (evaluate() also reports F1, AUC and a confusion matrix)`);
    }
    const kind = accuracyKind(loss, metrics.length > 0);
    if (metrics.length > 0 && !kind) throw new KilnError('INVALID_ARGUMENT', `'accuracy' needs a classification loss, got ${loss.name}`);
    this.dropSessions();
    this.progress.slots = new Map();
    this.progress.step = 0;
    this.compiled = { stateScope: newStateScope(), loss, optimizer, metrics, training: compileTraining(this, loss, optimizer, kind, stepOptions), stepOptions };
    this.privacyLedger = undefined;
    this.trainingMask = stepOptions.flatMask ? new Float32Array(this.compiled.training.totalSize).fill(1) : undefined;
    this.metadata.set(TRAINING_METADATA_KEY, JSON.stringify({ loss: { name: loss.name, config: loss.config }, optimizer: { name: optimizer.name, config: optimizer.config }, metrics }));
  }

  /**
   * Forgets the optimizer's state (moments, step count), as a freshly compiled optimizer starts, without
   * compiling again: federated clients start every round from fresh local optimizer state.
   */
  resetOptimizerState(): void {
    this.progress.slots = new Map();
    this.progress.step = 0;
  }

  /** Also releases the compiled steps' sessions and replicas; compile() is needed again before fit(). */
  override dispose(): void {
    super.dispose();
    this.dropCompiled();
  }

  /** The compiled steps' sessions go too (the steps stay compiled and load again in the new runtime). */
  protected override releaseRuntimeSessions(): void {
    super.releaseRuntimeSessions();
    this.dropSessions();
  }

  /** Forgets the compiled step after the structure changed (a layer added): its sessions go with it. */
  protected dropCompiled(): void {
    this.dropSessions();
    this.compiled = undefined;
  }

  private dropSessions(): void {
    if (this.compiled) releaseSessions(this.runtime, this.compiled);
  }

  private requireCompiled(): CompiledSteps {
    if (!this.compiled) throw new KilnError('NOT_COMPILED', 'call model.compile({optimizer, loss}) before fit() or evaluate()');
    return this.compiled;
  }

  /** The model's weights by name (the map itself: use `setWeights` to change them). */
  getWeights(): Map<string, Tensor> {
    return this.weights;
  }

  /** Sends the model's weights and optimizer slots (kept ones, or fresh) into the worker's state. */
  private pushState(c: CompiledSteps, slots: Map<string, Tensor<'float32'>> = this.progress.slots): Promise<void> {
    return pushState(this.runtime, c, this.weights, slots, this.trainingMask);
  }

  /** Copies the trained weights (and optionally optimizer slots) back from the worker. */
  private async pullState(c: CompiledSteps, withSlots = false): Promise<Map<string, Tensor<'float32'>>> {
    const { weights, slots } = await pullState(this.runtime, c, withSlots);
    this.setWeights(weights);
    return slots;
  }

  /**
   * What a training package carries (train/training-package.ts): the compiled steps and the state
   * training continues from: the weights, the optimizer's slots (empty before the first fit) and step,
   * and the graph predict() runs (input → output, weights as initializers).
   * @internal
   */
  trainingSnapshot(): { steps: CompiledSteps; weights: Map<string, Tensor>; slots: Map<string, Tensor<'float32'>>; step: number; inference: Uint8Array } {
    const steps = this.requireCompiled();
    return { steps, weights: this.weights, slots: this.progress.slots, step: this.progress.step, inference: this.structure.inferenceOnnx(this.weights) };
  }

  /** Where each trainable parameter sits in the flat vector the compiled step trains. */
  trainingLayout(): FlatSlot[] {
    return this.requireCompiled().training.layout;
  }

  /**
   * Sets the pruning mask (compiled with flatMask): 1 keeps a weight, 0 holds it at exactly zero.
   * During fit() it takes effect from the next step.
   */
  async setTrainingMask(mask: Float32Array): Promise<void> {
    const c = this.requireCompiled();
    if (!this.trainingMask) throw new KilnError('INVALID_ARGUMENT', 'the model was not compiled with a training mask (stepOptions.flatMask)');
    if (mask.length !== c.training.totalSize) throw new KilnError('INVALID_SHAPE', `mask has ${mask.length} entries, the model has ${c.training.totalSize} trainable parameters`);
    this.trainingMask = Float32Array.from(mask);
    if (this.training) await maskLiveWeights(this.runtime, c, this.trainingMask);
  }

  /** Current weights, fetched from the runtime worker while fit() runs. */
  async currentWeights(): Promise<Map<string, Tensor>> {
    if (this.training && this.compiled) await this.pullState(this.compiled);
    return this.weights;
  }

  /**
   * Trains on inputs `x` `[N, ...inputShape]` and labels `y` (class indices `[N]` for sparse cross-entropy,
   * rows of targets otherwise) for `args.epochs`, as Keras' `fit`. Optimizer state carries over to the next
   * `fit()` call. Resolves with the per-epoch history; the weights stay in the model.
   */
  async fit(x: ModelInputs, y: Tensor, args: FitArgs = {}): Promise<History> {
    const data = checkFitArgs(x, y, args, this.requireCompiled().loss, this.outputShape, (input, what) => this.inputRows(input, what));
    // Looked up after the input checks: checking may settle an imported graph's layout and rebuild the step.
    const c = this.requireCompiled();
    const cores = platform.availableCores();
    const replicas = args.privacy ? checkPrivateReplicas(args.replicas) : checkReplicas(args, c.training, data, cores);
    if (!args.privacy) await openTrainingSessions(this.runtime, c, replicas, cores);
    this.replicasUsed = replicas;
    const rng = new Random(args.seed ?? this.seed);
    const { startEpoch, step, slots } = await resumePoint(args.resumeFrom, c.optimizer.name, { step: this.progress.step, rng, setWeights: (w) => this.setWeights(w) });
    const dp = args.privacy ? await this.openPrivateSteps(c, args, data, startEpoch, args.resumeFrom ? step : undefined) : undefined;
    await this.pushState(c, slots);
    this.training = true;
    try {
      const loop = {
        control: this,
        runtime: this.runtime,
        weights: this.weights,
        outputShape: this.outputShape,
        progress: this.progress,
        pull: (withSlots?: boolean) => this.pullState(c, withSlots),
        push: () => this.pushState(c),
        weightsVersion: () => this.weightsVersion,
      };
      const history = await runEpochs(loop, c, args, data, { rng, startEpoch, step }, dp);
      this.metadata.set('kiln.history', JSON.stringify(history.history));
      return history;
    } finally {
      this.training = false;
    }
  }

  /**
   * DP-SGD's privacy spent by this model's private fit() calls since compile(): ε at the δ they used,
   * the noise multiplier and the steps counted; undefined before any.
   */
  get privacySpent(): PrivacySpentReport | undefined {
    const l = this.privacyLedger;
    if (!l) return undefined;
    return { epsilon: l.accountant.epsilon(l.settings.delta), delta: l.settings.delta, noiseMultiplier: l.settings.noiseMultiplier, l2NormClip: l.settings.l2NormClip, steps: l.accountant.steps };
  }

  /**
   * Compiles (once) and opens the DP-SGD step, settles σ and the accounting. The ledger carries over
   * between private fit() calls at the same δ, so ε keeps adding up (steps at another σ or sampling
   * rate compose too); a resumed run counts the checkpoint's steps first, at this call's settings.
   */
  private async openPrivateSteps(c: CompiledSteps, args: FitArgs, data: FitData, startEpoch: number, resumedStep: number | undefined): Promise<PrivateSteps> {
    const o = c.stepOptions;
    const other = o.flatMask ? 'a pruning mask' : o.transformParam || o.afterLayer ? 'quantization-aware training' : o.buildLoss || o.extraInputs ? 'a custom loss or extra step inputs (distillation, a FedProx penalty)' : null;
    if (other) throw new KilnError('INVALID_ARGUMENT', `fit's privacy (DP-SGD) cannot train under ${other}: per-example clipping covers plain training only`);
    if (c.loss.config.ignoreClass !== undefined) {
      // The loss averages over the batch's labelled positions, so no example's share of it is its own mean.
      throw new KilnError('INVALID_ARGUMENT', `fit's privacy (DP-SGD) clips each example's own gradient, and a loss with ignoreClass (${c.loss.config.ignoreClass}) weights examples by their labelled positions; train without ignoreClass`);
    }
    const stepsPerEpoch = Math.ceil(data.n / data.batchSize);
    const settings = resolvePrivacy(args.privacy!, data.batchSize, data.n, stepsPerEpoch * (data.epochs - startEpoch));
    if (Object.values(c.training.store).some((state) => c.training.frozen.includes(state))) {
      throw new KilnError('INVALID_ARGUMENT', "fit's privacy (DP-SGD) needs per-example gradients, and batch normalization mixes the examples of a batch; use a model without BatchNormalization");
    }
    // ε at one δ: a run at another δ (or resumed from a checkpoint) starts its own count.
    if (!this.privacyLedger || resumedStep !== undefined || this.privacyLedger.settings.delta !== settings.delta) {
      this.privacyLedger = new PrivacyLedger(settings);
      if (resumedStep) this.privacyLedger.record(resumedStep);
    }
    const ledger = this.privacyLedger;
    if (!c.privateSession || !c.privateTraining) {
      // A fresh, unpredictable noise seed for every session: ONNX Runtime restarts RandomNormal's
      // stream when a session loads, and a seed derived from the model's would replay the same noise
      // after a resume or a reload, i.e. noise correlated across steps, which the analysis rules out.
      c.privateTraining = compileTraining(this, c.loss, c.optimizer, c.training.accuracy, { gradients: o.gradients, flatGradient: dpSgdGradient(freshNoiseSeed()) });
      c.privateSession = await this.runtime.load(c.privateTraining.trainStep, { optimizationLevel: 'extended', stateScope: c.stateScope });
    }
    const scalar = (v: number) => new Tensor(Float32Array.of(v), [], 'float32');
    return {
      session: c.privateSession,
      store: c.privateTraining.store,
      feeds: { [DP_CLIP_INPUT]: scalar(settings.l2NormClip), [DP_NOISE_STDDEV_INPUT]: scalar(settings.noiseMultiplier * settings.l2NormClip) },
      epochDone: (steps) => ledger.record(steps, settings),
    };
  }

  override setWeights(values: Map<string, Tensor> | Record<string, Tensor>): void {
    super.setWeights(values);
    this.weightsVersion++;
  }

  /**
   * Loss and accuracy on (x, y), plus — for classifiers — macro F1, AUC-ROC and the confusion matrix
   * computed on the predictions.
   */
  async evaluate(
    x: ModelInputs,
    y: Tensor,
    args: {
      /** Examples per run (default 256). */
      batchSize?: number;
    } = {},
  ): Promise<
    Record<string, number> & {
      /** Classifiers: counts by true class (rows) and predicted class (columns). */
      confusion?: number[][];
    }
  > {
    this.requireCompiled();
    const rows = this.inputRows(x);
    // As in fit: the input check may have rebuilt the step.
    const c = this.requireCompiled();
    checkFiniteRows(rows, 'x');
    const labels = prepareLabels(y, c.loss, this.outputShape, rows.n);
    await this.pushState(c);
    const r = await evaluateSteps(this.runtime, c, this.outputShape, rows, labels, args.batchSize ?? 256);
    const result: Record<string, number> & { confusion?: number[][] } = { loss: r.loss };
    if (r.accuracy !== undefined) result.accuracy = r.accuracy;
    if (c.training.accuracy === 'sparse') {
      // Every labelled position (a token's, a pixel's) is one classified row, as the accuracy counts them.
      const sparse = sparseLabels(c.loss, this.outputShape.length + 1)!;
      const { truth, scores } = labelledPositions(r.predictions, [rows.n, ...this.outputShape], sparse.classAxis, labels.data as BigInt64Array, sparse.ignoreClass);
      const report = evaluateClassifier(truth, scores);
      result.macroF1 = report.macroF1;
      if (report.aucRoc !== null) result.aucRoc = report.aucRoc;
      result.confusion = report.confusion;
    }
    return result;
  }

  /** Writes a training checkpoint of the current weights (optimizer slots start fresh on resume). */
  async saveCheckpoint(file: string, epoch = 0): Promise<void> {
    const c = this.requireCompiled();
    await saveCheckpoint(file, { epoch, step: 0, rngState: new Random(this.seed).getState(), optimizer: { name: c.optimizer.name, config: c.optimizer.config }, weights: this.weights as Map<string, Tensor<'float32'>>, slots: new Map() });
  }
}

/** A seed for DP-SGD's in-graph noise that no earlier session used: from WebCrypto (Node 20+ and browsers alike), never the training seed. */
function freshNoiseSeed(): number {
  const [word] = globalThis.crypto.getRandomValues(new Uint32Array(1));
  return 1 + (word! % (2 ** 31 - 2));
}
