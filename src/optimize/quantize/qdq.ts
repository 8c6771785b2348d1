import { KilnError } from '../../errors.js';
import type { Graph, Node, Value } from '../../graph/graph.js';
import { Tensor } from '../../tensor.js';
import { isRecurrentOp } from '../../ops/recurrent.js';
import { computeQuantParams, quantRangeOf, quantizeBias, quantizeWeight, type QuantParams, type QuantType, type Range } from './params.js';
import { findBlocks, type Block } from './patterns.js';
import { GraphCopy } from './rewrite.js';

/*
 * Static quantization as a graph rewrite into ONNX's QDQ form. Every quantized tensor T becomes
 * T → QuantizeLinear → DequantizeLinear → (all readers of T); every quantized weight is an int8
 * initializer behind a DequantizeLinear (per output channel: axis 0 for Conv, the output-column axis
 * for Gemm/MatMul); every bias an int32 initializer with scale input_scale · weight_scale. The graph
 * stays a float graph any ONNX runtime can run, and ONNX Runtime's QDQ fusions turn
 *   DQ → Conv (→ Relu) → Q        into QLinearConv (the ReLU is made redundant by Q's zero point),
 *   DQ → Gemm (→ Relu) (→ Q)      into QGemm (float output when no Q follows),
 *   DQ → MatMul (→ Q)             into QLinearMatMul / MatMulIntegerToFloat (a weight on the right,
 *                                 or, in attention, activations on both sides: Q·Kᵀ and P·V),
 *   DQ → MaxPool/Transpose/Flatten/Reshape/Slice → Q with equal parameters into the op on 8-bit data,
 *   DQ → GlobalAveragePool/AveragePool/Sigmoid/Softmax/LeakyRelu/Add/Mul/Concat → Q into QLinear* ops.
 * Anything else stays a float op reading dequantized values, and the report says why. Transformer
 * blocks with no int8 kernel (LayerNorm, GELU) and Softmax stay float by default (`floatOps`): on the
 * ViT fixture 8 bits there measured slower, at accuracy equal within noise.
 */

/** Ops with int8 weights: the ones quantization speeds up. */
const COMPUTE = new Set(['Conv', 'Gemm', 'MatMul']);
/** Ops that move or select values without arithmetic: run on 8-bit data with their input's parameters. */
const PASS_THROUGH = new Set(['Transpose', 'MaxPool', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Slice']);
/**
 * Pure layout ops: a quantization point moves up through them (the 8-bit tensor is what moves). Not
 * through MaxPool: after a float op, ONNX Runtime's float MaxPool (NCHWc) is far faster than its 8-bit
 * NCHW one, which it only avoids when the int8 chain is already in NHWC.
 */
const LAYOUT = new Set(['Transpose', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze']);
/**
 * Convolutions that sum over fewer products per output stay float by default: measured with ONNX
 * Runtime 1.30 on AVX2 (no VNNI), batch 64, 28×28 input, 32 filters 3×3 followed by MaxPool: the int8
 * convolution took 1.7 ms for 1 input channel (float 0.4 ms), 1.9 ms for 3 (float 1.2), 3.1 ms for 8
 * (float 2.6), 2.9 ms for 16 (float 4.8): its fixed per-output cost only pays off for larger sums.
 */
export const DEFAULT_MIN_CONV_REDUCTION = 128;
/** Ops ONNX Runtime has QLinear kernels for, with their own output range. */
const QLINEAR = new Set(['GlobalAveragePool', 'AveragePool', 'LeakyRelu', 'Sigmoid', 'Softmax', 'Add', 'Mul', 'Concat']);
/** Ops that carry no numeric work worth reporting. */
const QUIET = new Set(['Identity', 'Dropout', 'Constant', 'ConstantOfShape']);

/** Op kinds `floatOps` can keep in float: blocks found by patterns.ts, and Softmax. */
export type FloatOpKind = 'LayerNormalization' | 'Gelu' | 'Softmax';
/** Every FloatOpKind, the names `floatOps` accepts. */
export const FLOAT_OP_KINDS: readonly FloatOpKind[] = ['LayerNormalization', 'Gelu', 'Softmax'];
/**
 * Kept float unless asked otherwise: on the ViT fixture each in 8 bits moved test accuracy by at most
 * 0.25 points (noise on 10,000 images) and made the model slower (more conversions, no int8 kernel or a
 * slower one; bench/quantize/README.md).
 */
export const DEFAULT_FLOAT_OPS: readonly FloatOpKind[] = ['LayerNormalization', 'Gelu', 'Softmax'];

/** Options of `insertQdq` (static quantization's graph rewrite). */
export interface StaticQuantizationOptions {
  /** One scale per output channel of each weight (default true). */
  perChannel?: boolean;
  /** Element type of quantized activations (default 'uint8', ONNX Runtime's fastest on x86). */
  activationType?: QuantType;
  /** Symmetric activation ranges (zero point at the middle); default false. */
  activationSymmetric?: boolean;
  /** Weight precision in bits, 2–8 (default 8; 7 with reduceRange). */
  weightBits?: number;
  /** 7-bit weights, against 16-bit saturation in AVX2's u8·s8 kernels (ONNX Runtime's reduce_range). */
  reduceRange?: boolean;
  /** Layer (or node) names to keep in float. */
  exclude?: string[];
  /**
   * Convolutions summing over fewer than this many products per output (input channels per group ×
   * kernel area) stay float, where ONNX Runtime's int8 kernel is slower (default 128; 0 quantizes all).
   */
  minConvReduction?: number;
  /**
   * Transformer ops kept in float (default DEFAULT_FLOAT_OPS): 'LayerNormalization' (the op, or its
   * decomposed export), 'Gelu' (its Erf form), 'Softmax'. The others get 8-bit inputs and outputs.
   */
  floatOps?: readonly FloatOpKind[];
}

/** The precision a node ended up in. */
export type Precision = 'int8' | 'float32';

/** What happened to one layer's operator. */
export interface NodeDecision {
  /** The layer (Kiln models) or node name (other models) it belongs to. */
  layer: string;
  /** The node's name. */
  node: string;
  /** Its op type. */
  op: string;
  /** int8 or float32. */
  precision: Precision;
  /** Why it stayed float (or how it was handled). */
  reason?: string;
}

/** What `insertQdq` produced. */
export interface QdqResult {
  /** The QDQ graph. */
  graph: Graph;
  /** What happened to each quantizable node. */
  decisions: NodeDecision[];
  /** Quantization parameters of each quantized activation, by value name. */
  activations: Map<
    string,
    QuantParams & {
      /** The integer type of the activation. */
      type: QuantType;
    }
  >;
}

/** Why a Conv/Gemm/MatMul cannot (or should not) take int8 weights, or null when it can. */
export function computeIneligibility(copy: GraphCopy, node: Node, minConvReduction = 0): string | null {
  const w = copy.constantOf(node.inputs[1] ?? '');
  if (copy.src.value(node.inputs[0]!).dtype !== 'float32') return 'its input is not float32';
  if (!w || w.dtype !== 'float32') return 'its weights are not a float32 constant';
  if (node.opType === 'Conv' && w.rank < 3) return `its kernel has rank ${w.rank}`;
  if (node.opType === 'Conv') {
    const reduction = w.shape.slice(1).reduce((a, b) => a * b, 1);
    if (reduction < minConvReduction) {
      return `each output sums only ${reduction} products (${w.shape[1]} input channel${w.shape[1] === 1 ? '' : 's'} × ${w.shape.slice(2).join('×')} kernel): ONNX Runtime's int8 convolution is slower than its float one there (minConvReduction ${minConvReduction})`;
    }
  }
  if (node.opType === 'MatMul' && w.rank !== 2) return `its weight has rank ${w.rank}; integer MatMul needs a 2-D weight`;
  if (node.opType === 'Gemm') {
    if (w.rank !== 2) return 'its weight is not 2-D';
    if (node.inputs[2]) {
      const c = copy.constantOf(node.inputs[2]);
      const n = node.attrs.transB === 1 ? w.shape[0] : w.shape[1];
      if (!c || c.rank !== 1 || c.shape[0] !== n) return 'its bias is not a constant vector with one value per output';
      if (typeof node.attrs.beta === 'number' && node.attrs.beta !== 1) return 'beta ≠ 1 (ONNX Runtime fuses only beta = 1)';
    }
  }
  if (node.opType === 'Conv' && node.inputs[2] && copy.constantOf(node.inputs[2])?.rank !== 1) return 'its bias is not a constant vector';
  return null;
}

/** A Conv kept float only because each output sums fewer than `minConvReduction` products (its kernel is otherwise quantizable). */
export function smallConvolution(copy: GraphCopy, node: Node, minConvReduction: number): boolean {
  return node.opType === 'Conv' && computeIneligibility(copy, node, 0) === null && computeIneligibility(copy, node, minConvReduction) !== null;
}

/** The end of the reason given for a convolution {@link int8Kernel} serves. */
export const INT8_KERNEL = 'its kernel is stored in 8 bits (ONNX Runtime turns it back into the float kernel as the model loads)';

/**
 * The kernel of a Conv that computes in float for speed (smallConvolution), stored in 8 bits: int8
 * values per output channel, Cast to float and multiplied by their channel's scale. Not a
 * DequantizeLinear: ONNX Runtime keeps those as nodes (they mark QDQ patterns), so the Conv's kernel
 * would not be a constant and the Conv would lose its blocked NCHWc form (the tutorial CNN's int8 model
 * ran 1.7× slower that way); Cast and Mul of constants it folds into one float initializer when the
 * session loads. A per-channel 8-bit kernel costs no measurable accuracy. Always 8 bits per channel,
 * whatever weightBits, reduceRange or perChannel give the integer kernels: those settings serve integer
 * accumulation, which this convolution does not do, and the file holds a byte per weight either way.
 */
export function int8Kernel(copy: GraphCopy, node: Node): Value {
  const name = node.inputs[1]!;
  const w = copy.constantOf(name)!;
  const axis = outputChannelAxis(node);
  const qw = quantizeWeight(w, { axis, bits: 8 });
  return castBack(copy, name, qw.values, new Tensor(qw.scales, w.shape.map((d, k) => (k === axis ? d : 1)), 'float32'));
}

/** int8 values stored as a constant, Cast to float and multiplied by their scales (broadcast): ONNX Runtime folds it into one float initializer as it loads. */
function castBack(copy: GraphCopy, name: string, values: Tensor, scales: Tensor): Value {
  const stored = copy.dst.constant(values, `${name}/int8`);
  const scale = copy.dst.constant(scales, `${name}/scale`);
  return copy.dst.op1('Mul', [copy.dst.op1('Cast', [stored], { to: 1 }, `${name}/cast`), scale], {}, `${name}/dequantized`);
}

/** The end of the reason given for a recurrent layer {@link int8RecurrentWeights} serves. */
export const INT8_RECURRENT = 'its weights are stored in 8 bits per row whatever the weight bits and per-tensor settings, which apply to integer kernels (ONNX Runtime turns them back into float as the model loads)';

/**
 * A recurrent layer (LSTM, GRU, RNN) computes in float — ONNX has no integer recurrent op, and ONNX
 * Runtime's DynamicQuantizeLSTM is a com.microsoft op, outside what Kiln writes — but its input and
 * recurrent weights W and R [directions, gates·hidden, ·], which are most of an RNN model's bytes, are
 * stored in 8 bits per gate row as {@link int8Kernel} stores a convolution's kernel: PyTorch's
 * quantize_dynamic and TFLite's dynamic range quantization store an LSTM's weights in 8 bits too.
 * The node's inputs, with W and R (where constant) read through their 8-bit form; undefined when
 * neither is a constant.
 */
export function int8RecurrentWeights(copy: GraphCopy, node: Node, input: (name: string) => Value | string): (Value | string)[] | undefined {
  const stored = [1, 2].filter((k) => node.inputs[k] && copy.constantOf(node.inputs[k]!)?.shape.length === 3);
  if (stored.length === 0) return undefined;
  return node.inputs.map((name, k) => (stored.includes(k) ? int8GateRows(copy, name) : name ? input(name) : ''));
}

/** A recurrent weight [directions, gates·hidden, K] as int8 with one scale per direction and row, Cast and multiplied back. */
function int8GateRows(copy: GraphCopy, name: string): Value {
  const w = copy.constantOf(name)!;
  const [dirs, rows, cols] = w.shape as [number, number, number];
  const qw = quantizeWeight(w.reshape([dirs * rows, cols]), { axis: 0, bits: 8 });
  return castBack(copy, name, qw.values.reshape([dirs, rows, cols]), new Tensor(qw.scales, [dirs, rows, 1], 'float32'));
}

/** The end of the reason given for an embedding {@link int8Table} serves. */
export const INT8_TABLE = 'its table is stored in 8 bits per row (ONNX Runtime turns it back into float as the model loads)';

/** Smallest table (elements) worth the Cast and Mul that carry it in 8 bits: below, the nodes cost about what the bytes save. */
const MIN_TABLE = 512;

/**
 * An embedding — a Gather of rows from a float table along axis 0: word, position and segment
 * embeddings, most of a small text model's bytes — with the table stored as int8, one scale per row,
 * Cast and multiplied back as {@link int8Kernel} stores a kernel: ONNX has no integer Gather kernel
 * worth calling, the lookup moves rows and does no arithmetic, and ONNX Runtime folds the Cast and Mul
 * into the float table as it loads (as TFLite's and ONNX Runtime's quantizers store an embedding in
 * 8 bits too). The node's inputs with the table's 8-bit form; undefined when it has no such table.
 */
export function int8Table(copy: GraphCopy, node: Node, input: (name: string) => Value | string): (Value | string)[] | undefined {
  if (node.opType !== 'Gather' || Number(node.attrs.axis ?? 0) !== 0) return undefined;
  const name = node.inputs[0]!;
  const table = copy.constantOf(name);
  if (!table || table.dtype !== 'float32' || table.shape.length < 2 || table.size < MIN_TABLE) return undefined;
  // One 8-bit copy of a table however many lookups read it (an encoder's and a decoder's shared embedding).
  const tables = storedTables.get(copy) ?? storedTables.set(copy, new Map()).get(copy)!;
  let stored = tables.get(name);
  if (!stored) {
    const rows = table.shape[0]!;
    const qw = quantizeWeight(table.reshape([rows, table.size / rows]), { axis: 0, bits: 8 });
    stored = castBack(copy, name, qw.values.reshape(table.shape), new Tensor(qw.scales, table.shape.map((d, k) => (k === 0 ? d : 1)), 'float32'));
    tables.set(name, stored);
  }
  return node.inputs.map((i, k) => (k === 0 ? stored : i ? input(i) : ''));
}

/** The 8-bit tables a rewrite has written, by the float table's name. */
const storedTables = new WeakMap<GraphCopy, Map<string, Value>>();

/** The axis of a weight that indexes output channels. */
export function outputChannelAxis(node: Node): number {
  if (node.opType === 'Conv') return 0;
  if (node.opType === 'Gemm') return node.attrs.transB === 1 ? 0 : 1;
  return 1; // MatMul B [K, N]
}

/**
 * A quantized constant behind a DequantizeLinear (per-axis when it has several scales), named
 * `<name>/int8` (or `/int32`), `<name>/scale`, `<name>/zp`, `<name>/dq`: short names, because a
 * small model's file size is partly names. int32 biases carry no zero point (ONNX's default, 0, and
 * ONNX Runtime fuses them so); int8 weights do, which its QGemm fusion needs.
 */
export function dequantizedConstant(dst: Graph, name: string, values: Tensor, scales: Float32Array, axis: number | null): Value {
  const q = dst.constant(values, `${name}/${values.dtype}`);
  const perAxis = axis !== null && scales.length > 1;
  const shape = perAxis ? [scales.length] : [];
  const scale = dst.constant(new Tensor(perAxis ? scales : Float32Array.of(scales[0]!), shape, 'float32'), `${name}/scale`);
  const inputs = [q, scale];
  if (values.dtype !== 'int32') {
    const zeros = values.dtype === 'int8' ? new Int8Array(perAxis ? scales.length : 1) : new Uint8Array(perAxis ? scales.length : 1);
    inputs.push(dst.constant(new Tensor(zeros as never, shape, values.dtype), `${name}/zp`));
  }
  return dst.op1('DequantizeLinear', inputs, perAxis ? { axis: axis! } : {}, `${name}/dq`);
}

/** Why an op kind stays float when `floatOps` lists it (the default list: DEFAULT_FLOAT_OPS). */
const FLOAT_OP_REASONS: Record<FloatOpKind, string> = {
  LayerNormalization:
    'LayerNorm kept float (floatOps): ONNX Runtime has no int8 LayerNormalization kernel, so 8 bits around it would add conversions and round the residual stream it normalizes, with no int8 work to gain',
  Gelu: 'GELU kept float (floatOps): ONNX Runtime has no int8 GELU kernel (it fuses the float form into one Gelu/BiasGelu kernel), so 8 bits around it would add conversions and rounding, with no int8 work to gain',
  Softmax:
    'Softmax kept float (floatOps): its int8 kernel (QLinearSoftmax) rounds probabilities to steps of 1/255 and needs the 8-bit output of the MatMul before it; on the ViT fixture that measured slower at equal accuracy (bench/quantize/README.md)',
};

/** A MatMul of two computed values (attention's Q·Kᵀ and P·V): both inputs get quantized. */
export function isActivationMatMul(copy: GraphCopy, node: Node): boolean {
  return node.opType === 'MatMul' && node.inputs.length === 2 && node.inputs.every((i) => !copy.constantOf(i) && copy.src.value(i).dtype === 'float32');
}

/**
 * Rewrites a float inference graph (batch normalization already folded) into QDQ form, using the
 * calibrated range of every activation.
 */
export function insertQdq(src: Graph, ranges: Map<string, Range>, layerOf: Map<string, string>, options: StaticQuantizationOptions = {}): QdqResult {
  const copy = new GraphCopy(src);
  const dst = copy.dst;
  const perChannel = options.perChannel ?? true;
  const actType: QuantType = options.activationType ?? 'uint8';
  const [aMin, aMax] = quantRangeOf(actType);
  const weightBits = options.weightBits ?? (options.reduceRange ? 7 : 8);
  const exclude = new Set(options.exclude ?? []);
  const floatOps = new Set<FloatOpKind>(options.floatOps ?? DEFAULT_FLOAT_OPS);
  const activations = new Map<string, QuantParams & { type: QuantType }>();
  const decisions: NodeDecision[] = [];
  const layerName = (n: Node) => layerOf.get(n.name) ?? n.name.replace(/^node\//, '');
  const isExcluded = (n: Node) => exclude.has(layerName(n)) || exclude.has(n.name) || exclude.has(n.name.replace(/^node\//, '')) || n.outputs.some((o) => exclude.has(o));
  const decide = (n: Node, precision: Precision, reason?: string, layer = layerName(n)) => decisions.push({ layer, node: n.name, op: n.opType, precision, ...(reason ? { reason } : {}) });
  const minReduction = options.minConvReduction ?? DEFAULT_MIN_CONV_REDUCTION;
  const actMatMul = (n: Node) => isActivationMatMul(copy, n);
  /** The inputs an eligible compute node reads in 8 bits: its data input, or both sides of an activation MatMul. */
  const eightBitInputs = (n: Node) => (actMatMul(n) ? [n.inputs[0]!, n.inputs[1]!] : [n.inputs[0]!]);
  /**
   * Whether a value's calibrated range is finite. An attention mask's −∞ (added to the scores before
   * Softmax) is a value no 8-bit scale can hold: what reads it stays float.
   */
  const bounded = (name: string) => {
    const r = ranges.get(name);
    return r !== undefined && Number.isFinite(r.min) && Number.isFinite(r.max);
  };
  const unboundedInput = (n: Node) => eightBitInputs(n).find((i) => !bounded(i));
  const UNBOUNDED = (name: string) => `its input '${name}' takes infinite values on the calibration data (a mask's −∞): no 8-bit scale holds them`;
  const eligible = (n: Node) => COMPUTE.has(n.opType) && !isExcluded(n) && (actMatMul(n) || computeIneligibility(copy, n, minReduction) === null) && unboundedInput(n) === undefined;

  const blocks = findBlocks(src);
  const blockOf = new Map<Node, Block>();
  for (const b of blocks) for (const n of b.nodes) blockOf.set(n, b);
  const blockInt8 = (b: Block) => !floatOps.has(b.kind) && !b.nodes.some(isExcluded) && bounded(b.input);

  const paramsFor = (name: string): QuantParams => {
    const r = ranges.get(name);
    if (!r) throw new KilnError('INVALID_ARGUMENT', `no calibrated range for value '${name}'`);
    return computeQuantParams(r, aMin, aMax, options.activationSymmetric ?? false);
  };
  /**
   * Values quantized after a float op, by name → the float value itself. Float readers of such a value
   * read it as it was (a residual Add reading a LayerNorm's output, a Shape node): rounding it to 8 bits
   * for them would lose accuracy and save nothing, since the float value is computed anyway. Values an
   * int8 op produces are not here: a float reader there must read the DequantizeLinear, or ONNX Runtime
   * could not fuse the producer with its QuantizeLinear.
   */
  const floatOriginal = new Map<string, Value>();
  /** Inserts Q → DQ on a value; its readers from now on read the DQ output. */
  const quantize = (name: string, params = paramsFor(name), afterFloatOp = true) => {
    if (activations.has(name)) return;
    if (afterFloatOp) floatOriginal.set(name, copy.get(name));
    const scale = dst.constant(new Tensor(Float32Array.of(params.scale), [], 'float32'), `${name}/scale`);
    const zpData = actType === 'int8' ? Int8Array.of(params.zeroPoint) : Uint8Array.of(params.zeroPoint);
    const zp = dst.constant(new Tensor(zpData as never, [], actType), `${name}/zp`);
    const q = dst.op1('QuantizeLinear', [copy.get(name), scale, zp], {}, `${name}/q`);
    copy.replace(name, dst.op1('DequantizeLinear', [q, scale, zp], {}, `${name}/dq`));
    activations.set(name, { ...params, type: actType });
  };

  /**
   * Whether a quantized version of the value would be read by an op that runs in 8 bits: a compute op,
   * a data-movement op or QLinear op whose own output goes on in 8 bits, or a LayerNorm/GELU block
   * that `floatOps` does not keep float. Memoized: transformer graphs fan out (Q, K and V read one value).
   */
  const benefitMemo = new Map<string, boolean>();
  const benefits = (name: string): boolean => {
    const known = benefitMemo.get(name);
    if (known !== undefined) return known;
    const result =
      !copy.isModelOutput(name) &&
      copy.consumersOf(name).some((c) => {
        if (isExcluded(c)) return false;
        const block = blockOf.get(c);
        if (block) return block.input === name && blockInt8(block);
        if (COMPUTE.has(c.opType)) return eightBitInputs(c).includes(name) && eligible(c);
        if (PASS_THROUGH.has(c.opType)) return c.inputs[0] === name && benefits(c.outputs[0]!);
        if (c.opType === 'Softmax' && floatOps.has('Softmax')) return false;
        if (QLINEAR.has(c.opType)) return c.inputs.every((i) => !copy.constantOf(i)) && benefits(c.outputs[0]!);
        if (c.opType === 'Relu') return benefits(c.outputs[0]!);
        return false;
      });
    benefitMemo.set(name, result);
    return result;
  };

  // Quantize as early as possible: through a chain of data-movement ops (the input's layout Transpose,
  // a Flatten, attention's head Reshape/Transpose) the 8-bit tensor is what moves, a quarter of the
  // bytes. Shape nodes reading a value along the way read its shape only, so they do not stop the walk.
  const readersOf = (name: string) => copy.consumersOf(name).filter((c) => c.opType !== 'Shape');
  const quantizeAt = new Set<string>();
  const earliest = (value: string): string => {
    let x = value;
    for (;;) {
      const p = src.producer(x);
      if (!p || !LAYOUT.has(p.opType) || isExcluded(p) || readersOf(x).length !== 1) return x;
      const before = p.inputs[0]!;
      if (copy.constantOf(before) || readersOf(before).length !== 1 || src.value(before).dtype !== 'float32') return x;
      x = before;
    }
  };
  for (const n of src.nodes) if (eligible(n)) for (const x of eightBitInputs(n)) quantizeAt.add(earliest(x));
  for (const b of blocks) if (blockInt8(b) && !copy.isModelOutput(b.input)) quantizeAt.add(b.input);
  for (const input of src.inputs) if (quantizeAt.has(input.name)) quantize(input.name);
  /** After a node is emitted: an output some 8-bit reader wants quantized gets its Q → DQ now. */
  const settle = (node: Node) => {
    for (const o of node.outputs) if (o && quantizeAt.has(o)) quantize(o);
  };
  /** Emits a node that runs in float: it reads float values where they exist (see floatOriginal). */
  const emitFloat = (node: Node) => copy.emit(node, node.inputs.map((i) => (i ? (floatOriginal.get(i) ?? copy.get(i)) : '')));

  /** Compute nodes whose ReLU (the only reader of their output) is quantized with them. */
  const awaitingRelu = new Set<string>();
  /** A bias Add right after a MatMul with int8 weights: the other input is a constant vector. */
  const biasOf = (n: Node): Node | undefined => {
    if (n.opType !== 'Add' || n.inputs.length !== 2) return undefined;
    const k = n.inputs.findIndex((i) => copy.constantOf(i));
    const p = k >= 0 ? src.producer(n.inputs[1 - k]!) : undefined;
    return p && p.opType === 'MatMul' && !actMatMul(p) && eligible(p) ? p : undefined;
  };

  const done = new Set<Node>();
  for (const node of src.nodes) {
    const out = node.outputs[0]!;
    if (done.has(node)) continue;
    // Shape arithmetic (int64 sizes, boolean masks) has nothing to quantize and nothing worth reporting.
    if (!node.outputs.some((o) => o && src.value(o).dtype === 'float32')) {
      emitFloat(node);
      continue;
    }
    const block = blockOf.get(node);
    if (block) {
      // An int8 block reads its input's 8-bit version (DequantizeLinear); a float one the float value.
      if (blockInt8(block)) copy.emit(node);
      else emitFloat(node);
      settle(node);
      if (node === block.nodes.at(-1)) {
        const int8 = blockInt8(block);
        const why = block.nodes.some(isExcluded)
          ? 'excluded by request'
          : !floatOps.has(block.kind) && !bounded(block.input)
            ? UNBOUNDED(block.input)
            : int8
            ? `computed in float between an 8-bit input and output (ONNX Runtime has no int8 ${block.kind} kernel; floatOps does not list it)`
            : FLOAT_OP_REASONS[block.kind];
        const layer = layerName(block.nodes[0]!);
        block.nodes.forEach((n, k) => decide(n, 'float32', k === 0 ? why : undefined, layer));
      }
      continue;
    }
    if (node.opType === 'Relu' && !isExcluded(node) && !awaitingRelu.has(node.inputs[0]!) && !activations.has(node.inputs[0]!)) {
      // Float → ReLU → MaxPool → (quantized): pool first, then ReLU. They commute exactly (ReLU is
      // monotone), and with the ReLU right before QuantizeLinear, ONNX Runtime drops it (zero point at
      // the bottom of the range) and cannot move the quantization above the MaxPool, which would make
      // the pooling run on 8-bit NCHW data — several times slower than its float NCHWc kernel.
      const users = copy.consumersOf(out);
      const pool = users.length === 1 && users[0]!.opType === 'MaxPool' && users[0]!.outputs.length === 1 && !isExcluded(users[0]!) ? users[0]! : undefined;
      if (pool && quantizeAt.has(pool.outputs[0]!) && !copy.isModelOutput(out)) {
        const pooled = dst.op1('MaxPool', [copy.get(node.inputs[0]!)], pool.attrs, `${pool.outputs[0]}/before_relu`);
        const [y] = dst.op('Relu', [pooled], {}, { outputs: [pool.outputs[0]!] });
        dst.nodes.at(-1)!.name = node.name;
        copy.replace(pool.outputs[0]!, y!);
        quantize(pool.outputs[0]!);
        done.add(pool);
        decide(pool, 'float32', 'its input is float (pooled in float; the ReLU before it moved after it, into the 8-bit conversion)');
        continue;
      }
    }
    if (isExcluded(node)) {
      emitFloat(node);
      settle(node);
      if (!QUIET.has(node.opType)) decide(node, 'float32', 'excluded by request');
      continue;
    }
    if (COMPUTE.has(node.opType)) {
      const activationInputs = actMatMul(node);
      const unbounded = unboundedInput(node);
      const why = unbounded !== undefined ? UNBOUNDED(unbounded) : activationInputs ? null : computeIneligibility(copy, node, minReduction);
      if (why && unbounded === undefined && !activationInputs && smallConvolution(copy, node, minReduction)) {
        const kernel = int8Kernel(copy, node);
        copy.emit(node, node.inputs.map((i, k) => (k === 1 ? kernel : i ? (floatOriginal.get(i) ?? copy.get(i)) : '')));
        settle(node);
        decide(node, 'float32', `${why}; ${INT8_KERNEL}`);
        continue;
      }
      if (why) {
        emitFloat(node);
        settle(node);
        decide(node, 'float32', why);
        continue;
      }
      const x = node.inputs[0]!;
      quantize(x);
      let inputs: Value[];
      if (activationInputs) {
        quantize(node.inputs[1]!);
        inputs = [copy.get(x), copy.get(node.inputs[1]!)];
      } else {
        const w = copy.constantOf(node.inputs[1]!)!;
        const axis = outputChannelAxis(node);
        const qw = quantizeWeight(w, { axis: perChannel ? axis : null, bits: weightBits });
        inputs = [copy.get(x), dequantizedConstant(dst, node.inputs[1]!, qw.values, qw.scales, qw.axis)];
        if (node.inputs[2]) {
          const qb = quantizeBias(copy.constantOf(node.inputs[2])!, activations.get(x)!.scale, qw.scales);
          inputs.push(dequantizedConstant(dst, node.inputs[2], qb.values, qb.scales, 0));
        }
      }
      copy.emit(node, inputs);
      const users = copy.consumersOf(out);
      const relu = users.length === 1 && users[0]!.opType === 'Relu' && !isExcluded(users[0]!) && !copy.isModelOutput(out) ? users[0]! : undefined;
      const bias = users.length === 1 && biasOf(users[0]!) === node;
      if (relu && bounded(relu.outputs[0]!) && (node.opType === 'Conv' ? !copy.isModelOutput(relu.outputs[0]!) : benefits(relu.outputs[0]!))) {
        awaitingRelu.add(out);
        decide(node, 'int8');
      } else if (copy.isModelOutput(out)) {
        decide(node, 'int8', node.opType === 'Conv' ? 'int8 weights; its output is the model output, so it stays float and ONNX Runtime cannot fuse it into QLinearConv' : 'int8 weights and inputs, float output (the model output)');
      } else if ((node.opType === 'Conv' || benefits(out)) && bounded(out)) {
        quantize(out, paramsFor(out), false);
        decide(node, 'int8', activationInputs ? 'both inputs are activations, each quantized with its calibrated range; 8-bit output (QLinearMatMul)' : undefined);
      } else if (activationInputs) {
        decide(node, 'int8', 'both inputs are activations, each quantized with its calibrated range; float output, read by float ops (MatMulIntegerToFloat)');
      } else {
        decide(node, 'int8', bias ? 'int8 weights and input; float output into its bias Add' : 'int8 weights and inputs, float output (read by float ops)');
      }
      settle(node);
      continue;
    }
    if (node.opType === 'Relu' && awaitingRelu.has(node.inputs[0]!)) {
      copy.emit(node);
      quantize(out, paramsFor(out), false);
      continue;
    }
    if (PASS_THROUGH.has(node.opType) && activations.has(node.inputs[0]!)) {
      if (benefits(out)) {
        copy.emit(node);
        // The same scale and zero point: ONNX Runtime then drops the Q/DQ pair and moves 8-bit data.
        quantize(out, activations.get(node.inputs[0]!)!, false);
        decide(node, 'int8', 'runs on 8-bit data');
      } else {
        emitFloat(node);
        settle(node);
        decide(node, 'float32', 'nothing after it runs in int8');
      }
      continue;
    }
    if (QLINEAR.has(node.opType) && !(node.opType === 'Softmax' && floatOps.has('Softmax'))) {
      const acts = node.inputs.filter((i) => i);
      const allQuantized = acts.every((i) => activations.has(i));
      if (allQuantized && benefits(out) && bounded(out)) {
        copy.emit(node);
        quantize(out, paramsFor(out), false);
        decide(node, 'int8');
      } else {
        emitFloat(node);
        settle(node);
        const matmul = biasOf(node);
        decide(
          node,
          'float32',
          matmul
            ? `the bias of ${layerName(matmul)}: ONNX Runtime fuses the QDQ MatMul into MatMulIntegerToFloat without a bias, so this Add stays a float Add on its output`
            : copy.isModelOutput(out)
              ? 'its output is the model output'
              : !allQuantized
                ? 'its inputs are float'
                : 'nothing after it runs in int8 (in 8 bits it would only add a rounding step)',
        );
      }
      continue;
    }
    const embedding = int8Table(copy, node, (i) => floatOriginal.get(i) ?? copy.get(i));
    if (embedding) {
      copy.emit(node, embedding);
      settle(node);
      decide(node, 'float32', `a lookup of rows, no arithmetic; ${INT8_TABLE}`);
      continue;
    }
    const recurrent = isRecurrentOp(node.opType) ? int8RecurrentWeights(copy, node, (i) => floatOriginal.get(i) ?? copy.get(i)) : undefined;
    if (recurrent) {
      copy.emit(node, recurrent);
      settle(node);
      decide(node, 'float32', `ONNX Runtime has no int8 kernel for ${node.opType}; ${INT8_RECURRENT}`);
      continue;
    }
    emitFloat(node);
    settle(node);
    if (QUIET.has(node.opType)) continue;
    if (node.opType === 'Softmax') decide(node, 'float32', FLOAT_OP_REASONS.Softmax);
    else if (node.opType === 'Relu') decide(node, 'float32', 'not after a quantized Conv/Gemm');
    else if (LAYOUT.has(node.opType) || node.opType === 'Slice') continue; // moving float data around: nothing to report
    else if (PASS_THROUGH.has(node.opType)) decide(node, 'float32', 'its input is float');
    else decide(node, 'float32', `ONNX Runtime has no int8 kernel for ${node.opType}`);
  }
  return { graph: copy.finish(), decisions, activations };
}
