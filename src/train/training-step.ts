import { addGradients } from '../autodiff/gradients.js';
import { KilnError } from '../errors.js';
import { Graph, type Dim, type Value } from '../graph/graph.js';
import type { Layer } from '../layers/index.js';
import type { DType, Tensor } from '../tensor.js';
import { modelToProto } from '../graph/onnx-io.js';
import { commuteReluMaxPool, convolutionsAsGemm, elideOutputIdentities, eliminateDeadNodes, trimUnreadRows } from '../graph/passes.js';
import { encodeModel } from '../graph/proto.js';
import type { GradientOptions } from '../graph/op-definition.js';
import type { Model, ParamInfo } from '../model/model.js';
import type { Loss } from './losses.js';
import { labelledMask, sparseLabels } from './sparse-labels.js';
import type { Optimizer } from './optimizers.js';

/** Where each trainable parameter lives inside the flat parameter vector. */
export interface FlatSlot {
  /** The parameter's name. */
  name: string;
  /** Index of its first element in the flat vector. */
  offset: number;
  /** Number of elements. */
  size: number;
  /** Its shape. */
  shape: number[];
}

/** How a compiled step counts accuracy, from its loss: sparse labels, one-hot, binary (probabilities or logits), or not at all. */
export type AccuracyKind = 'sparse' | 'categorical' | 'binary' | 'binaryLogits' | null;

/** The step output of the labelled positions a loss over positions averages over (CompiledTraining.counted). */
export const COUNTED = 'counted';

/** The step outputs that count a batch, to fetch beside its loss: correct predictions, labelled positions. */
export function countOutputs(training: Pick<CompiledTraining, 'accuracy' | 'counted'>): string[] {
  return [...(training.accuracy ? ['correct'] : []), ...(training.counted ? [COUNTED] : [])];
}

/** What a step's loss and accuracy are means over: its labelled positions (COUNTED, when fetched), else its `rows`. */
export function countedIn(out: Readonly<Record<string, Tensor>>, rows: number): number {
  return out[COUNTED] ? (out[COUNTED].data as Float32Array)[0]! : rows;
}

/** Names of the state tensors the runtime worker holds between steps. */
export const STATE_PARAMS = 'state/params';
export const slotState = (slot: string) => `state/${slot}`;

export interface CompiledTraining {
  /** Forward + backward + update, one ONNX graph. */
  trainStep: Uint8Array;
  /** Forward in inference mode with loss and accuracy counts, reading the same state. */
  evalStep: Uint8Array;
  layout: FlatSlot[];
  totalSize: number;
  /** Non-trainable parameters (moving statistics) kept as state under their own names. */
  frozen: string[];
  /** Train-step outputs to store back into state (output name → state name). */
  store: Record<string, string>;
  accuracy: AccuracyKind;
  /**
   * Whether the steps output COUNTED, the labelled positions the loss averages over (and the accuracy
   * counts): a sparse loss over token or pixel labels, or one with an ignored class. Losses and
   * accuracies of batches are then weighted by it rather than by their examples.
   */
  counted: boolean;
  /**
   * Why this step cannot be split across replicas (data parallelism), or null when it can: see
   * `replicate`.
   */
  notReplicable: string | null;
  /**
   * The same step split for data parallelism over `count` replicas: each replica runs `gradSteps[r]`
   * (forward and backward on its share of the batch, returning the loss, accuracy count and flat
   * gradient `grad`), then every replica runs `applyStep` on all the gradients, weighted by each
   * replica's share of the batch, so all replicas keep identical weights and optimizer state without
   * sending them. Fails with the reason in `notReplicable` when that is set.
   */
  replicate(count: number): ReplicatedTraining;
}

export interface ReplicatedTraining {
  /** One per replica: they differ only in their Dropout seeds. */
  gradSteps: Uint8Array[];
  applyStep: Uint8Array;
  /** Apply-step outputs to store back into state (output name → state name). */
  store: Record<string, string>;
}

/** Inputs of the replicated apply step: replica r's flat gradient and its share of the batch. */
export const replicaGrad = (r: number) => `grad/${r}`;
export const replicaShare = (r: number) => `share/${r}`;

/** Which accuracy Keras' 'accuracy' means for a loss. */
export function accuracyKind(loss: Loss, wantsAccuracy: boolean): AccuracyKind {
  if (!wantsAccuracy) return null;
  if (loss.name === 'sparseCategoricalCrossentropy') return 'sparse';
  if (loss.name === 'categoricalCrossentropy') return 'categorical';
  if (loss.name === 'binaryCrossentropy') return loss.config.fromLogits ? 'binaryLogits' : 'binary';
  return null;
}

/**
 * Number of correct predictions in the batch, as a float scalar: of examples, or for a sparse loss
 * over positions (token labels, an ignored class) of its labelled positions.
 */
function correctCount(graph: Graph, output: Value, labels: Value, kind: AccuracyKind, loss: Loss): Value | null {
  if (!kind) return null;
  let hits: Value;
  if (kind === 'sparse' || kind === 'categorical') {
    const sparse = kind === 'sparse' ? sparseLabels(loss, output.shape!.length) : undefined;
    const predicted = graph.op1('ArgMax', [output], { axis: sparse?.classAxis ?? 1, keepdims: 0 });
    const truth = kind === 'sparse' ? labels : graph.op1('ArgMax', [labels], { axis: 1, keepdims: 0 });
    hits = graph.op1('Equal', [predicted, truth]);
    if (sparse?.ignoreClass !== undefined) hits = graph.op1('And', [hits, labelledMask(graph, labels, sparse.ignoreClass)]);
  } else {
    const threshold = graph.scalar(kind === 'binaryLogits' ? 0 : 0.5);
    const predicted = graph.op1('Greater', [output, threshold]);
    const truth = graph.op1('Greater', [labels, graph.scalar(0.5)]);
    hits = graph.op1('Equal', [predicted, truth]);
  }
  return graph.op1('ReduceSum', [graph.op1('Cast', [hits], { to: 1 })], { keepdims: 0 });
}

/**
 * The number of positions a sparse loss over positions averages over (float scalar): every label of
 * `[N, T, ...]`, less those of the ignored class. Null for a loss of one label per example.
 */
function countedPositions(graph: Graph, output: Value, labels: Value, loss: Loss): Value | null {
  const sparse = sparseLabels(loss, output.shape!.length);
  if (!sparse?.perPosition) return null;
  const counted = sparse.ignoreClass === undefined ? graph.op1('Size', [labels]) : graph.op1('ReduceSum', [graph.op1('Cast', [labelledMask(graph, labels, sparse.ignoreClass)], { to: 7 })], { keepdims: 0 });
  return graph.op1('Cast', [counted], { to: 1 });
}

/**
 * Compiles one training step of a model into a single ONNX graph of standard ops. All trainable
 * parameters arrive as one flat vector (sliced and reshaped in the graph), their gradients are
 * concatenated into one flat gradient, and the optimizer updates the flat vector and its flat slots.
 */
/**
 * Extension points for the optimization passes (pruning, quantization-aware training, distillation),
 * which train through the same compiled step.
 */
export interface TrainingStepOptions {
  /**
   * Adds a flat 0/1 mask input (state MASK_STATE) over the trainable parameters: the gradient and the
   * updated parameters are multiplied by it, so masked weights stay exactly zero (pruning).
   */
  flatMask?: boolean;
  /** Replaces a parameter's value in the forward pass (e.g. fake-quantized weights). */
  transformParam?: (graph: Graph, name: string, value: Value) => Value;
  /** Rewrites each layer's output in the forward pass (e.g. fake-quantized activations). */
  afterLayer?: (graph: Graph, layer: Layer, output: Value, index: number) => Value;
  /** Extra per-batch inputs fed by fit's `extraFeeds` (e.g. a teacher's logits for distillation). */
  extraInputs?: {
    /** The input's name in the step graph. */
    name: string;
    /** Its element type. */
    dtype: DType;
    /** Its shape; 'N' for the batch dimension. */
    shape: Dim[];
  }[];
  /** Formulation choices of the backward pass (e.g. how MaxPool splits a gradient among tied maxima). */
  gradients?: GradientOptions;
  /** Builds the loss instead of the compiled Loss (it may read the extra inputs by name). */
  buildLoss?: (graph: Graph, output: Value, labels: Value, loss: Loss) => Value;
  /**
   * Builds the flat gradient the optimizer applies instead of the plain backward pass (DP-SGD's
   * clipped, noised sum of per-example gradients, src/train/privacy/). Its steps run on one session:
   * they are not split across replicas.
   */
  flatGradient?: FlatGradientBuilder;
  /**
   * A term added to the training step's loss, built from the trainable parameters' values (in layout
   * order, as the forward pass reads them), so its gradient flows through the same backward pass —
   * e.g. FedProx's proximal term μ/2‖w − w_global‖². The evaluation step reports the loss without it.
   */
  penalty?: (graph: Graph, params: { name: string; value: Value }[]) => Value;
}

/** What a {@link TrainingStepOptions.flatGradient} builder gets, and returns the flat gradient [totalSize] from. */
export interface FlatGradientContext {
  /** The training step's graph, forward pass and loss built. */
  graph: Graph;
  /** The batch's (mean) loss. */
  loss: Value;
  /** The labels input, whose first dimension is the batch size. */
  labels: Value;
  /** Each trainable parameter's value in the forward pass, in layout order. */
  params: Value[];
  /** Where each parameter sits in the flat vector (and so in the flat gradient). */
  layout: FlatSlot[];
  /** Length of the flat vector. */
  totalSize: number;
  /** The step's gradient formulation choices, for the gradient rules the builder calls. */
  gradients: GradientOptions | undefined;
}

/** Builds a training step's flat gradient (see TrainingStepOptions.flatGradient). */
export type FlatGradientBuilder = (ctx: FlatGradientContext) => Value;

export const MASK_STATE = 'state/mask';

export function compileTraining(model: Model, loss: Loss, optimizer: Optimizer, accuracy: AccuracyKind, options: TrainingStepOptions = {}): CompiledTraining {
  const infos = model.paramInfos();
  const layout: FlatSlot[] = [];
  let offset = 0;
  for (const p of infos.filter((i) => i.spec.trainable)) {
    const size = p.spec.shape.reduce((a, b) => a * b, 1);
    layout.push({ name: p.name, offset, size, shape: p.spec.shape });
    offset += size;
  }
  const totalSize = offset;
  const frozen = infos.filter((i) => !i.spec.trainable).map((i) => i.name);
  const labelSpec = loss.labelSpec(model.outputShape);

  const build = (training: boolean) => {
    const graph = new Graph(training ? 'kiln_train_step' : 'kiln_eval_step');
    const flat = graph.input(STATE_PARAMS, 'float32', [totalSize]);
    const sliced = new Map<string, Value>();
    const paramValue = (g: Graph, info: ParamInfo): Value => {
      const slot = layout.find((l) => l.name === info.name);
      if (!slot) return g.input(info.name, 'float32', [...info.spec.shape]);
      const piece = g.op1('Slice', [flat, g.int64s([slot.offset], 'starts'), g.int64s([slot.offset + slot.size], 'ends')]);
      const v = g.op1('Reshape', [piece, g.int64s(slot.shape, 'shape')], {}, `${info.name}:value`);
      sliced.set(info.name, v);
      return options.transformParam ? options.transformParam(g, info.name, v) : v;
    };
    const built = model.buildGraph({ training, graph, paramValue, afterLayer: options.afterLayer, logits: loss.config.fromLogits === true });
    void training;
    const labels = graph.input('labels', labelSpec.dtype, ['N', ...labelSpec.shape]);
    // The evaluation step reports the plain loss (e.g. the student's own cross-entropy when distilling).
    if (training) for (const extra of options.extraInputs ?? []) graph.input(extra.name, extra.dtype, extra.shape);
    commuteReluMaxPool(graph);
    trimUnreadRows(graph);
    // A gradient builder of its own reads the Conv nodes (DP-SGD's per-example rules); as a Gemm over
    // the whole batch's patches, a convolution no longer has a per-example form.
    if (!(training && options.flatGradient)) convolutionsAsGemm(graph);
    let lossValue = training && options.buildLoss ? options.buildLoss(graph, built.output, labels, loss) : loss.build(graph, built.output, labels);
    if (training && options.penalty) {
      const params = layout.filter((l) => sliced.has(l.name)).map((l) => ({ name: l.name, value: sliced.get(l.name)! }));
      lossValue = graph.op1('Add', [lossValue, options.penalty(graph, params)]);
    }
    graph.output(lossValue, 'loss');
    const correct = correctCount(graph, built.output, labels, accuracy, loss);
    if (correct) graph.output(correct, 'correct');
    const counted = countedPositions(graph, built.output, labels, loss);
    if (counted) graph.output(counted, COUNTED);
    return { graph, built, lossValue, sliced, flat };
  };

  /**
   * The optimizer's update of the flat parameters, as graph outputs: declares the lr, step and slot
   * inputs, writes new/params (times `mask` when given) and new/<slot>, and returns which state each
   * output is stored into. The training step and the replicas' apply step both end with it.
   */
  const emitUpdate = (graph: Graph, params: Value, grad: Value, mask?: Value): Record<string, string> => {
    const lr = graph.input('lr', 'float32', []);
    const step = graph.input('step', 'float32', []);
    const slotInputs: Record<string, Value> = {};
    for (const s of optimizer.slots) slotInputs[s.name] = graph.input(slotState(s.name), 'float32', [totalSize]);
    const updated = optimizer.update(graph, params, grad, slotInputs, { lr, step });
    // Masked weights stay exactly zero: the update itself is masked too (momentum would move them).
    graph.output(mask ? graph.op1('Mul', [updated.w, mask]) : updated.w, 'new/params');
    const store: Record<string, string> = { 'new/params': STATE_PARAMS };
    for (const s of optimizer.slots) {
      graph.output(updated.slots[s.name]!, `new/${s.name}`);
      store[`new/${s.name}`] = slotState(s.name);
    }
    return store;
  };

  /** Forward and backward of the training step, with the flat gradient in layout order. */
  const buildGradient = () => {
    const t = build(true);
    const g = t.graph;
    const ordered = layout.map((l) => t.sliced.get(l.name)!);
    if (options.flatGradient) {
      const labels = g.value('labels');
      return { t, g, flatGrad: options.flatGradient({ graph: g, loss: t.lossValue, labels, params: ordered, layout, totalSize, gradients: options.gradients }) };
    }
    const grads = addGradients(g, t.lossValue, ordered, options.gradients);
    const flatGrad = g.op1(
      'Concat',
      layout.map((l) => g.op1('Reshape', [grads.get(t.sliced.get(l.name)!.name)!, g.int64s([-1], 'shape')])),
      { axis: 0 },
    );
    return { t, g, flatGrad };
  };

  // Training step.
  const { t, g, flatGrad: rawGrad } = buildGradient();
  let flatGrad = rawGrad;
  const mask = options.flatMask ? g.input(MASK_STATE, 'float32', [totalSize]) : undefined;
  if (mask) flatGrad = g.op1('Mul', [flatGrad, mask]);
  const store = emitUpdate(g, t.flat, flatGrad, mask);
  for (const name of frozen) {
    const next = t.built.updates.get(name);
    if (!next) continue;
    g.output(next, `new/${name}`);
    store[`new/${name}`] = name;
  }

  // Gradient rules build every input's gradient; the ones nothing needs (the input image's) go.
  eliminateDeadNodes(g);
  elideOutputIdentities(g);

  // Evaluation step: also returns the predictions for metrics computed on them.
  const e = build(false);
  e.graph.output(e.built.output, 'predictions');
  eliminateDeadNodes(e.graph);

  // Replicas each normalize with their own share's statistics, so a split step with batch
  // normalization would compute something else than the step on the whole batch; a pruning mask
  // changes during training, and every replica would have to follow it; and a layer-output hook may
  // read the batch too (fake-quantized activations take their range from it).
  const notReplicable =
    t.built.updates.size > 0
      ? 'the model has batch normalization, whose batch statistics would be computed per replica'
      : options.flatMask
        ? 'the step trains under a pruning mask'
        : options.afterLayer
          ? 'the step rewrites layer outputs (e.g. fake-quantized activations, whose ranges come from the batch)'
          : options.flatGradient
            ? 'the step builds its own gradient (DP-SGD clips and noises the whole batch\'s sum in one place)'
            : null;

  const replicate = (count: number): ReplicatedTraining => {
    if (notReplicable) throw new KilnError('INVALID_ARGUMENT', `this training step cannot run on replicas: ${notReplicable}`);
    if (!Number.isInteger(count) || count < 2) throw new KilnError('INVALID_ARGUMENT', `replicas must be an integer >= 2 to split a step, got ${count}`);
    const r = buildGradient();
    r.g.output(r.flatGrad, 'grad');
    eliminateDeadNodes(r.g);
    elideOutputIdentities(r.g);
    const dropouts = r.g.nodes.filter((n) => n.opType === 'Dropout').map((node) => ({ node, seed: node.attrs.seed as number }));
    const gradSteps: Uint8Array[] = [];
    for (let k = 0; k < count; k++) {
      // Each replica draws its own masks: with one seed, every replica would drop the same units.
      for (const d of dropouts) d.node.attrs = { ...d.node.attrs, seed: (d.seed + k * 1_000_003) % 2147483647 };
      gradSteps.push(encodeModel(modelToProto(r.g, {}, model.graphOpset)));
    }
    const a = new Graph('kiln_apply_step');
    const params = a.input(STATE_PARAMS, 'float32', [totalSize]);
    let sum: Value | undefined;
    for (let k = 0; k < count; k++) {
      const part = a.op1('Mul', [a.input(replicaGrad(k), 'float32', [totalSize]), a.input(replicaShare(k), 'float32', [])]);
      sum = sum ? a.op1('Add', [sum, part]) : part;
    }
    const applyStore = emitUpdate(a, params, sum!);
    eliminateDeadNodes(a);
    elideOutputIdentities(a);
    return { gradSteps, applyStep: encodeModel(modelToProto(a, {}, model.graphOpset)), store: applyStore };
  };

  return {
    trainStep: encodeModel(modelToProto(g, {}, model.graphOpset)),
    evalStep: encodeModel(modelToProto(e.graph, {}, model.graphOpset)),
    layout,
    totalSize,
    frozen,
    store,
    accuracy,
    counted: sparseLabels(loss, model.outputShape.length + 1)?.perPosition ?? false,
    notReplicable,
    replicate,
  };
}
