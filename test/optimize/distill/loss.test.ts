/**
 * The distillation loss graph (src/optimize/distill/loss.ts) against values computed by hand on fixed
 * logits: the T² factor, the α = 0 and α = 1 extremes, and its gradient with respect to the student's
 * logits against the closed form α·(softmax(s) − onehot)/N + (1 − α)·T·(softmax(s/T) − softmax(t/T))/N.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addGradients } from '../../../src/autodiff/gradients.js';
import { Graph } from '../../../src/graph/graph.js';
import { modelToProto } from '../../../src/graph/onnx-io.js';
import { decodeModel, encodeModel } from '../../../src/graph/proto.js';
import { OnnxModel } from '../../../src/model/onnx-model.js';
import { distillationLoss } from '../../../src/optimize/distill/loss.js';
import { Tensor } from '../../../src/tensor.js';
import { sparseCategoricalCrossentropy } from '../../../src/train/losses.js';
import { assertThrowsKiln } from '../../model/helpers.js';

const STUDENT = [
  [2, 1, 0.1],
  [0.5, -1, 3],
];
const TEACHER = [
  [3, 0.5, -1],
  [0, 0.2, 2.5],
];
const LABELS = [0, 2];

function logSoftmax(z: number[]): number[] {
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
  return z.map((v) => v - lse);
}

/** The formula written out in float64, independently of the graph. */
function byHand(temperature: number, alpha: number): { ce: number; kl: number; loss: number } {
  let ce = 0;
  let kl = 0;
  for (let i = 0; i < STUDENT.length; i++) {
    ce -= logSoftmax(STUDENT[i]!)[LABELS[i]!]!;
    const ls = logSoftmax(STUDENT[i]!.map((v) => v / temperature));
    const lt = logSoftmax(TEACHER[i]!.map((v) => v / temperature));
    kl += lt.reduce((s, l, c) => s + Math.exp(l) * (l - ls[c]!), 0);
  }
  ce /= STUDENT.length;
  kl /= STUDENT.length;
  return { ce, kl, loss: alpha * ce + (1 - alpha) * temperature * temperature * kl };
}

async function graphLoss(temperature: number, alpha: number, withGradient = false): Promise<{ loss: number; grad?: Float32Array }> {
  const g = new Graph('distill_loss');
  const s = g.input('student', 'float32', ['N', 3]);
  const t = g.input('teacher', 'float32', ['N', 3]);
  const y = g.input('labels', 'int64', ['N']);
  const loss = distillationLoss(g, s, t, y, { temperature, alpha });
  g.output(loss, 'loss');
  if (withGradient) g.output(addGradients(g, loss, [s]).get('student')!, 'grad');
  const bytes = encodeModel(modelToProto(g));
  const out = await new OnnxModel(bytes, decodeModel(bytes)).run({
    student: new Tensor(Float32Array.from(STUDENT.flat()), [2, 3], 'float32'),
    teacher: new Tensor(Float32Array.from(TEACHER.flat()), [2, 3], 'float32'),
    labels: new Tensor(BigInt64Array.from(LABELS, BigInt), [2], 'int64'),
  });
  return { loss: (out.loss!.data as Float32Array)[0]!, grad: out.grad?.data as Float32Array | undefined };
}

const close = (a: number, e: number, what: string) => assert.ok(Math.abs(a - e) <= 2e-6 * Math.max(1, Math.abs(e)), `${what}: expected ${e}, got ${a}`);

describe('distillation loss', () => {
  it('equals the hand-computed value on fixed logits (T = 4, α = 0.1), T² factor included', async () => {
    // Computed separately in float64: CE = 0.2563521728461079, KL(T=4) = 0.02091233338233388,
    // 0.1·CE + 0.9·16·KL = 0.3267728179902187.
    const h = byHand(4, 0.1);
    close(h.ce, 0.2563521728461079, 'CE by hand');
    close(h.kl, 0.02091233338233388, 'KL by hand');
    close(h.loss, 0.3267728179902187, 'loss by hand');
    close((await graphLoss(4, 0.1)).loss, 0.3267728179902187, 'graph loss');
  });

  it('α = 0 is T²·KL alone, α = 1 is the plain cross-entropy', async () => {
    close((await graphLoss(4, 0)).loss, 16 * 0.02091233338233388, 'α = 0');
    close((await graphLoss(4, 1)).loss, 0.2563521728461079, 'α = 1');
  });

  it('scales the KL term by T² at other temperatures (T = 1, T = 2)', async () => {
    close((await graphLoss(1, 0.5)).loss, 0.18988578348745055, 'T = 1, α = 0.5');
    close((await graphLoss(2, 0.3)).loss, 0.2653825257584959, 'T = 2, α = 0.3');
    for (const [t, a] of [
      [1, 0.5],
      [2, 0.3],
    ] as const) {
      close(byHand(t, a).loss, (await graphLoss(t, a)).loss, `formula vs graph at T = ${t}`);
    }
  });

  it('has the closed-form gradient with respect to the student logits', async () => {
    for (const [temperature, alpha] of [
      [4, 0.1],
      [4, 0],
      [2, 1],
    ] as const) {
      const { grad } = await graphLoss(temperature, alpha, true);
      const n = STUDENT.length;
      STUDENT.forEach((row, i) => {
        const p = logSoftmax(row).map(Math.exp);
        const ps = logSoftmax(row.map((v) => v / temperature)).map(Math.exp);
        const pt = logSoftmax(TEACHER[i]!.map((v) => v / temperature)).map(Math.exp);
        row.forEach((_, c) => {
          const expected = (alpha * (p[c]! - (c === LABELS[i] ? 1 : 0))) / n + ((1 - alpha) * temperature * (ps[c]! - pt[c]!)) / n;
          close(grad![i * 3 + c]!, expected, `d loss / d s[${i}][${c}] at T = ${temperature}, α = ${alpha}`);
        });
      });
    }
  });

  it('per position (a token classifier, [N, T, classes]): the rows of STUDENT and TEACHER as one sequence, a third position ignored', async () => {
    // Two labelled positions give the [N, classes] loss of the same two rows; the third (-100, padding
    // whose logits are wild) carries neither term.
    const g = new Graph('distill_tokens');
    const s = g.input('student', 'float32', ['N', 3, 3]);
    const t = g.input('teacher', 'float32', ['N', 3, 3]);
    const y = g.input('labels', 'int64', ['N', 3]);
    g.output(distillationLoss(g, s, t, y, { temperature: 4, alpha: 0.1, hardLoss: sparseCategoricalCrossentropy({ fromLogits: true, ignoreClass: -100 }) }), 'loss');
    const bytes = encodeModel(modelToProto(g));
    const out = await new OnnxModel(bytes, decodeModel(bytes)).run({
      student: new Tensor(Float32Array.from([...STUDENT.flat(), 40, -40, 9]), [1, 3, 3], 'float32'),
      teacher: new Tensor(Float32Array.from([...TEACHER.flat(), -30, 50, 0]), [1, 3, 3], 'float32'),
      labels: new Tensor(BigInt64Array.from([...LABELS, -100], BigInt), [1, 3], 'int64'),
    });
    const { loss } = byHand(4, 0.1);
    const got = (out.loss!.data as Float32Array)[0]!;
    assert.ok(Math.abs(got - loss) <= 1e-5 * Math.abs(loss), `loss ${got} vs ${loss} by hand`);
  });

  it("classes on axis 1 (a segmentation model's [N, classes, H, W], the hard loss's axis): the same loss as the rows laid out [N, H, W, classes]", async () => {
    // The two rows of STUDENT and TEACHER as two pixels [1, 3 classes, 1, 2], labels [1, 1, 2].
    const channelsFirst = (rows: number[][]) => Float32Array.from([0, 1, 2].flatMap((c) => rows.map((r) => r[c]!)));
    const g = new Graph('distill_pixels');
    const s = g.input('student', 'float32', ['N', 3, 1, 2]);
    const t = g.input('teacher', 'float32', ['N', 3, 1, 2]);
    const y = g.input('labels', 'int64', ['N', 1, 2]);
    g.output(distillationLoss(g, s, t, y, { temperature: 4, alpha: 0.1, hardLoss: sparseCategoricalCrossentropy({ fromLogits: true, axis: 1 }) }), 'loss');
    const bytes = encodeModel(modelToProto(g));
    const out = await new OnnxModel(bytes, decodeModel(bytes)).run({
      student: new Tensor(channelsFirst(STUDENT), [1, 3, 1, 2], 'float32'),
      teacher: new Tensor(channelsFirst(TEACHER), [1, 3, 1, 2], 'float32'),
      labels: new Tensor(BigInt64Array.from(LABELS, BigInt), [1, 1, 2], 'int64'),
    });
    const { loss } = byHand(4, 0.1);
    const got = (out.loss!.data as Float32Array)[0]!;
    assert.ok(Math.abs(got - loss) <= 1e-5 * Math.abs(loss), `loss ${got} vs ${loss} by hand`);
  });

  it('rejects a non-positive temperature and α outside [0, 1]', () => {
    const g = new Graph();
    const s = g.input('s', 'float32', ['N', 3]);
    const t = g.input('t', 'float32', ['N', 3]);
    const y = g.input('y', 'int64', ['N']);
    assertThrowsKiln(() => distillationLoss(g, s, t, y, { temperature: 0, alpha: 0.5 }), 'INVALID_ARGUMENT', 'temperature');
    assertThrowsKiln(() => distillationLoss(g, s, t, y, { temperature: 4, alpha: 1.5 }), 'INVALID_ARGUMENT', 'alpha', '[0, 1]');
  });
});
