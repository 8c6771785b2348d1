import { KilnError, formatShape } from '../../errors.js';
import type { Graph } from '../../graph/graph.js';
import { modelToProto } from '../../graph/onnx-io.js';
import { decodeModel, encodeModel, type ModelProto } from '../../graph/proto.js';
import type { ImageDataset, LabeledImages } from '../../data/types.js';
import { writeFileAtomic } from '../../model/atomic-write.js';
import { OnnxModel } from '../../model/onnx-model.js';
import { parseOnnx } from '../../model/read-model.js';
import { foldComputedWeights } from '../../model/computed-weights.js';
import { Model } from '../../model/model.js';
import { Random } from '../../random.js';
import { sharedRuntime, type Runtime } from '../../runtime/runtime.js';
import { Tensor, type DType } from '../../tensor.js';
import type { History } from '../../train/fit-loop.js';
import { Sequential } from '../../train/sequential.js';
import { resolveLoss, sparseCategoricalCrossentropy, type Loss } from '../../train/losses.js';
import { recordedTraining } from '../../train/model.js';
import { adam, resolveOptimizer, type Optimizer } from '../../train/optimizers.js';
import { CALIBRATION_METHODS, calibrateActivations, type CalibrationMethod } from './calibrate.js';
import { quantizeDynamicGraph } from './dynamic.js';
import { compareModels, type Comparison, type EvaluationData } from './evaluate.js';
import type { ModelInputs } from '../../model/input-rows.js';
import { convertToFloat16 } from './float16.js';
import { foldBatchNormalization } from './fold-batchnorm.js';
import { DEFAULT_FLOAT_OPS, DEFAULT_MIN_CONV_REDUCTION, FLOAT_OP_KINDS, insertQdq, type FloatOpKind, type NodeDecision } from './qdq.js';
import { integerKernelsSaturate } from './params.js';
import { checkFineTune, fakeQuantStepOptions, foldBatchNormLayers } from './qat.js';
import { QUANTIZATION_METADATA_KEY, checkNotQuantized, sourceGraph, type QuantizableModel } from './source-graph.js';
import { MODEL_METADATA_KEY } from '../../model/sequential.js';
import { adaptInput, fileFeeds } from '../../model/input-adapter.js';
import { PREPROCESSING_METADATA_KEY, type Preprocessing } from '../../model/imported-graph.js';

/** The quantization modes: dynamic int8, static int8 (calibrated), float16 weights, quantization-aware training. */
export type QuantizationMode = 'dynamic' | 'static' | 'float16' | 'qat';
/** Every quantization mode. */
export const QUANTIZATION_MODES: readonly QuantizationMode[] = ['dynamic', 'static', 'float16', 'qat'];

/** Calibration examples: a tensor [N, ...inputShape], labelled images, or a data set (its training split). */
export type CalibrationData = Tensor | LabeledImages | ImageDataset | Readonly<Record<string, Tensor>>;

/** Quantization-aware training's fine-tuning run. */
export interface FineTuneArgs {
  /** Training inputs. */
  x: Tensor;
  /** Training labels. */
  y: Tensor;
  /** Epochs of fine-tuning with fake quantization. Default 1. */
  epochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Default: Adam with learning rate 1e-4 (a tenth of Keras' default: fine-tuning, not training). */
  optimizer?: string | Optimizer;
  /** Learning rate of the default Adam (default 1e-4). */
  learningRate?: number;
  /** Default: the loss the model was compiled with (from its metadata), else sparse categorical cross-entropy on logits. */
  loss?: string | Loss;
  /** Fraction held out for validation, as in `fit()`. */
  validationSplit?: number;
  /** 0 silent (default), 1 progress bar, 2 one line per epoch. */
  verbose?: 0 | 1 | 2;
  /** Where progress goes (default process.stdout). */
  stream?: NodeJS.WritableStream & {
    /** A terminal gets a redrawn progress bar. */
    isTTY?: boolean;
    /** Width of the terminal. */
    columns?: number;
  };
}

/** Options of `quantize`; `kiln quantize` takes the same as flags. */
export interface QuantizeOptions {
  /** Which quantization: 'dynamic', 'static', 'float16' or 'qat'. */
  mode: QuantizationMode;
  /**
   * static / qat: examples to calibrate activation ranges on (qat: default fineTune.x). For a model of
   * several inputs (token ids and an attention mask), tensors by input name, as `evaluate.x`.
   */
  calibration?: CalibrationData;
  /** At most this many calibration examples, a seeded random subset (default 512). */
  calibrationSamples?: number;
  /** Range estimator for activations (default 'minmax'). */
  method?: CalibrationMethod;
  /** For method 'percentile' (default 99.999). */
  percentile?: number;
  /** Per-output-channel weight scales (default true). */
  perChannel?: boolean;
  /** Element type of static activations (default 'uint8'). */
  activationType?: 'uint8' | 'int8';
  /**
   * 7-bit weights (ONNX Runtime's reduce_range), against the 16-bit saturation of u8·s8 kernels on x86
   * CPUs without VNNI. Default: on where this CPU has that problem (integerKernelsSaturate()), else off.
   */
  reduceRange?: boolean;
  /** Weight bits 2–8 (default 8, or 7 with reduceRange). Values are stored as int8 either way. */
  weightBits?: number;
  /** Layer names (Kiln models) or node names (other ONNX models) to keep in float. */
  exclude?: string[];
  /**
   * Convolutions summing fewer products per output (input channels × kernel area) stay float, where
   * ONNX Runtime's int8 kernel measured slower than its float one (default 128; 0: none). In dynamic
   * mode too: ConvInteger has no fused kernel (a ViT's 1-channel 7×7 patch convolution took 7× the
   * float time).
   */
  minConvReduction?: number;
  /**
   * static: transformer ops kept in float (default ['LayerNormalization', 'Gelu', 'Softmax']: ONNX
   * Runtime has no int8 kernel for the first two, and each in 8 bits measured slower at equal accuracy
   * on the ViT fixture): 'LayerNormalization' (the op or its decomposed export), 'Gelu' (the Erf form),
   * 'Softmax'. [] puts 8-bit inputs and outputs around all of them.
   */
  floatOps?: readonly FloatOpKind[];
  /** float16: also compute in float16 (default false: float16 storage, float32 compute). */
  float16Compute?: boolean;
  /** qat: the fine-tuning run with fake quantization. */
  fineTune?: FineTuneArgs;
  /** Measure accuracy and latency of the float and quantized models on this data. */
  evaluate?: EvaluationData;
  /** Seed for picking calibration examples (default 42). */
  seed?: number;
  /** The runtime worker for calibration and measurement (default: the shared one). */
  runtime?: Runtime;
}

/** One layer's outcome. */
export interface LayerReport {
  /** The layer's (or node's) name. */
  layer: string;
  /** Its operators. */
  ops: string[];
  /** The precision it runs in. */
  precision: 'int8' | 'float16' | 'float32';
  /** Why it stayed float, or a note on how it runs. */
  reason?: string;
}

/** What `quantize` did: sizes, each layer's precision and why, calibration, and the measured comparison. */
export interface QuantizationReport {
  /** The mode used. */
  mode: QuantizationMode;
  /** The settings in effect, defaults included (also stored in the file's 'kiln.quantization' metadata). */
  settings: Record<string, unknown>;
  /** Bytes of the float model's ONNX file and of the quantized one. */
  sizeBefore: number;
  /** Bytes of the quantized file. */
  sizeAfter: number;
  /** sizeBefore / sizeAfter. */
  compression: number;
  /** Each layer's outcome. */
  layers: LayerReport[];
  /** The layers that stayed float, with the reason. */
  floatLayers: {
    /** The layer's name. */
    layer: string;
    /** Why it stayed float. */
    reason: string;
  }[];
  /** BatchNormalization layers folded into the convolution before them. */
  foldedBatchNorm: string[];
  /** static / qat: how activation ranges were calibrated. */
  calibration?: {
    /** The range estimator. */
    method: CalibrationMethod;
    /** Examples calibrated on. */
    samples: number;
  };
  /** qat: the fine-tuning run. */
  fineTune?: {
    /** Epochs run. */
    epochs: number;
    /** Loss and accuracy per epoch. */
    history: History['history'];
  };
  /** Accuracy and latency before and after, when `evaluate` data was given. */
  evaluation?: Comparison;
  /** Node count per op type in the quantized graph. */
  ops: Record<string, number>;
}

/**
 * A quantized model: a standard ONNX graph (QDQ form, dynamic integer ops or float16) — no longer a
 * Kiln Sequential, so it runs and saves but does not train.
 */
export class QuantizedModel extends OnnxModel {
  constructor(
    bytes: Uint8Array,
    proto: ModelProto,
    /** What quantization did. */
    readonly report: QuantizationReport,
    runtime?: Runtime,
  ) {
    super(bytes, proto, runtime);
  }

  /** Writes the .onnx file atomically (readers see the old file or the whole new one). */
  async save(file: string): Promise<void> {
    await writeFileAtomic(file, this.bytes);
  }
}

function checkOptions(o: QuantizeOptions): void {
  if (!o || typeof o !== 'object') throw new KilnError('INVALID_ARGUMENT', `quantize() needs options with a mode (${QUANTIZATION_MODES.join(', ')})`);
  if (!QUANTIZATION_MODES.includes(o.mode)) {
    throw new KilnError('INVALID_ARGUMENT', `unsupported quantization mode ${JSON.stringify(o.mode)}; expected one of ${QUANTIZATION_MODES.join(', ')}`);
  }
  if (o.method !== undefined && !CALIBRATION_METHODS.includes(o.method)) {
    throw new KilnError('INVALID_ARGUMENT', `unknown calibration method ${JSON.stringify(o.method)}; expected one of ${CALIBRATION_METHODS.join(', ')}`);
  }
  if (o.activationType !== undefined && o.activationType !== 'uint8' && o.activationType !== 'int8') {
    throw new KilnError('INVALID_ARGUMENT', `activationType must be 'uint8' or 'int8', got ${JSON.stringify(o.activationType)}`);
  }
  if (o.weightBits !== undefined && !(Number.isInteger(o.weightBits) && o.weightBits >= 2 && o.weightBits <= 8)) {
    throw new KilnError('INVALID_ARGUMENT', `weightBits must be an integer in [2, 8], got ${o.weightBits}`);
  }
  if (o.calibrationSamples !== undefined && !(Number.isInteger(o.calibrationSamples) && o.calibrationSamples >= 1)) {
    throw new KilnError('INVALID_ARGUMENT', `calibrationSamples must be a positive integer, got ${o.calibrationSamples}`);
  }
  if (o.floatOps !== undefined && (!Array.isArray(o.floatOps) || o.floatOps.some((k) => !FLOAT_OP_KINDS.includes(k)))) {
    throw new KilnError('INVALID_ARGUMENT', `floatOps takes a list of ${FLOAT_OP_KINDS.join(', ')}, got ${JSON.stringify(o.floatOps)}`);
  }
  if (o.mode === 'static' && o.calibration === undefined) {
    throw new KilnError('INVALID_ARGUMENT', "mode 'static' needs calibration data: quantize(model, {mode: 'static', calibration: x}) with x of the model's input shape");
  }
}

/** The calibration examples as one tensor of the model's input shape and type (a seeded subset): float32 images or vectors, or a text model's token ids. */
export function calibrationTensor(data: CalibrationData, inputShape: readonly (number | string | null)[], samples: number, seed: number, preprocessing: Preprocessing = {}, inputDtype: DType = 'float32'): Tensor {
  const given: unknown = data instanceof Tensor ? data : (data as ImageDataset).train?.images ?? (data as LabeledImages).images;
  if (!(given instanceof Tensor)) {
    const several = data !== null && typeof data === 'object' && !(data instanceof Tensor) && Object.values(data).length > 1 && Object.values(data).every((v) => v instanceof Tensor);
    throw new KilnError(
      'INVALID_ARGUMENT',
      several
        ? `this model has one input; the calibration data holds several (${Object.keys(data).join(', ')})`
        : 'calibration must be a tensor of examples, {images, labels} or a data set with a train split',
    );
  }
  if (given.shape[0] === 0 || given.rank === 0) throw new KilnError('INVALID_DATA', 'the calibration set is empty: give at least one example');
  const x = toModelInput(given, inputShape, preprocessing);
  checkCalibration(x, inputShape, inputDtype, 'calibration data');
  const rows = calibrationRows(x.shape[0]!, samples, seed);
  return rows ? x.gather(rows) : x;
}

/**
 * One calibration tensor against the model input it feeds: its shape (batch first), its type (a model
 * of token ids calibrates on ids: the ranges measured are its float activations after the embedding)
 * and, for floats, finite values; `label` names it in errors.
 */
function checkCalibration(x: Tensor, inputShape: readonly (number | string | null)[], dtype: DType, label: string): void {
  const expected = inputShape.slice(1);
  if (x.rank !== expected.length + 1 || expected.some((d, i) => typeof d === 'number' && d !== x.shape[i + 1])) {
    throw new KilnError('INVALID_SHAPE', `${label} must have the model's input shape ${formatShape([null, ...expected])} (batch first), got ${formatShape(x.shape)}`);
  }
  if (x.dtype !== dtype) throw new KilnError('INVALID_ARGUMENT', `${label} must be ${dtype}, as the model's input is; got ${x.dtype}`);
  if (x.dtype === 'float32') {
    const bad = (x.data as Float32Array).findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new KilnError('INVALID_DATA', `${label} contains ${x.data[bad]} at flat index ${bad}; examples must be finite`);
  }
}

/** The rows a seeded subset of `samples` calibration examples keeps, of n; undefined when all n are kept. */
function calibrationRows(n: number, samples: number, seed: number): Int32Array | undefined {
  return n <= samples ? undefined : new Random(seed).permutation(n).subarray(0, samples);
}

/**
 * The calibration examples by the graph's input names. A model of one input takes calibrationTensor's
 * examples (given also as `{[inputName]: tensor}`); a model of several (token ids and an attention
 * mask) takes tensors by input name, checked as evaluate's x is, the same seeded rows of each.
 */
function calibrationInputs(data: CalibrationData, inputs: readonly { name: string; dtype: DType; shape: readonly (number | string | null)[] | null }[], samples: number, seed: number, preprocessing: Preprocessing): Record<string, Tensor> {
  const first = inputs[0]!;
  if (inputs.length === 1) {
    const own = !(data instanceof Tensor) && data !== null && typeof data === 'object' && Object.keys(data).length === 1 && (data as Record<string, unknown>)[first.name] instanceof Tensor;
    const given = own ? (data as Record<string, Tensor>)[first.name]! : data;
    return { [first.name]: calibrationTensor(given, first.shape ?? [], samples, seed, preprocessing, first.dtype) };
  }
  const feeds = fileFeeds(data as ModelInputs, inputs.map((i) => ({ name: i.name, dtype: i.dtype, shape: i.shape ? [...i.shape] : null })), preprocessing, 'calibration');
  for (const input of inputs) checkCalibration(feeds[input.name]!, input.shape ?? [], input.dtype, `calibration.${input.name}`);
  const n = feeds[first.name]!.shape[0]!;
  if (n === 0) throw new KilnError('INVALID_DATA', 'the calibration set is empty: give at least one example');
  const rows = calibrationRows(n, samples, seed);
  return rows ? Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, t.gather(rows)])) : feeds;
}

/**
 * Kiln's channels-last images as a model file's input wants them (a PyTorch export's channels-first,
 * its declared mean/std); data that fits no layout is left for the caller's shape check to name.
 */
function toModelInput(x: Tensor, inputShape: readonly (number | string | null)[], preprocessing: Preprocessing): Tensor {
  if (x.dtype !== 'float32') return x;
  try {
    return adaptInput(x, { name: 'input', dtype: 'float32', shape: [...inputShape] }, preprocessing);
  } catch {
    return x;
  }
}

/**
 * evaluate's x as the float file's feeds: images laid out and normalized for its one input as
 * calibration data are, or tensors by input name for a file of several (token ids, an attention mask).
 */
function evaluationInputs(floatFile: Uint8Array, x: ModelInputs): Record<string, Tensor> {
  const file = new OnnxModel(floatFile, decodeModel(floatFile));
  if (x instanceof Tensor && file.inputs.length === 1) return { [file.inputs[0]!.name]: toModelInput(x, file.inputs[0]!.shape ?? [], file.preprocessing) };
  return fileFeeds(x, file.inputs, file.preprocessing, 'evaluate.x');
}

function opCounts(graph: Graph): Record<string, number> {
  const ops: Record<string, number> = {};
  for (const n of graph.nodes) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
  return ops;
}

/** Per-layer outcome from per-node decisions: a layer is int8 when its main operator is. */
function layerReports(decisions: NodeDecision[], layerOrder: string[]): LayerReport[] {
  const byLayer = new Map<string, NodeDecision[]>();
  for (const d of decisions) byLayer.set(d.layer, [...(byLayer.get(d.layer) ?? []), d]);
  const order = [...layerOrder.filter((l) => byLayer.has(l)), ...[...byLayer.keys()].filter((l) => !layerOrder.includes(l))];
  return order.map((layer) => {
    const ds = byLayer.get(layer)!;
    const main = ds[0]!;
    return { layer, ops: ds.map((d) => d.op), precision: main.precision, ...(main.reason ? { reason: main.reason } : {}) };
  });
}

function floatBytes(model: QuantizableModel): Uint8Array {
  if (model instanceof Uint8Array) return model;
  if (model instanceof OnnxModel) return model.bytes;
  return (model as Sequential).toOnnx();
}

/**
 * Quantizes a model into a standard ONNX model that ONNX Runtime runs with integer kernels (or, for
 * 'float16', at half the size):
 *
 * - 'dynamic': int8 weights per output channel; activations quantized at run time
 *   (DynamicQuantizeLinear + MatMulInteger / ConvInteger).
 * - 'static': BatchNormalization folded into Conv, activation ranges calibrated on data, QDQ pairs
 *   around every operator ONNX Runtime runs in int8; others stay float (the report says which, and why).
 * - 'float16': weights stored as float16.
 * - 'qat': fine-tunes a copy of the model with fake quantization in the compiled training step, then
 *   exports it like 'static'.
 */
export async function quantize(given: QuantizableModel, options: QuantizeOptions): Promise<QuantizedModel> {
  checkOptions(options);
  // An imported graph (GraphModel) is quantized as the file it saves: its own graph, names and
  // declared preprocessing; quantization-aware training needs Kiln's layers (checkFineTune says so).
  const model = given instanceof Model && !(given instanceof Sequential) && options.mode !== 'qat' ? new OnnxModel(given.toOnnx(), decodeModel(given.toOnnx())) : given;
  const runtime = options.runtime ?? sharedRuntime();
  const seed = options.seed ?? 42;
  const before = floatBytes(model);
  // The comparison's data checked against the model's inputs before any work, and kept for it.
  const evaluation = options.evaluate ? { ...options.evaluate, x: evaluationInputs(before, options.evaluate.x) } : undefined;
  const settings: Record<string, unknown> = { mode: options.mode };
  const reduceRange = options.reduceRange ?? (options.weightBits === undefined && integerKernelsSaturate());
  let fineTuneReport: QuantizationReport['fineTune'];
  let foldedLayers: string[] = [];
  let source = model;
  if (options.mode === 'qat') {
    checkFineTune(model, options.fineTune);
    const ft = options.fineTune;
    const epochs = ft.epochs ?? 1;
    const trainable = model as Sequential;
    const folded = foldBatchNormLayers(trainable);
    foldedLayers = folded.folded;
    const names = folded.model.layers.map((l) => l.name!);
    checkExclusions(options.exclude, names);
    const loss = ft.loss ?? recordedTraining(trainable.metadata)?.loss ?? sparseCategoricalCrossentropy({ fromLogits: true });
    const optimizer = ft.optimizer !== undefined ? resolveOptimizer(ft.optimizer) : adam({ learningRate: ft.learningRate ?? 1e-4 });
    folded.model.compile({ optimizer, loss: resolveLoss(loss), metrics: ['accuracy'] }, fakeQuantStepOptions(folded.model, { weightBits: options.weightBits ?? (reduceRange ? 7 : 8), exclude: options.exclude, minConvReduction: options.minConvReduction ?? DEFAULT_MIN_CONV_REDUCTION }));
    const history = await folded.model.fit(ft.x, ft.y, { epochs, batchSize: ft.batchSize ?? 64, validationSplit: ft.validationSplit, verbose: ft.verbose ?? 0, stream: ft.stream, seed });
    fineTuneReport = { epochs, history: history.history };
    source = folded.model;
    settings.fineTune = { epochs, batchSize: ft.batchSize ?? 64, optimizer: optimizer.name, learningRate: optimizer.learningRate };
  }

  if (options.mode === 'float16') {
    const proto = model instanceof Uint8Array ? decodeModel(model) : model instanceof OnnxModel ? model.proto : decodeModel((model as Sequential).toOnnx());
    checkNotQuantized(proto);
    const { proto: converted, clamped } = convertToFloat16(proto, { compute: options.float16Compute ?? false });
    const report = baseReport(options, settings, before.length, 0, []);
    const layerNames = model instanceof Sequential ? model.layers.map((l) => l.name!) : (proto.graph?.node ?? []).map((n) => n.name || n.opType || '?');
    const how = options.float16Compute ? 'float16 weights and compute' : 'float16 weights, float32 compute';
    report.layers = layerNames.map((layer) => ({ layer, ops: [], precision: 'float16' as const, reason: how }));
    if (clamped > 0) report.settings.clampedWeights = clamped;
    settings.float16Compute = options.float16Compute ?? false;
    // Kiln's layer configuration no longer describes the graph (loadModel would try to rebuild it).
    const metadata = (converted.metadataProps ?? []).filter((m) => m.key !== MODEL_METADATA_KEY && m.key !== QUANTIZATION_METADATA_KEY);
    const name = model instanceof Sequential ? model.name : proto.graph?.name || 'model';
    metadata.push({ key: QUANTIZATION_METADATA_KEY, value: JSON.stringify({ mode: 'float16', model: name, settings }) });
    // What the file is fed, declared: float16 turns a Keras Rescaling's 1/255 into a float16 constant
    // and a Cast, which no longer reads as a rescaling (input-rescaling.ts).
    const fed = model instanceof OnnxModel ? model.preprocessing : {};
    if (Object.keys(fed).length > 0) {
      const i = metadata.findIndex((m) => m.key === PREPROCESSING_METADATA_KEY);
      if (i >= 0) metadata.splice(i, 1);
      metadata.push({ key: PREPROCESSING_METADATA_KEY, value: JSON.stringify(fed) });
    }
    const bytes = encodeModel({ ...converted, metadataProps: metadata });
    report.sizeAfter = bytes.length;
    report.compression = before.length / bytes.length;
    for (const n of converted.graph?.node ?? []) report.ops[n.opType!] = (report.ops[n.opType!] ?? 0) + 1;
    return finish(bytes, report, evaluation, before, runtime);
  }

  // Weights a file computes from its own constants (an export without constant folding) are read as
  // the constants they are, as ONNX Runtime folds them when it loads the file.
  if (source instanceof Uint8Array) source = new OnnxModel(source, parseOnnx(source));
  if (source instanceof OnnxModel) {
    // Before: a quantized or float16 file's weights are computed too (DequantizeLinear, Cast), and say what the file is.
    checkNotQuantized(source.proto);
    const folded = await foldComputedWeights(source.proto, runtime);
    if (folded !== source.proto) source = new OnnxModel(encodeModel(folded), folded);
  }
  const src = sourceGraph(source);
  checkExclusions(options.exclude, src.layerNames);
  const preprocessing = source instanceof OnnxModel ? source.preprocessing : {};
  const { graph: foldedGraph, folded } = foldBatchNormalization(src.graph);
  const foldedBatchNorm = [...foldedLayers, ...folded.map((f) => src.layerOf.get(f.batchNorm) ?? f.batchNorm)];
  let result: { graph: Graph; decisions: NodeDecision[] };
  let calibration: QuantizationReport['calibration'];
  const common = { perChannel: options.perChannel ?? true, weightBits: options.weightBits, reduceRange, exclude: options.exclude };
  Object.assign(settings, {
    perChannel: common.perChannel,
    reduceRange: options.reduceRange === undefined && reduceRange ? 'auto: on (this CPU adds u8·s8 products in saturating 16-bit arithmetic)' : reduceRange,
    weightBits: options.weightBits ?? (reduceRange ? 7 : 8),
  });
  if (options.mode === 'dynamic') {
    const minConvReduction = options.minConvReduction ?? DEFAULT_MIN_CONV_REDUCTION;
    settings.minConvReduction = minConvReduction;
    result = quantizeDynamicGraph(foldedGraph, src.layerOf, { ...common, minConvReduction });
  } else {
    const data = options.calibration ?? (options.mode === 'qat' ? options.fineTune!.x : undefined);
    const x = calibrationInputs(data!, src.graph.inputs, options.calibrationSamples ?? 512, seed, preprocessing);
    const method = options.method ?? 'minmax';
    const ranges = await calibrateActivations(foldedGraph, x, { method, percentile: options.percentile, runtime });
    calibration = { method, samples: Object.values(x)[0]!.shape[0]! };
    const activationType = options.activationType ?? 'uint8';
    Object.assign(settings, { activationType, method, ...(method === 'percentile' ? { percentile: options.percentile ?? 99.999 } : {}) });
    const minConvReduction = options.minConvReduction ?? DEFAULT_MIN_CONV_REDUCTION;
    settings.minConvReduction = minConvReduction;
    const floatOps = options.floatOps ?? DEFAULT_FLOAT_OPS;
    settings.floatOps = [...floatOps];
    result = insertQdq(foldedGraph, ranges, src.layerOf, { ...common, activationType, minConvReduction, floatOps });
  }
  const metadata: Record<string, string> = { ...src.metadata };
  metadata[QUANTIZATION_METADATA_KEY] = JSON.stringify({ mode: options.mode, model: src.modelName, settings });
  if (Object.keys(preprocessing).length > 0) metadata[PREPROCESSING_METADATA_KEY] = JSON.stringify(preprocessing);
  const bytes = encodeModel(modelToProto(result.graph, metadata, Math.max(13, src.opset)));
  const report = baseReport(options, settings, before.length, bytes.length, foldedBatchNorm);
  report.layers = layerReports(result.decisions, src.layerNames);
  report.floatLayers = report.layers.filter((l) => l.precision !== 'int8').map((l) => ({ layer: l.layer, reason: l.reason ?? 'float' }));
  for (const bn of foldedBatchNorm) report.floatLayers = report.floatLayers.filter((l) => l.layer !== bn);
  report.ops = opCounts(result.graph);
  if (calibration) report.calibration = calibration;
  if (fineTuneReport) report.fineTune = fineTuneReport;
  return finish(bytes, report, evaluation, before, runtime);
}

function checkExclusions(exclude: string[] | undefined, names: string[]): void {
  for (const e of exclude ?? []) {
    if (names.includes(e)) continue;
    // An exported graph has hundreds of nodes: name the ones that look like what was meant (the longest
    // shared beginning first: '/encoder/layers.0/self_attn/MatMul_9' → '…/self_attn/MatMul_1').
    const shared = (n: string) => {
      let k = 0;
      while (k < n.length && k < e.length && n[k] === e[k]) k++;
      return k;
    };
    const similar = names
      .filter((n) => n.includes(e) || shared(n) >= Math.max(3, e.length / 2))
      .sort((a, b) => shared(b) - shared(a));
    const listed = names.length <= 20 ? `layers: ${names.join(', ')}` : `${names.length} layers/nodes${similar.length > 0 ? `; similar: ${similar.slice(0, 10).join(', ')}` : `, e.g. ${names.slice(0, 8).join(', ')}`}`;
    throw new KilnError('INVALID_ARGUMENT', `exclude: the model has no layer named '${e}' (${listed})`);
  }
}

function baseReport(options: QuantizeOptions, settings: Record<string, unknown>, sizeBefore: number, sizeAfter: number, foldedBatchNorm: string[]): QuantizationReport {
  return {
    mode: options.mode,
    settings,
    sizeBefore,
    sizeAfter,
    compression: sizeAfter > 0 ? sizeBefore / sizeAfter : 0,
    layers: [],
    floatLayers: [],
    foldedBatchNorm,
    ops: {},
  };
}

async function finish(bytes: Uint8Array, report: QuantizationReport, evaluation: (EvaluationData & { x: Record<string, Tensor> }) | undefined, before: Uint8Array, runtime: Runtime): Promise<QuantizedModel> {
  if (evaluation) report.evaluation = await compareModels(before, bytes, evaluation, runtime);
  return new QuantizedModel(bytes, decodeModel(bytes), report, runtime);
}
