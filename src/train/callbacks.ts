import { KilnError } from '../errors.js';

export type Logs = Record<string, number>;

/** What a callback can see and steer of the model being trained. */
export interface TrainingControl {
  stopTraining: boolean;
  save(file: string): Promise<void>;
  getWeights(): Map<string, import('../tensor.js').Tensor>;
  setWeights(w: Map<string, import('../tensor.js').Tensor>): void;
}

/** Hooks called by fit(); implement any subset (Keras' Callback). */
export interface Callback {
  onTrainBegin?(model: TrainingControl): void | Promise<void>;
  onEpochBegin?(epoch: number, model: TrainingControl): void | Promise<void>;
  onBatchEnd?(step: number, logs: Logs, model: TrainingControl): void | Promise<void>;
  onEpochEnd?(epoch: number, logs: Logs, model: TrainingControl): void | Promise<void>;
  onTrainEnd?(logs: Logs, model: TrainingControl): void | Promise<void>;
}

type Mode = 'min' | 'max' | 'auto';

function improves(mode: Mode, monitor: string, current: number, best: number, minDelta: number): boolean {
  const m = mode === 'auto' ? (/acc|auc|f1|precision|recall/.test(monitor) ? 'max' : 'min') : mode;
  return m === 'min' ? current < best - minDelta : current > best + minDelta;
}

function monitored(logs: Logs, monitor: string): number {
  const v = logs[monitor];
  if (v === undefined) throw new KilnError('INVALID_ARGUMENT', `callback monitors '${monitor}', which is not among the logged values (${Object.keys(logs).join(', ')})`);
  return v;
}

export interface EarlyStoppingArgs {
  monitor?: string;
  minDelta?: number;
  patience?: number;
  mode?: Mode;
  restoreBestWeights?: boolean;
}

/** Stops training when the monitored value has not improved for `patience` epochs. */
export function earlyStopping(args: EarlyStoppingArgs = {}): Callback & { stoppedEpoch: number | null } {
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

export interface ModelCheckpointArgs {
  filepath: string;
  monitor?: string;
  saveBestOnly?: boolean;
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
