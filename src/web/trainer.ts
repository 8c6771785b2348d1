/**
 * `kiln/web/trainer`: only what a page needs to train from a training package written by
 * `kiln export-trainer` (Trainer, Tensor, data helpers), so its bundle carries no layers and no
 * graph-building API of Kiln's own beyond what losses and the package reader need.
 */
export { KilnError, type KilnErrorCode } from '../errors.js';
export { Tensor, tensor, type DType } from '../tensor.js';
export { Trainer, loadTrainer } from '../train/trainer.js';
export type { TrainerManifest } from '../train/training-package.js';
export type { FitArgs, History } from '../train/model.js';
export * as callbacks from '../train/callbacks.js';
export * as datasets from './datasets.js';
export { configureBrowserRuntime, browserRuntimeInfo, type BrowserRuntimeOptions } from '../platform/browser.js';
