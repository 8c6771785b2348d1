/**
 * The model builders `kiln tune --model <preset>` searches with: a preset family (tutorial-cnn,
 * small-vgg) whose widths, optimizer and training settings are the searchable parameters. Each
 * parameter left out of the space keeps the preset's value (Adam at Keras' learning rate, batch 32,
 * the preset's widths), so the untuned default is one point of the space.
 */
import { KilnError } from '../errors.js';
import { PRESETS, preset } from '../layers/index.js';
import { sparseCategoricalCrossentropy } from '../train/losses.js';
import { resolveOptimizer } from '../train/optimizers.js';
import { sequential } from '../train/sequential.js';
import type { HyperParameters } from './hyper-parameters.js';
import type { SearchSpace } from './space.js';
import type { BuildResult } from './study.js';

/** What each searchable parameter of a preset means (help text and error messages list them). */
export const PRESET_PARAMETERS: Record<string, string> = {
  lr: "learning rate (default: the optimizer's Keras default, Adam 1e-3)",
  batchSize: 'examples per step (default 32)',
  optimizer: 'sgd, adam, adamw, rmsprop or adagrad (default adam)',
  momentum: 'momentum of sgd or rmsprop (default 0; make it conditional: momentum=0..0.9@optimizer=sgd)',
  weightDecay: 'decoupled weight decay (default 0; adamw: 0.004)',
  filters: "first convolution's filters, later ones twice as many (default: the preset's 32)",
  units: "hidden Dense units (default: the preset's, 64 or 128)",
  dropout: "dropout rate before the classifier (default: the preset's, 0 or 0.2)",
};

/** Refuses a space naming a parameter the preset builder does not read, before any trial runs. */
export function checkPresetSpace(name: string, space: SearchSpace): void {
  if (!PRESETS[name]) throw new KilnError('INVALID_ARGUMENT', `tune --model: unknown preset '${name}'; expected one of ${Object.keys(PRESETS).join(', ')}`);
  const unknown = space.names.filter((n) => !(n in PRESET_PARAMETERS));
  if (unknown.length) {
    throw new KilnError('INVALID_ARGUMENT', `the ${name} builder never reads ${unknown.map((n) => `'${n}'`).join(', ')}: it reads ${Object.keys(PRESET_PARAMETERS).join(', ')}`);
  }
}

/** A build(hp) function for a preset on images of `inputShape` with `numClasses` classes. */
export function presetBuilder(name: string, inputShape: number[], numClasses: number): (hp: HyperParameters) => BuildResult {
  return (hp) => {
    const layers = preset(name, inputShape, numClasses, {
      ...(hp.has('filters') ? { filters: hp.number('filters') } : {}),
      ...(hp.has('units') ? { units: hp.number('units') } : {}),
      ...(hp.has('dropout') ? { dropout: hp.number('dropout') } : {}),
    });
    const optimizerName = hp.stringOr('optimizer', 'adam');
    const config: Record<string, unknown> = {};
    if (hp.has('lr')) config.learningRate = hp.number('lr');
    if (hp.has('weightDecay')) config.weightDecay = hp.number('weightDecay');
    // Only the optimizers with momentum read it: an unconditional momentum shows up as never read.
    if (hp.has('momentum') && (optimizerName === 'sgd' || optimizerName === 'rmsprop')) config.momentum = hp.number('momentum');
    const model = sequential({ layers, seed: hp.seed, name: name.replace(/-/g, '_') });
    model.compile({ optimizer: resolveOptimizer({ name: optimizerName, config }), loss: sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
    return { model, batchSize: hp.numberOr('batchSize', 32) };
  };
}
