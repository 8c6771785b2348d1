/**
 * DP-SGD's gradient inside the compiled training step (Abadi et al., "Deep Learning with Differential
 * Privacy", 2016): every example's gradient is clipped to L2 norm C (one norm across all parameters),
 * the clipped gradients are summed, Gaussian noise N(0, σ²C²) is added to the sum, and the result is
 * divided by the batch size before the optimizer's update. All of it is ONNX graph: one backward pass
 * of the batch's loss gives every parametrized node's per-example output gradient (examples do not
 * interact once batch normalization is ruled out); per-node rules turn those into per-example
 * squared gradient norms, as Opacus' grad-sample hooks do for Linear and Conv; the clipping factors
 * then rescale the output gradients, and each node's own gradient rule sums the clipped per-example
 * weight gradients, so no [N, ...weights] tensor is kept beyond a Conv's norm.
 */
import { KilnError } from '../../errors.js';
import type { Graph, Node, Value } from '../../graph/graph.js';
import { intAttr } from '../../graph/op-definition.js';
import { opDefinition } from '../../ops/index.js';
import { spatialAttrs } from '../../ops/conv.js';
import { addGradients } from '../../autodiff/gradients.js';
import { Tensor } from '../../tensor.js';
import type { FlatGradientBuilder } from '../training-step.js';

/** Inputs of the DP-SGD training step, fed each step: the clipping norm C and the noise's standard deviation σ·C. */
export const DP_CLIP_INPUT = 'dp/l2_norm_clip';
export const DP_NOISE_STDDEV_INPUT = 'dp/noise_stddev';

/** Added to each norm before dividing the clip by it, as Opacus does, so an all-zero gradient stays 0. */
const NORM_EPSILON = 1e-6;

/** One parameter's use by the node that consumes it. */
interface ParamUse {
  param: Value;
  node: Node;
  input: number;
}

/**
 * The flat-gradient builder of a DP-SGD step (TrainingStepOptions.flatGradient). `seed` seeds the
 * step's RandomNormal: ONNX Runtime draws from one stream per session, so every step gets fresh noise
 * (fit() passes a fresh random seed for every session it loads).
 */
export function dpSgdGradient(seed: number): FlatGradientBuilder {
  return ({ graph, loss, labels, params, layout, totalSize, gradients }) => {
    const uses = params.map((param, k) => paramUse(graph, param, layout[k]!.name));
    const nodes = [...new Set(uses.map((u) => u.node))];
    const batch = graph.op1('Cast', [graph.op1('Gather', [graph.op1('Shape', [labels]), graph.int64s([0], 'index')], { axis: 0 })], { to: 1 }); // [1]
    // The loss is the batch mean of per-example losses: N times its gradient at an output is, row by
    // row, each example's own loss gradient.
    const meanGrads = addGradients(graph, loss, nodes.map((n) => graph.value(n.outputs[0]!)), gradients);
    const outGrad = new Map(nodes.map((n) => [n, graph.op1('Mul', [meanGrads.get(n.outputs[0]!)!, batch])]));

    let squared: Value | undefined;
    for (const u of uses) {
      const sq = perExampleSquaredNorm(graph, u, outGrad.get(u.node)!);
      squared = squared ? graph.op1('Add', [squared, sq]) : sq;
    }
    const norms = graph.op1('Sqrt', [squared!]); // [N]
    const clip = graph.input(DP_CLIP_INPUT, 'float32', []);
    const factor = graph.op1('Min', [graph.op1('Div', [clip, graph.op1('Add', [norms, graph.scalar(NORM_EPSILON)])]), graph.scalar(1)]); // [N]

    // Each node's own gradient rule, fed the clipped output gradients, sums the clipped per-example
    // parameter gradients over the batch.
    const summed = new Map<Node, (Value | null)[]>();
    for (const node of nodes) {
      const g = outGrad.get(node)!;
      const rank = g.shape!.length;
      const f = rank > 1 ? graph.op1('Unsqueeze', [factor, graph.int64s(Array.from({ length: rank - 1 }, (_, i) => i + 1), 'axes')]) : factor;
      const clipped = graph.op1('Mul', [g, f]);
      const inputs = node.inputs.map((i) => (i === '' ? null : graph.value(i)));
      summed.set(node, opDefinition(node.opType)!.gradient!({ graph, node, inputs, outputs: [graph.value(node.outputs[0]!)], gradOutputs: [clipped], options: gradients ?? {} }));
    }
    const flat = graph.op1('Concat', uses.map((u) => graph.op1('Reshape', [summed.get(u.node)![u.input]!, graph.int64s([-1], 'shape')])), { axis: 0 });
    // ONNX's seed is a FLOAT attribute; a whole JS number would be written as INT, hence the + 0.5
    // (ONNX Runtime truncates it). mean and scale keep their defaults, 0 and 1.
    const noise = graph.op1('RandomNormal', [], { shape: [totalSize], seed: (Math.abs(Math.trunc(seed)) % 1_000_000_007) + 0.5, dtype: 1 });
    const noisy = graph.op1('Add', [flat, graph.op1('Mul', [noise, graph.input(DP_NOISE_STDDEV_INPUT, 'float32', [])])]);
    return graph.op1('Div', [noisy, batch]);
  };
}

/** The one node that reads a parameter, and which of its inputs the parameter is. */
function paramUse(graph: Graph, param: Value, name: string): ParamUse {
  const readers = graph.nodes.filter((n) => n.inputs.includes(param.name));
  if (readers.length !== 1) {
    throw new KilnError('NO_GRADIENT', `DP-SGD needs each parameter read by one node to compute its per-example gradient; '${name}' is read by ${readers.length} (${readers.map((n) => n.opType).join(', ')})`);
  }
  const node = readers[0]!;
  return { param, node, input: node.inputs.indexOf(param.name) };
}

function unsupported(u: ParamUse, name: string, why: string): KilnError {
  return new KilnError(
    'NO_GRADIENT',
    `DP-SGD has no per-example gradient rule for parameter '${name}' (input ${u.input} of ${u.node.opType} node '${u.node.name}'): ${why}; ` +
      'per-example rules exist for dense layers (Gemm/MatMul and their bias) and 2-D convolutions without groups',
  );
}

const paramName = (u: ParamUse) => u.param.name.replace(/:value$/, '');

/** Each example's squared L2 norm [N] of its gradient with respect to `u.param`, from the node's per-example output gradient g. */
function perExampleSquaredNorm(graph: Graph, u: ParamUse, g: Value): Value {
  const name = paramName(u);
  const x = graph.value(u.node.inputs[0]!);
  const sumSquares = (v: Value, axes: number[]) => graph.op1('ReduceSum', [graph.op1('Mul', [v, v]), graph.int64s(axes, 'axes')], { keepdims: 0 });
  switch (u.node.opType) {
    case 'Gemm': {
      if (intAttr(u.node.attrs, 'transA', 0) !== 0) throw unsupported(u, name, 'transA = 1 puts the batch in the columns');
      const alpha = typeof u.node.attrs.alpha === 'number' ? u.node.attrs.alpha : 1;
      const beta = typeof u.node.attrs.beta === 'number' ? u.node.attrs.beta : 1;
      if (u.input === 1) {
        // dW_i = α·x_iᵀ g_i, an outer product: its squared norm is α²‖x_i‖²‖g_i‖² (no [N, in, out] needed).
        return graph.op1('Mul', [graph.op1('Mul', [sumSquares(x, [1]), sumSquares(g, [1])]), graph.scalar(alpha * alpha)]);
      }
      if (u.input === 2 && (u.param.shape?.length ?? 0) <= 1) return graph.op1('Mul', [sumSquares(g, [1]), graph.scalar(beta * beta)]);
      throw unsupported(u, name, 'the batch must be the rows of input A');
    }
    case 'MatMul': {
      if (u.input !== 1 || u.param.shape?.length !== 2 || !x.shape || x.shape.length < 2) throw unsupported(u, name, 'the weight must be the right-hand [in, out] operand of a batch of rows');
      const [din, dout] = u.param.shape as number[];
      if (x.shape.length === 2) return graph.op1('Mul', [sumSquares(x, [1]), sumSquares(g, [1])]);
      // Rows [N, ..., in]: dW_i = Σ_t x_itᵀ g_it, materialized as one batched MatMul [N, in, out].
      const rows = graph.op1('Transpose', [graph.op1('Reshape', [x, graph.int64s([0, -1, din!], 'shape')])], { perm: [0, 2, 1] });
      return sumSquares(graph.op1('MatMul', [rows, graph.op1('Reshape', [g, graph.int64s([0, -1, dout!], 'shape')])]), [1, 2]);
    }
    case 'Add': {
      // A bias broadcast over the batch (and over positions): its per-example gradient is g_i summed
      // over the axes the bias is broadcast along.
      const rank = g.shape?.length;
      const pShape = u.param.shape;
      if (!rank || !pShape || pShape.length > rank || (pShape.length === rank && pShape[0] !== 1)) throw unsupported(u, name, 'the parameter must be broadcast over the batch');
      const broadcast: number[] = [];
      for (let axis = 1; axis < rank; axis++) {
        const p = pShape[axis - (rank - pShape.length)];
        if (p === undefined || (p === 1 && g.shape![axis] !== 1)) broadcast.push(axis);
      }
      const perExample = broadcast.length ? graph.op1('ReduceSum', [g, graph.int64s(broadcast, 'axes')], { keepdims: 1 }) : g;
      return sumSquares(perExample, Array.from({ length: rank - 1 }, (_, i) => i + 1));
    }
    case 'Conv': {
      if (intAttr(u.node.attrs, 'group', 1) !== 1) throw unsupported(u, name, 'grouped and depthwise convolutions are not covered');
      const wShape = graph.staticShape(graph.value(u.node.inputs[1]!));
      if (wShape.length !== 4) throw unsupported(u, name, `only 2-D convolutions are covered, this one is ${wShape.length - 2}-D`);
      if (u.input === 2) return sumSquares(graph.op1('ReduceSum', [g, graph.int64s([2, 3], 'axes')], { keepdims: 0 }), [1]);
      return sumSquares(convPerExampleWeightGradient(graph, u.node, x, g, wShape), [1, 2]);
    }
    default:
      throw unsupported(u, name, `no rule for ${u.node.opType}`);
  }
}

/**
 * Per-example dL/dW of a 2-D convolution, [N, C·kH·kW, M]: a grouped Conv with one-hot kernels
 * writes each example's patches [N, C·k, Ho·Wo] (ONNX Runtime's own im2col), and one batched MatMul
 * with the example's output gradient [N, Ho·Wo, M] contracts the positions.
 */
function convPerExampleWeightGradient(graph: Graph, node: Node, x: Value, g: Value, wShape: number[]): Value {
  const [m, c, kh, kw] = wShape as [number, number, number, number];
  const sa = spatialAttrs(node.attrs, [kh, kw], x.shape?.slice(2));
  const taps = kh * kw;
  const oneHot = new Float32Array(c * taps * taps);
  for (let ch = 0; ch < c; ch++) for (let t = 0; t < taps; t++) oneHot[(ch * taps + t) * taps + t] = 1;
  const kernel = graph.constant(new Tensor(oneHot, [c * taps, 1, kh, kw], 'float32'), 'dp_patch_kernel');
  const patches = graph.op1('Conv', [x, kernel], { group: c, kernel_shape: [kh, kw], strides: sa.strides, pads: sa.pads, dilations: sa.dilations });
  const cols = graph.op1('Reshape', [patches, graph.int64s([0, c * taps, -1], 'shape')]); // [N, C·k, P]
  const gT = graph.op1('Transpose', [graph.op1('Reshape', [g, graph.int64s([0, m, -1], 'shape')])], { perm: [0, 2, 1] }); // [N, P, M]
  return graph.op1('MatMul', [cols, gT]);
}
