// Owns Trainer: training from a training package (training-package.ts) with no model structure at
// hand: the package's compiled steps, fed by the same fit loop, argument checks and state sync as a
// TrainableModel, so a page that imports only this trains exactly as fit() does, without the layers.
import { platform } from '#platform';
import { KilnError, formatShape } from '../errors.js';
import { tensorToProto } from '../graph/onnx-io.js';
import { decodeModel, encodeModel } from '../graph/proto.js';
import { Random } from '../random.js';
import { sharedRuntime, type Runtime } from '../runtime/runtime.js';
import type { SessionInfo } from '../runtime/protocol.js';
import { InputRows, type ModelInputs } from '../model/input-rows.js';
import { Tensor } from '../tensor.js';
import type { TrainingControl } from './callbacks.js';
import { decodeCheckpoint, resumePoint } from './checkpoint.js';
import { evaluateSteps, newStateScope, releaseSessions, type CompiledSteps } from './compiled-steps.js';
import { checkFinite, checkFitArgs, prepareLabels, type FitArgs } from './fit-args.js';
import { runEpochs, type History } from './fit-loop.js';
import { resolveLoss } from './losses.js';
import { sparseLabels } from './sparse-labels.js';
import { resolveOptimizer } from './optimizers.js';
import { pullState, pushState, type OptimizerProgress } from './training-state.js';
import { readTrainingPackage, type TrainerManifest, type TrainingPackage } from './training-package.js';

/** An ONNX file with the initializers named in `weights` replaced by their values. */
function withWeights(onnx: Uint8Array, weights: ReadonlyMap<string, Tensor>, file: string): Uint8Array {
  const proto = decodeModel(onnx);
  const graph = proto.graph!;
  const names = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const missing = [...weights.keys()].filter((n) => !names.has(n));
  if (missing.length > 0) throw new KilnError('CORRUPT_FILE', `${file} has no initializer for ${missing.join(', ')}: it does not belong to this package's steps`);
  return encodeModel({ ...proto, graph: { ...graph, initializer: (graph.initializer ?? []).map((t) => (weights.has(t.name ?? '') ? tensorToProto(t.name ?? '', weights.get(t.name ?? '')!) : t)) } });
}

/**
 * Trains a model from a training package (`kiln export-trainer`, exportTrainer): fit, evaluate and
 * predict with the package's own compiled graphs, under Node or in a browser, without Kiln's layers.
 */
export class Trainer implements TrainingControl {
  stopTraining = false;
  private readonly steps: CompiledSteps;
  /** The same map throughout (the fit loop holds it): setWeights replaces entries. */
  private readonly weights: Map<string, Tensor>;
  private readonly progress: OptimizerProgress;
  private readonly runtime: Runtime = sharedRuntime();
  private inferenceSession: SessionInfo | undefined;
  private weightsVersion = 0;

  private constructor(
    /** The package's manifest: Kiln's version, the model's shapes, loss, optimizer and files. */
    readonly manifest: TrainerManifest,
    private readonly files: TrainingPackage['files'],
  ) {
    const m = manifest;
    const optimizer = resolveOptimizer(m.optimizer);
    const loss = resolveLoss(m.loss);
    this.steps = {
      stateScope: newStateScope(),
      loss,
      optimizer,
      metrics: m.metrics,
      training: {
        trainStep: files.trainStep,
        evalStep: files.evalStep,
        layout: m.layout,
        totalSize: m.totalSize,
        frozen: m.frozen,
        store: m.store,
        accuracy: m.accuracy,
        // The package's steps output the labelled positions where its loss is one over positions.
        counted: sparseLabels(loss, m.outputShape.length + 1)?.perPosition ?? false,
        notReplicable: 'a training package carries the one-replica step',
        replicate: () => {
          throw new KilnError('INVALID_ARGUMENT', 'a training package trains on one replica (export the model again to train it on replicas in Node)');
        },
      },
      // The package carries its compiled steps, not the model: no step can be rebuilt from options here.
      stepOptions: {},
    };
    const state = decodeCheckpoint(files.state, m.files.state.path);
    this.weights = state.weights;
    this.progress = { slots: state.slots, step: state.step };
  }

  /** Opens the package in a folder (Node) or at a URL (browser), checked whole and of this Kiln version. */
  static async open(location: string): Promise<Trainer> {
    const pkg = await readTrainingPackage(location);
    return new Trainer(pkg.manifest, pkg.files);
  }

  /** The model's name. */
  get name(): string {
    return this.manifest.name;
  }

  /** One example's input shape (no batch dimension). */
  get inputShape(): number[] {
    return this.manifest.inputShape;
  }

  /** One example's output shape (no batch dimension). */
  get outputShape(): number[] {
    return this.manifest.outputShape;
  }

  private checkInput(x: Tensor, what = 'x'): void {
    const expected = this.inputShape;
    if (x.rank !== expected.length + 1 || x.shape.slice(1).some((d, i) => d !== expected[i])) {
      throw new KilnError('INVALID_SHAPE', `${what} must have shape ${formatShape([null, ...expected])} (batch first), as the training package's model takes it; got ${formatShape(x.shape)}`);
    }
    if (x.dtype !== 'float32') throw new KilnError('INVALID_ARGUMENT', `${what} must be float32, got ${x.dtype}`);
  }

  /** x checked, as the package's steps take it: its one input (training packages hold single-input models). */
  private inputRows(x: ModelInputs, what = 'x'): InputRows {
    if (!(x instanceof Tensor)) throw new KilnError('INVALID_ARGUMENT', `${what} must be a tensor: a training package's model has one input`);
    this.checkInput(x, what);
    return new InputRows({ input: x }, 'input');
  }

  getWeights(): Map<string, Tensor> {
    return this.weights;
  }

  setWeights(values: Map<string, Tensor>): void {
    for (const [name, t] of values) {
      const current = this.weights.get(name);
      if (!current) throw new KilnError('INVALID_ARGUMENT', `the package's model has no weight named '${name}'`);
      if (formatShape(current.shape) !== formatShape(t.shape)) throw new KilnError('INVALID_SHAPE', `weight '${name}': expected shape ${formatShape(current.shape)}, got ${formatShape(t.shape)}`);
    }
    for (const [name, t] of values) this.weights.set(name, t);
    this.weightsVersion++;
    this.dropInference();
  }

  private dropInference(): void {
    const s = this.inferenceSession;
    this.inferenceSession = undefined;
    if (s) void this.runtime.release(s).catch(() => undefined);
  }

  private async pushState(slots = this.progress.slots): Promise<void> {
    await pushState(this.runtime, this.steps, this.weights, slots, undefined);
  }

  private async pullState(withSlots = false): Promise<Map<string, Tensor<'float32'>>> {
    const { weights, slots } = await pullState(this.runtime, this.steps, withSlots);
    this.setWeights(weights);
    return slots;
  }

  /** fit() as a compiled model's: the same arguments, checks, loop and history. */
  async fit(x: Tensor, y: Tensor, args: FitArgs = {}): Promise<History> {
    if (args.replicas !== undefined && args.replicas !== 1) throw new KilnError('INVALID_ARGUMENT', `a training package trains on one replica, got replicas: ${args.replicas}`);
    if (args.privacy !== undefined) throw new KilnError('INVALID_ARGUMENT', 'a training package has no DP-SGD step (fit({privacy}) compiles one from the model, in Node)');
    const data = checkFitArgs(x, y, args, this.steps.loss, this.outputShape, (input, what) => this.inputRows(input, what));
    const c = this.steps;
    // As TrainableModel: 'extended' optimization for the training step (compiled-steps.ts says why).
    c.trainSession ??= await this.runtime.load(c.training.trainStep, { optimizationLevel: 'extended', stateScope: c.stateScope });
    const rng = new Random(args.seed ?? 42);
    const { startEpoch, step, slots } = await resumePoint(args.resumeFrom, c.optimizer.name, { step: this.progress.step, rng, setWeights: (w) => this.setWeights(w) });
    await this.pushState(slots);
    const history = await runEpochs(
      {
        control: this,
        runtime: this.runtime,
        weights: this.weights,
        outputShape: this.outputShape,
        progress: this.progress,
        pull: (withSlots?: boolean) => this.pullState(withSlots),
        push: () => this.pushState(),
        weightsVersion: () => this.weightsVersion,
      },
      c,
      args,
      data,
      { rng, startEpoch, step },
    );
    return history;
  }

  /** Loss and (when the package tracks it) accuracy on (x, y), with the package's evaluation step. */
  async evaluate(
    x: Tensor,
    y: Tensor,
    args: { batchSize?: number } = {},
  ): Promise<{
    /** Mean loss over the examples. */
    loss: number;
    /** Fraction of examples classified right, when the package tracks accuracy. */
    accuracy?: number;
  }> {
    const rows = this.inputRows(x);
    checkFinite(x, 'x');
    const labels = prepareLabels(y, this.steps.loss, this.outputShape, x.shape[0]!);
    await this.pushState();
    const r = await evaluateSteps(this.runtime, this.steps, this.outputShape, rows, labels, args.batchSize ?? 256);
    return { loss: r.loss, ...(r.accuracy !== undefined ? { accuracy: r.accuracy } : {}) };
  }

  /** The model's outputs for x, from the package's inference graph with the current weights. */
  async predict(x: Tensor, args: { batchSize?: number } = {}): Promise<Tensor<'float32'>> {
    this.checkInput(x);
    const batchSize = args.batchSize ?? 32;
    this.inferenceSession ??= await this.runtime.load(withWeights(this.files.inference, this.weights, this.manifest.files.inference.path));
    const n = x.shape[0]!;
    const row = this.outputShape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n * row);
    for (let start = 0; start < n; start += batchSize) {
      const result = (await this.runtime.run(this.inferenceSession, { input: x.slice(start, start + batchSize) }, { fetch: ['output'] })).output!;
      out.set(result.data as Float32Array, start * row);
    }
    return new Tensor(out, [n, ...this.outputShape], 'float32');
  }

  /** The model as a standard .onnx file with the weights trained so far (the package's model.onnx, updated). */
  toOnnx(): Uint8Array {
    return withWeights(this.files.model, this.weights, this.manifest.files.model.path);
  }

  /** Writes toOnnx() (a browser: 'downloads://name.onnx'). */
  async save(file: string): Promise<void> {
    await platform.writeFileAtomic(file, this.toOnnx());
  }

  /** Releases the ONNX Runtime sessions; they load again on demand. */
  dispose(): void {
    releaseSessions(this.runtime, this.steps);
    this.dropInference();
  }
}

/** Opens the training package in a folder (Node) or at a URL (browser): Trainer.open. */
export function loadTrainer(location: string): Promise<Trainer> {
  return Trainer.open(location);
}
