import { KilnError, formatShape } from '../errors.js';
import { describeModel, OnnxModel } from '../model/onnx-model.js';
import { batchNotFirst } from '../model/input-rows.js';
import { classifierScores } from '../optimize/distill/teacher.js';
import { Tensor } from '../tensor.js';
import { loadTestSplit } from './examples.js';
import { Sequential } from '../train/sequential.js';
import { GraphModel } from '../train/graph-model.js';
import { importOptions, IMPORT_OPTIONS, requireOneInput } from './import-options.js';
import { modelFromOnnx, sizedByData } from '../train/load.js';
import { evaluateClassifier, labelledPositions } from '../train/metrics.js';
import { readOnnxFile } from '../model/read-model.js';
import { classifierLoss, IGNORE_CLASS_OPTION } from './classifier-loss.js';
import { scoresClassAxis } from '../train/sparse-labels.js';
import type { Command } from './command.js';
import { formatTable } from '../text/format.js';

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'Evaluate a classifier: loss, accuracy, macro F1, AUC-ROC and a confusion matrix',
  usage: 'kiln evaluate <model.onnx> --dataset <name|path|npy-dir> [--json]',
  options: [
    { name: 'dataset', type: 'string', description: 'data set name or path, or a directory of NumPy arrays (x_test.npy, y_test.npy; x_test.<input>.npy per input)', default: 'embedded' },
    { name: 'json', type: 'boolean', description: 'print the results as JSON' },
    IGNORE_CLASS_OPTION,
    ...IMPORT_OPTIONS.filter((o) => ['layout', 'scale', 'mean', 'std', 'dimension', 'model-output'].includes(o.name)),
  ],
  async run({ positionals, options }, out) {
    const file = positionals[0];
    if (!file) throw new KilnError('INVALID_ARGUMENT', 'kiln evaluate: give a model file, e.g. kiln evaluate model.onnx --dataset embedded');
    const { bytes, proto } = await readOnnxFile(file);
    // An input batched at another axis than the first (torch's h0) cannot be matched to rows of data: said before reading any.
    const notFirst = batchNotFirst(describeModel(proto, bytes.length).inputs, file);
    if (notFirst) throw notFirst;
    const data = await loadTestSplit(String(options.dataset));
    const { x, y } = data.test;
    // An imported file's free input dimensions (a sequence length) take the arrays' sizes unless --dimension gives them.
    const model = await modelFromOnnx(bytes, proto, file, sizedByData(proto, importOptions(options), x, file));
    requireOneInput(model, file, x);
    let result: Record<string, unknown>;
    if (model instanceof Sequential || (model instanceof GraphModel && model.untrainableOps().length === 0 && model.countParams().trainable > 0)) {
      // Fed through its layout and normalization; an imported graph's loss from the logits (before a final Softmax).
      model.compile({ optimizer: 'adam', loss: classifierLoss(model, options, y), metrics: ['accuracy'] });
      result = await model.evaluate(x, y);
    } else {
      // A foreign classifier: metrics on its outputs (no loss: its output may be logits or probabilities).
      // A file's own layout and normalization apply, whether x is one array or arrays by input name.
      // The command's --layout, --scale, --mean and --std apply over what the file declares.
      const { layout, scale, mean, std } = importOptions(options);
      const outputs = model instanceof OnnxModel ? await classifierScores(model, x, { preprocessing: { layout, scale, mean, std } }) : await model.predict(x);
      // Classes on the last axis, or the one the labels leave out (a segmentation model's [N, C, H, W]
      // with labels [N, H, W]); a token's or pixel's labelled positions are its rows.
      const ignoreClass = options['ignore-class'] === undefined ? undefined : Number(options['ignore-class']);
      const classAxis = scoresClassAxis(outputs.shape, y.shape);
      const positions = outputs.shape.filter((_, i) => i !== classAxis);
      if (outputs.rank > 2 && (y.rank !== outputs.rank - 1 || y.shape.some((d, i) => d !== positions[i]))) {
        throw new KilnError('INVALID_SHAPE', `'${file}' outputs ${formatShape(outputs.shape)}, a class per position: the labels must be ${formatShape(positions)}, got ${formatShape(y.shape)}`);
      }
      const { truth, scores } = outputs.rank > 2 || ignoreClass !== undefined ? labelledPositions(outputs.data as Float32Array, outputs.shape, classAxis, y.data, ignoreClass) : { truth: y, scores: outputs };
      const r = evaluateClassifier(truth, scores);
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
