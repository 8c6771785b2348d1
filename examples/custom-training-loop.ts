/**
 * A custom training loop with callbacks: your own callback (per-batch and per-epoch hooks), Keras'
 * early stopping and model checkpoint, a training checkpoint to resume from, and a loop of one-epoch
 * fit() calls that evaluates on the test split between epochs and lowers the learning rate by hand
 * (optimizer state carries over from one fit() to the next, as in Keras).
 *
 *     node dist/examples/custom-training-loop.js [--epochs 4] [--limit N] [--out-dir training-run]
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as kiln from 'kiln';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '4' },
    limit: { type: 'string' },
    'out-dir': { type: 'string', default: 'training-run' },
  },
});
const epochs = Number(args.epochs);
const limit = args.limit === undefined ? undefined : Number(args.limit);
const outDir = args['out-dir'];
await mkdir(outDir, { recursive: true });

const { train, test } = await kiln.datasets.embedded();
const x = limit ? train.images.slice(0, limit) : train.images;
const y = limit ? train.labels.slice(0, limit) : train.labels;

function buildModel(): kiln.Sequential {
  const model = kiln.sequential([
    kiln.layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }),
    kiln.layers.maxPooling2d({ poolSize: 2 }),
    kiln.layers.flatten(),
    kiln.layers.dropout({ rate: 0.1 }),
    kiln.layers.dense({ units: 10 }),
  ]);
  model.compile({ optimizer: kiln.optimizers.sgd({ learningRate: 0.05, momentum: 0.9 }), loss: kiln.losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  return model;
}

// 1. A callback of your own: implement any of onTrainBegin, onEpochBegin, onBatchEnd, onEpochEnd,
// onTrainEnd. `logs` holds the running loss and accuracy (and val_loss / val_accuracy at epoch end).
class LossRecorder implements kiln.callbacks.Callback {
  readonly batchLosses: number[] = [];
  onBatchEnd(_step: number, logs: kiln.callbacks.Logs): void {
    this.batchLosses.push(logs.loss!);
  }
  onEpochEnd(epoch: number, logs: kiln.callbacks.Logs, model: kiln.callbacks.TrainingControl): void {
    console.log(`  epoch ${epoch + 1}: loss ${logs.loss!.toFixed(4)}, val_accuracy ${logs.val_accuracy?.toFixed(4)}`);
    // A callback may also stop training: model.stopTraining = true.
    if (!Number.isFinite(logs.loss!)) model.stopTraining = true;
  }
}

// 2. fit() with callbacks: stop when val_loss stops improving (keeping the best weights), save the best
// model as it goes, and write a training checkpoint (weights, optimizer state, epoch, RNG) every epoch.
console.log('fit() with callbacks');
const model = buildModel();
const recorder = new LossRecorder();
const stopper = kiln.callbacks.earlyStopping({ monitor: 'val_loss', patience: 1, restoreBestWeights: true });
const checkpoint = join(outDir, 'training.ckpt');
const history = await model.fit(x, y, {
  epochs,
  batchSize: 64,
  validationSplit: 0.1,
  verbose: 0,
  callbacks: [recorder, stopper, kiln.callbacks.modelCheckpoint({ filepath: join(outDir, 'best.onnx'), monitor: 'val_loss', saveBestOnly: true })],
  checkpointPath: checkpoint,
});
console.log(`  ${history.epoch.length} epochs, ${recorder.batchLosses.length} steps; stopped early: ${stopper.stoppedEpoch !== null}`);

// 3. Resume: a new process (here, a new model) continues from the checkpoint exactly where it stopped,
// with the optimizer's momentum and the shuffling sequence restored.
console.log('resume from the training checkpoint for one more epoch');
const resumed = buildModel();
const more = await resumed.fit(x, y, { epochs: history.epoch.at(-1)! + 2, batchSize: 64, validationSplit: 0.1, verbose: 0, resumeFrom: checkpoint });
console.log(`  ran epoch ${more.epoch.map((e) => e + 1).join(', ')}`);

// 4. Your own loop: one epoch per fit() call; between epochs, evaluate on the test split and halve the
// learning rate when accuracy stalls. compile() would reset the optimizer's state, so the rate comes
// from a schedule object that reads a variable the loop steers; Adam keeps its moments across calls.
console.log('a loop of one-epoch fit() calls');
let rate = 1e-3;
const steerable: kiln.schedules.LearningRateSchedule = { name: 'steerable', config: {}, at: () => rate };
const looped = buildModel();
looped.compile({ optimizer: kiln.optimizers.adam({ learningRate: steerable }), loss: kiln.losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
let best = 0;
for (let epoch = 0; epoch < epochs; epoch++) {
  await looped.fit(x, y, { epochs: 1, batchSize: 64, verbose: 0 });
  const { accuracy } = await looped.evaluate(test.images, test.labels);
  console.log(`  epoch ${epoch + 1}: learning rate ${rate}, test accuracy ${accuracy!.toFixed(4)}`);
  if (accuracy! <= best) rate /= 2;
  best = Math.max(best, accuracy!);
}
await looped.save(join(outDir, 'looped.onnx'));
console.log(`saved ${join(outDir, 'looped.onnx')}`);
