import { embedded } from '../data/embedded.js';
import { tutorialCnn } from '../layers/presets.js';
import { sequential } from '../train/model.js';
import { sparseCategoricalCrossentropy } from '../train/losses.js';
import { adam } from '../train/optimizers.js';
import type { Command } from './command.js';
import { formatBytes, formatDuration, formatNumber, formatTable } from './format.js';
import { promises as fs } from 'node:fs';

/**
 * The seed tutorial's pipeline on the embedded Fashion-MNIST subset, one library call per step:
 * load → build → compile → fit → evaluate → save.
 */
export const demoCommand: Command = {
  name: 'demo',
  summary: "Run the tutorial's pipeline on the embedded data set: train, evaluate, save",
  usage: 'kiln demo [--epochs 5] [--out kiln-demo.onnx]',
  options: [
    { name: 'epochs', type: 'number', description: 'training epochs', default: 5 },
    { name: 'out', type: 'string', description: 'where to save the trained model', default: 'kiln-demo.onnx' },
  ],
  async run({ options }, out) {
    const epochs = Number(options.epochs);
    const file = String(options.out);
    out('1/5  Loading the embedded Fashion-MNIST subset (10,000 training and 2,000 test images, 28×28 grey)');
    const data = await embedded();
    out('2/5  Building the tutorial CNN (Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10)');
    const model = sequential(tutorialCnn(data.train.images.shape.slice(1), data.classNames.length));
    model.summary(out);
    out(`3/5  Training ${epochs} epochs with Adam and sparse categorical cross-entropy from logits`);
    model.compile({ optimizer: adam(), loss: sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    const t0 = performance.now();
    const history = await model.fit(data.train.images, data.train.labels, { epochs, batchSize: 32, validationSplit: 0.1 });
    const trainMs = performance.now() - t0;
    out('4/5  Evaluating on the held-out test images');
    const result = await model.evaluate(data.test.images, data.test.labels);
    out(`5/5  Saving the model as ${file} (one standard ONNX file)`);
    await model.save(file);
    const size = (await fs.stat(file)).size;
    out('');
    out(
      formatTable(
        [
          ['parameters', formatNumber(model.countParams().total)],
          ['training time', `${formatDuration(trainMs)} (${epochs} epochs)`],
          ['final training accuracy', `${(100 * history.history.accuracy!.at(-1)!).toFixed(2)}%`],
          ['test loss', result.loss.toFixed(4)],
          ['test accuracy', `${(100 * result.accuracy!).toFixed(2)}%`],
          ['test macro F1', result.macroF1!.toFixed(4)],
          ['test AUC-ROC', result.aucRoc!.toFixed(4)],
          ['model file', `${file} (${formatBytes(size)})`],
        ],
        { header: ['Result', 'Value'], align: ['left', 'right'] },
      ),
    );
    out('');
    out(`Inspect it with: kiln info ${file}`);
    return 0;
  },
};
