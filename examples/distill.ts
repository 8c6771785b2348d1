/**
 * Distill a trained model (the teacher) into a student with at most a quarter of its parameters: the
 * student learns from the labels and from the teacher's outputs softened by a temperature
 * (Hinton et al., 2015). Compares the student with one of the same shape trained on the labels alone.
 *
 *     node dist/examples/distill.js [--teacher fashion-cnn.onnx] [--epochs 3] [--limit N] [--out student.onnx]
 */
import { parseArgs } from 'node:util';
import * as kiln from 'kiln';

const { values: args } = parseArgs({
  options: {
    teacher: { type: 'string', default: 'fashion-cnn.onnx' },
    epochs: { type: 'string', default: '3' },
    limit: { type: 'string' },
    out: { type: 'string', default: 'student.onnx' },
  },
});
const epochs = Number(args.epochs);
const limit = args.limit === undefined ? undefined : Number(args.limit);

const { train, test } = await kiln.datasets.embedded();
const x = limit ? train.images.slice(0, limit) : train.images;
const y = limit ? train.labels.slice(0, limit) : train.labels;

// The teacher may be any ONNX classifier (logits or probabilities out): a file, bytes or a model.
const teacher = await kiln.OnnxModel.load(args.teacher);

// The default student is the teacher's family scaled down to at most 25% of its parameters.
const { student, history, teacherParameters, studentParameters } = await kiln.distill({
  teacher,
  x,
  y,
  temperature: 4,
  alpha: 0.1,
  epochs,
  batchSize: 64,
  verbose: 0,
});
console.log(`teacher ${teacherParameters} parameters, student ${studentParameters} (${((100 * studentParameters) / teacherParameters).toFixed(1)}%)`);
console.log(`distillation loss per epoch: ${history.history.loss!.map((v) => v.toFixed(4)).join(', ')}`);

// The same architecture trained on the labels alone, for comparison.
const plain = kiln.defaultStudent(teacher, { inputShape: [28, 28, 1], numClasses: 10 });
plain.compile({ optimizer: 'adam', loss: kiln.losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
await plain.fit(x, y, { epochs, batchSize: 64, verbose: 0 });

// The student comes back compiled: the distillation loss trains it, and evaluate() reports the plain
// cross-entropy and accuracy on the labels.
const distilled = await student.evaluate(test.images, test.labels);
const baseline = await plain.evaluate(test.images, test.labels);
console.log(`test accuracy: distilled student ${distilled.accuracy!.toFixed(4)}, same student without the teacher ${baseline.accuracy!.toFixed(4)}`);

await student.save(args.out);
console.log(`saved ${args.out}`);
