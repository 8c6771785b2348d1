import type { ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../graph/proto.js';
import { tensorFromProto } from '../../graph/onnx-io.js';
import { float16Bits } from '../../float16.js';

export { float16Bits, float16Value } from '../../float16.js';

const FLOAT = 1;
const FLOAT16 = 10;
const FLOAT16_MAX = 65504;

/** Options of `convertToFloat16`. */
export interface Float16Options {
  /**
   * false (default): only the stored weights become float16 — half the file — and a Cast back to
   * float32 in front of them, which ONNX Runtime folds at load, so compute and accuracy stay float32
   * apart from the weights' rounding. true: every float tensor of the graph is float16 (for runtimes
   * with float16 kernels, such as GPUs); inputs and outputs stay float32 through Casts.
   */
  compute?: boolean;
}

/** What `convertToFloat16` produced. */
export interface Float16Result {
  /** The converted model. */
  proto: ModelProto;
  /** Initializers stored as float16 now. */
  convertedInitializers: number;
  /** Weights beyond ±65504, clamped to float16's largest finite value. */
  clamped: number;
}

function toFloat16Tensor(t: TensorProto, name: string): { tensor: TensorProto; clamped: number } {
  const values = tensorFromProto(t).data as Float32Array;
  const bits = new Uint16Array(values.length);
  let clamped = 0;
  for (let i = 0; i < values.length; i++) {
    let v = values[i]!;
    if (Math.abs(v) > FLOAT16_MAX && Number.isFinite(v)) {
      v = Math.sign(v) * FLOAT16_MAX;
      clamped++;
    }
    bits[i] = float16Bits(v);
  }
  return { tensor: { name, dims: t.dims, dataType: FLOAT16, rawData: new Uint8Array(bits.buffer) }, clamped };
}

function retype(v: ValueInfoProto, from: number, to: number): ValueInfoProto {
  const tt = v.type?.tensorType;
  return tt?.elemType === from ? { ...v, type: { ...v.type, tensorType: { ...tt, elemType: to } } } : v;
}

/** Converts a float32 model's weights (and optionally its compute) to float16. */
export function convertToFloat16(proto: ModelProto, options: Float16Options = {}): Float16Result {
  const graph = proto.graph ?? {};
  const initializers: TensorProto[] = [];
  const casts: NodeProto[] = [];
  let converted = 0;
  let clamped = 0;
  for (const t of graph.initializer ?? []) {
    if (t.dataType !== FLOAT) {
      initializers.push(t);
      continue;
    }
    converted++;
    if (options.compute) {
      const r = toFloat16Tensor(t, t.name ?? '');
      initializers.push(r.tensor);
      clamped += r.clamped;
    } else {
      const r = toFloat16Tensor(t, `${t.name}/float16`);
      initializers.push(r.tensor);
      clamped += r.clamped;
      casts.push({ name: `${t.name}/to_float32`, opType: 'Cast', input: [r.tensor.name!], output: [t.name!], attribute: [{ name: 'to', type: 2, i: FLOAT }] });
    }
  }
  let nodes = [...casts, ...(graph.node ?? [])];
  const inputs = graph.input ?? [];
  const outputs = graph.output ?? [];
  if (options.compute) {
    // Float casts inside the graph now produce float16; the interface keeps float32 through casts.
    nodes = nodes.map((n) =>
      n.opType === 'Cast' ? { ...n, attribute: (n.attribute ?? []).map((a) => (a.name === 'to' && Number(a.i) === FLOAT ? { ...a, i: FLOAT16 } : a)) } : n,
    );
    const entry: NodeProto[] = [];
    for (const v of inputs) {
      if (v.type?.tensorType?.elemType !== FLOAT) continue;
      entry.push({ name: `${v.name}/to_float16`, opType: 'Cast', input: [v.name!], output: [`${v.name}/float16`], attribute: [{ name: 'to', type: 2, i: FLOAT16 }] });
    }
    const renamedInputs = new Map(entry.map((n) => [n.input![0]!, n.output![0]!]));
    nodes = nodes.map((n) => ({ ...n, input: (n.input ?? []).map((i) => renamedInputs.get(i) ?? i) }));
    const exit: NodeProto[] = [];
    const renamedOutputs = new Map<string, string>();
    for (const o of outputs) {
      if (o.type?.tensorType?.elemType !== FLOAT) continue;
      renamedOutputs.set(o.name!, `${o.name}/float16`);
      exit.push({ name: `${o.name}/to_float32`, opType: 'Cast', input: [`${o.name}/float16`], output: [o.name!], attribute: [{ name: 'to', type: 2, i: FLOAT }] });
    }
    nodes = nodes.map((n) => ({ ...n, output: (n.output ?? []).map((o) => renamedOutputs.get(o) ?? o), input: (n.input ?? []).map((i) => renamedOutputs.get(i) ?? i) }));
    nodes = [...entry, ...nodes, ...exit];
  }
  const valueInfo = options.compute ? (graph.valueInfo ?? []).map((v) => retype(v, FLOAT, FLOAT16)) : graph.valueInfo;
  return {
    proto: { ...proto, graph: { ...graph, node: nodes, initializer: initializers, input: inputs, output: outputs, valueInfo } },
    convertedInitializers: converted,
    clamped,
  };
}
