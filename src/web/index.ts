/**
 * Kiln in a browser: the same models, layers, compile/fit/evaluate/predict, loadModel and save as the
 * Node package (src/index.ts), training the same compiled ONNX steps, on ONNX Runtime Web in a Web
 * Worker (WebAssembly with SIMD; threads when the page is cross-origin isolated). Reached as
 * `kiln/web`, or as `kiln` under a bundler's "browser" condition. Nothing here, nor anything it
 * imports, uses Node's built-ins: test/web/bundle.test.ts bundles it for the browser and fails on any.
 *
 * Where the Node package reads or writes a path, this one takes a URL (loadModel('model.onnx')
 * fetches it) or bytes (loadModel(bytes), model.toOnnx()), and model.save('downloads://name.onnx')
 * downloads the file, as TensorFlow.js does.
 */
export { KilnError, type KilnErrorCode } from '../errors.js';
export { Tensor, tensor, type DType } from '../tensor.js';
export { Random } from '../random.js';
export * as layers from '../layers/index.js';
export { type SequentialArgs } from '../model/sequential.js';
export { Model, type PredictOptions } from '../model/model.js';
export { TrainableModel, type CompileArgs, type FitArgs, type History } from '../train/model.js';
export { Sequential, sequential } from '../train/sequential.js';
export { loadModel, type LoadModelOptions } from '../train/load.js';
export { GraphModel, type GraphModelOptions } from '../train/graph-model.js';
export { OnnxModel } from '../model/onnx-model.js';
export * as metrics from '../train/metrics.js';
export * as losses from '../train/losses.js';
export * as optimizers from '../train/optimizers.js';
export * as schedules from '../train/schedules.js';
export * as callbacks from '../train/callbacks.js';
export * as datasets from './datasets.js';
export { Runtime } from '../runtime/runtime.js';
export { configureBrowserRuntime, browserRuntimeInfo, type BrowserRuntimeOptions } from '../platform/browser.js';
export type { WebEnvironment } from '../platform/web-environment.js';
export { Trainer, loadTrainer } from '../train/trainer.js';
export type { TrainerManifest } from '../train/training-package.js';
