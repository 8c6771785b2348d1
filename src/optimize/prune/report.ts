import { KilnError } from '../../errors.js';
import { Conv2D, Conv2DTranspose, Dense, type Layer } from '../../layers/index.js';
import { modelCost, type ModelCost } from '../../model/cost.js';
import type { ModelInputs } from '../../model/input-rows.js';
import type { Model } from '../../model/model.js';
import { INPUT_NAME } from '../../model/sequential.js';
import { GraphModel } from '../../train/graph-model.js';
import { type Sequential } from '../../train/sequential.js';
import { Random } from '../../random.js';
import { sharedRuntime } from '../../runtime/runtime.js';
import { allocate, Tensor, type AnyTypedArray, type DType } from '../../tensor.js';
import { evaluateClassifier } from '../../train/metrics.js';

/** One model's cost, and — when measured — its test accuracy and inference latency. */
export interface ModelSnapshot extends ModelCost {
  /** Test accuracy, when evaluation data was given. */
  accuracy?: number;
  /** Median milliseconds per inference batch of `latencyBatchSize` examples. */
  latencyMs?: number;
  /** The batch size latency was measured at. */
  latencyBatchSize?: number;
}

/** Zeros in one weight tensor. */
export interface WeightSparsity {
  /** The weight's name (`<layer>/<param>`). */
  name: string;
  /** Its shape. */
  shape: number[];
  /** Its element count. */
  elements: number;
  /** Elements exactly zero. */
  zeros: number;
  /** zeros / elements. */
  sparsity: number;
}

/** One layer before and after pruning. */
export interface LayerPruneReport {
  /** The layer's name. */
  name: string;
  /** Its class ('Conv2D', ...). */
  className: string;
  /** Filters (Conv2D) or units (Dense) before → after; other layers: undefined. */
  units?: [number, number];
  /** Its parameters before pruning. */
  parametersBefore: number;
  /** Its parameters after (fewer only with structured pruning). */
  parametersAfter: number;
  /** Non-zero weights after pruning. */
  nonZeroAfter: number;
  /** Zeros among all of the layer's weights after pruning. */
  sparsity: number;
  /** Zeros in its kernel, when it has one. */
  kernelSparsity?: number;
  /** Whether this layer was pruned. */
  pruned: boolean;
  /** Structured pruning: the original indices of the filters/units kept (ascending). */
  keptUnits?: number[];
}

/** What pruning did: the model before and after, per layer and per weight. */
export interface PruneReport {
  /** Which pruning ran. */
  method: 'magnitude' | 'structured';
  /** The original model's cost (and accuracy, latency when measured). */
  before: ModelSnapshot;
  /** The pruned model's. */
  after: ModelSnapshot;
  /** Each layer before and after. */
  layers: LayerPruneReport[];
  /** Zeros in each weight of the pruned model. */
  weights: WeightSparsity[];
  /** Zeros among all weights of the pruned model. */
  sparsity: number;
  /** Structured pruning with `structured.parameters`: the ratio found, applied to every layer without a perLayer ratio. */
  ratio?: number;
  /** Magnitude pruning: zeros among the weights it targeted (the kernels of the pruned layers). */
  targetSparsity?: number;
  /** Magnitude pruning: the schedule followed and the mask updates made (step, sparsity). */
  schedule?: {
    /** The schedule's name. */
    name: string;
    /** Its arguments. */
    config: Record<string, number>;
  };
  /** Magnitude pruning: each mask update, at which fine-tuning step and to what sparsity. */
  maskUpdates?: {
    /** The fine-tuning step (0-based). */
    step: number;
    /** The sparsity the masks were set to. */
    sparsity: number;
  }[];
  /** Fine-tuning history (per fit, for iterative structured pruning one entry per round). */
  history?: Record<string, number[]>[];
}

function countZeros(t: Tensor): number {
  const d = t.data as Float32Array;
  let zeros = 0;
  for (let i = 0; i < d.length; i++) if (d[i] === 0) zeros++;
  return zeros;
}

/** Zeros in each of the model's weights. */
export function weightSparsity(model: Model): WeightSparsity[] {
  return [...model.weights].map(([name, t]) => {
    const zeros = countZeros(t);
    return { name, shape: [...t.shape], elements: t.size, zeros, sparsity: t.size ? zeros / t.size : 0 };
  });
}

function unitsOf(layer: Layer): number | undefined {
  if (layer instanceof Conv2D || layer instanceof Conv2DTranspose) return layer.filters;
  if (layer instanceof Dense) return layer.units;
  return undefined;
}

/** Per-layer rows comparing two models whose layers carry the same names. */
export function layerReports(before: Sequential, after: Sequential, prunedLayers: ReadonlySet<string>): LayerPruneReport[] {
  const shapesBefore = before.layerShapes();
  const shapesAfter = after.layerShapes();
  return after.layers.map((layer, i) => {
    const old = before.layers.find((l) => l.name === layer.name) ?? before.layers[i]!;
    const weights = [...after.weights].filter(([name]) => name.startsWith(`${layer.name}/`));
    const elements = weights.reduce((n, [, t]) => n + t.size, 0);
    const zeros = weights.reduce((n, [, t]) => n + countZeros(t), 0);
    const kernel = after.weights.get(`${layer.name}/kernel`);
    const unitsBefore = unitsOf(old);
    const unitsAfter = unitsOf(layer);
    return {
      name: layer.name!,
      className: layer.className,
      ...(unitsBefore !== undefined && unitsAfter !== undefined ? { units: [unitsBefore, unitsAfter] as [number, number] } : {}),
      parametersBefore: old.countParams(shapesBefore[before.layers.indexOf(old)]!),
      parametersAfter: layer.countParams(shapesAfter[i]!),
      nonZeroAfter: elements - zeros,
      sparsity: elements ? zeros / elements : 0,
      ...(kernel ? { kernelSparsity: countZeros(kernel) / kernel.size } : {}),
      pruned: prunedLayers.has(layer.name!),
    };
  });
}

/**
 * One row per weight of a pruned imported graph (a graph has nodes, not Kiln layers): the weight's
 * name, the op of the node reading it, its size, non-zero count and sparsity, and whether it was pruned.
 */
export function graphWeightReports(after: GraphModel, pruned: ReadonlySet<string>): LayerPruneReport[] {
  const uses = after.parameterUses();
  return [...after.weights].map(([name, t]) => {
    const zeros = countZeros(t);
    const sparsity = t.size ? zeros / t.size : 0;
    return {
      name,
      className: uses.find((u) => u.parameter === name)?.op ?? '',
      parametersBefore: t.size,
      parametersAfter: t.size,
      nonZeroAfter: t.size - zeros,
      sparsity,
      ...(pruned.has(name) ? { kernelSparsity: sparsity } : {}),
      pruned: pruned.has(name),
    };
  });
}

/** Fraction of test examples a classifier gets right (argmax of its outputs against integer labels). */
export async function classifierAccuracy(model: Model, x: ModelInputs, y: Tensor, batchSize = 256): Promise<number> {
  const scores = await model.predict(x, { batchSize });
  return evaluateClassifier(y as never, scores as never).accuracy;
}

/** How latency is measured. */
export type LatencyOptions = {
  /** Examples per batch (default 64). */
  batchSize?: number;
  /** Timed runs of each model, after 3 warm-up runs; the median is reported (default 30). */
  runs?: number;
  /** Seed of the random input data (default 7). */
  seed?: number;
};

/** One input of a model's saved file, as latency runs feed it. */
export interface FileInput {
  name: string;
  shape: number[];
  dtype: DType;
}

/**
 * What a model's saved file is fed: Kiln's input for a layer model; an imported graph's own inputs
 * (names and shapes, channels-first for a PyTorch export; token ids and masks for a text model), since
 * its file is the original graph.
 */
export function fileInputs(model: Model): FileInput[] {
  if (!(model instanceof GraphModel)) return [{ name: INPUT_NAME, shape: model.inputShape, dtype: 'float32' }];
  return [{ ...model.modelInput, dtype: model.inputDtype }, ...model.otherInputs.map((o) => ({ name: o.name, shape: o.shape, dtype: o.dtype }))];
}

/**
 * Median inference time per batch of each model's saved file, measured interleaved (one run of each
 * in turn) in the runtime worker, so that load from other processes hits every model alike.
 */
export async function measureLatency(models: readonly Model[], options: LatencyOptions = {}): Promise<number[]> {
  return medianLatencies(
    models.map((m) => ({ onnx: m.toOnnx(), inputs: fileInputs(m) })),
    options,
  );
}

/** measureLatency for .onnx files that read the same inputs (an imported model and its pruned copy). */
export function measureModelLatency(files: readonly Uint8Array[], inputs: readonly FileInput[], options: LatencyOptions = {}): Promise<number[]> {
  return medianLatencies(
    files.map((onnx) => ({ onnx, inputs })),
    options,
  );
}

async function medianLatencies(models: readonly { onnx: Uint8Array; inputs: readonly FileInput[] }[], options: LatencyOptions): Promise<number[]> {
  const batchSize = options.batchSize ?? 64;
  const runs = options.runs ?? 30;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new KilnError('INVALID_ARGUMENT', `latency batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(runs) || runs < 1) throw new KilnError('INVALID_ARGUMENT', `latency runs must be a positive integer, got ${runs}`);
  const runtime = sharedRuntime();
  const sessions = await Promise.all(models.map((m) => runtime.load(m.onnx)));
  try {
    const rng = new Random(options.seed ?? 7);
    // Random floats; integer inputs (token ids, attention masks) all 1: a valid id and an unmasked token.
    const inputs = models.map((m) =>
      Object.fromEntries(
        m.inputs.map((input) => {
          const shape = [batchSize, ...input.shape];
          const data = allocate(input.dtype, shape.reduce((a, b) => a * b, 1));
          if (input.dtype === 'float32') for (let i = 0; i < data.length; i++) data[i] = rng.next();
          else (data as AnyTypedArray).fill((input.dtype === 'int64' ? 1n : 1) as never);
          return [input.name, new Tensor(data as never, shape, input.dtype)];
        }),
      ),
    );
    const times: number[][] = models.map(() => []);
    for (let r = -3; r < runs; r++) {
      for (let k = 0; k < models.length; k++) {
        const t0 = performance.now();
        await runtime.run(sessions[k]!, inputs[k]!);
        if (r >= 0) times[k]!.push(performance.now() - t0);
      }
    }
    return times.map((t) => {
      const s = [...t].sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    });
  } finally {
    await Promise.all(sessions.map((s) => runtime.release(s)));
  }
}

/** What to measure besides size and FLOPs, before and after. */
export interface SnapshotOptions {
  /** Test data for the accuracy before and after. */
  evaluation?: {
    /** Test inputs (tensors by input name for a model with several). */
    x: ModelInputs;
    /** Test labels. */
    y: Tensor;
  };
  /** Measure inference latency (default batch 64, 30 runs each, interleaved). */
  latency?:
    | boolean
    | {
        /** Examples per run (default 64). */
        batchSize?: number;
        /** Timed runs per model (default 30). */
        runs?: number;
      };
}

/** Checks evaluation data fits the model (inputs, as many labels as examples) before any work. */
export function checkEvaluation(model: Model, evaluation: NonNullable<SnapshotOptions['evaluation']>): void {
  const rows = model.inputRows(evaluation.x, 'evaluation x');
  if (!(evaluation.y instanceof Tensor) || evaluation.y.shape[0] !== rows.n) {
    throw new KilnError('INVALID_DATA', `evaluation x has ${rows.n} examples but evaluation y has ${evaluation.y instanceof Tensor ? evaluation.y.shape[0] : 'no tensor of'} labels: they must match`);
  }
}

/** Cost (and, when asked, accuracy and latency) of the model before and after pruning. */
export async function snapshots(before: Model, after: Model, options: SnapshotOptions): Promise<[ModelSnapshot, ModelSnapshot]> {
  const a: ModelSnapshot = modelCost(before);
  const b: ModelSnapshot = modelCost(after);
  if (options.evaluation) {
    a.accuracy = await classifierAccuracy(before, options.evaluation.x, options.evaluation.y);
    b.accuracy = await classifierAccuracy(after, options.evaluation.x, options.evaluation.y);
  }
  if (options.latency) {
    const settings = options.latency === true ? {} : options.latency;
    const [ta, tb] = await measureLatency([before, after], settings);
    a.latencyMs = ta;
    b.latencyMs = tb;
    a.latencyBatchSize = b.latencyBatchSize = settings.batchSize ?? 64;
  }
  return [a, b];
}
