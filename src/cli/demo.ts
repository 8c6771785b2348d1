import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bench, bestModel, type BenchModelSource } from '../bench/bench.js';
import { formatBenchTable } from '../bench/format.js';
import { embedded } from '../data/embedded.js';
import { encodePng } from '../images/decode.js';
import { KilnError } from '../errors.js';
import { tutorialCnn } from '../layers/presets.js';
import { distill } from '../optimize/distill/distill.js';
import { prune } from '../optimize/prune/prune.js';
import { quantize } from '../optimize/quantize/quantize.js';
import { writeReport } from '../report/html.js';
import { sparseCategoricalCrossentropy } from '../train/losses.js';
import { sequential } from '../train/sequential.js';
import { adam } from '../train/optimizers.js';
import type { Command } from './command.js';
import { formatBytes, formatDuration, formatNumber } from '../text/format.js';

const STEPS = 8;

/** A path as one shell word: as it is when that is safe, else single-quoted. */
function shellWord(text: string): string {
  return /^[\w./:@%+=-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The seed's whole story on the embedded Fashion-MNIST subset, one library call per step: train the
 * tutorial CNN → evaluate → prune (unstructured, structured) → quantize (static int8) → distill into a
 * smaller student → bench every variant → write the HTML report → say how to serve the best one, and
 * how to send it one of the test images as a PNG file and get the class names back.
 */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'The whole story on the embedded data set: train, evaluate, prune, quantize, distill, bench, report',
  usage: 'kiln demo [--epochs 5] [--out-dir kiln-demo] [--report=false]',
  options: [
    { name: 'epochs', type: 'number', integer: true, min: 1, description: 'epochs to train the tutorial CNN', default: 5 },
    { name: 'fine-tune-epochs', type: 'number', integer: true, min: 1, description: 'epochs of fine-tuning after each pruning', default: 1 },
    { name: 'distill-epochs', type: 'number', integer: true, min: 1, description: 'epochs to train the distilled student', default: 5 },
    { name: 'limit', type: 'number', integer: true, min: 10, description: 'train on only the first n training images (a quicker run)' },
    { name: 'test-limit', type: 'number', integer: true, min: 1, description: 'evaluate and bench on only the first n test images' },
    { name: 'out-dir', type: 'string', description: 'where the models and the report go', default: 'kiln-demo' },
    { name: 'report', type: 'boolean', description: 'write the HTML report (--report=false: only the table)', default: true },
  ],
  async run({ options }, out) {
    const epochs = Number(options.epochs);
    const fineTuneEpochs = Number(options['fine-tune-epochs']);
    const distillEpochs = Number(options['distill-epochs']);
    const dir = String(options['out-dir']);
    const started = performance.now();
    await mkdir(dir, { recursive: true });
    const file = (name: string) => path.join(dir, `${name}.onnx`);
    const step = (k: number, text: string) => out(`\n${k}/${STEPS}  ${text}`);
    const timed = async <T>(work: () => Promise<T>): Promise<[T, string]> => {
      const t0 = performance.now();
      const result = await work();
      return [result, formatDuration(performance.now() - t0)];
    };

    const data = await embedded();
    const limit = options.limit === undefined ? data.train.images.shape[0]! : Number(options.limit);
    const x = data.train.images.slice(0, limit);
    const y = data.train.labels.slice(0, limit);
    const testLimit = options['test-limit'] === undefined ? data.test.images.shape[0]! : Number(options['test-limit']);
    const test = { x: data.test.images.slice(0, testLimit), y: data.test.labels.slice(0, testLimit) };
    out(`kiln demo: the embedded Fashion-MNIST subset, ${formatNumber(x.shape[0]!)} training and ${formatNumber(test.x.shape[0]!)} test images (28×28 grey, 10 classes); files go to ${dir}/`);

    step(1, `Train the tutorial CNN (Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10), ${epochs} epochs, Adam, cross-entropy from logits`);
    const model = sequential({ layers: tutorialCnn(x.shape.slice(1), data.classNames.length), name: 'cnn' });
    // Saved with the model (and kept by its variants): the server answers with these names.
    model.classNames = data.classNames;
    model.summary(out);
    model.compile({ optimizer: adam(), loss: sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    const [, trainTime] = await timed(() => model.fit(x, y, { epochs, batchSize: 32, validationSplit: 0.1 }));
    await model.save(file('cnn'));

    step(2, 'Evaluate on the test images');
    const result = await model.evaluate(test.x, test.y);
    out(`     accuracy ${(100 * result.accuracy!).toFixed(2)}%, macro F1 ${result.macroF1!.toFixed(4)}, AUC-ROC ${result.aucRoc!.toFixed(4)} after ${trainTime} of training → ${file('cnn')}`);

    const variants: BenchModelSource[] = [{ name: 'cnn', model: file('cnn') }];
    const fineTune = { x, y, epochs: fineTuneEpochs, batchSize: 32, validationSplit: 0.1 };
    const skipped: string[] = [];
    // Each shrinking step stands alone: one that fails is reported and the story goes on without it.
    const attempt = async (name: string, work: () => Promise<string>) => {
      try {
        out(`     ${await work()}`);
        variants.push({ name, model: file(name) });
      } catch (err) {
        if (!(err instanceof KilnError)) throw err;
        skipped.push(`${name}: ${err.message}`);
        out(`     skipped: ${err.message}`);
      }
    };

    step(3, `Prune 75% of the hidden layers' weights by magnitude (unstructured), fine-tune ${fineTuneEpochs} epoch(s)`);
    await attempt('cnn-pruned', async () => {
      const [pruned, t] = await timed(() => prune(model, { sparsity: 0.75, fineTune }));
      await pruned.model.save(file('cnn-pruned'));
      return `${(100 * pruned.report.sparsity).toFixed(1)}% of all weights are zero, in ${t} → ${file('cnn-pruned')}`;
    });

    step(4, `Prune half of the hidden layers' filters and units (structured), fine-tune ${fineTuneEpochs} epoch(s)`);
    await attempt('cnn-structured', async () => {
      const [pruned, t] = await timed(() => prune(model, { structured: { ratio: 0.5 }, fineTune }));
      await pruned.model.save(file('cnn-structured'));
      return `${formatNumber(pruned.model.countParams().total)} parameters left of ${formatNumber(model.countParams().total)}, in ${t} → ${file('cnn-structured')}`;
    });

    step(5, 'Quantize to int8 (static: activation ranges calibrated on training images)');
    await attempt('cnn-int8', async () => {
      const [quantized, t] = await timed(() => quantize(model, { mode: 'static', calibration: x }));
      await quantized.save(file('cnn-int8'));
      return `${formatBytes(quantized.report.sizeBefore)} → ${formatBytes(quantized.report.sizeAfter)}, in ${t} → ${file('cnn-int8')}`;
    });

    step(6, `Distill into a student with at most a quarter of the parameters (T = 4, α = 0.1), ${distillEpochs} epoch(s)`);
    await attempt('student', async () => {
      const [distilled, t] = await timed(() => distill({ teacher: model, x, y, temperature: 4, alpha: 0.1, epochs: distillEpochs, batchSize: 32, validationSplit: 0.1 }));
      distilled.student.name = 'student';
      await distilled.student.save(file('student'));
      return `${formatNumber(distilled.studentParameters)} parameters (${((100 * distilled.studentParameters) / distilled.teacherParameters).toFixed(1)}% of the teacher's), in ${t} → ${file('student')}`;
    });

    step(7, `Bench the ${variants.length} variants on the ${formatNumber(test.x.shape[0]!)} test images (same machine, one run)`);
    const measured = await bench(variants, test, { dataset: 'the embedded Fashion-MNIST subset' });
    // The measurements as data too: 'kiln report --bench' redraws the report from them.
    await writeFile(path.join(dir, 'bench.json'), JSON.stringify(measured, null, 1));

    let reportFile: string | undefined;
    if (options.report) {
      step(8, 'Write the report');
      reportFile = await writeReport(path.join(dir, 'report.html'), measured, {
        title: 'kiln demo: the tutorial CNN and its smaller variants',
        notes: [
          `The tutorial CNN trained ${epochs} epochs on ${x.shape[0]} images of the embedded Fashion-MNIST subset; pruned variants fine-tuned ${fineTuneEpochs} epoch(s); the student distilled ${distillEpochs} epoch(s). ` +
            "A distilled student's training loss is the distillation loss, not the plain cross-entropy its validation loss shows.",
          `Made by 'kiln demo' in ${formatDuration(performance.now() - started)}.`,
        ],
      });
    }

    out('');
    out(formatBenchTable(measured));
    if (skipped.length) out(`\nSkipped: ${skipped.join('; ')}`);
    const best = bestModel(measured);
    out('');
    if (reportFile) out(`Report: ${reportFile}`);
    const served = best.file ?? file(best.name);
    out(`Serve the most accurate model (${best.name}, ${(100 * best.accuracy).toFixed(2)}%): kiln serve ${shellWord(served)} --port 8501`);
    // One of the test images as a PNG file, for a request any HTTP client can send: the answer names the class.
    const index = 0;
    const image = data.test.images.slice(index, index + 1);
    const [height, width, channels] = image.shape.slice(1) as [number, number, number];
    const pixels = Uint8Array.from(image.data as Float32Array, (v) => Math.round(v * 255));
    const png = path.join(dir, `test-image-${index}.png`);
    await writeFile(png, await encodePng({ pixels, width, height, channels: channels as 1 | 3 }));
    const truth = data.classNames[Number(data.test.labels.data[index])];
    out(`  then send it test image ${index} (a '${truth}') as a PNG; it answers the top 5 classes by name (TorchServe's API):`);
    out(`  curl -T ${shellWord(png)} http://127.0.0.1:8501/predictions/${path.basename(served).replace(/\.onnx$/i, '')}`);
    return 0;
  },
};
