import type { Graph, Node, Value } from '../../graph/graph.js';
import { Tensor } from '../../tensor.js';
import { quantizeWeight } from './params.js';
import { isRecurrentOp } from '../../ops/recurrent.js';
import { INT8_KERNEL, INT8_RECURRENT, INT8_TABLE, computeIneligibility, int8Kernel, int8RecurrentWeights, int8Table, isActivationMatMul, outputChannelAxis, smallConvolution, type NodeDecision } from './qdq.js';
import { GraphCopy } from './rewrite.js';

/** Options of `quantizeDynamicGraph`. */
export interface DynamicQuantizationOptions {
  /** One scale per output channel (default true). */
  perChannel?: boolean;
  /** Weight precision in bits, 2–8 (default 8; 7 with reduceRange). */
  weightBits?: number;
  /** 7-bit weights (ONNX Runtime's reduce_range). */
  reduceRange?: boolean;
  /** Layer (or node) names to keep in float. */
  exclude?: string[];
  /**
   * Convolutions summing fewer products per output stay float (default 0: all quantized). ConvInteger
   * has no fused kernel in ONNX Runtime, and on a ViT's 1-channel patch convolution it took 7× the
   * float time.
   */
  minConvReduction?: number;
}

/**
 * Dynamic quantization: int8 weights (symmetric, zero point 0), activations quantized at run time.
 *   x → DynamicQuantizeLinear → (x_q uint8, x_scale, x_zp)
 *   MatMulInteger(x_q, W_q, x_zp) / ConvInteger(x_q, W_q, x_zp) → int32
 *   → Cast(float) · (x_scale · w_scale[c]) + bias
 * For MatMul/Gemm this is exactly the pattern ONNX Runtime fuses into DynamicQuantizeMatMul
 * (MatMul → Cast → Mul(Mul(a_scale, b_scale)) → Add(bias), then with DynamicQuantizeLinear); ConvInteger
 * has no fused form there and its speed depends on the runtime. A constant bias Add right after a
 * MatMul (how PyTorch exports nn.Linear on 3-D input: MatMul, then Add(bias, ·)) joins the pattern as
 * its last Add, bias second, the operand order ONNX Runtime's fusion requires, so it runs inside the
 * fused kernel instead of as a separate Add.
 */
export function quantizeDynamicGraph(
  src: Graph,
  layerOf: Map<string, string>,
  options: DynamicQuantizationOptions = {},
): {
  /** The quantized graph. */
  graph: Graph;
  /** What happened to each Conv, Gemm and MatMul. */
  decisions: NodeDecision[];
} {
  const copy = new GraphCopy(src);
  const dst = copy.dst;
  const perChannel = options.perChannel ?? true;
  const bits = options.weightBits ?? (options.reduceRange ? 7 : 8);
  const exclude = new Set(options.exclude ?? []);
  const decisions: NodeDecision[] = [];
  const layerName = (n: Node) => layerOf.get(n.name) ?? n.name.replace(/^node\//, '');
  const decide = (n: Node, precision: NodeDecision['precision'], reason?: string) => decisions.push({ layer: layerName(n), node: n.name, op: n.opType, precision, ...(reason ? { reason } : {}) });
  // One DynamicQuantizeLinear per value, shared by every integer op that reads it.
  const dynamicQuantized = new Map<string, Value[]>();
  /** Bias Adds folded into the MatMul pattern before them. */
  const absorbed = new Set<Node>();

  for (const node of src.nodes) {
    if (absorbed.has(node)) continue;
    const name = layerName(node);
    const excluded = exclude.has(name) || exclude.has(node.name) || exclude.has(node.name.replace(/^node\//, ''));
    const recurrent = isRecurrentOp(node.opType) && !excluded ? int8RecurrentWeights(copy, node, (i) => copy.get(i)) : undefined;
    if (recurrent) {
      copy.emit(node, recurrent);
      decide(node, 'float32', `dynamic quantization covers Conv, Gemm and MatMul only; ${INT8_RECURRENT}`);
      continue;
    }
    const embedding = excluded ? undefined : int8Table(copy, node, (i) => copy.get(i));
    if (embedding) {
      copy.emit(node, embedding);
      decide(node, 'float32', `a lookup of rows, no arithmetic; ${INT8_TABLE}`);
      continue;
    }
    if (!['Conv', 'Gemm', 'MatMul'].includes(node.opType)) {
      copy.emit(node);
      // Shape arithmetic (int64 sizes, boolean masks) and constants carry no numeric work worth reporting.
      const numeric = node.outputs.some((o) => o && src.value(o).dtype === 'float32');
      if (excluded && numeric) decide(node, 'float32', 'excluded by request');
      else if (numeric && !['Identity', 'Dropout', 'Constant', 'ConstantOfShape', 'Relu', 'Transpose', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Slice'].includes(node.opType)) {
        decide(node, 'float32', 'dynamic quantization covers Conv, Gemm and MatMul only');
      }
      continue;
    }
    const why = excluded
      ? 'excluded by request'
      : isActivationMatMul(copy, node)
        ? 'both inputs are activations: dynamic quantization needs a constant weight (static mode quantizes both sides)'
        : (computeIneligibility(copy, node, options.minConvReduction ?? 0) ?? (node.opType === 'Gemm' && node.attrs.transA === 1 ? 'transA = 1 (MatMulInteger has no transpose)' : null));
    if (why && !excluded && smallConvolution(copy, node, options.minConvReduction ?? 0)) {
      // Float for speed, its kernel still stored in 8 bits (as static mode does).
      const kernel = int8Kernel(copy, node);
      copy.emit(node, node.inputs.map((i, k) => (k === 1 ? kernel : i ? copy.get(i) : '')));
      decide(node, 'float32', `${why}; ${INT8_KERNEL}`);
      continue;
    }
    if (why) {
      copy.emit(node);
      decide(node, 'float32', why);
      continue;
    }
    const x = node.inputs[0]!;
    let dq = dynamicQuantized.get(x);
    if (!dq) {
      dq = dst.op('DynamicQuantizeLinear', [copy.get(x)], {}, { outputs: 3, name: `${x}/dynamic_quantize` });
      dynamicQuantized.set(x, dq);
    }
    const [xq, xScale, xZero] = dq as [Value, Value, Value];
    const w = copy.constantOf(node.inputs[1]!)!;
    const axis = outputChannelAxis(node);
    const qw = quantizeWeight(w, { axis: perChannel ? axis : null, bits });
    const alpha = node.opType === 'Gemm' && typeof node.attrs.alpha === 'number' ? node.attrs.alpha : 1;
    const scales = Float32Array.from(qw.scales, (s) => s * alpha);
    const wName = node.inputs[1]!;
    let integer: Value;
    let scaleShape: number[];
    if (node.opType === 'Conv') {
      const wq = dst.constant(qw.values, `${wName}/int8`);
      integer = dst.op1('ConvInteger', [xq, wq, xZero], node.attrs, `${node.outputs[0]}/integer`);
      scaleShape = scales.length > 1 ? [1, scales.length, ...Array(w.rank - 2).fill(1)] : [];
    } else {
      // MatMulInteger reads B as [K, N]: a Gemm with transB stores [N, K], transposed here once.
      const values = node.opType === 'Gemm' && node.attrs.transB === 1 ? transpose2d(qw.values) : qw.values;
      const wq = dst.constant(values, `${wName}/int8`);
      integer = dst.op1('MatMulInteger', [xq, wq, xZero], {}, `${node.outputs[0]}/integer`);
      scaleShape = scales.length > 1 ? [scales.length] : [];
    }
    const wScale = dst.constant(new Tensor(scales.length > 1 ? scales : Float32Array.of(scales[0]!), scaleShape, 'float32'), `${wName}/scale`);
    const scale = dst.op1('Mul', [xScale, wScale], {}, `${node.outputs[0]}/scale`);
    const asFloat = dst.op1('Cast', [integer], { to: 1 }, `${node.outputs[0]}/float`);
    const bias = node.inputs[2] ? copy.constantOf(node.inputs[2]) : undefined;
    const biasAdd = node.opType === 'MatMul' ? followingBias(copy, node, w.shape[1] as number) : undefined;
    let y: Value;
    if (biasAdd) {
      const scaled = dst.op1('Mul', [asFloat, scale], {}, `${node.outputs[0]}/scaled`);
      y = dst.op('Add', [scaled, copy.get(biasAdd.bias)], {}, { outputs: [biasAdd.node.outputs[0]!] })[0]!;
      dst.nodes.at(-1)!.name = biasAdd.node.name;
      copy.replace(biasAdd.node.outputs[0]!, y);
      absorbed.add(biasAdd.node);
      decide(node, 'int8', `with its bias Add (${layerName(biasAdd.node)}) in the pattern ONNX Runtime fuses into DynamicQuantizeMatMul`);
      continue;
    }
    if (bias) {
      const scaled = dst.op1('Mul', [asFloat, scale], {}, `${node.outputs[0]}/scaled`);
      const b = node.opType === 'Conv' ? dst.constant(bias.reshape([1, bias.size, ...Array(w.rank - 2).fill(1)]), node.inputs[2]!) : copy.get(node.inputs[2]!);
      const beta = node.opType === 'Gemm' && typeof node.attrs.beta === 'number' ? node.attrs.beta : 1;
      const bScaled = beta === 1 ? b : dst.op1('Mul', [b, dst.scalar(beta)]);
      y = dst.op('Add', [scaled, bScaled], {}, { outputs: [node.outputs[0]!] })[0]!;
    } else {
      y = dst.op('Mul', [asFloat, scale], {}, { outputs: [node.outputs[0]!] })[0]!;
    }
    // The node that now computes the original output keeps the original node's name.
    dst.nodes.at(-1)!.name = node.name;
    copy.replace(node.outputs[0]!, y);
    decide(node, 'int8', node.opType === 'Conv' ? 'ConvInteger (no fused kernel in ONNX Runtime)' : undefined);
  }
  return { graph: copy.finish(), decisions };
}

/**
 * The Add that only reads a MatMul's output and a constant bias of one value per output column ([N],
 * or [1, …, 1, N]), when there is one: it can move into the dynamic MatMul pattern.
 */
function followingBias(copy: GraphCopy, matmul: Node, columns: number): { node: Node; bias: string } | undefined {
  const out = matmul.outputs[0]!;
  const users = copy.consumersOf(out);
  if (users.length !== 1 || copy.isModelOutput(out)) return undefined;
  const add = users[0]!;
  if (add.opType !== 'Add' || add.inputs.length !== 2) return undefined;
  const bias = add.inputs[0] === out ? add.inputs[1]! : add.inputs[0]!;
  const t = copy.constantOf(bias);
  if (!t || t.dtype !== 'float32' || t.shape.at(-1) !== columns || t.shape.slice(0, -1).some((d) => d !== 1)) return undefined;
  return { node: add, bias };
}

function transpose2d(t: Tensor): Tensor<'int8'> {
  const [r, c] = t.shape as [number, number];
  const src = t.data as Int8Array;
  const out = new Int8Array(src.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j]!;
  return new Tensor(out, [c, r], 'int8');
}
