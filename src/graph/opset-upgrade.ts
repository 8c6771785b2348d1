/**
 * Upgrades a model of ONNX opsets 6–12 to opset 13, node by node, so that what Kiln builds on it
 * (training steps, pruned and quantized graphs, written at opset 13 or later) keeps every node's
 * meaning. Files this old are common: the ONNX Model Zoo's classic CNNs (opsets 7–9), tf2onnx's and
 * older PyTorch exporters' defaults (9–12).
 *
 * Most operators only gained types between these opsets. The ones whose form changed are rewritten
 * to their opset-13 form with the same result: attributes that became inputs (Clip, Pad, Slice, Split,
 * Squeeze, Unsqueeze, ReduceSum, TopK, Dropout's ratio) become constant initializers; Softmax,
 * LogSoftmax and Hardmax before 13 flattened their input to 2-D at `axis` (default 1), so a non-last
 * axis becomes Flatten → op over the last axis → Reshape back; Upsample and Resize-10 become Resize
 * with the coordinate rule they meant (asymmetric); Scatter becomes ScatterElements; the legacy
 * `broadcast`/`axis` attributes of opset 6's binary ops and its PRelu's channel slope become an
 * explicit Unsqueeze; attributes that
 * lost their meaning (BatchNormalization's spatial and is_test, Dropout's is_test, Gemm's broadcast)
 * go; the experimental ImageScaler becomes Mul and Add. What cannot be rewritten faithfully is listed,
 * every case at once, in one error. (ONNX's own onnx.version_converter does the same in Python.)
 */
import { KilnError } from '../errors.js';
import { Tensor, int64FromNumber, type DType } from '../tensor.js';
import { tensorToProto } from './onnx-io.js';
import { AttributeType, type AttributeProto, type ModelProto, type NodeProto, type TensorProto } from './proto.js';

/** The oldest opset upgraded (opset 6's binary ops still carry the legacy broadcast attributes, handled). */
export const OLDEST_UPGRADABLE_OPSET = 6;
/** The opset an upgraded model declares. */
export const UPGRADED_OPSET = 13;
/** Opset 13 goes with IR version 7. */
const UPGRADED_IR_VERSION = 7;

/** What the upgrade needs to know of a value it cannot read from the graph: its rank and element type. */
export interface ValueDescription {
  rank: number;
  dtype: DType;
}

export interface UpgradeOptions {
  /** Names the model in errors. */
  file: string;
  /**
   * A value's rank and element type (measured by running the model, or by shape inference). Without
   * it, ranks come from the shapes the file declares (inputs, value_info, outputs); Softmax over a
   * rank still unknown takes the general Flatten/Reshape form, Clip and Pad constants are taken as
   * float32, and opset 6's axis broadcasting on a value of unknown rank is refused.
   */
  describe?: (value: string) => ValueDescription | undefined;
}

/** The model's ai.onnx opset (0 when it imports none). */
export function defaultOpset(proto: ModelProto): number {
  return Number(proto.opsetImport?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0);
}

/**
 * The model at opset 13 (a new ModelProto; the one given is not changed). A model at 13 or later is
 * returned as it is. Initializers that older IR versions also listed as graph inputs are inputs no more
 * (in IR 4 and later that would make them overridable, which stops ONNX Runtime from folding them).
 */
export function upgradeOpset(proto: ModelProto, options: UpgradeOptions): ModelProto {
  const opset = defaultOpset(proto);
  if (opset >= UPGRADED_OPSET) return proto;
  if (opset < OLDEST_UPGRADABLE_OPSET) {
    throw new KilnError('UNSUPPORTED_OP', `'${options.file}' uses ONNX opset ${opset}; Kiln reads opsets from ${OLDEST_UPGRADABLE_OPSET} (older ones are upgraded to ${UPGRADED_OPSET}): convert it with onnx.version_converter first`);
  }
  const g = proto.graph ?? {};
  const declared = new Map<string, number>();
  for (const v of [...(g.input ?? []), ...(g.valueInfo ?? []), ...(g.output ?? [])]) {
    const dims = v.type?.tensorType?.shape?.dim;
    if (v.name && dims) declared.set(v.name, dims.length);
  }
  const upgrade = new Upgrade(opset, g.initializer ?? [], g.node ?? [], g.output?.map((o) => o.name ?? '') ?? [], declared, options);
  const nodes = upgrade.run();
  const initializerNames = new Set((g.initializer ?? []).map((t) => t.name));
  return {
    ...proto,
    irVersion: Math.max(Number(proto.irVersion ?? 0), UPGRADED_IR_VERSION),
    opsetImport: [...(proto.opsetImport ?? []).filter((o) => o.domain && o.domain !== 'ai.onnx'), { domain: '', version: UPGRADED_OPSET }],
    graph: {
      ...g,
      node: nodes,
      initializer: [...(g.initializer ?? []), ...upgrade.added],
      input: (g.input ?? []).filter((i) => !initializerNames.has(i.name)),
    },
  };
}

/** Binary operators that carried `broadcast` / `axis` before opset 7. */
const LEGACY_BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less']);
const SOFTMAX_LIKE = new Set(['Softmax', 'LogSoftmax', 'Hardmax']);

class Upgrade {
  readonly added: TensorProto[] = [];
  private readonly problems: string[] = [];
  private readonly names = new Set<string>();
  private readonly initializers: Map<string, TensorProto>;
  private readonly readers = new Map<string, number>();
  /** Values of Constant nodes, by output name. */
  private readonly constants = new Map<string, TensorProto>();

  constructor(
    private readonly opset: number,
    initializers: readonly TensorProto[],
    private readonly nodes: readonly NodeProto[],
    outputs: readonly string[],
    /** Ranks the file declares (inputs, value_info, outputs). */
    private readonly declaredRanks: ReadonlyMap<string, number>,
    private readonly options: UpgradeOptions,
  ) {
    this.initializers = new Map(initializers.map((t) => [t.name ?? '', t]));
    for (const t of initializers) this.names.add(t.name ?? '');
    for (const n of nodes) {
      const value = n.opType === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined;
      if (value && n.output?.[0]) this.constants.set(n.output[0], value);
      for (const v of [...(n.input ?? []), ...(n.output ?? [])]) this.names.add(v);
      if (n.name) this.names.add(n.name);
      for (const i of n.input ?? []) if (i) this.readers.set(i, (this.readers.get(i) ?? 0) + 1);
    }
    for (const o of outputs) this.readers.set(o, (this.readers.get(o) ?? 0) + 1);
  }

  run(): NodeProto[] {
    const out: NodeProto[] = [];
    this.nodes.forEach((n, k) => {
      if (n.domain && n.domain !== 'ai.onnx') return void out.push(n);
      out.push(...this.node({ ...n, input: [...(n.input ?? [])], attribute: [...(n.attribute ?? [])] }, k));
    });
    if (this.problems.length > 0) {
      throw new KilnError('UNSUPPORTED_OP', `'${this.options.file}' (opset ${this.opset}) cannot be upgraded to opset ${UPGRADED_OPSET}: ${this.problems.join('; ')}`);
    }
    return out;
  }

  /** The node's opset-13 form: itself, changed in place, or the nodes replacing it. */
  private node(n: NodeProto, k: number): NodeProto[] {
    const op = n.opType ?? '';
    const v = this.opset;
    const where = `node '${n.name || `#${k}`}' (${op})`;
    if ((n.attribute ?? []).some((a) => a.type === AttributeType.GRAPH || a.type === AttributeType.GRAPHS)) {
      this.problems.push(`${where} holds a subgraph, which the upgrade does not rewrite`);
      return [n];
    }
    const before: NodeProto[] = [];
    if (v < 7 && LEGACY_BROADCAST.has(op)) this.legacyBroadcast(n, where, before);
    if (v < 7 && op === 'Gemm') drop(n, 'broadcast');
    switch (op) {
      case 'BatchNormalization':
        if (v < 9) {
          if (intOf(n, 'spatial', 1) !== 1) this.problems.push(`${where} normalizes per activation (spatial = 0), which opset 9 removed`);
          drop(n, 'spatial', 'is_test', 'consumed_inputs');
        }
        break;
      case 'Dropout':
        if (v < 12) {
          if (v < 10 && n.output?.[1] && this.readers.has(n.output[1])) this.problems.push(`${where}: its mask output is read, and it changed type (float to bool) in opset 10`);
          drop(n, 'is_test');
          const ratio = take(n, 'ratio');
          if (ratio !== undefined) n.input = [n.input![0]!, this.constant(`${nodeLabel(n, k)}/ratio`, 'float32', [], [ratio.f ?? 0.5])];
        }
        break;
      case 'Clip':
        if (v < 11) {
          const [min, max] = [take(n, 'min'), take(n, 'max')];
          const dtype = this.floatType(n.input![0]!, where);
          const bound = (a: AttributeProto | undefined, name: string) => (a === undefined || dtype === undefined ? '' : this.constant(`${nodeLabel(n, k)}/${name}`, dtype, [], [a.f ?? 0]));
          n.input = trimOptional([n.input![0]!, bound(min, 'min'), bound(max, 'max')]);
        }
        break;
      case 'Pad':
        if (v < 11) {
          const pads = take(n, 'pads') ?? take(n, 'paddings');
          const value = take(n, 'value');
          const inputs = [n.input![0]!, this.constant(`${nodeLabel(n, k)}/pads`, 'int64', [pads?.ints?.length ?? 0], pads?.ints ?? [])];
          if (value !== undefined && (value.f ?? 0) !== 0) {
            const dtype = this.floatType(n.input![0]!, where);
            if (dtype) inputs.push(this.constant(`${nodeLabel(n, k)}/value`, dtype, [], [value.f ?? 0]));
          }
          n.input = inputs;
        }
        break;
      case 'Slice':
        if (v < 10) {
          const [starts, ends, axes] = [take(n, 'starts'), take(n, 'ends'), take(n, 'axes')];
          const ints = (a: AttributeProto | undefined, name: string) => this.constant(`${nodeLabel(n, k)}/${name}`, 'int64', [a?.ints?.length ?? 0], a?.ints ?? []);
          n.input = [n.input![0]!, ints(starts, 'starts'), ints(ends, 'ends'), ...(axes ? [ints(axes, 'axes')] : [])];
        }
        break;
      case 'Split':
        if (v < 13) this.intsToInput(n, k, 'split');
        break;
      case 'Squeeze':
      case 'Unsqueeze':
      case 'ReduceSum':
        if (v < 13) this.intsToInput(n, k, 'axes');
        break;
      case 'TopK':
        if (v < 10) {
          const kAttr = take(n, 'k');
          n.input = [n.input![0]!, this.constant(`${nodeLabel(n, k)}/k`, 'int64', [1], [kAttr?.i ?? 0])];
        }
        break;
      case 'Softmax':
      case 'LogSoftmax':
      case 'Hardmax':
        if (v < 13) return [...before, ...this.softmax(n, k)];
        break;
      case 'Upsample':
        if (v < 10) this.upsample(n, k, where);
        break;
      case 'Resize':
        if (v === 10) this.resize10(n, where);
        break;
      case 'PRelu':
        if (v < 7) this.channelSlope(n, where, before);
        break;
      case 'Scatter':
        n.opType = 'ScatterElements';
        break;
      case 'ImageScaler':
        return [...before, ...this.imageScaler(n, k)];
      case 'Scan':
        if (v < 9) this.problems.push(`${where}: Scan before opset 9 had a batch axis, which the upgrade does not rewrite`);
        break;
      default:
        break;
    }
    return [...before, n];
  }

  /** An ints attribute that became the node's second input (Split's split, Squeeze's axes, …): a constant there; absent stays absent. */
  private intsToInput(n: NodeProto, k: number, name: string): void {
    const a = take(n, name);
    if (a !== undefined) n.input = [n.input![0]!, this.constant(`${nodeLabel(n, k)}/${name}`, 'int64', [a.ints?.length ?? 0], a.ints ?? [])];
  }

  /**
   * Opset 6's `broadcast = 1` with `axis`: B's dimensions line up with A's from `axis` on. Opset 7
   * broadcasts from the right, so B gains trailing unit axes (an Unsqueeze) to end where A ends.
   */
  private legacyBroadcast(n: NodeProto, where: string, before: NodeProto[]): void {
    const broadcast = take(n, 'broadcast');
    const axis = take(n, 'axis');
    drop(n, 'consumed_inputs');
    if ((broadcast?.i ?? 0) !== 1 || axis === undefined) return;
    const [a, b] = [n.input![0]!, n.input![1]!];
    const rankA = this.rank(a);
    const rankB = this.rank(b);
    if (rankA === undefined || rankB === undefined) {
      this.problems.push(`${where} broadcasts with axis ${axis.i}, and the ranks of its inputs are not known`);
      return;
    }
    const start = (axis.i ?? 0) < 0 ? (axis.i ?? 0) + rankA : (axis.i ?? 0);
    const trailing = rankA - start - rankB;
    if (trailing <= 0) return;
    const unsqueezed = this.fresh(`${b}/aligned`);
    const axes = Array.from({ length: trailing }, (_, i) => rankB + i);
    before.push({ name: this.fresh(`${n.name || n.opType}/align`), opType: 'Unsqueeze', input: [b, this.constant(`${unsqueezed}/axes`, 'int64', [axes.length], axes)], output: [unsqueezed] });
    n.input![1] = unsqueezed;
  }

  /**
   * PRelu before opset 7 applied a slope of C values along the channel axis (1); from 7 the slope
   * broadcasts from the right, so it gains trailing unit axes: [C, 1, …, 1].
   */
  private channelSlope(n: NodeProto, where: string, before: NodeProto[]): void {
    const [x, slope] = [n.input![0]!, n.input![1]!];
    const [rankX, rankSlope] = [this.rank(x), this.rank(slope)];
    if (rankSlope !== 1) return;
    if (rankX === undefined) {
      this.problems.push(`${where}: the rank of its input is not known (its slope follows axis 1)`);
      return;
    }
    if (rankX < 3) return;
    const aligned = this.fresh(`${slope}/aligned`);
    const axes = Array.from({ length: rankX - 2 }, (_, i) => 1 + i);
    before.push({ name: this.fresh(`${n.name || 'PRelu'}/align`), opType: 'Unsqueeze', input: [slope, this.constant(`${aligned}/axes`, 'int64', [axes.length], axes)], output: [aligned] });
    n.input![1] = aligned;
  }

  /**
   * Before opset 13 these ops saw their input as a matrix [d0·…·d(axis−1), d(axis)·…·d(n−1)] and
   * normalized its rows; from 13 they normalize along one axis. Over the last axis the two agree; for
   * any other, Flatten at `axis`, the op over the last axis, and a Reshape back to the input's shape.
   */
  private softmax(n: NodeProto, k: number): NodeProto[] {
    const axisAttr = take(n, 'axis');
    const axis = axisAttr?.i ?? 1;
    const x = n.input![0]!;
    const rank = this.rank(x);
    if (rank !== undefined && (axis === rank - 1 || axis === -1)) {
      n.attribute!.push(intAttribute('axis', -1));
      return [n];
    }
    const label = nodeLabel(n, k);
    const [shape, flat, normalized] = [this.fresh(`${label}/shape`), this.fresh(`${label}/rows`), this.fresh(`${label}/normalized`)];
    return [
      { name: this.fresh(`${label}/Shape`), opType: 'Shape', input: [x], output: [shape] },
      { name: this.fresh(`${label}/Flatten`), opType: 'Flatten', input: [x], output: [flat], attribute: [intAttribute('axis', axis)] },
      { ...n, input: [flat], output: [normalized], attribute: [...n.attribute!, intAttribute('axis', -1)] },
      { name: this.fresh(`${label}/Reshape`), opType: 'Reshape', input: [normalized, shape], output: [n.output![0]!] },
    ];
  }

  /**
   * Upsample (opsets 7–9; before 7 an experimental op with height_scale / width_scale) is Resize with
   * asymmetric coordinates, nearest taking the floor.
   */
  private upsample(n: NodeProto, k: number, where: string): void {
    const [height, width] = [take(n, 'height_scale'), take(n, 'width_scale')];
    const scalesAttr = take(n, 'scales') ?? (height || width ? { floats: [1, 1, height?.f ?? 1, width?.f ?? 1] } : undefined);
    const modeAttr = take(n, 'mode');
    const mode = modeAttr?.s ? new TextDecoder().decode(modeAttr.s) : 'nearest';
    if (mode !== 'nearest' && mode !== 'linear' && mode !== 'bilinear') this.problems.push(`${where}: mode '${mode}' is not one Resize has`);
    const scales = scalesAttr ? this.constant(`${nodeLabel(n, k)}/scales`, 'float32', [scalesAttr.floats?.length ?? 0], scalesAttr.floats ?? []) : n.input![1]!;
    n.opType = 'Resize';
    n.input = [n.input![0]!, '', scales];
    n.attribute = [
      ...(n.attribute ?? []),
      stringAttribute('mode', mode === 'nearest' ? 'nearest' : 'linear'),
      stringAttribute('coordinate_transformation_mode', 'asymmetric'),
      ...(mode === 'nearest' ? [stringAttribute('nearest_mode', 'floor')] : []),
    ];
  }

  /**
   * Resize-10 (X, scales) used asymmetric coordinates; its nearest pixel was the floor when enlarging
   * and the ceiling when shrinking (ONNX Runtime's opset-10 kernel), so the scales must be constant to
   * pick the opset-13 rule.
   */
  private resize10(n: NodeProto, where: string): void {
    const modeAttr = (n.attribute ?? []).find((a) => a.name === 'mode');
    const mode = modeAttr?.s ? new TextDecoder().decode(modeAttr.s) : 'nearest';
    const scalesName = n.input![1]!;
    const attributes = [stringAttribute('coordinate_transformation_mode', 'asymmetric')];
    if (mode === 'nearest') {
      const scales = floatValues(this.initializers.get(scalesName) ?? this.constants.get(scalesName));
      if (!scales) this.problems.push(`${where}: nearest resizing with scales computed at run time (opset 10 rounded them differently when shrinking)`);
      else if (scales.every((s) => s >= 1)) attributes.push(stringAttribute('nearest_mode', 'floor'));
      else if (scales.every((s) => s <= 1)) attributes.push(stringAttribute('nearest_mode', 'ceil'));
      else this.problems.push(`${where}: nearest resizing that enlarges some axes and shrinks others`);
    }
    n.input = [n.input![0]!, '', scalesName];
    n.attribute = [...(n.attribute ?? []), ...attributes];
  }

  /** ImageScaler (experimental, gone since opset 10): scale·x + bias[c]. */
  private imageScaler(n: NodeProto, k: number): NodeProto[] {
    const scale = take(n, 'scale')?.f ?? 1;
    const bias = take(n, 'bias')?.floats ?? [];
    const label = nodeLabel(n, k);
    const scaled = this.fresh(`${label}/scaled`);
    return [
      { name: this.fresh(`${label}/Mul`), opType: 'Mul', input: [n.input![0]!, this.constant(`${label}/scale`, 'float32', [], [scale])], output: [scaled] },
      { name: this.fresh(`${label}/Add`), opType: 'Add', input: [scaled, this.constant(`${label}/bias`, 'float32', [1, bias.length, 1, 1], bias)], output: [n.output![0]!] },
    ];
  }

  private rank(value: string): number | undefined {
    const init = this.initializers.get(value);
    if (init) return (init.dims ?? []).length;
    return this.options.describe?.(value)?.rank ?? this.declaredRanks.get(value);
  }

  /** The float type of a value (float32 unless described otherwise); other types are a problem. */
  private floatType(value: string, where: string): DType | undefined {
    const dtype = this.options.describe?.(value)?.dtype ?? 'float32';
    if (dtype === 'float32' || dtype === 'float64') return dtype;
    this.problems.push(`${where}: its input is ${dtype}; the upgrade writes float32 and float64 constants only`);
    return undefined;
  }

  private fresh(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  private constant(base: string, dtype: DType, dims: number[], values: readonly number[]): string {
    const name = this.fresh(base);
    // Attribute ints come decoded as numbers: INT64_MAX (an open Slice end) arrives as 2^63.
    const data = dtype === 'int64' ? BigInt64Array.from(values, int64FromNumber) : dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
    this.added.push(tensorToProto(name, new Tensor(data as never, dims, dtype)));
    return name;
  }
}

function nodeLabel(n: NodeProto, k: number): string {
  return n.name || `${n.opType}_${k}`;
}

function intOf(n: NodeProto, name: string, fallback: number): number {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  return a?.i ?? fallback;
}

/** Removes an attribute and returns it. */
function take(n: NodeProto, name: string): AttributeProto | undefined {
  const i = (n.attribute ?? []).findIndex((a) => a.name === name);
  return i < 0 ? undefined : n.attribute!.splice(i, 1)[0];
}

function drop(n: NodeProto, ...names: string[]): void {
  n.attribute = (n.attribute ?? []).filter((a) => !names.includes(a.name ?? ''));
}

function trimOptional(inputs: string[]): string[] {
  while (inputs.length > 1 && inputs.at(-1) === '') inputs.pop();
  return inputs;
}

function intAttribute(name: string, i: number): AttributeProto {
  return { name, type: AttributeType.INT, i };
}

function stringAttribute(name: string, s: string): AttributeProto {
  return { name, type: AttributeType.STRING, s: new TextEncoder().encode(s) };
}

/** A float32 tensor's values, from whichever field holds them. */
function floatValues(t: TensorProto | undefined): number[] | undefined {
  if (!t || t.dataType !== 1) return undefined;
  if (t.floatData && t.floatData.length > 0) return t.floatData;
  if (!t.rawData) return undefined;
  const copy = t.rawData.slice();
  return [...new Float32Array(copy.buffer, 0, copy.byteLength / 4)];
}
