/** `kiln optimize`: a trained model in; its Pareto front of compressed versions, the chosen one and a report out. */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { optimizeModel, type OptimizeResult } from '../automl/optimize.js';
import { KilnError } from '../errors.js';
import { writeFileAtomic } from '../model/atomic-write.js';
import { candidateRows, writeOptimizeReport } from '../report/optimize.js';
import { formatTable } from '../text/format.js';
import { GraphModel } from '../train/graph-model.js';
import { Sequential } from '../train/sequential.js';
import { defaultedNumber, defaultedString, numberOption, stringOption } from './args.js';
import type { Command } from './command.js';
import { parseDuration } from './duration.js';
import { IMPORT_OPTIONS, importOptions, requireArraysForInputs, requireOneInput } from './import-options.js';
import { loadSplits, modelForData, splitSize } from './examples.js';
import { sliceInputs } from '../model/input-rows.js';

const list = (text: string | undefined, flag: string): number[] | undefined => {
  if (text === undefined) return undefined;
  if (text.trim() === '' || text === 'none') return [];
  return text.split(',').map((v) => {
    const n = Number(v);
    if (!(n > 0 && n < 1)) throw new KilnError('INVALID_ARGUMENT', `--${flag} takes fractions in (0, 1) separated by commas (or 'none'), got '${v}'`);
    return n;
  });
};

/**
 * The search times every candidate a few rounds; for a small model the chosen one's lead can be the
 * machine's noise, which the longer check after it shows. Says so when the latency objective's choice
 * was not faster there.
 */
export function recheckWarning(result: Pick<OptimizeResult, 'objective' | 'chosen' | 'check'>): string | undefined {
  const { chosen, check } = result;
  if (result.objective !== 'latency' || !chosen || !check || check.speedup64 >= 1) return undefined;
  return `Warning: timed again, ${chosen.name} was not faster than the original at batch 64 (${check.speedup64.toFixed(2)}×): the search's ${chosen.speedup64.toFixed(2)}× was within this machine's timing noise. Time it on a quiet machine before deploying it for speed`;
}

export const optimizeCommand: Command = {
  name: 'optimize',
  summary: 'Find the fastest or smallest compression of a model within an accuracy budget (pruning, sparsity, quantization, distillation)',
  usage: 'kiln optimize model.onnx --dataset <name|path> --max-accuracy-drop 0.5 --objective latency|size [--budget 20m] --out DIR',
  options: [
    { name: 'dataset', type: 'string', description: 'data set: its training split fine-tunes, its test split holds the accuracy budget; a name or path, or a directory of NumPy arrays (x_train.npy, y_train.npy, x_test.npy, y_test.npy; one x_<split>.<input>.npy per input)', default: 'embedded' },
    { name: 'max-accuracy-drop', type: 'number', min: 0, max: 100, description: 'most test accuracy the chosen model may lose, in points', default: 0.5 },
    { name: 'objective', type: 'string', description: 'latency (of a batch of 64) or size (gzip-compressed file)', default: 'latency' },
    { name: 'budget', type: 'string', description: 'no new candidate starts after this long, e.g. 20m' },
    { name: 'prune-ratios', type: 'string', description: "structured pruning ratios to try (or 'none')", default: '0.25,0.5,0.75' },
    { name: 'student-ratios', type: 'string', description: "distilled students' parameter fractions to try (or 'none'); default 0.5,0.25 for Kiln models, none for imported graphs (a student is not a drop-in for the file's input)" },
    { name: 'sparsities', type: 'string', description: "unstructured sparsities to try (or 'none')", default: '0.5,0.8' },
    { name: 'fine-tune-epochs', type: 'number', integer: true, min: 1, description: 'epochs of fine-tuning after pruning', default: 1 },
    { name: 'distill-epochs', type: 'number', integer: true, min: 1, description: 'epochs a distilled student trains', default: 3 },
    { name: 'limit', type: 'number', integer: true, min: 1, description: 'fine-tune on only the first n training examples' },
    { name: 'seed', type: 'number', integer: true, description: 'seed of fine-tuning, students and calibration', default: 42 },
    { name: 'out', type: 'string', description: 'directory for the front, the chosen model and the report', default: 'optimized' },
    ...IMPORT_OPTIONS.filter((o) => ['layout', 'scale', 'mean', 'std', 'dimension', 'model-output'].includes(o.name)),
  ],
  async run({ positionals, options }, out) {
    const file = positionals[0];
    if (!file) throw new KilnError('INVALID_ARGUMENT', 'kiln optimize: give a model file, e.g. kiln optimize model.onnx --dataset fashion-mnist --objective latency --out optimized');
    const objective = defaultedString(options, 'objective');
    if (objective !== 'latency' && objective !== 'size') throw new KilnError('INVALID_ARGUMENT', `--objective must be latency or size, got '${objective}'`);
    const budget = stringOption(options, 'budget');
    const timeBudgetMs = budget === undefined ? undefined : parseDuration(budget, 'budget');
    const { model, data: readFirst } = await modelForData(file, importOptions(options), defaultedString(options, 'dataset'));
    requireArraysForInputs(model, file, defaultedString(options, 'dataset'));
    if (!(model instanceof Sequential) && !(model instanceof GraphModel)) {
      throw new KilnError('NOT_TRAINABLE', `'${file}' cannot be optimized: ${model.notTrainable ?? 'Kiln can run it but not train it'} (pruning and students fine-tune the model)`);
    }
    const datasetName = defaultedString(options, 'dataset');
    const data = readFirst ?? (await loadSplits(datasetName));
    requireOneInput(model, file, data.train.x);
    const limit = numberOption(options, 'limit');
    const dir = defaultedString(options, 'out');
    out(`Optimizing ${file} for ${objective} within ${defaultedNumber(options, 'max-accuracy-drop')} points on ${datasetName}${budget ? `, budget ${budget}` : ''}`);
    const result = await optimizeModel(model, {
      train: { x: limit ? sliceInputs(data.train.x, 0, limit) : data.train.x, y: limit ? data.train.y.slice(0, limit) : data.train.y },
      evaluation: { x: data.test.x, y: data.test.y },
      objective,
      maxAccuracyDrop: defaultedNumber(options, 'max-accuracy-drop'),
      timeBudgetMs,
      pruneRatios: list(stringOption(options, 'prune-ratios'), 'prune-ratios'),
      studentRatios: list(stringOption(options, 'student-ratios'), 'student-ratios'),
      sparsities: list(stringOption(options, 'sparsities'), 'sparsities'),
      fineTuneEpochs: defaultedNumber(options, 'fine-tune-epochs'),
      distillEpochs: defaultedNumber(options, 'distill-epochs'),
      seed: defaultedNumber(options, 'seed'),
      onProgress: (line) => out(line),
    });
    await mkdir(dir, { recursive: true });
    for (const c of result.front) if (c !== result.original) await writeFileAtomic(path.join(dir, `${c.name}.onnx`), c.bytes);
    if (result.chosen) await writeFileAtomic(path.join(dir, 'chosen.onnx'), result.chosen.bytes);
    const { header, rows } = candidateRows(result);
    out('');
    out(formatTable(rows, { header }));
    for (const s of result.skipped) out(`not made: ${s.name} (${s.reason})`);
    for (const note of result.notes) out(`note: ${note}`);
    const summary = {
      objective: result.objective,
      maxAccuracyDrop: result.maxAccuracyDrop,
      chosen: result.chosen?.name ?? null,
      check: result.check ?? null,
      front: result.front.map((c) => c.name),
      candidates: [result.original, ...result.candidates].map(({ bytes: _bytes, ...c }) => c),
      skipped: result.skipped,
      notes: result.notes,
    };
    await writeFileAtomic(path.join(dir, 'optimize.json'), `${JSON.stringify(summary, null, 1)}\n`);
    const report = await writeOptimizeReport(path.join(dir, 'report.html'), result, { notes: [`kiln optimize ${path.basename(file)} on ${datasetName}; accuracy on its ${splitSize(data.test)} test ${data.kind === 'images' ? 'images' : 'examples'}.`, ...result.notes] });
    out('');
    out(`Pareto front: ${result.front.map((c) => c.name).join(', ')} (written to ${dir}/<name>.onnx)`);
    if (result.chosen) {
      const c = result.chosen;
      out(`Chosen: ${c.name} — accuracy ${(100 * c.accuracy).toFixed(2)}% (original ${(100 * result.original.accuracy).toFixed(2)}%), ${c.speedup64.toFixed(2)}× faster at batch 64, ${c.compression.toFixed(2)}× smaller (gzip); saved as ${path.join(dir, 'chosen.onnx')}`);
      if (result.check) out(`Timed again against the original (${result.check.repetitions} rounds, interleaved): ${result.check.speedup64.toFixed(2)}× faster at batch 64 (${result.check.originalMs64.toFixed(2)} → ${result.check.chosenMs64.toFixed(2)} ms), ${result.check.speedup1.toFixed(2)}× at batch 1`);
      const warning = recheckWarning(result);
      if (warning) out(warning);
    } else out(`No candidate stayed within ${result.maxAccuracyDrop} points: nothing chosen (the front is still written)`);
    out(`Report: ${report}`);
    return result.chosen ? 0 : 1;
  },
};
