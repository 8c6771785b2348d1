import { modelToProto } from '../../graph/onnx-io.js';
import { encodeModel } from '../../graph/proto.js';
import { checkPositiveInteger } from '../../data/check.js';
import type { ModelInputs } from '../../model/input-rows.js';
import { sharedRuntime } from '../../runtime/runtime.js';
import { Tensor } from '../../tensor.js';
import { KilnError } from '../../errors.js';
import type { GraphModel } from '../../train/graph-model.js';
import { prepareLabels } from '../../train/fit-args.js';
import { sparseCategoricalCrossentropy } from '../../train/losses.js';
import { lossGradientGraph } from '../../train/loss-gradients.js';
import { recordedTraining } from '../../train/model.js';

/*
 * The gradients first-order Taylor ranking needs (criterion 'taylor'): the loss's mean gradient with
 * respect to every trainable weight of an imported graph over a few batches, in training mode (batch
 * statistics, as the fine-tuning that follows). A unit's importance is then Σ |w · ∂L/∂w| over its
 * weights — the first-order estimate of how much the loss changes when the unit is removed
 * (Molchanov et al., 2019; Torch-Pruning's TaylorImportance) — where a magnitude only says how large
 * the weights are, not whether the loss depends on them.
 */

/** Data and budget for the Taylor gradients. */
export interface TaylorData {
  /** Inputs, as fit takes them (channels-last data for a channels-first model is transposed; a model with several inputs: tensors by name). */
  x: ModelInputs;
  /** Class labels. */
  y: Tensor;
  /** Batches averaged (default 8), of examples spread evenly over x (data sorted by class still shows every class). */
  batches?: number;
  /** Examples per batch (default 64). */
  batchSize?: number;
}

/**
 * The mean over `batches` batches of the gradient of sparse categorical cross-entropy (from the
 * model's logits) with respect to each trainable weight, by weight name.
 */
export async function taylorGradients(model: GraphModel, data: TaylorData): Promise<Map<string, Float32Array>> {
  const batches = data.batches ?? 8;
  const batchSize = data.batchSize ?? 64;
  checkPositiveInteger(batches, 'structured.data.batches', "criterion 'taylor'");
  checkPositiveInteger(batchSize, 'structured.data.batchSize', "criterion 'taylor'");
  if (!data.x || typeof data.x !== 'object' || !(data.y instanceof Tensor)) throw new KilnError('INVALID_ARGUMENT', "criterion 'taylor' needs data: structured.data {x, y} or fineTune's x and y");
  // Checking x settles the input layout as fit does (channels-last data for a channels-first model) — on
  // a copy, so the model passed in stays as it was — and keys it (with any other inputs) as the step takes it.
  const probe = model.clone();
  const rows = probe.inputRows(data.x);
  if (rows.n === 0) throw new KilnError('INVALID_ARGUMENT', "criterion 'taylor': the data has no examples");
  // Class indices in [0, classes), as fit checks them (one-hot rows and out-of-range labels are errors);
  // the label the model's saved loss ignored (a token classifier's -100) is ignored here too.
  const recorded = recordedTraining(model.metadata)?.loss;
  const axis = model.defaultClassAxis(data.y);
  const loss = sparseCategoricalCrossentropy({ ...(axis !== undefined ? { axis } : {}), ...(recorded?.name === 'sparseCategoricalCrossentropy' ? recorded.config : {}), fromLogits: true });
  const classLabels = prepareLabels(data.y, loss, model.outputShape, rows.n);
  // Every (n/m)-th example: spread over the data, whatever its order.
  const available = rows.n;
  const m = Math.min(available, batches * batchSize);
  const picked = Array.from({ length: m }, (_, k) => Math.floor((k * available) / m));
  const x = rows.gather(picked);
  const y = classLabels.gather(picked);

  const { graph, trainable, gradients } = lossGradientGraph(probe, 'taylor/labels', loss);
  gradients.forEach((g, k) => graph.output(g, `taylor/grad/${k}`));

  const runtime = sharedRuntime();
  const session = await runtime.load(encodeModel(modelToProto(graph)));
  const sums = trainable.map((p) => new Float64Array(p.spec.shape.reduce((a, b) => a * b, 1)));
  const n = x.n;
  let examples = 0;
  try {
    for (let b = 0; b * batchSize < n; b++) {
      const start = b * batchSize;
      const end = Math.min(n, start + batchSize);
      const feeds: Record<string, Tensor> = {
        ...x.slice(start, end).feeds,
        'taylor/labels': y.slice(start, end),
      };
      for (const p of probe.paramInfos()) feeds[p.name] = probe.weights.get(p.name)!;
      const out = await runtime.run(session, feeds);
      // Each batch's mean gradient weighted by its size: the mean over every example read.
      const size = end - start;
      trainable.forEach((_, k) => {
        const g = out[`taylor/grad/${k}`]!.data as Float32Array;
        const s = sums[k]!;
        for (let i = 0; i < g.length; i++) s[i] += size * g[i]!;
      });
      examples += size;
    }
  } finally {
    await runtime.release(session);
  }
  return new Map(trainable.map((p, k) => [p.name, Float32Array.from(sums[k]!, (v) => v / examples)]));
}
