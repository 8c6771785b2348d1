/**
 * Bad layer arguments and layer stacks are refused when the model is defined, each with a KilnError
 * whose code a program can branch on and whose message names what was expected and what was found.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, sequential } from '../../src/index.js';
import { layerFromConfig } from '../../src/layers/index.js';
import { assertThrowsKiln } from '../model/helpers.js';

describe('inputShape', () => {
  it('rejects a zero dimension', () => {
    assertThrowsKiln(() => layers.dense({ units: 2, inputShape: [0, 3] }), 'INVALID_SHAPE', 'positive integers', '[0,3]');
  });

  it('rejects a string', () => {
    assertThrowsKiln(() => layers.conv2d({ filters: 2, kernelSize: 3, inputShape: 'abc' as never }), 'INVALID_SHAPE', 'positive integers', '"abc"');
  });

  it('rejects an empty list, fractions and negative sizes', () => {
    assertThrowsKiln(() => layers.dense({ units: 2, inputShape: [] }), 'INVALID_SHAPE', '[]');
    assertThrowsKiln(() => layers.dense({ units: 2, inputShape: [2.5] }), 'INVALID_SHAPE', '[2.5]');
    assertThrowsKiln(() => layers.dense({ units: 2, inputShape: [-4] }), 'INVALID_SHAPE', '[-4]');
  });

  it("accepts Keras' batchInputShape, dropping the batch dimension", () => {
    const model = sequential({ layers: [layers.dense({ units: 2, batchInputShape: [null, 7] })] });
    assert.deepEqual(model.inputShape, [7]);
    assert.deepEqual(model.countParams().total, 7 * 2 + 2);
  });

  it('is required on the first layer of a sequential model', () => {
    assertThrowsKiln(() => sequential({ layers: [layers.dense({ units: 2 })] }), 'INVALID_SHAPE', 'first layer', 'inputShape', 'Dense');
    assertThrowsKiln(() => sequential().add(layers.flatten()), 'INVALID_SHAPE', 'inputShape', 'Flatten');
  });
});

describe('layer arguments', () => {
  it('rejects an unknown activation, listing the known ones', () => {
    assertThrowsKiln(() => layers.dense({ units: 2, activation: 'swish' as never }), 'UNKNOWN_ACTIVATION', '"swish"', 'relu', 'softmax', 'leakyRelu');
    assertThrowsKiln(() => layers.conv2d({ filters: 2, kernelSize: 3, activation: 'Relu' as never }), 'UNKNOWN_ACTIVATION', '"Relu"', 'relu');
    assertThrowsKiln(() => layers.activation({ activation: 42 as never }), 'UNKNOWN_ACTIVATION', '42');
  });

  it('rejects non-positive or fractional sizes, bad pairs and unknown padding', () => {
    assertThrowsKiln(() => layers.conv2d({ filters: 0, kernelSize: 3 }), 'INVALID_ARGUMENT', 'filters', '0');
    assertThrowsKiln(() => layers.conv2d({ filters: 2, kernelSize: [3] as never }), 'INVALID_ARGUMENT', 'kernelSize', '[3]');
    assertThrowsKiln(() => layers.conv2d({ filters: 2, kernelSize: 3, strides: 0 }), 'INVALID_ARGUMENT', 'strides', '0');
    assertThrowsKiln(() => layers.conv2d({ filters: 2, kernelSize: 3, padding: 'full' as never }), 'INVALID_ARGUMENT', "'valid' or 'same'", '"full"');
    assertThrowsKiln(() => layers.maxPooling2d({ poolSize: 1.5 }), 'INVALID_ARGUMENT', 'poolSize', '1.5');
    assertThrowsKiln(() => layers.dense({ units: -1 }), 'INVALID_ARGUMENT', 'units', '-1');
    assertThrowsKiln(() => layers.dropout({ rate: 1 }), 'INVALID_ARGUMENT', '[0, 1)', '1');
    assertThrowsKiln(() => layers.batchNormalization({ momentum: 1 }), 'INVALID_ARGUMENT', 'momentum');
  });
});

describe('layer stacks', () => {
  it('refuses conv2d after flatten, naming the expected image rank and the flat shape found', () => {
    const model = sequential({ layers: [layers.flatten({ inputShape: [4, 4, 2] })] });
    assertThrowsKiln(() => model.add(layers.conv2d({ filters: 2, kernelSize: 2 })), 'INVALID_SHAPE', 'Conv2D', 'rank 3', '[null, 32]', 'flatten');
  });

  it('refuses pooling after dense', () => {
    const model = sequential({ layers: [layers.dense({ units: 8, inputShape: [4] })] });
    assertThrowsKiln(() => model.add(layers.maxPooling2d()), 'INVALID_SHAPE', 'MaxPooling2D', 'rank 3', '[null, 8]');
    assertThrowsKiln(() => model.add(layers.globalAveragePooling2d()), 'INVALID_SHAPE', 'GlobalAveragePooling2D', '[null, 8]');
  });

  it('refuses dense directly on an image, suggesting flatten', () => {
    assertThrowsKiln(
      () => sequential({ layers: [layers.conv2d({ filters: 3, kernelSize: 3, inputShape: [10, 10, 1] }), layers.dense({ units: 4 })] }),
      'INVALID_SHAPE',
      'Dense',
      'flat input',
      '[null, 8, 8, 3]',
      'flatten',
    );
    assertThrowsKiln(() => sequential({ layers: [layers.dense({ units: 4, inputShape: [8, 8, 3] })] }), 'INVALID_SHAPE', '[null, 8, 8, 3]');
  });

  it('refuses a kernel or pool larger than a valid-padded input', () => {
    assertThrowsKiln(() => sequential({ layers: [layers.conv2d({ filters: 1, kernelSize: 5, inputShape: [4, 6, 1] })] }), 'INVALID_SHAPE', '[null, 4, 6, 1]', '[5, 5]');
    assertThrowsKiln(() => sequential({ layers: [layers.maxPooling2d({ poolSize: 3, inputShape: [2, 2, 1] })] }), 'INVALID_SHAPE', '[null, 2, 2, 1]', '[3, 3]');
  });

  it('leaves the model unchanged when a layer is refused', () => {
    const model = sequential({ layers: [layers.dense({ units: 3, inputShape: [4] })] });
    assert.throws(() => model.add(layers.conv2d({ filters: 1, kernelSize: 1 })));
    assert.equal(model.layers.length, 1);
    assert.deepEqual([...model.weights.keys()], ['dense/kernel', 'dense/bias']);
    assert.deepEqual(model.outputShape, [3]);
  });

  it('names layers as Keras does and refuses a duplicate name', () => {
    const model = sequential({ layers: [layers.dense({ units: 3, inputShape: [4] }), layers.dense({ units: 3 }), layers.dense({ units: 2 })] });
    assert.deepEqual(model.layers.map((l) => l.name), ['dense', 'dense_1', 'dense_2']);
    assertThrowsKiln(() => model.add(layers.dense({ units: 2, name: 'dense_1' })), 'INVALID_ARGUMENT', "'dense_1'");
  });

  it('gives an automatic name that does not collide with a name the user chose', () => {
    const model = sequential({ layers: [layers.dense({ units: 3, name: 'dense_1', inputShape: [4] }), layers.dense({ units: 3 }), layers.dense({ units: 2 })] });
    // Keras' numbering, skipping the name the user took.
    assert.deepEqual(model.layers.map((l) => l.name), ['dense_1', 'dense', 'dense_2']);
    assert.deepEqual([...model.weights.keys()], ['dense_1/kernel', 'dense_1/bias', 'dense/kernel', 'dense/bias', 'dense_2/kernel', 'dense_2/bias']);
    // Automatic names also skip user names taken further ahead, and other base names are untouched.
    const mixed = sequential({
      layers: [
        layers.dense({ units: 3, inputShape: [4] }),
        layers.dense({ units: 3, name: 'dense_1' }),
        layers.dense({ units: 3, name: 'dense_2' }),
        layers.dense({ units: 3 }),
        layers.activation({ activation: 'relu', name: 'dense_4' }),
        layers.dense({ units: 3 }),
        layers.activation({ activation: 'relu' }),
      ],
    });
    assert.deepEqual(mixed.layers.map((l) => l.name), ['dense', 'dense_1', 'dense_2', 'dense_3', 'dense_4', 'dense_5', 'activation']);
  });

  it('refuses a user-given name that is already taken, by a user or an automatic name', () => {
    const model = sequential({ layers: [layers.dense({ units: 3, name: 'hidden', inputShape: [4] }), layers.dense({ units: 3 })] });
    assertThrowsKiln(() => model.add(layers.dense({ units: 2, name: 'hidden' })), 'INVALID_ARGUMENT', "'hidden'", 'unique');
    assertThrowsKiln(() => model.add(layers.dense({ units: 2, name: 'dense' })), 'INVALID_ARGUMENT', "'dense'", 'unique');
    assertThrowsKiln(
      () => sequential({ layers: [layers.dense({ units: 3, name: 'a', inputShape: [4] }), layers.activation({ activation: 'relu', name: 'a' })] }),
      'INVALID_ARGUMENT',
      "'a'",
    );
    assert.deepEqual(model.layers.map((l) => l.name), ['hidden', 'dense']);
  });

  it('a refused layer uses up no automatic name', () => {
    const model = sequential({ layers: [layers.conv2d({ filters: 1, kernelSize: 1, inputShape: [2, 2, 1] })] });
    const refused = layers.conv2d({ filters: 1, kernelSize: 5 });
    assertThrowsKiln(() => model.add(refused), 'INVALID_SHAPE', '[5, 5]');
    assert.equal(refused.name, undefined);
    model.add(layers.conv2d({ filters: 1, kernelSize: 1 }));
    assert.deepEqual(model.layers.map((l) => l.name), ['conv2d', 'conv2d_1']);
    assert.deepEqual([...model.weights.keys()], ['conv2d/kernel', 'conv2d/bias', 'conv2d_1/kernel', 'conv2d_1/bias']);
  });
});

describe('layerFromConfig', () => {
  it('rebuilds a layer from its serialized form', () => {
    const layer = layerFromConfig(layers.conv2d({ filters: 5, kernelSize: [3, 1], strides: 2, padding: 'same', activation: 'relu', name: 'c' }).serialize());
    assert.equal(layer.className, 'Conv2D');
    assert.equal(layer.name, 'c');
    assert.deepEqual(layer.computeOutputShape([9, 9, 2]), [5, 5, 5]);
  });

  it('rejects an unknown layer class, naming it and the known ones', () => {
    assertThrowsKiln(() => layerFromConfig({ className: 'LSTM', config: { units: 4 } }, 'model.json layer 2'), 'UNKNOWN_LAYER', 'model.json layer 2', '"LSTM"', 'Conv2D', 'Dense');
  });

  it("does not mistake Object.prototype's members for layer classes", () => {
    for (const className of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      assertThrowsKiln(() => layerFromConfig({ className, config: {} }), 'UNKNOWN_LAYER', JSON.stringify(className));
    }
  });

  it('rejects a missing class name', () => {
    assertThrowsKiln(() => layerFromConfig({ config: {} } as never), 'UNKNOWN_LAYER', 'undefined');
  });
});
