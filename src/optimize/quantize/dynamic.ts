import type { Graph, Node, Value } from '../../graph/graph.js';
import { Tensor } from '../../tensor.js';
import { quantizeWeight } from './params.js';
import { computeIneligibility, outputChannelAxis, type NodeDecision } from './qdq.js';
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
}

/**
 * Dynamic quantization: int8 weights (symmetric, zero point 0), activations quantized at run time.
 *   x → DynamicQuantizeLinear → (x_q uint8, x_scale, x_zp)
 *   MatMulInteger(x_q, W_q, x_zp) / ConvInteger(x_q, W_q, x_zp) → int32
 *   → Cast(float) · (x_scale · w_scale[c]) + bias
 * For MatMul/Gemm this is exactly the pattern ONNX Runtime fuses into DynamicQuantizeMatMul
 * (MatMul → Cast → Mul(Mul(a_scale, b_scale)) → Add(bias), then with DynamicQuantizeLinear); ConvInteger
 * has no fused form there and its speed depends on the runtime.
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

  for (const node of src.nodes) {
    if (!['Conv', 'Gemm', 'MatMul'].includes(node.opType)) {
      copy.emit(node);
      if (!['Identity', 'Dropout', 'Relu', 'Transpose', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze'].includes(node.opType)) {
        decide(node, 'float32', 'dynamic quantization covers Conv, Gemm and MatMul only');
      }
      continue;
    }
    const name = layerName(node);
    const excluded = exclude.has(name) || exclude.has(node.name) || exclude.has(node.name.replace(/^node\//, ''));
    const why = excluded ? 'excluded by request' : (computeIneligibility(copy, node) ?? (node.opType === 'Gemm' && node.attrs.transA === 1 ? 'transA = 1 (MatMulInteger has no transpose)' : null));
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
    let y: Value;
    if (bias) {
      const scaled = dst.op1('Mul', [asFloat, scale], {}, `${node.outputs[0]}/scaled`);
      const b = node.opType === 'Conv' ? dst.constant(bias.reshape([1, bias.size, ...Array(w.rank - 2).fill(1)]), node.inputs[2]!) : copy.get(node.inputs[2]!);
      const beta = node.opType === 'Gemm' && typeof node.attrs.beta === 'number' ? node.attrs.beta : 1;
      const bScaled = beta === 1 ? b : dst.op1('Mul', [b, dst.scalar(beta)]);
      y = dst.op('Add', [scaled, bScaled], {}, { outputs: [node.outputs[0]!], name: node.name.replace(/^node\//, '') })[0]!;
    } else {
      y = dst.op('Mul', [asFloat, scale], {}, { outputs: [node.outputs[0]!], name: node.name.replace(/^node\//, '') })[0]!;
    }
    copy.replace(node.outputs[0]!, y);
    decide(node, 'int8', node.opType === 'Conv' ? 'ConvInteger (no fused kernel in ONNX Runtime)' : undefined);
  }
  return { graph: copy.finish(), decisions };
}

function transpose2d(t: Tensor): Tensor<'int8'> {
  const [r, c] = t.shape as [number, number];
  const src = t.data as Int8Array;
  const out = new Int8Array(src.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j]!;
  return new Tensor(out, [c, r], 'int8');
}
