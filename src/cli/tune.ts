/** `kiln tune`: a hyper-parameter search over a preset family; flags in, the best model, a results table and a report out. */
import path from 'node:path';
import { loadDataset } from '../data/by-name.js';
import { KilnError } from '../errors.js';
import { writeTuneReport } from '../report/tune.js';
import { formatDuration } from '../text/format.js';
import { loadModel } from '../train/load.js';
import { evaluateClassifier } from '../train/metrics.js';
import { ashaRungs } from '../tune/asha.js';
import { checkPresetSpace, PRESET_PARAMETERS, presetBuilder } from '../tune/preset-builder.js';
import { formatTrialTable } from '../tune/results-table.js';
import { TpeSampler } from '../tune/samplers/tpe.js';
import { parseSearchSpace } from '../tune/search-syntax.js';
import { tune, type ObjectiveMetric } from '../tune/study.js';
import { defaultedNumber, defaultedString, numberOption, stringListOption, stringOption } from './args.js';
import type { Command } from './command.js';
import { parseDuration } from './duration.js';

/** `best.onnx` → `best` + suffix: where the journal and report go unless told. */
function beside(out: string, suffix: string): string {
  return path.join(path.dirname(out), `${path.basename(out).replace(/\.onnx$/i, '')}${suffix}`);
}

export const tuneCommand: Command = {
  name: 'tune',
  summary: 'Search hyper-parameters of a preset (random or TPE, ASHA early stopping, parallel trials, resumable)',
  usage: "kiln tune --dataset embedded --model tutorial-cnn --trials 24 --epochs 2 --search 'lr=1e-4..1e-2:log' --search batchSize=32,64,128 --out best.onnx",
  options: [
    { name: 'dataset', type: 'string', description: 'data set name or path', default: 'embedded' },
    { name: 'model', type: 'string', description: 'preset family to search: tutorial-cnn or small-vgg', default: 'tutorial-cnn' },
    {
      name: 'search',
      type: 'string',
      repeatable: true,
      description: `a parameter to search, repeatable: name=a..b[:int][:log] or name=v1,v2,... [@parent=value]; names: ${Object.keys(PRESET_PARAMETERS).join(', ')}`,
    },
    { name: 'trials', type: 'number', integer: true, min: 1, description: 'trials to finish (a resumed study counts those already done)', default: 20 },
    { name: 'epochs', type: 'number', integer: true, min: 1, description: 'epochs per trial', default: 2 },
    { name: 'sampler', type: 'string', description: 'tpe or random', default: 'tpe' },
    { name: 'startup-trials', type: 'number', integer: true, min: 1, description: "TPE: random trials before the estimators take over (Optuna's default)", default: 10 },
    { name: 'asha', type: 'boolean', description: 'stop unpromising trials early (asynchronous successive halving)' },
    { name: 'min-epochs', type: 'number', description: "ASHA's first rung in epochs (fractions allowed)", default: 1 },
    { name: 'reduction-factor', type: 'number', min: 2, description: "ASHA's η: 1/η of the trials at a rung go on", default: 3 },
    { name: 'parallel', type: 'number', integer: true, min: 1, description: 'trials run at once, one runtime worker each', default: 1 },
    { name: 'objective', type: 'string', description: 'val_accuracy (maximized) or val_loss (minimized)', default: 'val_accuracy' },
    { name: 'latency-weight', type: 'number', min: 0, description: 'subtract this × batch-1 latency (ms) from the objective (added for val_loss)' },
    { name: 'size-weight', type: 'number', min: 0, description: 'subtract this × model size (MiB) from the objective (added for val_loss)' },
    { name: 'budget', type: 'string', description: 'no trial starts after this long, e.g. 20m (running ones finish)' },
    { name: 'validation-split', type: 'number', description: 'fraction of the training data held out to score trials', default: 0.1 },
    { name: 'limit', type: 'number', integer: true, min: 2, description: 'use only the first n training images' },
    { name: 'seed', type: 'number', integer: true, description: 'seed of the sampler, the initial weights and batch order', default: 42 },
    { name: 'out', type: 'string', description: "where the best trial's model is saved", default: 'best.onnx' },
    { name: 'journal', type: 'string', description: 'study journal; rerunning with the same one resumes the study (default: beside --out, best.onnx → best.study.jsonl)' },
    { name: 'report', type: 'string', description: 'HTML report (default: beside --out, best.onnx → best-tune-report.html)' },
  ],
  async run({ options }, out) {
    const space = parseSearchSpace(stringListOption(options, 'search'));
    const modelName = defaultedString(options, 'model');
    checkPresetSpace(modelName, space);
    const sampler = defaultedString(options, 'sampler');
    if (sampler !== 'tpe' && sampler !== 'random') throw new KilnError('INVALID_ARGUMENT', `--sampler must be tpe or random, got '${sampler}'`);
    const objectiveMetric = defaultedString(options, 'objective');
    if (objectiveMetric !== 'val_accuracy' && objectiveMetric !== 'val_loss') throw new KilnError('INVALID_ARGUMENT', `--objective must be val_accuracy or val_loss, got '${objectiveMetric}'`);
    const budget = stringOption(options, 'budget');
    const timeBudgetMs = budget === undefined ? undefined : parseDuration(budget, 'budget');
    const file = defaultedString(options, 'out');
    const journal = stringOption(options, 'journal') ?? beside(file, '.study.jsonl');
    const reportFile = stringOption(options, 'report') ?? beside(file, '-tune-report.html');
    const datasetName = defaultedString(options, 'dataset');
    const data = await loadDataset(datasetName);
    const limit = numberOption(options, 'limit');
    const x = limit ? data.train.images.slice(0, limit) : data.train.images;
    const y = limit ? data.train.labels.slice(0, limit) : data.train.labels;
    const inputShape = x.shape.slice(1);
    const validationSplit = defaultedNumber(options, 'validation-split');
    const trials = defaultedNumber(options, 'trials');
    const epochs = defaultedNumber(options, 'epochs');
    const asha = options.asha ? { minEpochs: defaultedNumber(options, 'min-epochs'), reductionFactor: defaultedNumber(options, 'reduction-factor') } : undefined;
    // Where ASHA compares trials, said up front: with whole-epoch rungs and short trials it can stop a
    // trial no earlier than its first epoch, which bounds what it saves (see the guide).
    const rungs = asha ? ashaRungs(epochs, asha).map((r) => Math.round(r * 1000) / 1000) : [];
    out(`Tuning ${modelName} on ${datasetName} (${x.shape[0]} images, ${Math.round(validationSplit * 100)}% held out to score trials): ${trials} trials of ${epochs} epochs, ${sampler}${asha ? `, ASHA (η ${asha.reductionFactor}, rungs in epochs: ${rungs.join(', ')})` : ''}, ${defaultedNumber(options, 'parallel')} at a time`);
    for (const line of space.describe()) out(`  ${line}`);
    const result = await tune({
      space,
      build: presetBuilder(modelName, inputShape, data.classNames.length),
      x,
      y,
      validationSplit,
      epochs,
      maxTrials: trials,
      sampler: sampler === 'tpe' ? new TpeSampler({ startupTrials: defaultedNumber(options, 'startup-trials') }) : sampler,
      objective: { metric: objectiveMetric as ObjectiveMetric, latencyWeight: numberOption(options, 'latency-weight'), sizeWeight: numberOption(options, 'size-weight') },
      earlyStopping: asha ?? false,
      parallel: defaultedNumber(options, 'parallel'),
      seed: defaultedNumber(options, 'seed'),
      journal,
      out: file,
      timeBudgetMs,
      task: { dataset: datasetName, model: modelName, validationSplit, limit: limit ?? null },
      onTrialEnd: (t, study) =>
        out(`trial ${t.id} ${t.state}${t.value !== undefined ? ` ${t.value.toFixed(4)}` : ''} after ${Math.round(t.epochs * 100) / 100} epochs in ${formatDuration(t.seconds * 1000)}${t.error ? ` (${t.error})` : ''} — ${study.finished}/${study.maxTrials} done, best ${study.best ? `trial ${study.best.id} ${study.best.value!.toFixed(4)}` : 'none yet'}`),
    });
    if (result.resumed.finished > 0 || result.resumed.rerun.length > 0) {
      out(`Resumed ${journal}: ${result.resumed.finished} finished trials kept${result.resumed.rerun.length ? `, interrupted trial${result.resumed.rerun.length > 1 ? 's' : ''} ${result.resumed.rerun.join(', ')} run again` : ''}`);
    }
    if (result.budgetSpent) out(`The --budget of ${budget} was spent: no more trials were started`);
    out('');
    out(formatTrialTable(result));
    out('');
    out(`Parameter importance (η² of the objective): ${result.importance.map((i) => `${i.name} ${i.importance.toFixed(2)}`).join(', ')}`);
    if (!result.best) throw new KilnError('INVALID_DATA', `no trial completed (${result.trials.filter((t) => t.state === 'failed').length} failed): nothing to save`);
    out(`Best: trial ${result.best.id}, ${result.objective.metric} ${result.best.metrics[result.objective.metric]!.toFixed(4)}, ${JSON.stringify(result.best.params)}`);
    if (result.bestModelFile) {
      const best = await loadModel(result.bestModelFile);
      const accuracy = evaluateClassifier(data.test.labels, await best.predict(data.test.images, { batchSize: 256 })).accuracy;
      out(`Saved ${result.bestModelFile}: test accuracy ${(100 * accuracy).toFixed(2)}% on ${data.test.images.shape[0]} test images`);
    } else out(`The best trial's model was not saved in this run and ${file} does not hold it (trial ${result.best.id} finished in an earlier run)`);
    const written = await writeTuneReport(reportFile, result, { notes: [`kiln tune on ${datasetName} with the ${modelName} family; journal ${path.basename(journal)}.`] });
    out(`Report: ${written}`);
    out(`Journal: ${journal} (rerun the same command to continue the study)`);
    return 0;
  },
};
