/**
 * The loss training uses when none is named (src/train/default-loss.ts), one rule for the command
 * line, pruning's fine-tuning and federated local training: from the logits unless a Kiln model ends
 * in softmax (past Flatten and Dropout), always from the logits for an imported graph (its step cuts a
 * final Softmax off), the saved loss first where the caller takes it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { prepareLocalTraining } from '../../src/federated/local-training.js';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import { layers, sequential } from '../../src/index.js';
import { Tensor } from '../../src/tensor.js';
import { classifierCrossentropy, defaultLoss } from '../../src/train/default-loss.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { recordedTraining } from '../../src/train/model.js';

const dense = (activation?: 'softmax') => [layers.flatten({ inputShape: [4, 4, 1] }), layers.dense({ units: 3, ...(activation ? { activation } : {}) })];

/** An imported graph x [batch, 4] → MatMul → Softmax over its 3 classes. */
async function softmaxGraph(): Promise<GraphModel> {
  const g = new Graph('softmax_head');
  const x = g.input('x', 'float32', ['batch', 4]);
  const w = g.initializer('w', new Tensor(Float32Array.from({ length: 12 }, (_, i) => (i % 5) / 10 - 0.2), [4, 3], 'float32'));
  g.output(g.op1('Softmax', [g.op1('MatMul', [x, w])], { axis: -1 }), 'probabilities');
  const file = join(mkdtempSync(join(tmpdir(), 'kiln-default-loss-')), 'softmax_head.onnx');
  writeFileSync(file, encodeModel(modelToProto(g)));
  return GraphModel.load(file);
}

describe('the default loss', () => {
  it('a Kiln model: from the logits unless its last layer past Flatten and Dropout ends in softmax', () => {
    assert.equal(classifierCrossentropy(sequential({ layers: dense() })).config.fromLogits, true);
    assert.equal(classifierCrossentropy(sequential({ layers: dense('softmax') })).config.fromLogits, false);
    // Pruning's fine-tuning read only the very last layer: it took these probabilities for logits.
    const softmaxThenDropout = sequential({ layers: [...dense('softmax'), layers.dropout({ rate: 0.2 })] });
    assert.equal(defaultLoss(softmaxThenDropout).config.fromLogits, false);
  });

  it('an imported graph ending in Softmax trains from the logits before it, in federated local training too', async () => {
    const model = await softmaxGraph();
    assert.equal(model.outputsProbabilities, true);
    assert.equal(classifierCrossentropy(model).config.fromLogits, true);
    // Federated local training took outputsProbabilities for "train on probabilities".
    prepareLocalTraining(model);
    assert.equal(recordedTraining(model.metadata)?.loss?.config?.fromLogits, true);
  });

  it("the saved loss first (as Keras' load_model restores it); the command line's classifier loss keeps only its ignored label", () => {
    const model = sequential({ layers: dense() });
    model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
    assert.equal(defaultLoss(model).name, 'meanSquaredError');
    assert.equal(classifierCrossentropy(model).name, 'sparseCategoricalCrossentropy');
    assert.equal(classifierCrossentropy(model, { ignoreClass: -100 }).config.ignoreClass, -100);
  });
});
