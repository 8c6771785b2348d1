import { addGradients } from '../autodiff/gradients.js';
import { Graph, type Value } from '../graph/graph.js';
import type { ParamInfo } from '../model/model.js';
import type { GraphModel } from './graph-model.js';
import { sparseCategoricalCrossentropy } from './losses.js';

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

/** Builds the graph; `labels` names its int64 [N] input of class indices (the model's input is 'input'). */
export function lossGradientGraph(model: GraphModel, labels = 'labels'): LossGradientGraph {
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
  const classes = graph.input(labels, 'int64', ['N']);
  const loss = sparseCategoricalCrossentropy({ fromLogits: true }).build(graph, built.output, classes);
  const trainable = model.paramInfos().filter((p) => p.spec.trainable);
  const grads = addGradients(
    graph,
    loss,
    trainable.map((p) => paramValues.get(p.name)!),
  );
  return { graph, output: built.output, loss, trainable, gradients: trainable.map((p) => grads.get(paramValues.get(p.name)!.name)!), updates: built.updates };
}
