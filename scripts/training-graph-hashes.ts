/*
 * Fingerprints of the compiled training graphs: sha256 of the train and eval steps of the tutorial and
 * Fashion CNNs, compiled with Adam and SGD, with and without a pruning mask. Refactors that must not
 * change behaviour compare this output before and after (`node dist/scripts/training-graph-hashes.js`).
 */
import { createHash } from 'node:crypto';
import { fashionCnn, tutorialCnn } from '../bench/train/common.js';
import { losses, optimizers } from '../src/index.js';
import { accuracyKind, compileTraining } from '../src/train/training-step.js';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const models = { tutorial: tutorialCnn, fashion: fashionCnn };
const optimizerFactories = { adam: () => optimizers.adam({ learningRate: 1e-3 }), sgd: () => optimizers.sgd({ learningRate: 0.01, momentum: 0.9 }) };

for (const [modelName, make] of Object.entries(models)) {
  for (const [optName, makeOptimizer] of Object.entries(optimizerFactories)) {
    for (const flatMask of [false, true]) {
      const loss = losses.sparseCategoricalCrossentropy({ fromLogits: true });
      const compiled = compileTraining(make(42), loss, makeOptimizer(), accuracyKind(loss, true), { flatMask });
      const label = `${modelName} ${optName} mask=${flatMask}`;
      console.log(`${label.padEnd(28)} train ${sha256(compiled.trainStep)}  eval ${sha256(compiled.evalStep)}`);
    }
  }
}
