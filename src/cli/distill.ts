import { KilnError } from '../errors.js';
import { distill } from '../optimize/distill/distill.js';
import { asOnnxModel, classifierScores } from '../optimize/distill/teacher.js';
import { evaluateClassifier, labelledPositions } from '../train/metrics.js';
import { resolveOptimizer } from '../train/optimizers.js';
import type { Command } from './command.js';
import { importOptions, IMPORT_OPTIONS, requireOneInput } from './import-options.js';
import { loadSplits } from './examples.js';
import { Tensor } from '../tensor.js';
import { GraphModel } from '../train/graph-model.js';
import { Sequential } from '../train/sequential.js';
import { formatDuration, formatNumber, formatTable } from '../text/format.js';
import { progressOutput } from '../text/progress-output.js';
import { AUGMENT_OPTIONS, augmentFromOptions } from './train.js';
import { modelFromSpec } from '../train/model-from-spec.js';
import { ignoreClassOption, IGNORE_CLASS_OPTION } from './classifier-loss.js';
import { scoresClassAxis } from '../train/sparse-labels.js';

export const distillCommand: Command = {
  name: 'distill',
  summary: "Distill a teacher (any ONNX classifier) into a smaller student trained on the teacher's softened outputs",
  usage: 'kiln distill --teacher teacher.onnx [--student <tutorial-cnn|small-vgg|model.onnx|exported.onnx|model.json>] --dataset <name|path> --out student.onnx',
  options: [
    { name: 'teacher', type: 'string', description: 'the teacher: any ONNX classifier (logits out, or a final Softmax whose input is read)' },
    { name: 'student', type: 'string', description: "preset, Kiln .onnx, an exported .onnx (PyTorch, tf2onnx) or JSON list of layers (default: the teacher's family at <= 25% of its parameters)" },
    { name: 'dataset', type: 'string', description: 'data set name or path, or a directory of NumPy arrays (x_train.npy, y_train.npy, x_test.npy, y_test.npy; one x_<split>.<input>.npy per input)', default: 'embedded' },
    { name: 'temperature', type: 'number', description: 'softmax temperature T', default: 4 },
    { name: 'alpha', type: 'number', description: 'weight of the hard-label loss (1 - alpha goes to the teacher term)', default: 0.1 },
    { name: 'epochs', type: 'number', integer: true, min: 1, description: 'epochs to train the student', default: 3 },
    { name: 'batch-size', type: 'number', integer: true, min: 1, description: 'examples per step', default: 64 },
    { name: 'optimizer', type: 'string', description: 'sgd, adam, adamw, rmsprop or adagrad', default: 'adam' },
    { name: 'lr', type: 'number', description: "learning rate (default: the optimizer's Keras default)" },
    { name: 'validation-split', type: 'number', description: 'fraction of training data held out', default: 0.1 },
    IGNORE_CLASS_OPTION,
    ...AUGMENT_OPTIONS,
    { name: 'seed', type: 'number', integer: true, description: 'seed for the default student and shuffling', default: 42 },
    { name: 'out', type: 'string', description: 'where to save the student', default: 'student.onnx' },
    // For an exported --student: how Kiln's data meets its input.
    ...IMPORT_OPTIONS.filter((o) => ['layout', 'scale', 'mean', 'std', 'dimension'].includes(o.name)),
  ],
  async run({ options }, out) {
    if (!options.teacher) throw new KilnError('INVALID_ARGUMENT', 'kiln distill: give the teacher, e.g. --teacher model.onnx');
    const augment = augmentFromOptions(options);
    const data = await loadSplits(String(options.dataset));
    const first = data.train.x instanceof Tensor ? data.train.x : Object.values(data.train.x)[0]!;
    const inputShape = first.shape.slice(1);
    const teacher = await asOnnxModel(String(options.teacher));
    const seed = Number(options.seed);
    const chosen = options.student ? await modelFromSpec(String(options.student), inputShape, data.classNames.length, seed, () => importOptions(options, seed), data.train.x) : undefined;
    requireOneInput(chosen, String(options.student), data.train.x);
    if (options.dimension !== undefined && !(chosen instanceof GraphModel)) throw new KilnError('INVALID_ARGUMENT', '--dimension sizes the free input dimensions of an imported --student (file.onnx written by another tool)');
    if (chosen && !(chosen instanceof Sequential || chosen instanceof GraphModel)) {
      throw new KilnError('NOT_TRAINABLE', `--student '${String(options.student)}' is no model Kiln trains`);
    }
    const student = chosen as Sequential | GraphModel | undefined;
    const optimizer = resolveOptimizer({ name: String(options.optimizer), config: options.lr !== undefined ? { learningRate: Number(options.lr) } : {} });
    out(`Distilling ${options.teacher} into ${options.student ?? 'the default student'} on ${options.dataset} (T = ${options.temperature}, alpha = ${options.alpha})`);
    // By default the label the student, or else the teacher, was trained to ignore (-100 on a token classifier's padding).
    const ignoreClass = ignoreClassOption(options, ...(student ? [student.metadata] : []), new Map(Object.entries(teacher.description.metadata)));
    const t0 = performance.now();
    const result = await distill({
      teacher,
      student,
      x: data.train.x,
      y: data.train.y,
      temperature: Number(options.temperature),
      alpha: Number(options.alpha),
      epochs: Number(options.epochs),
      batchSize: Number(options['batch-size']),
      optimizer,
      validationSplit: Number(options['validation-split']) || undefined,
      seed: Number(options.seed),
      stream: progressOutput(out),
      studentOptions: { seed: Number(options.seed) },
      augment,
      ignoreClass,
    });
    const seconds = (performance.now() - t0) / 1000;
    await result.student.save(String(options.out));
    // The teacher's scores counted over the positions the student's are (the ignored label left out).
    const teacherScores = await classifierScores(teacher, data.test.x);
    const classAxis = scoresClassAxis(teacherScores.shape, data.test.y.shape);
    const rows = ignoreClass === undefined ? undefined : labelledPositions(teacherScores.data, teacherScores.shape, classAxis, data.test.y.data, ignoreClass);
    const teacherTest = rows ? evaluateClassifier(rows.truth, rows.scores) : evaluateClassifier(data.test.y, teacherScores);
    const studentTest = await result.student.evaluate(data.test.x, data.test.y);
    out('');
    out(
      formatTable(
        [
          ['parameters', formatNumber(result.teacherParameters), `${formatNumber(result.studentParameters)} (${((100 * result.studentParameters) / result.teacherParameters).toFixed(1)}%)`],
          ['test accuracy', `${(100 * teacherTest.accuracy).toFixed(2)}%`, `${(100 * studentTest.accuracy!).toFixed(2)}%`],
          ['test macro F1', teacherTest.macroF1.toFixed(4), studentTest.macroF1!.toFixed(4)],
        ],
        { header: ['', 'Teacher', 'Student'], align: ['left', 'right', 'right'] },
      ),
    );
    out('');
    const teacherRuns = augment ? 'teacher on each augmented batch' : 'teacher over the training set';
    const read = result.teacherOutput === 'probabilities' ? 'probabilities (their logarithms used as logits)' : result.teacherLogitsFrom === teacher.primaryOutput ? 'logits' : `logits: the input '${result.teacherLogitsFrom}' of its final Softmax`;
    out(`Distilled in ${formatDuration(seconds * 1000)} (${teacherRuns}: ${formatDuration(result.teacherSeconds * 1000)}; its outputs read as ${read})`);
    out(`Saved ${options.out}`);
    return 0;
  },
};
