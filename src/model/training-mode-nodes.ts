import type { Attrs } from '../graph/graph.js';
import type { NodeProto } from '../graph/proto.js';

/*
 * The nodes whose behaviour depends on training or inference, as another tool's file may hold them:
 * Dropout, and BatchNormalization as torch.onnx.export(..., training=TrainingMode.TRAINING) writes it
 * (training_mode = 1 from opset 14; its running-statistics outputs before that). What this file owns:
 * - each such node's inference form — what model.eval() computes: BatchNormalization over its running
 *   statistics, Dropout passing its input through — for predict, evaluate and the saved file, so a model
 *   exported in training mode does not answer with batch statistics and random masks;
 * - Dropout's training form — what model.train() computes: units dropped with the node's ratio
 *   (ONNX's default 0.5 when it has none) from a seeded generator, whatever mode the file wrote it in.
 *   PyTorch's eval-mode exports leave Dropout out; a Dropout in the file is one the model has.
 */

/** Whether a node is of ONNX's default domain. */
export const isOnnx = (n: NodeProto): boolean => !n.domain || n.domain === 'ai.onnx';

/** A node's inputs, attributes and outputs as they are to be emitted. */
export interface NodeForm {
  inputs: string[];
  attrs: Attrs;
  outputs: string[];
}

/**
 * The node as inference runs it, where that differs from the file: a BatchNormalization without
 * training_mode and without its statistics outputs (only where nothing reads them), a Dropout without
 * its training_mode input. Undefined for every other node.
 */
export function inferenceForm(n: NodeProto, attrs: Attrs, read: ReadonlySet<string>): NodeForm | undefined {
  if (!isOnnx(n)) return undefined;
  const inputs = [...(n.input ?? [])];
  const outputs = [...(n.output ?? [])];
  if (n.opType === 'BatchNormalization') {
    const extra = outputs.slice(1).filter((o) => o !== '');
    if (attrs.training_mode !== 1 && extra.length === 0) return undefined;
    if (extra.some((o) => read.has(o))) return undefined;
    const { training_mode: _mode, ...rest } = attrs;
    return { inputs, attrs: rest, outputs: outputs.slice(0, 1) };
  }
  if (n.opType === 'Dropout' && (inputs[2] ?? '') !== '') return { inputs: inputs.slice(0, 2), attrs, outputs };
  return undefined;
}

/** Values any node reads or the graph outputs: what an inference form must not drop. */
export function readValues(nodes: readonly NodeProto[], graphOutputs: readonly string[]): Set<string> {
  const read = new Set(graphOutputs);
  for (const n of nodes) for (const i of n.input ?? []) if (i) read.add(i);
  return read;
}

/** The seed of the `k`-th node's dropout masks in a model seeded `seed` (a positive 31-bit integer). */
export function dropoutSeed(seed: number, k: number): number {
  return (Math.abs(Math.trunc(seed)) * 7919 + 104729 * (k + 1)) % 2147483647;
}

/**
 * The nodes of a file in inference form ({@link inferenceForm}), attributes re-encoded only where a
 * node changed: what a saved model holds, so ONNX Runtime, a server or a browser runs it as eval().
 */
export function inferenceNodes(nodes: readonly NodeProto[], graphOutputs: readonly string[], attrsOf: (n: NodeProto) => Attrs): NodeProto[] {
  const read = readValues(nodes, graphOutputs);
  return nodes.map((n) => {
    const form = inferenceForm(n, attrsOf(n), read);
    if (!form) return n;
    return {
      ...n,
      input: form.inputs,
      output: form.outputs,
      attribute: (n.attribute ?? []).filter((a) => a.name !== 'training_mode'),
    };
  });
}
