/** Quantization: post-training (dynamic, static with calibration), float16, and quantization-aware training. */
export { quantize, calibrationTensor, QuantizedModel, QUANTIZATION_MODES, type QuantizationMode, type QuantizeOptions, type QuantizationReport, type LayerReport, type FineTuneArgs, type CalibrationData } from './quantize.js';
export { calibrateActivations, CALIBRATION_METHODS, type CalibrationMethod, type CalibrationOptions } from './calibrate.js';
export { computeQuantParams, integerKernelsSaturate, quantizeValue, dequantizeValue, quantizeTensor, quantizeWeight, quantizeBias, quantRangeOf, roundHalfEven, type QuantParams, type QuantType, type Range } from './params.js';
export { insertQdq, DEFAULT_FLOAT_OPS, FLOAT_OP_KINDS, type FloatOpKind, type StaticQuantizationOptions, type NodeDecision } from './qdq.js';
export { findBlocks, type Block, type BlockKind } from './patterns.js';
export { suggestFasterMode, fasterModeAdvice, alternativeMode, speedup, SLOWER_BELOW, type ModeOutcome } from './faster-mode.js';
export { quantizeDynamicGraph, type DynamicQuantizationOptions } from './dynamic.js';
export { convertToFloat16, float16Bits, float16Value, type Float16Options } from './float16.js';
export { foldBatchNormalization } from './fold-batchnorm.js';
export { fakeQuantStepOptions, fakeQuantizeWeight, fakeQuantizeActivation, foldBatchNormLayers } from './qat.js';
export { compareModels, type Comparison, type EvaluationData, type ModelMeasurement } from './evaluate.js';
export { sourceGraph, graphFromProto, checkNotQuantized, QUANTIZATION_METADATA_KEY } from './source-graph.js';
export type { QuantizableModel, SourceGraph } from './source-graph.js';
export type { QdqResult, Precision } from './qdq.js';
export type { QuantizedWeight } from './params.js';
export type { Float16Result } from './float16.js';
export type { FoldedBatchNorm } from './fold-batchnorm.js';
export type { FakeQuantOptions } from './qat.js';
