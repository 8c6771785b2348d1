/** `kiln train`: flags in, a trained .onnx file and a line of results out. */
import { KilnError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { loadSplits, splitSize } from './examples.js';
import { GraphModel } from '../train/graph-model.js';
import { modelFromSpec } from '../train/model-from-spec.js';
import { importOptions, IMPORT_OPTIONS, requireOneInput } from './import-options.js';
import { tiedWeightLine } from './info.js';
import { resolveOptimizer } from '../train/optimizers.js';
import { classifierLoss, IGNORE_CLASS_OPTION } from './classifier-loss.js';
import { stringOption } from './args.js';
import type { Command } from './command.js';
import { formatDuration } from '../text/format.js';
import type { AugmentOptions } from '../data/augment.js';
import { progressOutput } from '../text/progress-output.js';
import type { PrivacyOptions } from '../train/privacy/dp-sgd.js';

/** Seeded augmentation of the training batches, shared by train and distill. */
export const AUGMENT_OPTIONS: Command['options'] = [
  { name: 'crop-padding', type: 'number', integer: true, min: 0, description: 'augment: shift each training image by up to N pixels (zero padding, random crop)' },
  { name: 'flip', type: 'boolean', description: 'augment: mirror half of the training images left-right' },
  { name: 'cutout', type: 'number', integer: true, min: 0, description: 'augment: zero an N x N square of each training image at a random position' },
];

export function augmentFromOptions(options: Record<string, unknown>): AugmentOptions | undefined {
  // An absent option is 0 (off); parseArgs has held given ones to non-negative integers.
  const cropPadding = Number(options['crop-padding'] ?? 0);
  const horizontalFlip = options.flip === true;
  const cutout = Number(options.cutout ?? 0);
  const augment: AugmentOptions = { ...(cropPadding > 0 ? { cropPadding } : {}), ...(horizontalFlip ? { horizontalFlip } : {}), ...(cutout > 0 ? { cutout } : {}) };
  return Object.keys(augment).length > 0 ? augment : undefined;
}

/** DP-SGD (fit's `privacy`): per-example clipping, noise, ε reported per epoch. */
const DP_OPTIONS: Command['options'] = [
  { name: 'dp-clip', type: 'number', min: 0, description: 'DP-SGD: clip each example\'s gradient to this L2 norm (with --dp-noise or --dp-epsilon)' },
  { name: 'dp-noise', type: 'number', min: 0, description: 'DP-SGD: noise multiplier sigma (noise std sigma x clip on the summed gradient)' },
  { name: 'dp-epsilon', type: 'number', min: 0, description: 'DP-SGD: instead of --dp-noise, the epsilon the whole run may spend (sigma is computed for it)' },
  { name: 'dp-delta', type: 'number', min: 0, max: 1, description: 'DP-SGD: delta of the (epsilon, delta) guarantee', default: 1e-5 },
];

/** fit's `privacy` from the --dp-* flags, or undefined when none asks for DP-SGD. */
function privacyFromOptions(options: Record<string, unknown>): PrivacyOptions | undefined {
  const clip = options['dp-clip'];
  const noise = options['dp-noise'];
  const epsilon = options['dp-epsilon'];
  if (clip === undefined && noise === undefined && epsilon === undefined) return undefined;
  if (clip === undefined) throw new KilnError('INVALID_ARGUMENT', '--dp-noise and --dp-epsilon need --dp-clip (the per-example clipping norm)');
  if ((noise === undefined) === (epsilon === undefined)) throw new KilnError('INVALID_ARGUMENT', `--dp-clip needs exactly one of --dp-noise and --dp-epsilon, got ${noise === undefined ? 'neither' : 'both'}`);
  return { l2NormClip: Number(clip), delta: Number(options['dp-delta']), ...(noise !== undefined ? { noiseMultiplier: Number(noise) } : { targetEpsilon: Number(epsilon) }) };
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'Train a model on a data set and save it as .onnx',
  usage: 'kiln train --dataset <embedded|fashion-mnist|mnist:DIR|cifar10:PATH|PATH|npy-dir> --model <tutorial-cnn|small-vgg|model.onnx|model.json> --out model.onnx',
  options: [
    { name: 'dataset', type: 'string', description: 'data set name or path, or a directory of NumPy arrays (x_train.npy, y_train.npy, x_test.npy, y_test.npy; x_train.<input>.npy per input of a model of several)', default: 'embedded' },
    { name: 'model', type: 'string', description: 'preset, Kiln .onnx file or JSON list of layers', default: 'tutorial-cnn' },
    { name: 'epochs', type: 'number', integer: true, min: 1, description: 'epochs to train', default: 2 },
    { name: 'batch-size', type: 'number', integer: true, min: 1, description: "examples per step (Keras' default)", default: 32 },
    { name: 'optimizer', type: 'string', description: 'sgd, adam, adamw, rmsprop or adagrad', default: 'adam' },
    { name: 'lr', type: 'number', description: 'learning rate (default: the optimizer\'s Keras default)' },
    { name: 'validation-split', type: 'number', description: 'fraction of training data held out', default: 0.1 },
    { name: 'resume', type: 'string', description: 'training checkpoint to continue from' },
    { name: 'checkpoint', type: 'string', description: 'write a training checkpoint here after every epoch' },
    { name: 'replicas', type: 'number', integer: true, min: 1, description: 'split each batch across this many workers (default: one per core, up to 4, while each gets 32+ rows)' },
    IGNORE_CLASS_OPTION,
    ...AUGMENT_OPTIONS,
    ...DP_OPTIONS,
    ...IMPORT_OPTIONS,
    { name: 'seed', type: 'number', integer: true, description: 'seed for weights and shuffling', default: 42 },
    { name: 'out', type: 'string', description: 'where to save the trained model', default: 'model.onnx' },
  ],
  async run({ options }, out) {
    const augment = augmentFromOptions(options);
    const privacy = privacyFromOptions(options);
    const data = await loadSplits(String(options.dataset));
    // A Kiln model built here (tutorial-cnn, a .json spec) reads the one array's example shape.
    const inputShape = data.train.x instanceof Tensor ? data.train.x.shape.slice(1) : [];
    const seed = Number(options.seed);
    // An imported file's free input dimensions (a sequence length) take the data's sizes unless --dimension gives them.
    const model = await modelFromSpec(String(options.model), inputShape, data.classNames.length, seed, () => importOptions(options, seed), data.train.x);
    requireOneInput(model, String(options.model), data.train.x);
    const optimizer = resolveOptimizer({ name: String(options.optimizer), config: options.lr !== undefined ? { learningRate: Number(options.lr) } : {} });
    if (model instanceof GraphModel) await prepareImported(model, options);
    // Said once, since the file alone cannot prove a tie (an untrained export of two layers that start transposed).
    if (model instanceof GraphModel) for (const t of model.tiedWeights()) out(tiedWeightLine(t));
    else if (options['train-only'] !== undefined || options['num-classes'] !== undefined || options.dimension !== undefined) {
      throw new KilnError('INVALID_ARGUMENT', '--train-only, --num-classes and --dimension apply to imported ONNX models (--model file.onnx written by another tool)');
    }
    model.compile({ optimizer, loss: classifierLoss(model, options, data.train.y), metrics: ['accuracy'] });
    // The test split is checked before training, not after it (arrays padded to another length than the training split's).
    model.inputRows(data.test.x, 'the test split x');
    const shapes = data.train.x instanceof Tensor ? JSON.stringify(inputShape) : Object.entries(data.train.x).map(([name, t]) => `${name} ${JSON.stringify(t.shape.slice(1))}`).join(', ');
    out(`Training ${options.model} on ${options.dataset}: ${splitSize(data.train)} ${data.kind === 'images' ? 'images' : 'examples'} ${shapes}, ${data.classNames.length} classes`);
    const t0 = performance.now();
    const history = await model.fit(data.train.x, data.train.y, {
      epochs: Number(options.epochs),
      batchSize: Number(options['batch-size']),
      validationSplit: Number(options['validation-split']) || undefined,
      resumeFrom: stringOption(options, 'resume'),
      checkpointPath: stringOption(options, 'checkpoint'),
      seed,
      augment,
      replicas: options.replicas === undefined ? undefined : Number(options.replicas),
      stream: progressOutput(out),
      privacy,
    });
    const seconds = (performance.now() - t0) / 1000;
    const result = await model.evaluate(data.test.x, data.test.y);
    // The data set's class names go with the model, so servers answer with labels.
    // (NumPy arrays' classes are only numbered: names the model already has stay.)
    if (model.outputShape.length === 1 && model.outputShape[0] === data.classNames.length && (data.kind === 'images' || !model.classNames)) model.classNames = data.classNames;
    await model.save(String(options.out));
    out(`Test loss ${result.loss.toFixed(4)}, accuracy ${(100 * result.accuracy!).toFixed(2)}% after ${formatDuration(seconds * 1000)} (${formatDuration((seconds * 1000) / history.epoch.length)} per epoch${model.trainingReplicas > 1 ? `, ${model.trainingReplicas} replicas` : ''})`);
    const spent = model.privacySpent;
    if (privacy && spent) {
      out(`DP-SGD: epsilon ${spent.epsilon.toFixed(3)} at delta ${spent.delta} (noise multiplier ${spent.noiseMultiplier.toFixed(4)}, clip ${spent.l2NormClip}, ${spent.steps} steps; RDP accountant, sampling rate batch/examples)`);
    }
    out(`Saved ${options.out}`);
    return 0;
  },
};

/** Transfer learning on an imported model: a new head first (its weights then match --train-only). */
async function prepareImported(model: GraphModel, options: Record<string, unknown>): Promise<void> {
  if (options['num-classes'] !== undefined) await model.replaceHead(Number(options['num-classes']));
  if (options['train-only'] !== undefined) model.trainOnly(String(options['train-only']));
}
