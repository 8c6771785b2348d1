/**
 * What `prune` refuses, each with a KilnError whose code a program can branch on and whose message
 * names the problem: sparsities outside [0, 1), unknown layer names, models without trainable weights,
 * schedules that end before they begin, and options that do not go together.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, prune, pruning, sequential } from '../../../src/index.js';
import { denseData, denseNet, kilnError, tutorialCnn } from './helpers.js';

const data = denseData(16);
const fineTune = { x: data.x, y: data.y, epochs: 1, batchSize: 8, verbose: 0 as const };

describe('prune refuses bad input', () => {
  it('sparsity outside [0, 1): INVALID_ARGUMENT naming the value and the range', async () => {
    for (const bad of [1, 1.2, -0.1, NaN, '0.5']) {
      await assert.rejects(prune(denseNet(), { sparsity: bad as number }), kilnError('INVALID_ARGUMENT', 'sparsity', '[0, 1)'));
    }
    await assert.rejects(prune(denseNet(), { structured: { ratio: 1 } }), kilnError('INVALID_ARGUMENT', 'structured.ratio', '[0, 1)'));
    await assert.rejects(prune(denseNet(), { structured: { perLayer: { dense: -0.5 } } }), kilnError('INVALID_ARGUMENT', "perLayer['dense']"));
  });

  it('a layer name that does not exist: INVALID_ARGUMENT naming it and listing the layers', async () => {
    await assert.rejects(prune(denseNet(), { sparsity: 0.5, layers: ['dense_9'] }), kilnError('INVALID_ARGUMENT', "'dense_9'", 'dense, dense_1, dense_2, dense_3'));
    await assert.rejects(prune(tutorialCnn(), { structured: { perLayer: { conv9: 0.5 } } }), kilnError('INVALID_ARGUMENT', "'conv9'"));
    await assert.rejects(prune(tutorialCnn(), { sparsity: 0.5, layers: ['max_pooling2d'] }), kilnError('INVALID_ARGUMENT', "'max_pooling2d' (MaxPooling2D) has no kernel"));
  });

  it('a model without trainable weights: NOT_TRAINABLE', async () => {
    const empty = sequential({ layers: [layers.flatten({ inputShape: [4, 4, 1] }), layers.activation({ activation: 'relu' })] });
    await assert.rejects(prune(empty, { sparsity: 0.5 }), kilnError('NOT_TRAINABLE', 'no trainable weights'));
    await assert.rejects(prune(empty, { structured: { ratio: 0.5 } }), kilnError('NOT_TRAINABLE', 'no trainable weights'));
  });

  it('a schedule whose end precedes its beginning: INVALID_ARGUMENT', async () => {
    assert.throws(() => pruning.polynomialDecay({ finalSparsity: 0.8, beginStep: 20, endStep: 10 }), kilnError('INVALID_ARGUMENT', 'endStep (10)', 'beginStep (20)'));
    assert.throws(() => pruning.constantSparsity({ targetSparsity: 0.8, beginStep: 20, endStep: 10 }), kilnError('INVALID_ARGUMENT', 'precedes'));
  });

  it('a schedule that never prunes within fine-tuning, or without fine-tuning at all: INVALID_ARGUMENT', async () => {
    const late = pruning.constantSparsity({ targetSparsity: 0.5, beginStep: 500 });
    await assert.rejects(prune(denseNet(), { schedule: late, fineTune }), kilnError('INVALID_ARGUMENT', 'never prunes', '2 steps'));
    await assert.rejects(prune(denseNet(), { schedule: late }), kilnError('INVALID_ARGUMENT', 'fineTune'));
  });

  it('options that do not go together, or nothing to do: INVALID_ARGUMENT', async () => {
    const s = pruning.constantSparsity({ targetSparsity: 0.5 });
    await assert.rejects(prune(denseNet(), { sparsity: 0.5, schedule: s, fineTune }), kilnError('INVALID_ARGUMENT', 'not both'));
    await assert.rejects(prune(denseNet(), {}), kilnError('INVALID_ARGUMENT', 'sparsity'));
    await assert.rejects(prune(denseNet(), { sparsity: 0.5, structured: { ratio: 0.5 } }), kilnError('INVALID_ARGUMENT', 'structured', 'sparsity'));
    await assert.rejects(prune(denseNet(), { sparsityMByN: [4, 4] }), kilnError('INVALID_ARGUMENT', 'sparsityMByN', '0 < m < n'));
    await assert.rejects(prune(denseNet(), { sparsity: 0.5, scope: 'model' as never }), kilnError('INVALID_ARGUMENT', 'scope'));
    await assert.rejects(prune(denseNet(), { structured: { ratio: 0.5, criterion: 'l3' as never } }), kilnError('INVALID_ARGUMENT', 'criterion'));
  });

  it('first and last layers stay dense by default: a model with only those says to name layers', async () => {
    const two = sequential({ layers: [layers.dense({ units: 4, inputShape: [3] }), layers.dense({ units: 2 })] });
    await assert.rejects(prune(two, { sparsity: 0.5 }), kilnError('INVALID_ARGUMENT', 'first and last stay dense', 'layers'));
    const { report } = await prune(two, { sparsity: 0.5, layers: ['dense', 'dense_1'] });
    assert.equal(report.targetSparsity, 0.5);
  });

  it("structured: the output layer's units cannot go; bnScale needs a batch normalization", async () => {
    await assert.rejects(prune(tutorialCnn(), { structured: { perLayer: { dense_1: 0.5 } } }), kilnError('INVALID_ARGUMENT', "'dense_1'", 'last layer'));
    await assert.rejects(prune(tutorialCnn(), { structured: { ratio: 0.5, criterion: 'bnScale' } }), kilnError('INVALID_ARGUMENT', 'bnScale', "'conv2d'"));
  });
});
