import { addGradients } from '../autodiff/gradients.js';
import { Graph, type Value } from '../graph/graph.js';
import type { ParamInfo } from '../model/model.js';
import type { GraphModel } from './graph-model.js';
import { KilnError } from '../errors.js';
import { sparseCategoricalCrossentropy, type Loss } from './losses.js';

/*
 * An imported graph's loss and its gradients as a graph of their own, in training mode (batch
 * statistics): every parameter is a graph input named as the weight (fed the model's weights), the
 * loss is sparse categorical cross-entropy from the logits, and each trainable parameter's gradient is
 * a value to output. What Taylor ranking reads (optimize/prune/taylor.ts) and what the tests compare
 * with PyTorch's autograd.
 */

export interface LossGradientGraph {
  graph: Graph;
  /** The model's logits. */
  output: Value;
  /** The mean loss over the batch. */
  loss: Value;
  /** The trainable parameters, in the model's order. */
  trainable: ParamInfo[];
  /** The gradient of the loss with respect to each of `trainable`, in the same order. */
  gradients: Value[];
  /** New values of the running statistics (BatchNormalization's), by parameter name. */
  updates: Map<string, Value>;
}

/**
 * Builds the graph; `labels` names its int64 input of class indices ([N], or one per position for
 * `loss` over positions: a token classifier's [N, T]); the model's input is 'input'. `loss` is a
 * sparse categorical cross-entropy (from the logits whatever it says), by default over [N, classes].
 */
export function lossGradientGraph(model: GraphModel, labels = 'labels', loss: Loss = sparseCategoricalCrossentropy()): LossGradientGraph {
  const graph = new Graph('loss-gradients');
  const paramValues = new Map<string, Value>();
  const built = model.buildGraph({
    training: true,
    graph,
    logits: true,
    paramValue: (g, info) => {
      const v = g.input(info.name, 'float32', info.spec.shape);
      paramValues.set(info.name, v);
      return v;
    },
  });
  if (loss.name !== 'sparseCategoricalCrossentropy') throw new KilnError('INVALID_ARGUMENT', `the loss gradients of an imported graph are those of sparseCategoricalCrossentropy, got ${loss.name}`);
  const fromLogits = sparseCategoricalCrossentropy({ ...loss.config, fromLogits: true });
  const classes = graph.input(labels, 'int64', ['N', ...fromLogits.labelSpec(model.outputShape).shape]);
  const lossValue = fromLogits.build(graph, built.output, classes);
  const trainable = model.paramInfos().filter((p) => p.spec.trainable);
  const grads = addGradients(
    graph,
    lossValue,
    trainable.map((p) => paramValues.get(p.name)!),
  );
  return { graph, output: built.output, loss: lossValue, trainable, gradients: trainable.map((p) => grads.get(paramValues.get(p.name)!.name)!), updates: built.updates };
}
