import { KilnError, formatShape } from '../../errors.js';
import type { AugmentOptions } from '../../data/augment.js';
import { checkInputsForm, examplesIn, sliceInputs, type ModelInputs } from '../../model/input-rows.js';
import { Tensor } from '../../tensor.js';
import type { Callback } from '../../train/callbacks.js';
import { sparseCategoricalCrossentropy } from '../../train/losses.js';
import type { History } from '../../train/fit-loop.js';
import { GraphModel } from '../../train/graph-model.js';
import { Sequential } from '../../train/sequential.js';
import { adam, resolveOptimizer, type Optimizer } from '../../train/optimizers.js';
import { checkDistillationOptions, distillationLoss } from './loss.js';
import { defaultStudent, graphParameterCount, teacherParameterCount, type DefaultStudentOptions } from './student.js';
import type { OnnxModel } from '../../model/onnx-model.js';
import { CLASS_NAMES_METADATA_KEY, parseClassNames } from '../../model/class-names.js';
import { asOnnxModel, teacherLogits, type ClassifierOutputKind, type ClassifierSource } from './teacher.js';

/** Name of the training step's extra input that carries the batch's teacher logits. */
export const TEACHER_LOGITS_INPUT = 'teacher_logits';
/** Metadata key under which a distilled student records how it was made. */
export const DISTILLATION_METADATA_KEY = 'kiln.distillation';

/** What `distill` takes: the teacher, the data, and the training settings (as `fit()`'s). */
export interface DistillArgs<S extends Sequential | GraphModel = Sequential> {
  /**
   * Any ONNX classifier with `[N, classes]` (or a token classifier's `[N, T, classes]`) logits or probabilities out (a file, bytes, an OnnxModel, a
   * Kiln model or an imported GraphModel), fed x as the student is (one tensor, or tensors by input
   * name for models of several inputs); one ending in Softmax is read before it.
   */
  teacher: ClassifierSource;
  /**
   * The model to train: a Kiln Sequential or an imported graph (GraphModel, trained through its own
   * compiled step from the logits before a final Softmax); default: `defaultStudent(teacher)`, the
   * teacher's family at ≤ 25% of its parameters.
   */
  student?: S;
  /**
   * Training images `[N, ...]` (channels-last, as every Kiln loader returns them); for a teacher and a
   * student of several inputs (input_ids and attention_mask), tensors by input name, as fit takes them.
   */
  x: ModelInputs;
  /** Class labels `[N]`, or `[N, T]` for a teacher and student of a class per token (`[N, T, classes]`). */
  y: Tensor;
  /** Softmax temperature for both models (default 4). */
  temperature?: number;
  /** Weight of the hard-label cross-entropy; the teacher term gets 1 − alpha (default 0.1). */
  alpha?: number;
  /** Epochs to train the student (default 1). */
  epochs?: number;
  /** Examples per step (default 32). */
  batchSize?: number;
  /** Default: Adam with Keras' defaults. */
  optimizer?: string | Optimizer;
  /** Fraction of x held out for validation, as in `fit()`. */
  validationSplit?: number;
  /** Validation data, as in `fit()`. */
  validationData?: [ModelInputs, Tensor];
  /** Shuffle before each epoch (default true). */
  shuffle?: boolean;
  /** Seed for shuffling (default: the student's seed). */
  seed?: number;
  /** Hooks called during training, as in `fit()`. */
  callbacks?: Callback[];
  /** 0 silent, 1 progress bar (default), 2 one line per epoch. */
  verbose?: 0 | 1 | 2;
  /** Where progress goes (default process.stdout). */
  stream?: NodeJS.WritableStream & {
    /** A terminal gets a redrawn progress bar. */
    isTTY?: boolean;
    /** Width of the terminal. */
    columns?: number;
  };
  /** What the teacher outputs; 'auto' (default) recognizes probabilities (rows ≥ 0 summing to 1). */
  teacherOutput?: ClassifierOutputKind | 'auto';
  /**
   * A label that marks positions to leave out of both terms (the hard loss's ignoreClass: -100 on a
   * token classifier's padding), for labels `[N, T]` with a teacher and student of `[N, T, classes]`.
   */
  ignoreClass?: number;
  /** Options for the default student. */
  studentOptions?: DefaultStudentOptions;
  /**
   * Augment the student's batches (see FitArgs.augment); the teacher then runs on each augmented batch,
   * so both models always see the same images ("consistent" distillation).
   */
  augment?: AugmentOptions;
}

/** What `distill` returns: the trained student and how it was made. */
export interface DistillResult<S extends Sequential | GraphModel = Sequential> {
  /** The trained student (metadata 'kiln.distillation' records the settings). */
  student: S;
  /** Its training history. */
  history: History;
  /** The temperature used. */
  temperature: number;
  /** The hard-label weight used. */
  alpha: number;
  /** Parameters of the teacher. */
  teacherParameters: number;
  /** Parameters of the student. */
  studentParameters: number;
  /** What the teacher's scores were read as ('logits' also when read before a final Softmax). */
  teacherOutput: ClassifierOutputKind;
  /** The teacher's graph value its logits were read from (its output, or the input of a final Softmax). */
  teacherLogitsFrom: string;
  /** Seconds spent running the teacher over the training set. */
  teacherSeconds: number;
}

/**
 * Knowledge distillation: trains the student on α · CE(y, student) + (1 − α) · T² ·
 * KL(softmax(teacher / T) ‖ softmax(student / T)), compiled into the student's own training step —
 * a Kiln Sequential's, or an imported graph's (GraphModel), whose step reads its logits before a
 * final Softmax. A teacher ending in Softmax is read before it too (teacher.ts).
 *
 * Without augmentation the teacher runs in ONNX Runtime over the training set once, before the first
 * epoch, and each batch's rows of its logits are fed to the step next to the images: every epoch sees
 * the same inputs, so the cache is exactly what a per-batch teacher pass would give. With `augment`,
 * the teacher runs on each augmented batch instead. The student is compiled here (a previous compile
 * is replaced).
 */
export async function distill<S extends Sequential | GraphModel = Sequential>(args: DistillArgs<S>): Promise<DistillResult<S>> {
  const temperature = args.temperature ?? 4;
  const alpha = args.alpha ?? 0.1;
  checkDistillationOptions({ temperature, alpha });
  const x = args.x;
  checkInputsForm(x);
  if (x instanceof Tensor && x.rank < 2) throw new KilnError('INVALID_SHAPE', `x must be [N, ...features], got ${formatShape(x.shape)}`);
  if (!args.student && !(x instanceof Tensor && x.dtype === 'float32')) {
    const what = x instanceof Tensor ? `${x.dtype}${x.dtype === 'int64' || x.dtype === 'int32' ? ' (token ids)' : ''}` : `several inputs (${Object.keys(x).join(', ')})`;
    throw new KilnError('INVALID_ARGUMENT', `the default student is a Kiln CNN or MLP reading float images or vectors; the data is ${what}: give a student, e.g. a smaller exported text model loaded as a GraphModel`);
  }
  if (args.augment && !(x instanceof Tensor)) throw new KilnError('INVALID_ARGUMENT', 'augment works on images: x must be one tensor of images');
  // The student checks x before the teacher's pass over it (a wrong input then costs nothing).
  if (args.student instanceof Sequential || args.student instanceof GraphModel) args.student.inputRows(x);
  const teacher = await asOnnxModel(args.teacher);
  const t0 = performance.now();
  // With augmentation only a sample is scored here, to learn the class count and the output kind.
  // The classes on the last axis, or on the one the labels leave out (a segmentation model's [N, C, H, W] with labels [N, H, W]: 1).
  const labelShape = args.y instanceof Tensor ? args.y.shape : undefined;
  const cached = await teacherLogits(teacher, args.augment ? sliceInputs(x, 0, Math.min(256, examplesIn(x))) : x, { outputKind: args.teacherOutput ?? 'auto', labelShape });
  let teacherSeconds = (performance.now() - t0) / 1000;
  // One example's teacher scores: [classes], [T, classes] for a class per token, [classes, H, W] for one
  // per pixel (soft targets per position).
  const perExample = cached.logits.shape.slice(1);
  const classes = cached.logits.shape[cached.classAxis]!;
  const axis = cached.classAxis === perExample.length ? undefined : cached.classAxis;
  if (perExample.length > 1 && !args.student) {
    throw new KilnError('INVALID_ARGUMENT', `the teacher gives a class per position (${formatShape(['N', ...perExample])}) and the default student is a classifier of one class per example: give a student of the same output, e.g. a smaller exported token classifier loaded as a GraphModel`);
  }

  const student: Sequential | GraphModel = args.student ?? defaultStudent(teacher, { inputShape: (x as Tensor).shape.slice(1), numClasses: classes }, args.studentOptions);
  if (!(student instanceof Sequential || student instanceof GraphModel)) {
    throw new KilnError('NOT_TRAINABLE', 'the student must be a trainable model: a Kiln Sequential, or an imported graph (GraphModel) as kiln.loadModel returns them');
  }
  const outShape = student.outputShape;
  if (outShape.length !== perExample.length || outShape.some((d, i) => d !== perExample[i])) {
    throw new KilnError('INVALID_SHAPE', `the student outputs ${formatShape([null, ...outShape])}, the teacher ${formatShape([null, ...perExample])}: both must give one score per class${perExample.length > 1 ? ' at every position' : ''}`);
  }
  // An imported student's step reads the logits before a final Softmax (the loss is from logits); a
  // layer model's last layer must emit them itself.
  if (student instanceof Sequential) {
    const last = student.layers.at(-1)!.getConfig();
    if (last.activation === 'softmax' || student.layers.at(-1)!.className === 'Activation') {
      throw new KilnError('INVALID_ARGUMENT', `the student's last layer applies ${String(last.activation)}: distillation needs the student's logits, so end it with a plain Dense(${classes})`);
    }
  }

  // The label the hard loss ignores (a token classifier's -100) carries no soft term either.
  const ignoreClass = args.ignoreClass;
  const loss = sparseCategoricalCrossentropy({ fromLogits: true, ...(axis !== undefined ? { axis } : {}), ...(ignoreClass !== undefined ? { ignoreClass } : {}) });
  student.compile(
    { optimizer: args.optimizer === undefined ? adam() : resolveOptimizer(args.optimizer), loss, metrics: ['accuracy'] },
    {
      extraInputs: [{ name: TEACHER_LOGITS_INPUT, dtype: 'float32', shape: ['N', ...perExample] }],
      buildLoss: (graph, output, labels, hardLoss) => distillationLoss(graph, output, graph.value(TEACHER_LOGITS_INPUT), labels, { temperature, alpha, hardLoss }),
    },
  );
  const logits = cached.logits;
  const teacherOn = teacherFeeds(teacher, cached.outputKind, labelShape);
  const history = await student.fit(x, args.y, {
    epochs: args.epochs,
    batchSize: args.batchSize,
    shuffle: args.shuffle,
    validationSplit: args.validationSplit,
    validationData: args.validationData,
    seed: args.seed,
    callbacks: args.callbacks,
    verbose: args.verbose,
    stream: args.stream,
    augment: args.augment,
    extraFeeds: args.augment
      ? async (_indices, batch) => {
          const t = performance.now();
          const feeds = await teacherOn(batch);
          teacherSeconds += (performance.now() - t) / 1000;
          return feeds;
        }
      : // fit's indices count rows of x (a validation split only cuts the tail off), so they index the cache.
        (indices) => ({ [TEACHER_LOGITS_INPUT]: logits.gather(indices) }),
  });
  const teacherParameters = teacherParameterCount(teacher);
  const studentParameters = student instanceof GraphModel ? graphParameterCount(student) : student.countParams().total;
  // The student answers the teacher's classes, under the teacher's names, unless it was given its own.
  const teacherNames = parseClassNames(teacher.description.metadata[CLASS_NAMES_METADATA_KEY], 'the teacher');
  if (teacherNames?.length === classes && !student.metadata.has(CLASS_NAMES_METADATA_KEY)) student.classNames = teacherNames;
  student.metadata.set(
    DISTILLATION_METADATA_KEY,
    JSON.stringify({ temperature, alpha, teacherParameters, studentParameters, teacherOutput: cached.outputKind, teacherLogitsFrom: cached.readFrom, epochs: history.epoch.length, augment: args.augment ?? null }),
  );
  return { student: student as S, history, temperature, alpha, teacherParameters, studentParameters, teacherOutput: cached.outputKind, teacherLogitsFrom: cached.readFrom, teacherSeconds };
}

/** The step's teacher input for one batch of images: the teacher run on exactly those images. */
export function teacherFeeds(teacher: OnnxModel, outputKind: ClassifierOutputKind, labelShape?: readonly number[]): (batch: Tensor) => Promise<Record<string, Tensor>> {
  return async (batch) => ({ [TEACHER_LOGITS_INPUT]: (await teacherLogits(teacher, batch, { outputKind, labelShape })).logits });
}
