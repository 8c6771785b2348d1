import { KilnError, formatShape } from '../../errors.js';
import { Activation, BatchNormalization, Conv2D, Dense, Flatten, GlobalAveragePooling2D, MaxPooling2D, layerFromConfig, type Layer, type SerializedLayer } from '../../layers/index.js';
import { MODEL_METADATA_KEY, sequentialArgsFromProto } from '../../model/sequential.js';
import type { OnnxModel } from '../../model/onnx-model.js';
import { notWeights } from '../../model/imported-graph.js';
import { GraphModel } from '../../train/graph-model.js';
import { Sequential } from '../../train/sequential.js';

/** Options of `defaultStudent`. */
export interface DefaultStudentOptions {
  /** Most parameters the student may have, as a fraction of the teacher's (default 0.25). */
  maxParameterRatio?: number;
  /** Seed of the student's initial weights (default 42). */
  seed?: number;
  /** Name of the student model (default: the teacher's name + '_student'). */
  name?: string;
}

/** Parameters of a stack of layers on an input shape, without building weights. */
function countLayerParams(layers: Layer[], inputShape: number[]): number {
  let shape = inputShape;
  let total = 0;
  for (const layer of layers) {
    total += layer.countParams(shape);
    shape = layer.computeOutputShape(shape);
  }
  return total;
}

/**
 * The same stack with every hidden Conv2D's filters and hidden Dense's units multiplied by `width`
 * (at least 1). The last Dense keeps its units (the classes) and loses a softmax: a student must output
 * logits for the distillation loss.
 */
function scaledLayers(config: SerializedLayer[], width: number): Layer[] {
  const lastDense = config.map((l) => l.className).lastIndexOf('Dense');
  return config.map((l, i) => {
    const c: Record<string, unknown> = { ...l.config };
    delete c.name;
    if (i === lastDense) {
      if (c.activation === 'softmax') c.activation = 'linear';
    } else if (l.className === 'Conv2D') c.filters = Math.max(1, Math.round(Number(c.filters) * width));
    else if (l.className === 'Dense') c.units = Math.max(1, Math.round(Number(c.units) * width));
    return layerFromConfig({ className: l.className, config: c });
  });
}

/**
 * The widest width multiplier in (0, 1] whose scaled stack has at most `budget` parameters. Parameter
 * counts grow with width (quadratically between hidden layers), so a bisection finds it.
 */
function widestWithin(config: SerializedLayer[], inputShape: number[], budget: number): number {
  const params = (w: number) => countLayerParams(scaledLayers(config, w), inputShape);
  if (params(1) <= budget) return 1;
  let lo = 0;
  let hi = 1;
  for (let k = 0; k < 30; k++) {
    const mid = (lo + hi) / 2;
    if (params(mid) <= budget) lo = mid;
    else hi = mid;
  }
  if (lo === 0 || params(lo) > budget) {
    throw new KilnError('INVALID_ARGUMENT', `no narrower version of the model fits in ${Math.floor(budget)} parameters (even one filter/unit per hidden layer has ${params(1e-9)}): give a student explicitly`);
  }
  return lo;
}

/** Parameters of a teacher as ONNX stores them: initializer elements, less int64 shape constants and scalars. */
export function onnxParameterCount(model: OnnxModel): number {
  return model.description.initializers.filter((t) => t.dtype !== 'int64' && t.shape.length > 0).reduce((n, t) => n + t.size, 0);
}

const FLOAT_NAMES = new Set(['float32', 'float16', 'float64', 'bfloat16']);

/**
 * Parameters of a model another tool wrote, as PyTorch counts them (`model.parameters()`): its float
 * initializers of rank ≥ 1, less BatchNormalization's running mean and variance (buffers, not
 * parameters), the exporter's copies of tied weights and tensors holding ±∞ (a causal mask buffer). A Kiln-made file counts as Kiln counts its layers (onnxParameterCount).
 */
export function teacherParameterCount(model: OnnxModel): number {
  if (model.proto.metadataProps?.some((m) => m.key === MODEL_METADATA_KEY)) return onnxParameterCount(model);
  const statistics = new Set((model.proto.graph?.node ?? []).filter((n) => n.opType === 'BatchNormalization').flatMap((n) => (n.input ?? []).slice(3, 5)));
  // Tied copies (a head written again as the embedding's transpose) and ±∞ masks are no parameters either.
  const copies = notWeights(model.proto);
  return model.description.initializers.filter((t) => FLOAT_NAMES.has(t.dtype) && t.shape.length > 0 && !statistics.has(t.name) && !copies.has(t.name)).reduce((n, t) => n + t.size, 0);
}

/** An imported graph's parameters as teacherParameterCount counts a foreign file's: its weights less BatchNormalization's running statistics. */
export function graphParameterCount(model: GraphModel): number {
  const statistics = new Set(model.parameterUses().filter((u) => u.op === 'BatchNormalization' && u.input >= 3).map((u) => u.parameter));
  return [...model.weights].filter(([name]) => !statistics.has(name)).reduce((n, [, t]) => n + t.size, 0);
}

/**
 * A student derived from the teacher: the same family, narrower. For a Kiln teacher that is its own
 * layer stack with hidden widths scaled down; for a foreign teacher (no layer configuration to copy:
 * an exported .onnx, or an imported GraphModel) a small convolutional family for images (see
 * foreignFamily: convolution stages with batch normalization and a global-average-pooling head), or a
 * two-layer MLP for flat inputs, scaled the same way. The student reads the data as given (`data.inputShape`, Kiln's
 * channels-last images), whatever layout the teacher takes. The width is the largest that keeps the
 * student within `maxParameterRatio` of the teacher's parameters (a foreign teacher's counted as
 * PyTorch counts them, BatchNorm's running statistics left out).
 */
export function defaultStudent(teacher: OnnxModel | Sequential | GraphModel, data: { inputShape: number[]; numClasses: number }, options: DefaultStudentOptions = {}): Sequential {
  const ratio = options.maxParameterRatio ?? 0.25;
  if (!(ratio > 0 && ratio <= 1)) throw new KilnError('INVALID_ARGUMENT', `maxParameterRatio must be in (0, 1], got ${ratio}`);
  let config: SerializedLayer[];
  let teacherParams: number;
  let teacherName: string;
  if (teacher instanceof Sequential) {
    config = teacher.layers.map((l) => l.serialize());
    teacherParams = teacher.countParams().total;
    teacherName = teacher.name;
  } else if (teacher instanceof GraphModel) {
    config = foreignFamily(data).map((l) => l.serialize());
    teacherParams = graphParameterCount(teacher);
    teacherName = teacher.name;
  } else if (teacher.proto.metadataProps?.some((m) => m.key === MODEL_METADATA_KEY)) {
    const args = sequentialArgsFromProto(teacher.proto, 'teacher');
    config = (args.layers ?? []).map((l) => l.serialize());
    teacherParams = onnxParameterCount(teacher);
    teacherName = args.name ?? 'teacher';
  } else {
    config = foreignFamily(data).map((l) => l.serialize());
    teacherParams = teacherParameterCount(teacher);
    teacherName = teacher.proto.graph?.name || 'teacher';
  }
  const first = config[0];
  if (!first) throw new KilnError('INVALID_ARGUMENT', 'the teacher has no layers');
  // The student reads the data as given (channels-last), whatever layout a foreign teacher used.
  first.config = { ...first.config, inputShape: data.inputShape };
  const outputs = countOutputs(config, data.inputShape);
  if (outputs !== data.numClasses) {
    throw new KilnError('INVALID_SHAPE', `the teacher's layers produce ${outputs} outputs, the data has ${data.numClasses} classes`);
  }
  const width = widestWithin(config, data.inputShape, ratio * teacherParams);
  const layers = scaledLayers(config, width);
  if (!layers.some((l) => l instanceof Conv2D || l instanceof Dense)) throw new KilnError('INVALID_ARGUMENT', 'the teacher has no Conv2D or Dense layer to narrow');
  return new Sequential({ layers, name: options.name ?? `${teacherName}_student`, seed: options.seed });
}

/**
 * The family a foreign teacher's student comes from. For images, the small-budget CNN a Keras user
 * would write: three 3×3 convolution stages (32-64-64 filters before narrowing, max pooling between),
 * each convolution without bias followed by BatchNormalization and ReLU, then GlobalAveragePooling2D and
 * one Dense to the classes. At a quarter of a small teacher (a few thousand parameters) that spends the
 * budget on convolution filters, where the tutorial CNN's flatten-and-dense head took a third of it and
 * left a Dense(7) bottleneck; batch normalization lets so narrow a network train (bench/distill/README.md,
 * any-onnx.ts, measures both). Other inputs (vectors, sequences) get a two-layer MLP over them, flattened.
 */
function foreignFamily(data: { inputShape: number[]; numClasses: number }): Layer[] {
  if (data.inputShape.length !== 3) {
    // Anything else that is not an image — sequences [T, F] for a recurrent teacher, rows [H, W] —
    // is flattened into the MLP; Kiln's layers have no recurrent layer to narrow.
    const flat = data.inputShape.length > 1 ? [new Flatten({ inputShape: data.inputShape })] : [];
    return [...flat, new Dense({ units: 128, activation: 'relu', ...(flat.length === 0 ? { inputShape: data.inputShape } : {}) }), new Dense({ units: data.numClasses })];
  }
  const stage = (filters: number, first: boolean): Layer[] => [
    new Conv2D({ filters, kernelSize: 3, useBias: false, ...(first ? { inputShape: data.inputShape } : {}) }),
    new BatchNormalization(),
    new Activation({ activation: 'relu' }),
  ];
  return [
    ...stage(32, true),
    new MaxPooling2D({ poolSize: 2 }),
    ...stage(64, false),
    new MaxPooling2D({ poolSize: 2 }),
    ...stage(64, false),
    new GlobalAveragePooling2D(),
    new Dense({ units: data.numClasses }),
  ];
}

function countOutputs(config: SerializedLayer[], inputShape: number[]): number {
  let shape = inputShape;
  for (const l of scaledLayers(config, 1)) shape = l.computeOutputShape(shape);
  if (shape.length !== 1) throw new KilnError('INVALID_SHAPE', `a classifier ends in [classes]; the teacher's layers end in ${formatShape([null, ...shape])}`);
  return shape[0]!;
}
