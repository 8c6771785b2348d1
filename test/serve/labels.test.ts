/**
 * Class labels: labels.txt as Triton and TorchServe users write it (one name per line, final newline or
 * not, Windows line ends, a byte-order mark), refused when blank lines or nothing; top-k order (score
 * descending, lower index first on ties); Triton's "score:index:label" strings; softmax unless the
 * graph ends in Softmax; and a Kiln model's class names kept in its saved metadata.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KilnError } from '../../src/errors.js';
import { decodeModel } from '../../src/graph/proto.js';
import { dense } from '../../src/layers/index.js';
import { describeModel } from '../../src/model/onnx-model.js';
import { DEFAULT_MODEL_CONFIG } from '../../src/serve/config.js';
import { classificationString, classifierOf, parseLabelsFile, probabilities, topK } from '../../src/serve/labels.js';
import { signatureOf } from '../../src/serve/signature.js';
import { Tensor } from '../../src/tensor.js';
import { loadModel } from '../../src/train/load.js';
import { sequential, type Sequential } from '../../src/train/sequential.js';
import { makeTempDir } from '../model/helpers.js';

describe('labels.txt', () => {
  it('reads one name per line, with or without a final newline, CRLF, a BOM', () => {
    assert.deepEqual(parseLabelsFile('cat\ndog\n', 'm/labels.txt'), ['cat', 'dog']);
    assert.deepEqual(parseLabelsFile('cat\ndog', 'm/labels.txt'), ['cat', 'dog']);
    assert.deepEqual(parseLabelsFile('\uFEFFcat\r\ndog\r\n', 'm/labels.txt'), ['cat', 'dog']);
    assert.deepEqual(parseLabelsFile('n02123045 tabby, tabby cat\n', 'm/labels.txt'), ['n02123045 tabby, tabby cat']);
  });

  it('refuses an empty file and blank lines, naming the line', () => {
    assert.throws(() => parseLabelsFile('', 'm/labels.txt'), /m\/labels.txt is empty/);
    assert.throws(() => parseLabelsFile('cat\n\ndog\n', 'm/labels.txt'), /m\/labels.txt: line 2 is blank/);
  });
});

describe('top-k answers', () => {
  const scores = new Tensor(Float32Array.from([0.1, 2, 2, -1, 0.5, 0.25]), [2, 3], 'float32');

  it('orders by score, the lower index first on ties, k at most the classes', () => {
    assert.deepEqual(topK(scores, 2, 'output'), [
      [{ index: 1, score: 2 }, { index: 2, score: 2 }],
      [{ index: 1, score: 0.5 }, { index: 2, score: 0.25 }],
    ]);
    assert.equal(topK(scores, 10, 'output')[0]!.length, 3);
  });

  it("writes Triton's classification strings: score with six decimals, index, label when there is one", () => {
    const classifier = { output: { name: 'y', onnxName: 'y', dtype: 'float32' as const, shape: [-1, 3] }, classes: 3, labels: ['a', 'b', 'c'], labelsFrom: 'test', probabilities: false };
    assert.equal(classificationString(classifier, 1, 2), '2.000000:1:b');
    assert.equal(classificationString(undefined, 1, 0.1234567), '0.123457:1');
  });

  it('applies softmax to logits and leaves probabilities alone', () => {
    const p = probabilities([0, Math.log(3)], false);
    assert.ok(Math.abs(p[0]! - 0.25) < 1e-12 && Math.abs(p[1]! - 0.75) < 1e-12);
    assert.deepEqual(probabilities([0.2, 0.8], true), [0.2, 0.8]);
  });

  it('knows a graph ending in Softmax, and checks the labels against the classes', () => {
    for (const [activation, expected] of [['softmax', true], ['linear', false]] as const) {
      const model = sequential({ layers: [dense({ units: 3, activation, inputShape: [2] })] });
      const proto = decodeModel(model.toOnnx());
      const description = describeModel(proto, 0);
      const signature = signatureOf(description, DEFAULT_MODEL_CONFIG);
      assert.equal(classifierOf(proto, description, signature, DEFAULT_MODEL_CONFIG)!.probabilities, expected);
      assert.throws(() => classifierOf(proto, description, signature, { ...DEFAULT_MODEL_CONFIG, labels: ['x', 'y'] }), /name 2 classes, but output 'output' \[-1, 3\] scores 3/);
    }
  });
});

describe("a model's class names", () => {
  it('are saved with the model and load back; a wrong count is refused', async () => {
    const model = sequential({ layers: [dense({ units: 3, inputShape: [2] })] });
    assert.equal(model.classNames, undefined);
    assert.throws(() => (model.classNames = ['a', 'b']), (e: unknown) => e instanceof KilnError && /classNames has 2 names; model '.*' outputs 3 classes/.test(e.message));
    assert.throws(() => (model.classNames = []), /non-empty list of class names/);
    model.classNames = ['a', 'b', 'c'];
    const temp = await makeTempDir();
    try {
      const file = `${temp.dir}/m.onnx`;
      await model.save(file);
      assert.deepEqual(((await loadModel(file)) as Sequential).classNames, ['a', 'b', 'c']);
      assert.equal(describeModel(decodeModel(model.toOnnx()), 0).metadata['kiln.labels'], '["a","b","c"]');
    } finally {
      await temp.remove();
    }
  });
});
