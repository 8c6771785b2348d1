// Owns fit()'s epoch loop: shuffling, drawing (and augmenting) batches with one training step in
// flight while the next batch is gathered, running losses and the progress bar, callbacks, the
// end-of-epoch pull of weights and slots, validation and per-epoch checkpoints. What it starts from
// (checked data, resumed state, opened sessions) fit() settles before the loop runs.
import { platform } from '#platform';
import { KilnError } from '../errors.js';
import type { Random } from '../random.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { ProgressBar } from '../text/progress.js';
import { augmentImages, augmentImagesAndLabels } from '../data/augment.js';
import type { Logs, TrainingControl } from './callbacks.js';
import { saveCheckpoint } from './checkpoint.js';
import { evaluateSteps, type CompiledSteps } from './compiled-steps.js';
import type { FitArgs, FitData } from './fit-args.js';
import type { OptimizerProgress } from './training-state.js';
import { countedIn, countOutputs } from './training-step.js';
import type { SessionInfo } from '../runtime/protocol.js';

/** A DP-SGD run's step: its session and extra feeds, and the accounting after each epoch. */
export interface PrivateSteps {
  session: SessionInfo;
  /** Train-step outputs to store back into state (output name → state name). */
  store: Record<string, string>;
  /** The clip and noise inputs, the same every step. */
  feeds: Record<string, Tensor>;
  /** Records an epoch's steps; returns the ε spent so far (logged as 'epsilon'). */
  epochDone(steps: number): number;
}

/** What `fit()` returns, as Keras' History: the logged values of every epoch. */
export interface History {
  /** The 0-based numbers of the epochs run (a resumed run starts past 0). */
  epoch: number[];
  /** Each logged value ('loss', 'accuracy', 'val_loss', 'val_accuracy') per epoch, in order. */
  history: Record<string, number[]>;
}

/** What the loop needs of the model it trains; the model keeps ownership of its weights and state. */
export interface FitLoopModel {
  /** Handed to callbacks, which may stop training or restore weights through it. */
  control: TrainingControl;
  runtime: Runtime;
  /** The model's weights map (the same object across the run: setWeights replaces its entries). */
  weights: Map<string, Tensor>;
  outputShape: number[];
  /** Updated after every epoch, so a later fit() continues the optimizer's schedule and moments. */
  progress: OptimizerProgress;
  /** Copies the worker's weights into the model; returns the optimizer slots when asked for them. */
  pull(withSlots?: boolean): Promise<Map<string, Tensor<'float32'>>>;
  /** Sends the model's weights (and kept slots) back into the worker. */
  push(): Promise<void>;
  /** Counts setWeights() calls, so the loop sees a callback that restored other weights. */
  weightsVersion(): number;
}

/** Where the loop starts: the shuffling generator (resumed or fresh), the first epoch and the optimizer step reached. */
export interface FitStart {
  rng: Random;
  startEpoch: number;
  step: number;
}

export async function runEpochs(model: FitLoopModel, c: CompiledSteps, args: FitArgs, data: FitData, start: FitStart, dp?: PrivateSteps): Promise<History> {
  const { trainX, labels, validation, epochs, batchSize, n } = data;
  const { rng, startEpoch } = start;
  const control = model.control;
  let step = start.step;
  const callbacks = args.callbacks ?? [];
  const verbose = args.verbose ?? 1;
  const stream = args.stream ?? platform.standardOutput();
  const history: History = { epoch: [], history: {} };
  const stepsPerEpoch = Math.ceil(n / batchSize);
  // Where a crop uncovers pixels, their labels: the ignored class (left out of the loss) if the loss has one.
  const labelFill = typeof c.loss.config.ignoreClass === 'number' ? c.loss.config.ignoreClass : 0;
  const shuffle = args.shuffle ?? true;
  const fetch = ['loss', ...countOutputs(c.training)];
  // The progress bar's rate: images for image data, examples otherwise (vectors, token ids).
  const itemUnit = trainX.primary.rank === 4 && !trainX.several ? 'img' : 'ex';
  control.stopTraining = false;
  for (const cb of callbacks) await cb.onTrainBegin?.(control);

  for (let epoch = startEpoch; epoch < epochs && !control.stopTraining; epoch++) {
    for (const cb of callbacks) await cb.onEpochBegin?.(epoch, control);
    const order = shuffle ? rng.permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
    const bar = verbose > 0 ? new ProgressBar({ total: stepsPerEpoch, stream: verbose === 1 ? stream : { write: (t: string) => stream.write(t), isTTY: false }, label: `Epoch ${epoch + 1}/${epochs}`, itemsPerStep: batchSize, itemUnit }) : undefined;
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    const batchAt = (k: number) => {
      const idx = order.subarray(k * batchSize, Math.min(n, (k + 1) * batchSize));
      const x = trainX.gather(idx);
      const y = labels.gather(idx);
      if (!args.augment) return { x, y, size: idx.length, indices: idx };
      // A label per pixel moves with its image under a crop or flip (fit-args checked the grids match).
      if (y.rank === 3 && (args.augment.cropPadding || args.augment.horizontalFlip)) {
        const moved = augmentImagesAndLabels(x.primary, y, args.augment, rng, labelFill);
        return { x: x.withPrimary(moved.images), y: moved.labels, size: idx.length, indices: idx };
      }
      return { x: x.withPrimary(augmentImages(x.primary, args.augment, rng)), y, size: idx.length, indices: idx };
    };
    const launch = async (k: number, b: ReturnType<typeof batchAt>): Promise<{ out: Record<string, Tensor>; applied?: Promise<void> }> => {
      const t = step + k + 1;
      const extra = args.extraFeeds ? await args.extraFeeds(b.indices, b.x.primary) : {};
      const batch = { ...extra, ...b.x.feeds, labels: b.y };
      const scalars = { lr: new Tensor(Float32Array.of(c.optimizer.lrAt(t - 1)), [], 'float32'), step: new Tensor(Float32Array.of(t), [], 'float32') };
      // DP-SGD runs its own step (one session, clip and noise fed) whatever replicas an earlier fit() left.
      if (dp) return { out: await model.runtime.run(dp.session, { ...batch, ...scalars, ...dp.feeds }, { fetch, store: dp.store, requireFinite: ['loss', 'new/params'] }) };
      if (c.replicas) {
        const r = await c.replicas.step(batch, b.size, scalars, fetch);
        return { out: r.outputs, applied: r.applied };
      }
      // The new weights too: a finite loss can still come with an update that overflows (a huge
      // gradient times the learning rate); storing those would leave only infinite weights to keep.
      return { out: await model.runtime.run(c.trainSession!, { ...batch, ...scalars }, { fetch, store: c.training.store, requireFinite: ['loss', 'new/params'] }) };
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
          await model.pull();
          throw new KilnError('NAN_LOSS', `loss or updated weights became NaN or infinite at epoch ${epoch + 1}, step ${k + 1} (${err.message}); training stopped and the model keeps the weights from the last good step (try a lower learning rate)`);
        }
        throw err;
      }
      const bLoss = (out.loss!.data as Float32Array)[0]!;
      // A loss over positions (token labels) is a mean over the batch's labelled positions: weighted by them.
      const weight = countedIn(out, current.size);
      lossSum += bLoss * weight;
      seen += weight;
      if (out.correct) correct += (out.correct.data as Float32Array)[0]!;
      const running: Logs = { loss: ratio(lossSum, seen), ...(c.training.accuracy ? { accuracy: ratio(correct, seen) } : {}) };
      bar?.update(k + 1, running);
      for (const cb of callbacks) await cb.onBatchEnd?.(step + k, running, control);
      if (next) current = next;
    }
    step += stepsPerEpoch;
    model.progress.step = step;
    const logs: Logs = { loss: ratio(lossSum, seen), ...(c.training.accuracy ? { accuracy: ratio(correct, seen) } : {}) };
    if (dp) logs.epsilon = dp.epochDone(stepsPerEpoch);
    const currentSlots = await model.pull(true);
    model.progress.slots = currentSlots;
    const versionAfterPull = model.weightsVersion();
    if (validation) {
      const v = await evaluateSteps(model.runtime, c, model.outputShape, validation[0], validation[1], Math.max(batchSize, 256));
      logs.val_loss = v.loss;
      if (v.accuracy !== undefined) logs.val_accuracy = v.accuracy;
    }
    bar?.finish(logs);
    history.epoch.push(epoch);
    for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
    for (const cb of callbacks) await cb.onEpochEnd?.(epoch, logs, control);
    if (args.checkpointPath) {
      await saveCheckpoint(args.checkpointPath, {
        epoch: epoch + 1,
        step,
        rngState: rng.getState(),
        optimizer: { name: c.optimizer.name, config: c.optimizer.config },
        weights: model.weights as Map<string, Tensor<'float32'>>,
        slots: currentSlots,
      });
    }
    // A callback may have restored other weights (early stopping's best): the worker must use them.
    if (model.weightsVersion() !== versionAfterPull) await model.push();
  }
  for (const cb of callbacks) await cb.onTrainEnd?.(history.epoch.length ? Object.fromEntries(Object.entries(history.history).map(([k, v]) => [k, v.at(-1)!])) : {}, control);
  return history;
}

/** A mean of sums weighted by `seen`; 0 before anything was counted (batches whose labels are all ignored). */
function ratio(sum: number, seen: number): number {
  return seen > 0 ? sum / seen : 0;
}
