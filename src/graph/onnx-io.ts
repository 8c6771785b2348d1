import { KilnError } from '../errors.js';
import { Tensor, allocate, int64FromNumber, sizeOf, type AnyTypedArray } from '../tensor.js';
import { dtypeFromOnnx, onnxTypeCode } from './dtype.js';
import type { AttrValue, Attrs, Graph, Value } from './graph.js';
import { AttributeType, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';
import { KILN_VERSION } from '../version.js';

/** The opset Kiln writes, and the IR version that goes with it (both load in onnxruntime-node 1.30). */
export const DEFAULT_OPSET = 17;
export const IR_VERSION = 8;

/*
 * ONNX tells INT from FLOAT attributes; a JS number does not. These attributes are floats in the
 * operator specs even when their value happens to be whole ('value' is Pad's before opset 11; as a
 * tensor, Constant's and ConstantOfShape's 'value' is written as a TENSOR whatever this says).
 */
const FLOAT_ATTRIBUTES = new Set(['value', 'value_float', 'alpha', 'beta', 'epsilon', 'momentum', 'gamma', 'lambd', 'bias', 'high', 'low', 'scale', 'extrapolation_value', 'cubic_coeff_a']);

export function tensorToProto(name: string, t: Tensor): TensorProto {
  const data = t.data as AnyTypedArray;
  return {
    name,
    dims: [...t.shape],
    dataType: onnxTypeCode(t.dtype),
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
  };
}

/** Reads a TensorProto's values whichever field holds them (raw_data or a typed repeated field). */
export function tensorFromProto(p: TensorProto): Tensor {
  const dtype = dtypeFromOnnx(p.dataType ?? 0);
  const dims = (p.dims ?? []).map(Number);
  if (p.dataLocation === 1 || (p.externalData && p.externalData.length > 0)) {
    throw new KilnError('UNSUPPORTED_OP', `tensor '${p.name}' keeps its data in an external file: load the model from its path, and Kiln reads that data from beside it`);
  }
  const n = sizeOf(dims);
  const out = allocate(dtype, n);
  if (p.rawData && p.rawData.length > 0) {
    const bytes = p.rawData;
    if (bytes.length !== out.byteLength) {
      throw new KilnError('CORRUPT_FILE', `tensor '${p.name}' has ${bytes.length} bytes of data, its shape [${dims}] of ${dtype} needs ${out.byteLength}`);
    }
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const source: ArrayLike<number> =
      dtype === 'float32' ? (p.floatData ?? []) : dtype === 'float64' ? (p.doubleData ?? []) : dtype === 'int64' ? (p.int64Data ?? []) : (p.int32Data ?? []);
    if (source.length !== n) {
      throw new KilnError('CORRUPT_FILE', `tensor '${p.name}' holds ${source.length} values, its shape [${dims}] needs ${n}`);
    }
    if (dtype === 'int64') for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = int64FromNumber(source[i]!);
    else for (let i = 0; i < n; i++) (out as Float32Array)[i] = source[i]!;
  }
  return new Tensor(out as never, dims, dtype);
}

function attributeToProto(name: string, value: AttrValue): AttributeProto {
  if (value instanceof Tensor) return { name, type: AttributeType.TENSOR, t: tensorToProto(name, value) };
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    return FLOAT_ATTRIBUTES.has(name) || !Number.isInteger(value)
      ? { name, type: AttributeType.FLOAT, f: value }
      : { name, type: AttributeType.INT, i: value };
  }
  if (Array.isArray(value)) {
    if (value.length > 0 && typeof value[0] === 'string') {
      return { name, type: AttributeType.STRINGS, strings: (value as string[]).map((s) => new TextEncoder().encode(s)) };
    }
    const nums = value as number[];
    return nums.every(Number.isInteger) && !FLOAT_ATTRIBUTES.has(name)
      ? { name, type: AttributeType.INTS, ints: nums }
      : { name, type: AttributeType.FLOATS, floats: nums };
  }
  return { name, type: AttributeType.GRAPH, g: graphToProto(value) };
}

function valueInfo(v: Value): ValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: onnxTypeCode(v.dtype),
        shape: v.shape
          ? { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})) }
          : undefined,
      },
    },
  };
}

export function graphToProto(graph: Graph): GraphProto {
  const used = new Set<string>();
  for (const n of graph.nodes) for (const i of n.inputs) used.add(i);
  for (const o of graph.outputs) used.add(o.name);
  return {
    name: graph.name,
    node: graph.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain || undefined,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attrs).map(([k, v]) => attributeToProto(k, v)),
    })),
    // Constants nothing reads (left behind by rewrites) are dropped rather than stored.
    initializer: [...graph.initializers].filter(([name]) => used.has(name)).map(([name, t]) => tensorToProto(name, t)),
    input: graph.inputs.map(valueInfo),
    output: graph.outputs.map(valueInfo),
  };
}

export function modelToProto(graph: Graph, metadata: Record<string, string> = {}, opset = DEFAULT_OPSET): ModelProto {
  return {
    irVersion: IR_VERSION,
    producerName: 'kiln',
    producerVersion: KILN_VERSION,
    opsetImport: [{ domain: '', version: opset }],
    graph: graphToProto(graph),
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  };
}

/** Reads an attribute back into a plain value (ints, floats, strings, tensors). */
export function attributeValue(a: AttributeProto): AttrValue | undefined {
  switch (a.type) {
    case AttributeType.FLOAT:
      return a.f ?? 0;
    case AttributeType.INT:
      return a.i ?? 0;
    case AttributeType.STRING:
      return new TextDecoder().decode(a.s ?? new Uint8Array());
    case AttributeType.TENSOR:
      return a.t ? tensorFromProto(a.t) : undefined;
    case AttributeType.FLOATS:
      return a.floats ?? [];
    case AttributeType.INTS:
      return a.ints ?? [];
    case AttributeType.STRINGS:
      return (a.strings ?? []).map((s) => new TextDecoder().decode(s));
    default:
      return undefined;
  }
}

/**
 * A decoded node's attributes as Kiln values; `where` (a file, or '') prefixes the error that names an
 * attribute of a kind Kiln does not read (subgraphs, sparse tensors).
 */
export function nodeAttributes(n: NodeProto, where = ''): Attrs {
  const attrs: Attrs = {};
  for (const a of n.attribute ?? []) {
    const value = attributeValue(a);
    if (value === undefined) {
      throw new KilnError('UNSUPPORTED_OP', `${where ? `${where}: ` : ''}node '${n.name}' (${n.opType}) has attribute '${a.name}' of a kind Kiln does not read (subgraphs, sparse tensors)`);
    }
    attrs[a.name ?? ''] = value;
  }
  return attrs;
}
