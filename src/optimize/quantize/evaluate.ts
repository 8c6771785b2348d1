import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KilnError, formatShape } from '../../errors.js';
import { decodeModel } from '../../graph/proto.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { SessionInfo } from '../../runtime/protocol.js';
import { concatRows, Tensor } from '../../tensor.js';
import { accuracy, predictedLabels } from '../../train/metrics.js';
import { positionScores } from '../../train/metric-inputs.js';
import { scoresClassAxis } from '../../train/sparse-labels.js';
import { examplesIn, sliceInputs, type ModelInputs } from '../../model/input-rows.js';
import { trainedOutput } from '../../model/trained-output.js';

/** Data to compare the float and quantized models on. */
export interface EvaluationData {
  /**
   * Test inputs (channels-last images are laid out for the model as calibration data are); for a model
   * of several inputs (input_ids and attention_mask), tensors by input name.
   */
  x: ModelInputs;
  /** Class labels [N]; without them only latency and agreement with the float model are measured. */
  y?: Tensor;
  /** Batch size of the latency measurement (default 64). */
  batchSize?: number;
  /** Timed runs per model (default 30); the median is reported. */
  latencyRuns?: number;
}

/** One model's accuracy and latency. */
export interface ModelMeasurement {
  /** Top-1 accuracy on the evaluation data (when labels were given). */
  accuracy?: number;
  /** Median milliseconds per batch of `batchSize`, through Kiln's runtime worker. */
  latencyMs: number;
}

/** The float model against the quantized one, measured in the same run. */
export interface Comparison {
  /** The float model. */
  before: ModelMeasurement;
  /** The quantized model. */
  after: ModelMeasurement;
  /** Batch size of the latency measurement. */
  batchSize: number;
  /** Fraction of examples where the quantized model predicts the float model's class. */
  agreement: number;
  /** Largest |float − quantized| over all outputs, and the largest |float| for scale. */
  maxAbsDiff: number;
  /** Largest |float output|, to judge maxAbsDiff against. */
  maxAbsFloat: number;
  /**
   * Node count per op type in the graphs ONNX Runtime runs after its optimizations, float and
   * quantized: which QDQ groups it fused into integer kernels (QLinearMatMul, QGemm, ...) and what
   * it left in float.
   */
  runtimeOps: {
    /** Node count per op type in the float model's optimized graph. */
    before: Record<string, number>;
    /** Node count per op type in the quantized model's optimized graph. */
    after: Record<string, number>;
  };
}

/** Op counts of a serialized graph, without domains (QLinearMatMul, not com.microsoft.QLinearMatMul). */
function countOps(bytes: Uint8Array): Record<string, number> {
  const ops: Record<string, number> = {};
  for (const n of decodeModel(bytes).graph?.node ?? []) ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
  return ops;
}

async function predictAll(runtime: Runtime, session: SessionInfo, feeds: Record<string, Tensor>, batchSize: number, output: string): Promise<Tensor> {
  const n = examplesIn(feeds);
  const parts: Tensor[] = [];
  for (let start = 0; start < n; start += batchSize) parts.push((await runtime.run(session, sliceInputs(feeds, start, start + batchSize) as Record<string, Tensor>))[output]!);
  return concatRows(parts);
}

/**
 * Accuracy of a float model and its quantized version on the same data, their agreement, and their
 * latency at one batch size, timed alternately (float, quantized, float, ...) so that load from other
 * processes affects both alike.
 */
export async function compareModels(floatBytes: Uint8Array, quantizedBytes: Uint8Array, data: EvaluationData & { x: Record<string, Tensor> }, runtime: Runtime): Promise<Comparison> {
  const n = examplesIn(data.x);
  if (n === 0) throw new KilnError('INVALID_DATA', 'evaluation data is empty');
  if (data.y && data.y.shape[0] !== n) throw new KilnError('INVALID_DATA', `evaluation x has ${n} examples but y has ${data.y.shape[0]}: they must match`);
  const batchSize = data.batchSize ?? 64;
  const runs = data.latencyRuns ?? 30;
  // The measured sessions also write the graphs they run, to report ONNX Runtime's fusions.
  const dir = await mkdtemp(join(tmpdir(), 'kiln-compare-'));
  const optimized = [join(dir, 'float.onnx'), join(dir, 'quantized.onnx')] as const;
  const sessions: SessionInfo[] = [];
  try {
    for (const [k, bytes] of [floatBytes, quantizedBytes].entries()) sessions.push(await runtime.load(bytes, { optimizedModelFile: optimized[k] }));
    const runtimeOps = { before: countOps(await readFile(optimized[0])), after: countOps(await readFile(optimized[1])) };
    // The scores a model of several outputs is trained on (the quantized copy keeps every output's name).
    const output = trainedOutput(decodeModel(floatBytes), 'the float model');
    const [floatOut, quantOut] = [await predictAll(runtime, sessions[0]!, data.x, 256, output), await predictAll(runtime, sessions[1]!, data.x, 256, output)];
    if (formatShape(floatOut.shape) !== formatShape(quantOut.shape)) {
      throw new KilnError('RUNTIME_ERROR', `the quantized model's output ${formatShape(quantOut.shape)} differs from the float model's ${formatShape(floatOut.shape)}`);
    }
    let maxAbsDiff = 0;
    let maxAbsFloat = 0;
    // (An integer or boolean output — a class index, a flag — compares as numbers.)
    const numbers = (t: Tensor) => (t.dtype === 'float32' ? (t.data as Float32Array) : Float64Array.from(t.data as ArrayLike<number | bigint | boolean>, Number));
    const [f, q] = [numbers(floatOut), numbers(quantOut)];
    for (let i = 0; i < f.length; i++) {
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(f[i]! - q[i]!));
      maxAbsFloat = Math.max(maxAbsFloat, Math.abs(f[i]!));
    }
    // Classes on the last axis ([N, classes], or [N, T, classes] for a class per token), or on the one
    // the labels leave out ([N, C, H, W] with labels [N, H, W]); each position agrees or not.
    const classAxis = data.y ? scoresClassAxis(floatOut.shape, data.y.shape) : floatOut.rank - 1;
    const classifier = floatOut.rank >= 2 && floatOut.shape[classAxis]! > 1;
    const rows = (t: Tensor) => (t.rank > 2 ? positionScores(t as Tensor<'float32'>, classAxis) : t);
    const floatLabels = classifier ? predictedLabels(rows(floatOut)) : undefined;
    const quantLabels = classifier ? predictedLabels(rows(quantOut)) : undefined;
    let agree = 0;
    if (floatLabels && quantLabels) for (let i = 0; i < floatLabels.length; i++) if (floatLabels[i] === quantLabels[i]) agree++;
    const batch = sliceInputs(data.x, 0, Math.min(n, batchSize)) as Record<string, Tensor>;
    const times: [number[], number[]] = [[], []];
    for (let r = 0; r < runs + 2; r++) {
      for (const k of [0, 1] as const) {
        const t0 = performance.now();
        await runtime.run(sessions[k]!, batch);
        // The first two rounds warm up allocations and caches.
        if (r >= 2) times[k].push(performance.now() - t0);
      }
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    const measure = (k: 0 | 1, out: Tensor): ModelMeasurement => ({
      ...(data.y && classifier ? { accuracy: accuracy(data.y, out) } : {}),
      latencyMs: median(times[k]),
    });
    return {
      before: measure(0, floatOut),
      after: measure(1, quantOut),
      batchSize: examplesIn(batch),
      agreement: classifier ? agree / floatLabels!.length : NaN,
      maxAbsDiff,
      maxAbsFloat,
      runtimeOps,
    };
  } finally {
    for (const s of sessions) await runtime.release(s).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
