/**
 * Kiln: define, train, evaluate, shrink and serve deep-learning models in TypeScript. Models are ONNX
 * graphs from the start; ONNX Runtime executes them.
 *
 * This reference lists every public export of `import * as kiln from 'kiln'`. The task guides
 * (docs/guide/ in the repository) show how the pieces fit together, with the matching CLI commands.
 *
 * @packageDocumentation
 */
export { KilnError, type KilnErrorCode } from './errors.js';
export { Tensor, tensor, type DType } from './tensor.js';
export type { TypedArrayOf, AnyTypedArray, Nested } from './tensor.js';
export { Random } from './random.js';
export { KILN_VERSION } from './version.js';
export * as layers from './layers/index.js';
export { type SequentialArgs } from './model/sequential.js';
export { Model, type PredictOptions } from './model/model.js';
export type { ModelArgs, ParamInfo, BuildOptions, BuiltGraph, OtherInput } from './model/model.js';
export { InputRows, type ModelInputs } from './model/input-rows.js';
export { TrainableModel } from './train/model.js';
export { type CompileArgs, type FitArgs, type History } from './train/model.js';
export type { TrainingStepOptions, FlatSlot, AccuracyKind, FlatGradientBuilder, FlatGradientContext } from './train/training-step.js';
export { Sequential, sequential } from './train/sequential.js';
export { loadModel, type LoadModelOptions } from './train/load.js';
export { Trainer, loadTrainer } from './train/trainer.js';
export { exportTrainer } from './train/export-trainer.js';
export { trainingPackage, readTrainingPackage, type TrainerManifest, type TrainingPackage, type TrainerFileRole } from './train/training-package.js';
export { GraphModel, type ClassifierHead, type GraphModelOptions, type TiedWeight, type WeightSelector } from './train/graph-model.js';
export type { ParameterUse } from './model/imported-graph.js';
export { type Preprocessing, type InputLayout, type UntrainableOp } from './model/imported-graph.js';
export { OnnxModel, describeModel, type ModelDescription } from './model/onnx-model.js';
export { type InputRescaling } from './model/input-rescaling.js';
export type { TensorDescription } from './model/onnx-model.js';
export type { IdTable } from './model/input-values.js';
export { modelCost, graphFlops, type ModelCost } from './model/cost.js';
export { Graph, type Value, type Dim, type Shape } from './graph/graph.js';
export type { Node, Attrs, AttrValue } from './graph/graph.js';
export { registeredOps } from './ops/index.js';
export { addGradients } from './autodiff/gradients.js';
export type { GradientOptions } from './graph/op-definition.js';
export * as datasets from './data/index.js';
export * as images from './images/index.js';
export * as metrics from './train/metrics.js';
export * as losses from './train/losses.js';
export * as optimizers from './train/optimizers.js';
export * as schedules from './train/schedules.js';
export * as callbacks from './train/callbacks.js';
export * as privacy from './train/privacy/index.js';
export { Runtime } from './runtime/runtime.js';
export type { SessionInfo, SessionOptions, RunOptions } from './runtime/protocol.js';
export { serve, client, KilnClient, ServeError, type ServeOptions, type ServerHandle, type ClientOptions, type TlsOptions, type ClientTls, type PemSource, type InferOptions, type ModelConfig } from './serve/index.js';
export type { ServableModel, ModelMetadata, TensorMetadata, InferResponse, VersionPolicy } from './serve/index.js';
export { prune, type PruneOptions, type PruneResult, type PruneReport } from './optimize/prune/index.js';
export * as pruning from './optimize/prune/index.js';
export { distill, defaultStudent, distillationLoss, type DistillArgs, type DistillResult, type DefaultStudentOptions } from './optimize/distill/index.js';
export * as distillation from './optimize/distill/index.js';
export * as federated from './federated/index.js';
export { bench, type BenchEntry, type BenchReport, type BenchOptions, type BenchModelSource } from './bench/index.js';
export { report, renderReport, writeReport, type ReportOptions, type CreateReportOptions, type ReportInput } from './report/index.js';
export { quantize, QuantizedModel, type QuantizeOptions, type QuantizationReport, type QuantizationMode } from './optimize/quantize/index.js';
export type { QuantizableModel } from './optimize/quantize/index.js';
export * as quantization from './optimize/quantize/index.js';
export * as tuner from './tune/index.js';
export { optimizeModel, type OptimizableModel, type OptimizeOptions, type OptimizeResult, type OptimizeObjective, type Candidate, type CompressionConfig, type SearchChoices, type Shrink, type QuantizationChoice } from './automl/index.js';
export { writeTuneReport, renderTuneReport, writeOptimizeReport, renderOptimizeReport, type TuneReportOptions } from './report/index.js';
