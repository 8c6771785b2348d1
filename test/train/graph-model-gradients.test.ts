/**
 * Kiln's gradients through graphs PyTorch exported equal PyTorch's own (test/fixtures/exported: the
 * fixtures and the loss, logits, gradients and BatchNorm running statistics torch 1.13 recorded for
 * one batch in train() mode). Within 1e-4, relative, per tensor, as the any-ONNX issue asks. textcls
 * takes int64 token ids (an embedding lookup's Gather), textmask token ids and an attention mask (two
 * inputs), the others images.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, it } from 'node:test';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { EXPORTED_DIR, decodeTensor, readReference, referenceInputs, referenceLabels } from '../fixtures/exported/reference.js';
import { lossGradientGraph } from '../../src/train/loss-gradients.js';
import { sparseCategoricalCrossentropy, type Loss } from '../../src/train/losses.js';

const DIR = EXPORTED_DIR;

/** ‖a − b‖ / ‖b‖ */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i]! - b[i]!) ** 2;
    norm += b[i]! ** 2;
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-30);
}

const runtime = new Runtime();
after(() => runtime.close());

/**
 * Each fixture as exported; resnet7, vit9, textmask11 and mobilenet9 are upgraded to opset 13 as they load. The
 * last two declare opset 21 (19–21 changed no operator these graphs use, only added types and
 * attributes), so Kiln's step nodes are checked at the newest opset it trains.
 */
const CASES: [label: string, fixture: string, declaredOpset?: number, dimensions?: Record<string, number>, loss?: Loss][] = [
  ...['resnet', 'resnet_fused', 'mlp', 'dwsep', 'vit13', 'vit17', 'resnet_wide', 'vit_wide', 'textcls', 'textmask', 'resnet7', 'vit9', 'textmask11', 'mobilenet9'].map((n): [string, string] => [n, n]),
  ['vit17 declared at opset 21', 'vit17', 21],
  ['textmask declared at opset 21', 'textmask', 21],
  // Its inputs [batch, sequence], as Hugging Face exports are: given 12, the reference's length.
  ['textdyn at sequence 12', 'textdyn', undefined, { sequence: 12 }],
  // A token classifier (logits [batch, sequence, 3]): a label per token, padding labelled -100 and
  // left out of the mean, as PyTorch's CrossEntropyLoss(ignore_index=-100).
  ['tokentag (a label per token) at sequence 12', 'tokentag', undefined, { sequence: 12 }, sparseCategoricalCrossentropy({ ignoreClass: -100 })],
  // A causal language model (next-token labels, the last -100): its causal mask, a float buffer of −∞,
  // is no weight, and the head the exporter wrote as embed.weight's transposed copy trains as embed.weight.
  ['causallm (tied head, causal mask) at sequence 12', 'causallm', undefined, { sequence: 12 }, sparseCategoricalCrossentropy({ ignoreClass: -100 })],
  // A segmentation model (logits [batch, 11, 28, 28], a label per pixel on PyTorch's class axis 1)
  // whose decoder upsamples with ConvTranspose (stride 2 with output_padding, and kernel 2 stride 2).
  ['segnet (a label per pixel, ConvTranspose decoder)', 'segnet', undefined, undefined, sparseCategoricalCrossentropy({ axis: 1 })],
  // Volumes [batch, 1, 4, 28, 28]: Conv3d (dense, strided, depthwise), BatchNorm3d, MaxPool3d,
  // ConvTranspose3d, AvgPool3d.
  ['vol3d (3-D convolutions over clips)', 'vol3d'],
  // The ResNet as built, not trained: the exporter merged its BatchNorms' equal ones and zeros into one
  // initializer each (Identity nodes); every γ, β and running statistic is its own again, by PyTorch's name.
  ['resnet_fresh (initializers merged by the exporter)', 'resnet_fresh'],
  // Sin, Einsum (attention), ReduceL2 (F.normalize), TopK, ReduceLogSumExp, GatherElements and Celu on the path to the loss.
  ['opsmix (Sin, Einsum, ReduceL2, TopK, ReduceLogSumExp, GatherElements, Celu)', 'opsmix'],
  // A bidirectional LSTM, a GRU and a ReLU RNN over the image's 28 rows, trained unrolled (backpropagation through time).
  ['rnn (bidirectional LSTM, GRU, ReLU RNN)', 'rnn'],
];

for (const [label, name, declaredOpset, dimensions, loss] of CASES) {
  describe(`gradients of PyTorch's ${label} export`, () => {
    it("equal PyTorch's loss, train-mode logits, every parameter's gradient and the running statistics", async () => {
      const ref = readReference(name);
      const file = `${DIR}/${name}.onnx`;
      let model: GraphModel;
      if (declaredOpset === undefined) model = await GraphModel.load(file, { dimensions });
      else {
        const proto = decodeModel(fs.readFileSync(file));
        proto.opsetImport = [{ domain: '', version: declaredOpset }];
        proto.irVersion = 10;
        model = await GraphModel.fromProto(proto, file);
      }
      // The model's logits are the graph's output 'output'.
      const { graph, loss: lossValue, trainable, gradients, updates } = lossGradientGraph(model, 'labels', loss);
      graph.output(lossValue, 'loss');
      gradients.forEach((g, k) => graph.output(g, `grad/${k}`));
      const stats = [...updates];
      stats.forEach(([, v], k) => graph.output(v, `stat/${k}`));

      assert.deepEqual(trainable.map((p) => p.name).sort(), Object.keys(ref.gradients).sort(), 'Kiln trains exactly the initializers PyTorch has gradients for');
      // Written at the opset fit writes the step at (the model's, 17 at least).
      const session = await runtime.load(encodeModel(modelToProto(graph, {}, model.graphOpset)));
      // The step graph's inputs: the first data input as 'input', the others (textmask's attention_mask) by their step names.
      const given = referenceInputs(ref.batch);
      const data: Record<string, Tensor> =
        given instanceof Tensor ? { input: given } : { input: given[model.modelInput.name]!, ...Object.fromEntries(model.otherInputs.map((o) => [o.stepName, given[o.name]!])) };
      const feeds: Record<string, Tensor> = {
        ...data,
        labels: referenceLabels(ref.batch.labels),
      };
      for (const p of model.paramInfos()) feeds[p.name] = model.weights.get(p.name)!;
      const out = await runtime.run(session, feeds);
      await runtime.release(session);

      assert.ok(Math.abs((out.loss!.data as Float32Array)[0]! - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${(out.loss!.data as Float32Array)[0]} vs PyTorch ${ref.loss}`);
      assert.ok(relativeError(out.output!.data as Float32Array, decodeTensor(ref.logits).data) <= 1e-5, 'train-mode logits');
      const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));
      const largest = Math.max(...Object.values(ref.gradients).map((g) => norm(decodeTensor(g).data)));
      trainable.forEach((p, k) => {
        const ours = out[`grad/${k}`]!.data as Float32Array;
        const theirs = decodeTensor(ref.gradients[p.name]!).data;
        const err = relativeError(ours, theirs);
        // A gradient that is zero in exact arithmetic (mobilenet9's first block output feeds a 1×1 Conv
        // and a train-mode BatchNorm, which removes any per-channel shift: its last BatchNorm's bias
        // gradient is 0) is rounding noise on both sides; relative to each other that noise means
        // nothing, so both must be noise against the model's largest gradient instead.
        const zero = norm(theirs) <= 1e-6 * largest && norm(ours) <= 1e-6 * largest;
        assert.ok(err <= 1e-4 || zero, `gradient of '${p.name}': relative error ${err.toExponential(2)} (norms ${norm(ours).toExponential(2)} and PyTorch's ${norm(theirs).toExponential(2)})`);
      });
      assert.deepEqual(stats.map(([n]) => n).sort(), Object.keys(ref.runningStats ?? {}).sort(), 'every BatchNorm running statistic is updated');
      stats.forEach(([statName], k) => {
        const err = relativeError(out[`stat/${k}`]!.data as Float32Array, decodeTensor(ref.runningStats![statName]!).data);
        assert.ok(err <= 1e-5, `running statistic '${statName}': relative error ${err.toExponential(2)}`);
      });
    });
  });
}
