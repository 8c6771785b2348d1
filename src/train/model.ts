import { KilnError, formatShape } from '../errors.js';
import { Model } from '../model/model.js';
import { Random } from '../random.js';
import type { SessionInfo } from '../runtime/protocol.js';
import os from 'node:os';
import { Tensor, type AnyTypedArray } from '../tensor.js';
import { ProgressBar } from '../text/progress.js';
import { augmentImages, type AugmentOptions } from '../data/augment.js';
import type { Callback, Logs, TrainingControl } from './callbacks.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { resolveLoss, type Loss } from './losses.js';
import { evaluateClassifier } from './metrics.js';
import { resolveOptimizer, type Optimizer } from './optimizers.js';
import { ReplicaSet, autoReplicas } from './replicas.js';
import { MASK_STATE, STATE_PARAMS, accuracyKind, compileTraining, slotState, type CompiledTraining, type FlatSlot, type TrainingStepOptions } from './training-step.js';

export interface CompileArgs {
  optimizer: string | Optimizer;
  loss: string | Loss;
  /** 'accuracy' (or 'acc') is computed inside the training step; others on predictions in evaluate(). */
  metrics?: string[];
}

export interface FitArgs {
  epochs?: number;
  batchSize?: number;
  shuffle?: boolean;
  /** Fraction of the data (taken from the end, before shuffling, as Keras does) held out for validation. */
  validationSplit?: number;
  validationData?: [Tensor, Tensor];
  callbacks?: Callback[];
  /** 0 silent, 1 progress bar (one line per epoch when not a terminal), 2 one line per epoch. */
  verbose?: 0 | 1 | 2;
  /** Seed for shuffling (default: the model's seed). */
  seed?: number;
  /** Continue from a training checkpoint written by `saveCheckpoint` / `checkpointEvery`. */
  resumeFrom?: string;
  /** Write a training checkpoint (weights, optimizer state, epoch, RNG) here after every epoch. */
  checkpointPath?: string;
  /**
   * Augment each training batch as it is drawn (images `[N, H, W, C]`): random crop after zero padding,
   * horizontal flip, cutout (see AugmentOptions). Drawn from fit's seeded generator, so a seed gives the same augmented batches and a
   * resumed run continues the same sequence. Validation data is never augmented.
   */
  augment?: AugmentOptions;
  /**
   * Extra per-batch inputs of the training step (see TrainingStepOptions.extraInputs), given the batch's
   * example indices and its (augmented) images; may be async (e.g. a teacher model run on the batch).
   */
  extraFeeds?: (indices: Int32Array, x: Tensor) => Record<string, Tensor> | Promise<Record<string, Tensor>>;
  /** Where progress goes (default process.stdout). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /**
   * Data parallelism on this machine: each batch is split across this many runtime workers, which
   * step their shares at once and apply the averaged gradient (as tf.distribute.MirroredStrategy
   * does across devices). Default: one replica per core (at most 4) while each gets at least 32 rows
   * of a batch (so 2 on a 2-core machine from batch 64 on), where the step allows it (not with batch
   * normalization, whose statistics would be per replica, under a pruning mask, or with layer-output
   * hooks such as quantization-aware training's). 1 turns it off. The replicas compute the same
   * update up to float rounding (sums in another order), but Dropout draws its masks per replica: a
   * seeded run that must repeat exactly on a machine with another core count should set this.
   */
  replicas?: number;
}

export interface History {
  epoch: number[];
  history: Record<string, number[]>;
}

interface Compiled {
  loss: Loss;
  optimizer: Optimizer;
  metrics: string[];
  training: CompiledTraining;
  trainSession?: SessionInfo;
  evalSession?: SessionInfo;
  /** Set while the step runs on replicas (FitArgs.replicas). */
  replicas?: ReplicaSet;
}

/** Labels as the compiled step reads them: int64 class indices or float32 targets. */
function prepareLabels(y: Tensor, loss: Loss, outputShape: number[], n: number): Tensor {
  if (y.shape[0] !== n) throw new KilnError('INVALID_DATA', `x has ${n} examples but y has ${y.shape[0]}: they must match`);
  const spec = loss.labelSpec(outputShape);
  if (spec.dtype === 'int64') {
    const classes = outputShape[0]!;
    if (y.rank !== 1 && !(y.rank === 2 && y.shape[1] === 1)) {
      throw new KilnError('INVALID_SHAPE', `${loss.name} expects integer labels of shape [N], got ${formatShape(y.shape)} (one-hot labels go with categoricalCrossentropy)`);
    }
    const out = new BigInt64Array(n);
    const src = y.data as ArrayLike<number | bigint>;
    for (let i = 0; i < n; i++) {
      const v = Number(src[i]);
      if (!Number.isInteger(v) || v < 0 || v >= classes) {
        throw new KilnError('INVALID_DATA', `label y[${i}] is ${v}, expected an integer class in [0, ${classes}) for a model with ${classes} outputs`);
      }
      out[i] = BigInt(v);
    }
    return new Tensor(out, [n], 'int64');
  }
  const expected = [n, ...spec.shape];
  if (y.size !== expected.reduce((a, b) => a * b, 1)) {
    throw new KilnError('INVALID_SHAPE', `${loss.name} expects labels of shape ${formatShape(expected)}, got ${formatShape(y.shape)}`);
  }
  const data = y.dtype === 'float32' ? (y.data as Float32Array) : Float32Array.from(y.data as ArrayLike<number>, Number);
  const targets = new Tensor(data, expected, 'float32');
  // A NaN target would otherwise surface later as a misleading NAN_LOSS ("try a lower learning rate").
  checkFinite(targets, 'y');
  return targets;
}

function checkFinite(x: Tensor, what: string): void {
  const d = x.data as AnyTypedArray;
  if (!(d instanceof Float32Array || d instanceof Float64Array)) return;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i]!)) throw new KilnError('INVALID_DATA', `${what} contains ${d[i]} at flat index ${i}; inputs must be finite`);
  }
}

/**
 * A model that trains, whatever its structure (Kiln layers or an imported ONNX graph): compile() turns
 * the structure's graph, the loss and the optimizer into one ONNX training step; fit() streams batches
 * to it in the runtime worker, which keeps weights and optimizer state between steps.
 */
export abstract class TrainableModel extends Model implements TrainingControl {
  stopTraining = false;
  private compiled: Compiled | undefined;
  /** Optimizer state carried across fit() calls, as Keras keeps it: flat slots and the step count. */
  private optimizerSlots = new Map<string, Tensor<'float32'>>();
  private optimizerStep = 0;
  private weightsVersion = 0;
  /** Flat 0/1 mask over trainable parameters when compiled with flatMask (pruning). */
  private trainingMask: Float32Array | undefined;
  /** Set while fit() runs: the worker holds the live weights. */
  private training = false;
  private replicasUsed = 1;

  /** How many replicas the last fit() split its batches across (1: one session, see FitArgs.replicas). */
  get trainingReplicas(): number {
    return this.replicasUsed;
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
    this.optimizerSlots = new Map();
    this.optimizerStep = 0;
    this.compiled = { loss, optimizer, metrics, training: compileTraining(this, loss, optimizer, kind, stepOptions) };
    this.trainingMask = stepOptions.flatMask ? new Float32Array(this.compiled.training.totalSize).fill(1) : undefined;
    this.metadata.set('kiln.training', JSON.stringify({ loss: { name: loss.name, config: loss.config }, optimizer: { name: optimizer.name, config: optimizer.config }, metrics }));
  }

  /** Also releases the compiled steps' sessions and replicas; compile() is needed again before fit(). */
  override dispose(): void {
    super.dispose();
    this.dropCompiled();
  }

  /** Forgets the compiled step after the structure changed (a layer added): its sessions go with it. */
  protected dropCompiled(): void {
    this.dropSessions();
    this.compiled = undefined;
  }

  private dropSessions(): void {
    const c = this.compiled;
    if (!c) return;
    for (const s of [c.trainSession, c.evalSession]) if (s) void this.runtime.release(s).catch(() => undefined);
    c.trainSession = c.evalSession = undefined;
    void c.replicas?.close().catch(() => undefined);
    c.replicas = undefined;
  }

  private requireCompiled(): Compiled {
    if (!this.compiled) throw new KilnError('NOT_COMPILED', 'call model.compile({optimizer, loss}) before fit() or evaluate()');
    return this.compiled;
  }

  getWeights(): Map<string, Tensor> {
    return this.weights;
  }

  /** Sends the model's weights and optimizer slots (kept ones, or fresh) into the worker's state. */
  private async pushState(c: Compiled, slots: Map<string, Tensor<'float32'>> = this.optimizerSlots): Promise<void> {
    const flat = new Float32Array(c.training.totalSize);
    for (const l of c.training.layout) flat.set(this.weights.get(l.name)!.data as Float32Array, l.offset);
    const state: Record<string, Tensor> = { [STATE_PARAMS]: new Tensor(flat, [flat.length], 'float32') };
    for (const s of c.optimizer.slots) {
      const given = slots?.get(s.name);
      state[slotState(s.name)] = given ?? new Tensor(new Float32Array(c.training.totalSize).fill(s.initial), [c.training.totalSize], 'float32');
    }
    for (const name of c.training.frozen) state[name] = this.weights.get(name)!;
    if (this.trainingMask) state[MASK_STATE] = new Tensor(this.trainingMask, [this.trainingMask.length], 'float32');
    await this.runtime.setState(state);
    await c.replicas?.setState(state);
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
    if (this.training) {
      // The live weights must agree with the new mask at once, not only after the next update.
      const state = await this.runtime.getState([STATE_PARAMS]);
      const flat = state[STATE_PARAMS]!.data as Float32Array;
      for (let i = 0; i < flat.length; i++) flat[i] = flat[i]! * this.trainingMask[i]!;
      await this.runtime.setState({ [MASK_STATE]: new Tensor(this.trainingMask, [this.trainingMask.length], 'float32'), [STATE_PARAMS]: new Tensor(flat, [flat.length], 'float32') });
    }
  }

  /** Current weights, fetched from the runtime worker while fit() runs. */
  async currentWeights(): Promise<Map<string, Tensor>> {
    if (this.training && this.compiled) await this.pullState(this.compiled);
    return this.weights;
  }

  /** Copies the trained weights (and optionally optimizer slots) back from the worker. */
  private async pullState(c: Compiled, withSlots = false): Promise<Map<string, Tensor<'float32'>>> {
    const names = [STATE_PARAMS, ...c.training.frozen, ...(withSlots ? c.optimizer.slots.map((s) => slotState(s.name)) : [])];
    const state = await this.runtime.getState(names);
    const flat = state[STATE_PARAMS]!.data as Float32Array;
    const values = new Map<string, Tensor>();
    for (const l of c.training.layout) values.set(l.name, new Tensor(flat.slice(l.offset, l.offset + l.size), l.shape, 'float32'));
    for (const name of c.training.frozen) values.set(name, state[name]!);
    this.setWeights(values);
    const slots = new Map<string, Tensor<'float32'>>();
    for (const s of c.optimizer.slots) if (withSlots) slots.set(s.name, state[slotState(s.name)] as Tensor<'float32'>);
    return slots;
  }

  async fit(x: Tensor, y: Tensor, args: FitArgs = {}): Promise<History> {
    const c = this.requireCompiled();
    this.checkInput(x);
    const epochs = args.epochs ?? 1;
    const batchSize = args.batchSize ?? 32;
    if (!Number.isInteger(epochs) || epochs < 1) throw new KilnError('INVALID_ARGUMENT', `epochs must be a positive integer, got ${epochs}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new KilnError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${batchSize}`);
    let labels = prepareLabels(y, c.loss, this.outputShape, x.shape[0]!);
    checkFinite(x, 'x');
    let trainX = x;
    let validation: [Tensor, Tensor] | undefined;
    if (args.validationData) {
      this.checkInput(args.validationData[0], 'validationData x');
      // Checked like x: a NaN here would only show up as a NaN val_loss.
      checkFinite(args.validationData[0], 'validationData x');
      validation = [args.validationData[0], prepareLabels(args.validationData[1], c.loss, this.outputShape, args.validationData[0].shape[0]!)];
    } else if (args.validationSplit) {
      if (!(args.validationSplit > 0 && args.validationSplit < 1)) throw new KilnError('INVALID_ARGUMENT', `validationSplit must be in (0, 1), got ${args.validationSplit}`);
      const n = x.shape[0]!;
      const cut = Math.floor(n * (1 - args.validationSplit));
      validation = [x.slice(cut, n), labels.slice(cut, n)];
      trainX = x.slice(0, cut);
      labels = labels.slice(0, cut);
    }
    const n = trainX.shape[0]!;
    if (n === 0) throw new KilnError('INVALID_DATA', 'no training examples');
    if (args.augment && x.rank !== 4) throw new KilnError('INVALID_SHAPE', `augment works on images [N, H, W, C]; x is ${formatShape(x.shape)}`);

    const cores = os.availableParallelism();
    const replicas = args.replicas ?? autoReplicas(c.training, Math.min(batchSize, n), cores);
    if (!Number.isInteger(replicas) || replicas < 1) throw new KilnError('INVALID_ARGUMENT', `replicas must be a positive integer, got ${replicas}`);
    if (replicas > 1 && c.training.notReplicable) throw new KilnError('INVALID_ARGUMENT', `${replicas} replicas cannot be used: ${c.training.notReplicable}; train with 1 replica`);
    if (c.replicas && c.replicas.count !== replicas) {
      await c.replicas.close();
      c.replicas = undefined;
    }
    if (replicas > 1) c.replicas ??= await ReplicaSet.open(this.runtime, c.training, replicas, Math.max(1, Math.floor(cores / replicas)));
    // 'extended', not 'all': the NCHWc layout pass adds reorders around every Conv of the backward
    // pass; without it the step ran 4–8% faster (bench/train/throughput.ts --sweep).
    else c.trainSession ??= await this.runtime.load(c.training.trainStep, { optimizationLevel: 'extended' });
    this.replicasUsed = replicas;
    const rng = new Random(args.seed ?? this.seed);
    let startEpoch = 0;
    let step = this.optimizerStep;
    let slots: Map<string, Tensor<'float32'>> | undefined;
    if (args.resumeFrom) {
      const ckpt = await loadCheckpoint(args.resumeFrom);
      if (ckpt.optimizer.name !== c.optimizer.name) {
        throw new KilnError('INVALID_ARGUMENT', `checkpoint '${args.resumeFrom}' was written with optimizer ${ckpt.optimizer.name}, the model is compiled with ${c.optimizer.name}`);
      }
      this.setWeights(ckpt.weights);
      slots = ckpt.slots;
      startEpoch = ckpt.epoch;
      step = ckpt.step;
      rng.setState(ckpt.rngState);
    }
    await this.pushState(c, slots);
    this.training = true;
    try {
      return await this.runEpochs(c, args, { trainX, labels, validation, rng, startEpoch, step, epochs, batchSize, n });
    } finally {
      this.training = false;
    }
  }

  private async runEpochs(
    c: Compiled,
    args: FitArgs,
    s: { trainX: Tensor; labels: Tensor; validation: [Tensor, Tensor] | undefined; rng: Random; startEpoch: number; step: number; epochs: number; batchSize: number; n: number },
  ): Promise<History> {
    const { trainX, labels, validation, rng, startEpoch, epochs, batchSize, n } = s;
    let step = s.step;
    const callbacks = args.callbacks ?? [];
    const verbose = args.verbose ?? 1;
    const stream = args.stream ?? process.stdout;
    const history: History = { epoch: [], history: {} };
    const stepsPerEpoch = Math.ceil(n / batchSize);
    const shuffle = args.shuffle ?? true;
    const fetch = c.training.accuracy ? ['loss', 'correct'] : ['loss'];
    this.stopTraining = false;
    for (const cb of callbacks) await cb.onTrainBegin?.(this);

    for (let epoch = startEpoch; epoch < epochs && !this.stopTraining; epoch++) {
      for (const cb of callbacks) await cb.onEpochBegin?.(epoch, this);
      const order = shuffle ? rng.permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
      const bar = verbose > 0 ? new ProgressBar({ total: stepsPerEpoch, stream: verbose === 1 ? stream : { write: (t: string) => stream.write(t), isTTY: false }, label: `Epoch ${epoch + 1}/${epochs}`, itemsPerStep: batchSize, itemUnit: 'img' }) : undefined;
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      const batchAt = (k: number) => {
        const idx = order.subarray(k * batchSize, Math.min(n, (k + 1) * batchSize));
        const x = trainX.gather(idx);
        return { x: args.augment ? augmentImages(x, args.augment, rng) : x, y: labels.gather(idx), size: idx.length, indices: idx };
      };
      const launch = async (k: number, b: ReturnType<typeof batchAt>): Promise<{ out: Record<string, Tensor>; applied?: Promise<void> }> => {
        const t = step + k + 1;
        const extra = args.extraFeeds ? await args.extraFeeds(b.indices, b.x) : {};
        const batch = { ...extra, input: b.x, labels: b.y };
        const scalars = { lr: new Tensor(Float32Array.of(c.optimizer.lrAt(t - 1)), [], 'float32'), step: new Tensor(Float32Array.of(t), [], 'float32') };
        if (c.replicas) {
          const r = await c.replicas.step(batch, b.size, scalars, fetch);
          return { out: r.outputs, applied: r.applied };
        }
        // The new weights too: a finite loss can still come with an update that overflows (a huge
        // gradient times the learning rate); storing those would leave only infinite weights to keep.
        return { out: await this.runtime.run(c.trainSession!, { ...batch, ...scalars }, { fetch, store: c.training.store, requireFinite: ['loss', 'new/params'] }) };
      };
      // One step in flight while the next batch is gathered on this thread.
      let current = batchAt(0);
      // Handled at once: a step that fails while callbacks run must not be an unhandled rejection
      // (awaiting it below still throws).
      const started = (k: number, b: ReturnType<typeof batchAt>) => {
        const p = launch(k, b);
        p.catch(() => undefined);
        return p;
      };
      let inflight = started(0, current);
      for (let k = 0; k < stepsPerEpoch; k++) {
        const next = k + 1 < stepsPerEpoch ? batchAt(k + 1) : undefined;
        let out: Record<string, Tensor>;
        try {
          const done = await inflight;
          out = done.out;
          // Replicas: the next step queues behind this one's update, then the update is checked.
          if (next) inflight = started(k + 1, next);
          await done.applied;
        } catch (err) {
          if (err instanceof KilnError && err.code === 'NAN_LOSS') {
            await this.pullState(c);
            throw new KilnError('NAN_LOSS', `loss or updated weights became NaN or infinite at epoch ${epoch + 1}, step ${k + 1} (${err.message}); training stopped and the model keeps the weights from the last good step (try a lower learning rate)`);
          }
          throw err;
        }
        const bLoss = (out.loss!.data as Float32Array)[0]!;
        lossSum += bLoss * current.size;
        seen += current.size;
        if (out.correct) correct += (out.correct.data as Float32Array)[0]!;
        const running: Logs = { loss: lossSum / seen, ...(c.training.accuracy ? { accuracy: correct / seen } : {}) };
        bar?.update(k + 1, running);
        for (const cb of callbacks) await cb.onBatchEnd?.(step + k, running, this);
        if (next) current = next;
      }
      step += stepsPerEpoch;
      this.optimizerStep = step;
      const logs: Logs = { loss: lossSum / seen, ...(c.training.accuracy ? { accuracy: correct / seen } : {}) };
      const currentSlots = await this.pullState(c, true);
      this.optimizerSlots = currentSlots;
      const versionAfterPull = this.weightsVersion;
      if (validation) {
        const v = await this.evaluateCompiled(c, validation[0], validation[1], Math.max(batchSize, 256));
        logs.val_loss = v.loss;
        if (v.accuracy !== undefined) logs.val_accuracy = v.accuracy;
      }
      bar?.finish(logs);
      history.epoch.push(epoch);
      for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
      for (const cb of callbacks) await cb.onEpochEnd?.(epoch, logs, this);
      if (args.checkpointPath) {
        await saveCheckpoint(args.checkpointPath, {
          epoch: epoch + 1,
          step,
          rngState: rng.getState(),
          optimizer: { name: c.optimizer.name, config: c.optimizer.config },
          weights: this.weights as Map<string, Tensor<'float32'>>,
          slots: currentSlots,
        });
      }
      // A callback may have restored other weights (early stopping's best): the worker must use them.
      if (this.weightsVersion !== versionAfterPull) await this.pushState(c);
    }
    for (const cb of callbacks) await cb.onTrainEnd?.(history.epoch.length ? Object.fromEntries(Object.entries(history.history).map(([k, v]) => [k, v.at(-1)!])) : {}, this);
    this.metadata.set('kiln.history', JSON.stringify(history.history));
    return history;
  }

  override setWeights(values: Map<string, Tensor> | Record<string, Tensor>): void {
    super.setWeights(values);
    this.weightsVersion++;
  }

  /** Loss and accuracy (if compiled with it) on data, using the compiled evaluation step. */
  private async evaluateCompiled(c: Compiled, x: Tensor, labels: Tensor, batchSize: number): Promise<{ loss: number; accuracy?: number; predictions: Float32Array }> {
    c.evalSession ??= await this.runtime.load(c.training.evalStep);
    const n = x.shape[0]!;
    const rowSize = this.outputShape.reduce((a, b) => a * b, 1);
    const predictions = new Float32Array(n * rowSize);
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < n; start += batchSize) {
      const end = Math.min(n, start + batchSize);
      const out = await this.runtime.run(c.evalSession, { input: x.slice(start, end), labels: labels.slice(start, end) }, { fetch: ['loss', 'predictions', ...(c.training.accuracy ? ['correct'] : [])] });
      lossSum += (out.loss!.data as Float32Array)[0]! * (end - start);
      if (out.correct) correct += (out.correct.data as Float32Array)[0]!;
      predictions.set(out.predictions!.data as Float32Array, start * rowSize);
    }
    return { loss: lossSum / n, ...(c.training.accuracy ? { accuracy: correct / n } : {}), predictions };
  }

  /**
   * Loss and accuracy on (x, y), plus — for classifiers — macro F1, AUC-ROC and the confusion matrix
   * computed on the predictions.
   */
  async evaluate(x: Tensor, y: Tensor, args: { batchSize?: number } = {}): Promise<Record<string, number> & { confusion?: number[][] }> {
    const c = this.requireCompiled();
    this.checkInput(x);
    checkFinite(x, 'x');
    const labels = prepareLabels(y, c.loss, this.outputShape, x.shape[0]!);
    await this.pushState(c);
    const r = await this.evaluateCompiled(c, x, labels, args.batchSize ?? 256);
    const result: Record<string, number> & { confusion?: number[][] } = { loss: r.loss };
    if (r.accuracy !== undefined) result.accuracy = r.accuracy;
    if (c.training.accuracy === 'sparse') {
      const numClasses = this.outputShape[0]!;
      const truth = Int32Array.from(labels.data as BigInt64Array, Number);
      const report = evaluateClassifier(truth, new Tensor(r.predictions, [x.shape[0]!, numClasses], 'float32'));
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
