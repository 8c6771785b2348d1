import { KilnError } from '../errors.js';
import { loadDataset } from '../data/by-name.js';
import { Sequential } from '../train/sequential.js';
import { GraphModel } from '../train/graph-model.js';
import { importOptions, IMPORT_OPTIONS, requireOneInput } from './import-options.js';
import { loadModel } from '../train/load.js';
import { evaluateClassifier } from '../train/metrics.js';
import { sparseCategoricalCrossentropy } from '../train/losses.js';
import type { Command } from './command.js';
import { formatTable } from '../text/format.js';

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'Evaluate a classifier: loss, accuracy, macro F1, AUC-ROC and a confusion matrix',
  usage: 'kiln evaluate <model.onnx> --dataset <name|path> [--json]',
  options: [
    { name: 'dataset', type: 'string', description: 'data set name or path', default: 'embedded' },
    { name: 'json', type: 'boolean', description: 'print the results as JSON' },
    ...IMPORT_OPTIONS.filter((o) => ['layout', 'mean', 'std'].includes(o.name)),
  ],
  async run({ positionals, options }, out) {
    const file = positionals[0];
    if (!file) throw new KilnError('INVALID_ARGUMENT', 'kiln evaluate: give a model file, e.g. kiln evaluate model.onnx --dataset embedded');
    const data = await loadDataset(String(options.dataset));
    const model = await loadModel(file, importOptions(options));
    requireOneInput(model, file);
    let result: Record<string, unknown>;
    if (model instanceof Sequential) {
      model.compile({ optimizer: 'adam', loss: sparseCategoricalCrossentropy({ fromLogits: !model.outputsProbabilities }), metrics: ['accuracy'] });
      result = await model.evaluate(data.test.images, data.test.labels);
    } else if (model instanceof GraphModel && model.untrainableOps().length === 0 && model.countParams().trainable > 0) {
      // Fed through its layout and normalization; its loss from the logits (before a final Softmax).
      model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
      result = await model.evaluate(data.test.images, data.test.labels);
    } else {
      // A foreign classifier: metrics on its outputs (no loss: its output may be logits or probabilities).
      const scores = await model.predict(data.test.images);
      const r = evaluateClassifier(data.test.labels, scores);
      result = { accuracy: r.accuracy, macroF1: r.macroF1, aucRoc: r.aucRoc, confusion: r.confusion };
    }
    if (options.json) {
      out(JSON.stringify(result));
      return 0;
    }
    const { confusion, ...scalars } = result as { confusion?: number[][] } & Record<string, number>;
    out(formatTable(Object.entries(scalars).map(([k, v]) => [k, typeof v === 'number' ? v.toFixed(4) : String(v)]), { header: ['Metric', 'Value'], align: ['left', 'right'] }));
    if (confusion) {
      out('');
      out('Confusion matrix (rows: true class, columns: predicted)');
      out(formatTable(confusion.map((row, i) => [data.classNames[i] ?? String(i), ...row]), { header: ['', ...confusion.map((_, i) => String(i))] }));
    }
    return 0;
  },
};
