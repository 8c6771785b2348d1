// Owns a compiled model's steps at run time: the loss, optimizer and metrics compile() resolved, the
// ONNX Runtime sessions (or replicas) the training and evaluation steps run in, opening and releasing
// them, and running the evaluation step over data.
import type { Runtime } from '../runtime/runtime.js';
import type { SessionInfo } from '../runtime/protocol.js';
import type { InputRows } from '../model/input-rows.js';
import { Tensor } from '../tensor.js';
import type { Loss } from './losses.js';
import type { Optimizer } from './optimizers.js';
import { ReplicaSet } from './replicas.js';
import { countedIn, countOutputs, type CompiledTraining, type TrainingStepOptions } from './training-step.js';

export interface CompiledSteps {
  /**
   * The model's namespace for its training state in the worker (weights, optimizer slots, mask): every
   * session of these steps is loaded with it, so models training at once on one runtime stay apart.
   */
  stateScope: string;
  loss: Loss;
  optimizer: Optimizer;
  metrics: string[];
  training: CompiledTraining;
  trainSession?: SessionInfo;
  evalSession?: SessionInfo;
  /** Set while the step runs on replicas (FitArgs.replicas). */
  replicas?: ReplicaSet;
  /** The options compile() built the step with (the DP-SGD step is built from them too). */
  stepOptions: TrainingStepOptions;
  /** The DP-SGD training step (fit's `privacy`), compiled on first use; same state as `training`. */
  privateTraining?: CompiledTraining;
  privateSession?: SessionInfo;
}

let scopesMade = 0;

/** A state namespace no other compiled steps in this process use (see CompiledSteps.stateScope). */
export function newStateScope(): string {
  return `steps-${++scopesMade}`;
}

/** Lets go of the steps' sessions and replicas without waiting: they load again on demand. */
export function releaseSessions(runtime: Runtime, c: CompiledSteps): void {
  for (const s of [c.trainSession, c.evalSession, c.privateSession]) if (s) void runtime.release(s).catch(() => undefined);
  c.trainSession = c.evalSession = c.privateSession = undefined;
  void c.replicas?.close().catch(() => undefined);
  c.replicas = undefined;
}

/**
 * Makes the training step ready on `replicas` workers: replicas of another count are closed first, and
 * the one-session step (kept across fit() calls) loads only when a single replica trains.
 */
export async function openTrainingSessions(runtime: Runtime, c: CompiledSteps, replicas: number, cores: number): Promise<void> {
  if (c.replicas && c.replicas.count !== replicas) {
    await c.replicas.close();
    c.replicas = undefined;
  }
  if (replicas > 1) c.replicas ??= await ReplicaSet.open(runtime, c.training, replicas, Math.max(1, Math.floor(cores / replicas)), c.stateScope);
  // 'extended', not 'all': the NCHWc layout pass adds reorders around every Conv of the backward
  // pass; without it the step ran 4–8% faster (bench/train/throughput.ts --sweep).
  else c.trainSession ??= await runtime.load(c.training.trainStep, { optimizationLevel: 'extended', stateScope: c.stateScope });
}

/** Loss and accuracy (if compiled with it) on data, using the compiled evaluation step. */
export async function evaluateSteps(
  runtime: Runtime,
  c: CompiledSteps,
  outputShape: number[],
  x: InputRows,
  labels: Tensor,
  batchSize: number,
): Promise<{ loss: number; accuracy?: number; predictions: Float32Array }> {
  c.evalSession ??= await runtime.load(c.training.evalStep, { stateScope: c.stateScope });
  const n = x.n;
  const rowSize = outputShape.reduce((a, b) => a * b, 1);
  const predictions = new Float32Array(n * rowSize);
  let lossSum = 0;
  let correct = 0;
  // Examples, or the labelled positions of a loss over positions (token labels), which weight each batch.
  let counted = 0;
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const out = await runtime.run(c.evalSession, { ...x.slice(start, end).feeds, labels: labels.slice(start, end) }, { fetch: ['loss', 'predictions', ...countOutputs(c.training)] });
    const weight = countedIn(out, end - start);
    lossSum += (out.loss!.data as Float32Array)[0]! * weight;
    counted += weight;
    if (out.correct) correct += (out.correct.data as Float32Array)[0]!;
    predictions.set(out.predictions!.data as Float32Array, start * rowSize);
  }
  const mean = (sum: number) => (counted > 0 ? sum / counted : 0);
  return { loss: mean(lossSum), ...(c.training.accuracy ? { accuracy: mean(correct) } : {}), predictions };
}
