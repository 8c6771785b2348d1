/**
 * Train and save: a small CNN on the Fashion-MNIST subset that ships with Kiln (no download), then
 * evaluate it on the test split and save it as one standard .onnx file.
 *
 *     npm run build
 *     node dist/examples/train-and-save.js [--epochs 3] [--limit N] [--out fashion-cnn.onnx]
 *
 * `--limit N` trains on the first N training images only (a quicker run). The saved file is what the
 * other examples (fine-tune, prune, quantize, distill, serve) start from.
 */
import { parseArgs } from 'node:util';
import * as kiln from 'kiln';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    limit: { type: 'string' },
    out: { type: 'string', default: 'fashion-cnn.onnx' },
  },
});
const epochs = Number(args.epochs);
const limit = args.limit === undefined ? undefined : Number(args.limit);

// 10,000 training and 2,000 test images, [N, 28, 28, 1] float32 in [0, 1], labels [N] int32.
const { train, test, classNames } = await kiln.datasets.embedded();
const trainImages = limit ? train.images.slice(0, limit) : train.images;
const trainLabels = limit ? train.labels.slice(0, limit) : train.labels;
console.log(`${trainImages.shape[0]} training images of ${classNames.length} classes (${classNames.join(', ')})`);

// Keras' Sequential API, TensorFlow.js' names. The last layer has no activation: it outputs logits.
const model = kiln.sequential({ name: 'fashion_cnn', seed: 42 });
model.add(kiln.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }));
model.add(kiln.layers.maxPooling2d({ poolSize: 2 }));
model.add(kiln.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }));
model.add(kiln.layers.maxPooling2d({ poolSize: 2 }));
model.add(kiln.layers.flatten());
model.add(kiln.layers.dense({ units: 64, activation: 'relu' }));
model.add(kiln.layers.dense({ units: 10 }));
model.summary();

// One ONNX graph holds the forward pass, the backward pass and the Adam update.
model.compile({
  optimizer: kiln.optimizers.adam({ learningRate: 1e-3 }),
  loss: kiln.losses.sparseCategoricalCrossentropy({ fromLogits: true }),
  metrics: ['accuracy'],
});
const history = await model.fit(trainImages, trainLabels, { epochs, batchSize: 64, validationSplit: 0.1, verbose: 2 });
console.log(`final training loss ${history.history.loss!.at(-1)!.toFixed(4)}`);

// Loss and accuracy, plus macro F1, AUC-ROC and the confusion matrix for a classifier.
const result = await model.evaluate(test.images, test.labels);
console.log(`test accuracy ${result.accuracy!.toFixed(4)}, macro F1 ${result.macroF1!.toFixed(4)}`);

// The first test images' predicted classes: predict returns the logits [N, 10].
const logits = await model.predict(test.images.slice(0, 5));
const predicted = kiln.metrics.predictedLabels(logits);
console.log(`first five test images: ${[...predicted].map((c) => classNames[c]).join(', ')}`);

await model.save(args.out);
console.log(`saved ${args.out}`);
