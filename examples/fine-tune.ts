/**
 * Fine-tune a saved model: load an .onnx file, train it further with a lower learning rate on a
 * cosine schedule and augmented images, and save the result. The file may be one Kiln saved
 * (`train-and-save`) or a classifier PyTorch exported; with `--train-only` only the weights whose
 * names match train (transfer learning), and `--num-classes` gives an exported model a new head.
 *
 *     node dist/examples/fine-tune.js [--model fashion-cnn.onnx] [--epochs 2] [--limit N]
 *         [--train-only 'head.*'] [--num-classes N] [--out fine-tuned.onnx]
 */
import { parseArgs } from 'node:util';
import * as kiln from 'kiln';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'fashion-cnn.onnx' },
    epochs: { type: 'string', default: '2' },
    limit: { type: 'string' },
    'train-only': { type: 'string' },
    'num-classes': { type: 'string' },
    out: { type: 'string', default: 'fine-tuned.onnx' },
  },
});
const epochs = Number(args.epochs);
const limit = args.limit === undefined ? undefined : Number(args.limit);

const { train, test } = await kiln.datasets.embedded();
const x = limit ? train.images.slice(0, limit) : train.images;
const y = limit ? train.labels.slice(0, limit) : train.labels;

// A Kiln file loads as a Sequential, another tool's export as a GraphModel; a file Kiln cannot
// train (several inputs, quantized) as an inference-only OnnxModel that says why.
const model = await kiln.loadModel(args.model);
if (model instanceof kiln.OnnxModel) {
  console.error(`${args.model} cannot be fine-tuned: ${model.notTrainable}`);
  process.exit(1);
}
console.log(`${args.model}: ${model instanceof kiln.GraphModel ? 'an exported graph (GraphModel)' : 'a Kiln model (Sequential)'}, ${model.countParams().total} parameters`);
if (model instanceof kiln.GraphModel) {
  if (args['num-classes']) await model.replaceHead(Number(args['num-classes']));
  if (args['train-only']) model.trainOnly(args['train-only']);
}

// The learning rate falls from 1e-4 to 0 along a cosine over the whole run (Keras' CosineDecay).
const batchSize = 64;
const steps = epochs * Math.ceil(x.shape[0]! / batchSize);
model.compile({
  optimizer: kiln.optimizers.adam({ learningRate: kiln.schedules.cosineDecay({ initialLearningRate: 1e-4, decaySteps: steps }) }),
  // From the logits unless the model ends in a softmax (Kiln's models here output logits).
  loss: kiln.losses.sparseCategoricalCrossentropy({ fromLogits: !model.outputsProbabilities }),
  metrics: ['accuracy'],
});
const before = await model.evaluate(test.images, test.labels);
console.log(`before: test accuracy ${before.accuracy!.toFixed(4)}`);

// Each batch is shifted by up to 2 pixels and mirrored half the time, seeded, so a run repeats.
await model.fit(x, y, { epochs, batchSize, augment: { cropPadding: 2, horizontalFlip: true }, verbose: 2 });
const after = await model.evaluate(test.images, test.labels);
console.log(`after: test accuracy ${after.accuracy!.toFixed(4)}`);

await model.save(args.out);
console.log(`saved ${args.out}`);
