import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KilnError } from '../../src/errors.js';
import { Tensor, tensor } from '../../src/tensor.js';
import { positionScores } from '../../src/train/metric-inputs.js';
import { labelClassAxis } from '../../src/train/sparse-labels.js';
import { Random } from '../../src/random.js';
import {
  accuracy,
  aucRoc,
  binaryAccuracy,
  categoricalAccuracy,
  confusionMatrix,
  evaluateClassifier,
  f1,
  labelledPositions,
  labelsFromOneHot,
  precision,
  predictedLabels,
  recall,
  topKAccuracy,
} from '../../src/train/metrics.js';

function assertClose(actual: number, expected: number, message?: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-12, message ?? `expected ${expected}, got ${actual}`);
}

function assertAllClose(actual: readonly number[], expected: readonly number[]): void {
  assert.equal(actual.length, expected.length, `expected ${expected.length} values, got ${actual.length}`);
  actual.forEach((v, i) => assertClose(v, expected[i]!, `at [${i}]: expected ${expected[i]}, got ${v}`));
}

function kilnError(code: string, message: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof KilnError, `expected a KilnError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  };
}

// Six samples over three classes, used by the confusion-matrix and precision/recall/F1 tests:
//   true      0  0  1  2  2  2
//   predicted 0  1  1  2  0  2
const THREE_CLASS_TRUE = [0, 0, 1, 2, 2, 2];
const THREE_CLASS_PRED = new Int32Array([0, 1, 1, 2, 0, 2]);

describe('accuracy', () => {
  it('compares labels with the argmax of the scores, the first maximum winning a tie', () => {
    // argmax per row: 0 (hit), 2 (label 1: miss), 2 (hit), 0 (tie 0.5/0.5 picks class 0; label 1: miss) → 2/4
    const scores = [
      [0.7, 0.2, 0.1],
      [0.1, 0.3, 0.6],
      [0.2, 0.2, 0.6],
      [0.5, 0.5, 0.0],
    ];
    assert.equal(accuracy([0, 1, 2, 1], scores), 0.5);
  });

  it('reads int64 label tensors, float32 score tensors and flat arrays with numClasses alike', () => {
    const labels = tensor([0, 1, 1], [3], 'int64');
    const flat = new Float32Array([0.9, 0.1, 0.3, 0.7, 0.6, 0.4]); // argmax 0, 1, 0 → 2 of 3 right
    assertClose(accuracy(labels, tensor(flat, [3, 2])), 2 / 3);
    assertClose(accuracy(new Int32Array([0, 1, 1]), flat, { numClasses: 2 }), 2 / 3);
    assertClose(accuracy(tensor([0, 1, 1], [3, 1], 'int32'), flat, { numClasses: 2 }), 2 / 3);
  });

  it('accepts predicted labels given as an Int32Array', () => {
    // 4 of the 6 predictions match
    assertClose(accuracy(THREE_CLASS_TRUE, THREE_CLASS_PRED), 4 / 6);
  });

  it('against one-hot targets takes the argmax of both sides', () => {
    const oneHot = tensor([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    // predicted 0, 2, 2 against 0, 1, 2 → 2/3
    const scores = tensor([
      [0.8, 0.1, 0.1],
      [0.3, 0.3, 0.4],
      [0.0, 0.1, 0.9],
    ]);
    assertClose(categoricalAccuracy(oneHot, scores), 2 / 3);
    assert.deepEqual(Array.from(labelsFromOneHot(oneHot)), [0, 1, 2]);
  });

  it('binaryAccuracy counts a probability as class 1 only when strictly above the threshold', () => {
    const labels = [0, 1, 1, 0];
    const probabilities = new Float32Array([0.3, 0.5, 0.8, 0.6]);
    // 0.5: predicted 0 0 1 1 (0.5 is not above 0.5) → right, wrong, right, wrong = 2/4
    assert.equal(binaryAccuracy(labels, probabilities), 0.5);
    // 0.4: predicted 0 1 1 1 → 3/4
    assert.equal(binaryAccuracy(labels, probabilities, { threshold: 0.4 }), 0.75);
    // 0.7: predicted 0 0 1 0 → 3/4; [N, 1] probabilities read the same as [N]
    assert.equal(binaryAccuracy(labels, tensor(probabilities, [4, 1]), { threshold: 0.7 }), 0.75);
  });

  it('binaryAccuracy rejects [N, C] scores and labels other than 0/1', () => {
    assert.throws(() => binaryAccuracy([0, 1], [[0.1, 0.9], [0.8, 0.2]]), kilnError('INVALID_SHAPE', /\[N\] or \[N, 1\]/));
    assert.throws(() => binaryAccuracy([0, 2], [0.1, 0.9]), kilnError('INVALID_DATA', /yTrue\[1\] is 2, expected a class label in \[0, 2\)/));
  });
});

describe('topKAccuracy', () => {
  // label's score and how many classes score strictly higher:
  //   row 0: label 2 (0.3), higher: 0.4            → 1
  //   row 1: label 0 (0.4), higher: none           → 0
  //   row 2: label 3 (0.25), all tied, higher none → 0
  //   row 3: label 0 (0.1), higher: 0.6, 0.2       → 2 (class 2 ties it at 0.1)
  const scores = [
    [0.1, 0.2, 0.3, 0.4],
    [0.4, 0.3, 0.2, 0.1],
    [0.25, 0.25, 0.25, 0.25],
    [0.1, 0.6, 0.1, 0.2],
  ];
  const labels = [2, 0, 3, 0];

  it('counts a hit when fewer than k classes score strictly higher', () => {
    assert.equal(topKAccuracy(labels, scores, 1), 0.5); // rows 1, 2
    assert.equal(topKAccuracy(labels, scores, 2), 0.75); // rows 0, 1, 2
    assert.equal(topKAccuracy(labels, scores, 3), 1); // row 3 joins: only 2 classes are higher
  });

  it('treats classes tied at the boundary as all in the top k, unlike argmax accuracy', () => {
    // Row 2 is a four-way tie: top-1 counts it, accuracy's argmax picks class 0 and misses label 3.
    assert.equal(accuracy(labels, scores), 0.25);
    assert.equal(topKAccuracy(labels, scores, 1), 0.5);
  });

  it('is 1 when k is at least the number of classes, and defaults to k = 5 as Keras', () => {
    assert.equal(topKAccuracy(labels, scores, 4), 1);
    assert.equal(topKAccuracy(labels, scores), 1);
  });

  it('rejects a k that is not a positive integer and binary [N] scores', () => {
    assert.throws(() => topKAccuracy(labels, scores, 0), kilnError('INVALID_ARGUMENT', /k must be a positive integer, got 0/));
    assert.throws(() => topKAccuracy([0, 1], [0.2, 0.7], 1), kilnError('INVALID_SHAPE', /C >= 2/));
  });
});

describe('confusionMatrix', () => {
  it('puts true classes in rows and predicted classes in columns', () => {
    // true 0 → predicted 0, 1; true 1 → 1; true 2 → 2, 0, 2
    assert.deepEqual(confusionMatrix(THREE_CLASS_TRUE, THREE_CLASS_PRED, 3), [
      [1, 1, 0],
      [0, 1, 0],
      [1, 0, 2],
    ]);
    // One sample, true 0 predicted 2: the count lands in row 0, column 2.
    assert.deepEqual(confusionMatrix([0], [2], 3), [
      [0, 0, 1],
      [0, 0, 0],
      [0, 0, 0],
    ]);
  });

  it('names the offending label and the valid range', () => {
    assert.throws(() => confusionMatrix([0, 1, 3], [0, 1, 2], 3), kilnError('INVALID_DATA', /yTrue\[2\] is 3, expected a class label in \[0, 3\)/));
    assert.throws(() => confusionMatrix([0, 1, 2], [0, 5, 2], 3), kilnError('INVALID_DATA', /yPred\[1\] is 5/));
    assert.throws(() => confusionMatrix([0, 1.5], [0, 1], 3), kilnError('INVALID_DATA', /yTrue\[1\] is 1.5, expected a non-negative integer/));
  });

  it('rejects labels and predictions of different lengths', () => {
    assert.throws(() => confusionMatrix([0, 1, 2, 1], [0, 1, 2], 3), kilnError('INVALID_DATA', /yTrue has 4 labels but yPred has 3 labels/));
  });
});

describe('precision, recall and f1', () => {
  // From the confusion matrix above, [[1,1,0],[0,1,0],[1,0,2]]:
  //   predicted per class (column sums) 2, 2, 2; support (row sums) 2, 1, 3; diagonal 1, 1, 2
  //   precision = 1/2, 1/2, 2/2
  //   recall    = 1/2, 1/1, 2/3
  //   f1        = 2·(.5·.5)/1 = 1/2,  2·(.5·1)/1.5 = 2/3,  2·(1·2/3)/(5/3) = 4/5
  it("gives one value per class with average 'none'", () => {
    assertAllClose(precision(THREE_CLASS_TRUE, THREE_CLASS_PRED, { average: 'none' }), [0.5, 0.5, 1]);
    assertAllClose(recall(THREE_CLASS_TRUE, THREE_CLASS_PRED, { average: 'none' }), [0.5, 1, 2 / 3]);
    assertAllClose(f1(THREE_CLASS_TRUE, THREE_CLASS_PRED, { average: 'none' }), [0.5, 2 / 3, 0.8]);
  });

  it("averages the per-class values without weights for 'macro', the default", () => {
    assertClose(precision(THREE_CLASS_TRUE, THREE_CLASS_PRED), (0.5 + 0.5 + 1) / 3); // 2/3
    assertClose(recall(THREE_CLASS_TRUE, THREE_CLASS_PRED, { average: 'macro' }), (0.5 + 1 + 2 / 3) / 3); // 13/18
    // Mean of per-class F1 (as scikit-learn), not F1 of the mean precision and recall: (45 + 60 + 72) / 90 / 3 = 59/90
    assertClose(f1(THREE_CLASS_TRUE, THREE_CLASS_PRED), 59 / 90);
  });

  it("pools all samples for 'micro', which equals accuracy for single-label problems", () => {
    // diagonal 4 of 6 samples
    assertClose(precision(THREE_CLASS_TRUE, THREE_CLASS_PRED, { average: 'micro' }), 4 / 6);
    assertClose(recall(THREE_CLASS_TRUE, THREE_CLASS_PRED, { average: 'micro' }), 4 / 6);
    assertClose(f1(THREE_CLASS_TRUE, THREE_CLASS_PRED, { average: 'micro' }), 4 / 6);

    const random = new Random(7);
    const n = 200;
    const classes = 5;
    const labels = Array.from({ length: n }, () => random.nextUint32() % classes);
    const scores = Float32Array.from({ length: n * classes }, () => random.nextUint32() / 2 ** 32);
    assertClose(f1(labels, scores, { numClasses: classes, average: 'micro' }), accuracy(labels, scores, { numClasses: classes }));
  });

  it('counts zero division as 0', () => {
    // Always predicting class 0 for true 0 0 1 1: confusion [[2, 0], [2, 0]]
    //   precision: class 0 = 2/4, class 1 = 0/0 → 0;  recall: class 0 = 2/2, class 1 = 0/2
    //   f1: class 0 = 2·(.5·1)/1.5 = 2/3, class 1 = 0 → macro 1/3 (scikit-learn's result too)
    const truth = [0, 0, 1, 1];
    const alwaysZero = new Int32Array([0, 0, 0, 0]);
    assertAllClose(precision(truth, alwaysZero, { average: 'none' }), [0.5, 0]);
    assertAllClose(recall(truth, alwaysZero, { average: 'none' }), [1, 0]);
    assertAllClose(f1(truth, alwaysZero, { average: 'none' }), [2 / 3, 0]);
    assertClose(f1(truth, alwaysZero), 1 / 3);
  });

  it('leaves classes absent from both labels and predictions out of the macro mean', () => {
    // Same data with numClasses 3: class 2 has no samples and no predictions, so its zero-division 0
    // shows in the per-class array but does not pull the macro mean from 1/3 to 2/9.
    const truth = [0, 0, 1, 1];
    const alwaysZero = new Int32Array([0, 0, 0, 0]);
    assertAllClose(f1(truth, alwaysZero, { average: 'none', numClasses: 3 }), [2 / 3, 0, 0]);
    assertClose(f1(truth, alwaysZero, { numClasses: 3 }), 1 / 3);
  });

  it('takes the argmax of [N, C] scores and thresholds [N] probabilities', () => {
    // scores argmax 0, 0, 1 vs labels 0, 1, 1 → confusion [[1, 0], [1, 1]]: recall class 1 = 1/2
    const scores = tensor([
      [0.9, 0.1],
      [0.6, 0.4],
      [0.2, 0.8],
    ]);
    assertAllClose(recall([0, 1, 1], scores, { average: 'none' }), [1, 0.5]);
    assertAllClose(recall([0, 1, 1], new Float32Array([0.1, 0.4, 0.8]), { average: 'none' }), [1, 0.5]);
  });
});

describe('aucRoc', () => {
  it("matches scikit-learn's documented example", () => {
    // ranks of 0.1, 0.4, 0.35, 0.8 are 1, 3, 2, 4; positives hold ranks 2 + 4 = 6
    // AUC = (6 − 2·3/2) / (2·2) = 3/4
    assert.equal(aucRoc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75);
  });

  it('gives tied scores the average rank, i.e. half a pair each', () => {
    // scores 0.2 0.5 0.5 0.9, labels 0 1 0 1: the two 0.5s share ranks 2 and 3 → 2.5 each
    // positives: 2.5 + 4 = 6.5 → (6.5 − 3) / 4 = 0.875
    // by pairs: 0.5 vs 0.2 → 1, 0.5 vs 0.5 → ½, 0.9 vs both → 2; 3.5 / 4 = 0.875
    // trapezoids over thresholds (scikit-learn): points (0,0) (0,.5) (.5,1) (1,1) → .5·.75 + .5·1 = 0.875
    assert.equal(aucRoc([0, 1, 0, 1], [0.2, 0.5, 0.5, 0.9]), 0.875);
    assert.equal(aucRoc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]), 0.5);
  });

  it('agrees with counting pairs on random scores with many ties', () => {
    const random = new Random(3);
    for (let trial = 0; trial < 20; trial++) {
      const n = 50;
      const labels = Array.from({ length: n }, () => random.nextUint32() % 2);
      labels[0] = 0;
      labels[1] = 1;
      const scores = Array.from({ length: n }, () => (random.nextUint32() % 8) / 8);
      let wins = 0;
      let pairs = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          if (labels[i] !== 1 || labels[j] !== 0) continue;
          pairs++;
          wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
        }
      }
      assertClose(aucRoc(labels, scores), wins / pairs);
    }
  });

  it('counts -0 and 0 as one tie, and agrees with counting pairs on a segmentation-sized input (300,000 scores)', () => {
    // Pairs: 0 vs -0 a tie (0.5), 0 vs 0.5 lost, 0.25 vs -0 won, 0.25 vs 0.5 lost: 1.5 of 4.
    assert.equal(aucRoc([0, 1, 0, 1], [-0, 0, 0.5, 0.25]), 0.375);
    const random = new Random(4);
    const n = 300_000;
    const labels = Array.from({ length: n }, () => random.nextUint32() % 2);
    const scores = labels.map((l) => ((random.nextUint32() % 1000) + 300 * l) / 1000);
    // Pairs counted by histogram: scores are multiples of 1/1000 in [0, 1.3).
    const positivesAt = new Float64Array(1300);
    const negativesAt = new Float64Array(1300);
    labels.forEach((l, i) => (l ? positivesAt : negativesAt)[Math.round(scores[i]! * 1000)]!++);
    let wins = 0;
    let negativesBelow = 0;
    for (let v = 0; v < 1300; v++) {
      wins += positivesAt[v]! * (negativesBelow + negativesAt[v]! / 2);
      negativesBelow += negativesAt[v]!;
    }
    const positives = positivesAt.reduce((a, b) => a + b, 0);
    assertClose(aucRoc(labels, scores), wins / (positives * (n - positives)));
  });

  it('orders infinite logits correctly and reads [N, 1] tensors', () => {
    assert.equal(aucRoc([0, 1, 0, 1], tensor([-Infinity, Infinity, 0, Infinity], [4, 1])), 1);
  });

  it('averages one-vs-rest AUCs over classes for [N, C] scores', () => {
    // labels 0 1 2 2
    // class 0 column .6 .2 .1 .3: the positive .6 beats all three negatives → 1
    // class 1 column .3 .5 .2 .4: the positive .5 beats all three negatives → 1
    // class 2 column .1 .3 .7 .3: positives .7, .3 vs negatives .1, .3 → 1 + 1 + 1 + ½ = 3.5 / 4 = 0.875
    // macro = (1 + 1 + 0.875) / 3 = 0.958333…
    const scores = [
      [0.6, 0.3, 0.1],
      [0.2, 0.5, 0.3],
      [0.1, 0.2, 0.7],
      [0.3, 0.4, 0.3],
    ];
    assertClose(aucRoc([0, 1, 2, 2], scores), 2.875 / 3);
  });

  it('skips a class with no positives instead of averaging an undefined AUC', () => {
    // labels 0 0 1 1, three columns: class 2 never occurs and is skipped
    // class 0 column .8 .4 .3 .5: positives .8, .4 vs negatives .3, .5 → 1 + 1 + 1 + 0 = 3/4
    // class 1 column .1 .5 .6 .3: positives .6, .3 vs negatives .1, .5 → 1 + 1 + 1 + 0 = 3/4
    const scores = [
      [0.8, 0.1, 0.1],
      [0.4, 0.5, 0.1],
      [0.3, 0.6, 0.1],
      [0.5, 0.3, 0.2],
    ];
    assertClose(aucRoc([0, 0, 1, 1], scores), 0.75);
  });

  it('throws INVALID_DATA when only one class is present', () => {
    assert.throws(() => aucRoc([1, 1, 1], [0.2, 0.4, 0.9]), kilnError('INVALID_DATA', /undefined when only one class is present.*class 1/));
    assert.throws(
      () => aucRoc([2, 2], [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]]),
      kilnError('INVALID_DATA', /only one class is present.*all 2 samples are class 2/),
    );
  });

  it('rejects binary labels other than 0/1 and NaN scores', () => {
    assert.throws(() => aucRoc([0, 2], [0.1, 0.9]), kilnError('INVALID_DATA', /expected a class label in \[0, 2\)/));
    assert.throws(() => aucRoc([0, 1], [0.1, NaN]), kilnError('INVALID_DATA', /yPred\[1\] is NaN/));
  });
});

describe('input validation', () => {
  it('names both lengths when labels and score rows differ', () => {
    assert.throws(() => accuracy([0, 1, 1], [[0.1, 0.9], [0.2, 0.8]]), kilnError('INVALID_DATA', /yTrue has 3 labels but yPred has 2 rows/));
  });

  it('names the label outside [0, C) where C is the number of score columns', () => {
    assert.throws(() => accuracy([0, 3], [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]]), kilnError('INVALID_DATA', /yTrue\[1\] is 3, expected a class label in \[0, 3\)/));
  });

  it('points one-hot targets passed as labels to categoricalAccuracy', () => {
    const oneHot = tensor([
      [1, 0],
      [0, 1],
    ]);
    assert.throws(() => accuracy(oneHot, oneHot), kilnError('INVALID_SHAPE', /\[N\] or \[N, 1\].*categoricalAccuracy/));
    assert.throws(() => accuracy([[1, 0]] as unknown as number[], oneHot), kilnError('INVALID_SHAPE', /nested rows/));
  });

  it('rejects empty input, ragged rows and a flat array that does not fold into numClasses columns', () => {
    assert.throws(() => accuracy([], []), kilnError('INVALID_DATA', /at least one sample/));
    assert.throws(() => accuracy([0, 1], [[0.1, 0.9], [0.2]]), kilnError('INVALID_SHAPE', /row 1 has 1/));
    assert.throws(() => accuracy([0, 1], new Float32Array(5), { numClasses: 2 }), kilnError('INVALID_SHAPE', /5 values/));
    assert.throws(() => accuracy([0, 1], tensor([[0.1, 0.9], [0.2, 0.8]]), { numClasses: 3 }), kilnError('INVALID_SHAPE', /2 score columns but numClasses is 3/));
  });
});

describe('evaluateClassifier', () => {
  it('reports accuracy, macro and micro F1, AUC, the confusion matrix and per-class scores at once', () => {
    // Same scores as the one-vs-rest AUC case; argmax 0, 1, 2, 1 vs labels 0, 1, 2, 2
    //   confusion [[1,0,0],[0,1,0],[0,1,1]]; accuracy 3/4
    //   precision 1, 1/2, 1; recall 1, 1, 1/2; f1 1, 2/3, 2/3 → macro 7/9
    const scores = tensor([
      [0.6, 0.3, 0.1],
      [0.2, 0.5, 0.3],
      [0.1, 0.2, 0.7],
      [0.3, 0.4, 0.3],
    ]);
    const report = evaluateClassifier(new Int32Array([0, 1, 2, 2]), scores);
    assert.equal(report.numSamples, 4);
    assert.equal(report.numClasses, 3);
    assert.equal(report.accuracy, 0.75);
    assertClose(report.macroF1, 7 / 9);
    assertClose(report.microF1, 0.75);
    assertClose(report.aucRoc!, 2.875 / 3);
    assert.deepEqual(report.confusion, [
      [1, 0, 0],
      [0, 1, 0],
      [0, 1, 1],
    ]);
    assertAllClose(report.perClass.precision, [1, 0.5, 1]);
    assertAllClose(report.perClass.recall, [1, 1, 0.5]);
    assert.deepEqual(report.perClass.support, [1, 1, 2]);
  });

  it('reports a null AUC rather than throwing when only one class is present', () => {
    const report = evaluateClassifier([1, 1], [0.3, 0.9]);
    assert.equal(report.aucRoc, null);
    assert.equal(report.accuracy, 0.5); // 0.3 → 0, 0.9 → 1
    assert.deepEqual(report.confusion, [
      [0, 0],
      [1, 1],
    ]);
  });

  it('predictedLabels is the label rule every metric uses', () => {
    assert.deepEqual(Array.from(predictedLabels([[0.2, 0.8], [0.5, 0.5]])), [1, 0]);
    assert.deepEqual(Array.from(predictedLabels([0.2, 0.8], { threshold: 0.1 })), [1, 1]);
  });
});

describe('a label per position (token classifiers)', () => {
  // Two sequences of three tokens, three classes; scores [2, 3, 3], labels [2, 3] with -100 on padding.
  const scores = tensor(
    [
      [[3, 1, 0], [0, 2, 1], [0, 0, 5]], // predicts 0, 1, 2
      [[1, 0, 0], [0, 0, 4], [9, 0, 0]], // predicts 0, 2, 0 (the last is padding)
    ],
    undefined,
    'float32',
  );
  const labels = tensor([[0, 1, 1], [0, 2, -100]], undefined, 'int32');

  it('counts each labelled position as a sample, leaving negative labels out', () => {
    // Labelled: (0,0) ✓, (0,1) ✓, (0,2) ✗ (2 for 1), (1,0) ✓, (1,1) ✓: 4 of 5.
    assertClose(accuracy(labels, scores), 4 / 5);
    const report = evaluateClassifier(labels, scores);
    assert.equal(report.numSamples, 5);
    assert.deepEqual(report.confusion, [[2, 0, 0], [0, 1, 1], [0, 0, 1]]);
    assertClose(topKAccuracy(labels, scores, 2), 1);
    assertClose(precision(labels, scores, { average: 'micro' }), 4 / 5);
  });

  it('labelledPositions gives the rows, for classes on any axis', () => {
    const rows = labelledPositions(scores.data as Float32Array, scores.shape, 2, labels.data);
    assert.deepEqual(Array.from(rows.truth), [0, 1, 1, 0, 2]);
    assert.deepEqual(rows.scores.shape, [5, 3]);
    assert.deepEqual(Array.from(rows.scores.data.subarray(12, 15)), [0, 0, 4]);
    // Classes on axis 1 ([N, C, T], PyTorch's layout), and a void class 2 left out by ignoreClass.
    const channelsFirst = new Float32Array(18);
    for (let n = 0; n < 2; n++) for (let t = 0; t < 3; t++) for (let c = 0; c < 3; c++) channelsFirst[(n * 3 + c) * 3 + t] = scores.data[(n * 3 + t) * 3 + c]!;
    const void2 = labelledPositions(channelsFirst, [2, 3, 3], 1, labels.data, 2);
    assert.deepEqual(Array.from(void2.truth), [0, 1, 1, 0]);
    assert.deepEqual(Array.from(void2.scores.data.subarray(6, 9)), [0, 0, 5]);
  });

  it("a class per pixel on axis 1 (PyTorch's [N, C, H, W] segmentation logits with [N, H, W] labels): the axis the labels leave out", () => {
    // One image of 1×3 pixels, the same scores with classes moved to axis 1: [1, 3, 1, 3].
    const pixels = new Float32Array(9);
    for (let c = 0; c < 3; c++) for (let w = 0; w < 3; w++) pixels[c * 3 + w] = scores.data[w * 3 + c]!;
    const segmentation = new Tensor(pixels, [1, 3, 1, 3], 'float32');
    const truth = tensor([[[0, 1, 1]]], undefined, 'int32');
    assertClose(accuracy(truth, segmentation), 2 / 3);
    assert.deepEqual(evaluateClassifier(truth, segmentation).confusion, [[1, 0, 0], [0, 1, 1], [0, 0, 0]]);
    assert.deepEqual(Array.from(positionScores(segmentation, 1).data), Array.from(scores.data.subarray(0, 9)));
    // Which axis: the last where it fits (Keras), else the only other; none or several: undefined.
    assert.equal(labelClassAxis([null, 11, 28, 28], [4, 28, 28]), 1);
    assert.equal(labelClassAxis([null, 12, 3], [4, 12]), undefined);
    assert.equal(labelClassAxis([null, 5, 4, 3], [4, 5, 3]), 2);
    assert.equal(labelClassAxis([null, 10, 10], [4, 10]), undefined);
    assert.equal(labelClassAxis([null, 10], [4]), undefined);
    assert.equal(labelClassAxis([null, 6, 5, 4], [4, 3, 2]), undefined);
  });
});
