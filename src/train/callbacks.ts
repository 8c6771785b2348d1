import { KilnError } from '../errors.js';

/**
 * The values a callback sees: 'loss' and 'accuracy' (running means over the epoch so far in onBatchEnd), plus
 * 'val_loss' and 'val_accuracy' at the end of an epoch with validation data.
 */
export type Logs = Record<string, number>;

/** What a callback can see and steer of the model being trained. */
export interface TrainingControl {
  /** Set to true to stop `fit()` after the current epoch. */
  stopTraining: boolean;
  /** Saves the model as an .onnx file (atomically). */
  save(file: string): Promise<void>;
  /** The current weights by name. */
  getWeights(): Map<string, import('../tensor.js').Tensor>;
  /** Replaces weights (early stopping restores the best ones this way). */
  setWeights(w: Map<string, import('../tensor.js').Tensor>): void;
}

/** Hooks called by fit(); implement any subset (Keras' Callback). */
export interface Callback {
  /** Before the first epoch. */
  onTrainBegin?(model: TrainingControl): void | Promise<void>;
  /** Before each epoch (0-based). */
  onEpochBegin?(epoch: number, model: TrainingControl): void | Promise<void>;
  /**
   * After each training step, with the epoch's running loss and accuracy; `step` counts across epochs and fit() calls.
   */
  onBatchEnd?(step: number, logs: Logs, model: TrainingControl): void | Promise<void>;
  /** After each epoch (and its validation), with the epoch's logs; `fit()` awaits it. */
  onEpochEnd?(epoch: number, logs: Logs, model: TrainingControl): void | Promise<void>;
  /** After the last epoch, with the last epoch's logs. */
  onTrainEnd?(logs: Logs, model: TrainingControl): void | Promise<void>;
}

/**
 * Whether the monitored value should go down ('min') or up ('max'); 'auto' picks 'max' for names containing
 * acc, auc, f1, precision or recall, else 'min'.
 */
export type Mode = 'min' | 'max' | 'auto';

function improves(mode: Mode, monitor: string, current: number, best: number, minDelta: number): boolean {
  const m = mode === 'auto' ? (/acc|auc|f1|precision|recall/.test(monitor) ? 'max' : 'min') : mode;
  return m === 'min' ? current < best - minDelta : current > best + minDelta;
}

function monitored(logs: Logs, monitor: string): number {
  const v = logs[monitor];
  if (v === undefined) throw new KilnError('INVALID_ARGUMENT', `callback monitors '${monitor}', which is not among the logged values (${Object.keys(logs).join(', ')})`);
  return v;
}

/** Arguments of `earlyStopping`, as Keras' `EarlyStopping` takes them. */
export interface EarlyStoppingArgs {
  /** The logged value to watch (default 'val_loss'). */
  monitor?: string;
  /** Smallest change that counts as an improvement (default 0). */
  minDelta?: number;
  /**
   * Epochs without improvement before stopping (default 0: stop at the first epoch that does not improve).
   */
  patience?: number;
  /** Direction of improvement (default 'auto'). */
  mode?: Mode;
  /** When stopping, put back the weights of the best epoch (default false). */
  restoreBestWeights?: boolean;
}

/** Stops training when the monitored value has not improved for `patience` epochs. */
export function earlyStopping(args: EarlyStoppingArgs = {}): Callback & {
  /** The 0-based epoch at which training was stopped, or null while it has not been. */
  stoppedEpoch: number | null;
} {
  const monitor = args.monitor ?? 'val_loss';
  const patience = args.patience ?? 0;
  const minDelta = Math.abs(args.minDelta ?? 0);
  const mode = args.mode ?? 'auto';
  let best: number | null = null;
  let wait = 0;
  let bestWeights: Map<string, import('../tensor.js').Tensor> | null = null;
  const cb = {
    stoppedEpoch: null as number | null,
    onTrainBegin() {
      best = null;
      wait = 0;
      bestWeights = null;
      cb.stoppedEpoch = null;
    },
    onEpochEnd(epoch: number, logs: Logs, model: TrainingControl) {
      const current = monitored(logs, monitor);
      if (best === null || improves(mode, monitor, current, best, minDelta)) {
        best = current;
        wait = 0;
        if (args.restoreBestWeights) bestWeights = new Map(model.getWeights());
        return;
      }
      wait++;
      if (wait >= patience) {
        model.stopTraining = true;
        cb.stoppedEpoch = epoch;
        if (bestWeights) model.setWeights(bestWeights);
      }
    },
  };
  return cb;
}

/** Arguments of `modelCheckpoint`, as Keras' `ModelCheckpoint` takes them. */
export interface ModelCheckpointArgs {
  /** Where to save; `{epoch}` is replaced by the 1-based epoch number. */
  filepath: string;
  /** The logged value that decides the best epoch (default 'val_loss'). */
  monitor?: string;
  /** Save only when the monitored value improves (default false: after every epoch). */
  saveBestOnly?: boolean;
  /** Direction of improvement (default 'auto'). */
  mode?: Mode;
}

/** Saves the model (atomically) after each epoch, or only when the monitored value improves. */
export function modelCheckpoint(args: ModelCheckpointArgs): Callback {
  const monitor = args.monitor ?? 'val_loss';
  let best: number | null = null;
  return {
    onTrainBegin() {
      best = null;
    },
    async onEpochEnd(epoch, logs, model) {
      const file = args.filepath.replace('{epoch}', String(epoch + 1));
      if (!args.saveBestOnly) return model.save(file);
      const current = monitored(logs, monitor);
      if (best === null || improves(args.mode ?? 'auto', monitor, current, best, 0)) {
        best = current;
        await model.save(file);
      }
    },
  };
}
