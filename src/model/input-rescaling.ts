import { tensorFromProto } from '../graph/onnx-io.js';
import { dataInputs, type ModelProto, type NodeProto, type TensorProto } from '../graph/proto.js';

/*
 * Owns recognizing a model that rescales its own pixels. Keras' `Rescaling(1./255)` (or
 * `Rescaling(1./127.5, offset=-1)`), the first layer of most Keras image models, reaches ONNX through
 * tf2onnx as a Mul of the image input by that constant (a Div by 255 or 127.5 where a PyTorch module
 * does it in forward): such a model takes raw 0–255 pixels, while Kiln's image data arrive divided by
 * 255. Fed those, it would see pixels 255× too dark — it still trains, to a worse model, and a
 * pretrained one evaluates at chance. So a model without a declared scale that starts this way is fed
 * raw pixels (preprocessing scale 1), as a channels-first model is fed channels-first without a flag.
 */

/** The node that rescales the model's image input, and by what. */
export interface InputRescaling {
  /** The Mul or Div node's name. */
  node: string;
  /** What one input unit becomes: 1/255 for Rescaling(1./255), 2/255 for Rescaling(1./127.5, offset=-1). */
  factor: number;
}

/** Ops between the input and its rescaling that move values without changing them. */
const LAYOUT_OPS = new Set(['Transpose', 'Reshape', 'Flatten', 'Identity', 'Squeeze', 'Unsqueeze']);

/** The factors of 0–255 pixels that mean a model rescales them itself: to [0, 1] and to [0, 2] (then −1). */
const PIXEL_FACTORS = [1 / 255, 2 / 255];

/** The one scalar a constant (initializer or Constant node output) holds, or undefined. */
function scalarOf(name: string, initializers: ReadonlyMap<string, TensorProto>, constants: ReadonlyMap<string, TensorProto>): number | undefined {
  const proto = initializers.get(name) ?? constants.get(name);
  if (!proto || (proto.dims ?? []).reduce((a, b) => a * Number(b), 1) !== 1) return undefined;
  try {
    const t = tensorFromProto(proto);
    return t.dtype === 'float32' || t.dtype === 'float64' ? Number(t.data[0]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Mul by ≈1/255 (or 2/255), or Div by ≈255 (or 127.5), that the model's first float input goes
 * through before anything else reads it (past layout-only ops, each the only reader of the value
 * before it); undefined for any other model.
 */
export function rescalingAtInput(proto: ModelProto): InputRescaling | undefined {
  const graph = proto.graph;
  if (!graph) return undefined;
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const input = dataInputs(graph)[0];
  if (!input?.name || input.type?.tensorType?.elemType !== 1) return undefined;
  const constants = new Map<string, TensorProto>();
  const readers = new Map<string, NodeProto[]>();
  for (const n of graph.node ?? []) {
    if (n.opType === 'Constant' && (n.domain ?? '') === '') {
      const value = n.attribute?.find((a) => a.name === 'value')?.t;
      if (value && n.output?.[0]) constants.set(n.output[0], value);
    }
    for (const i of n.input ?? []) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  }
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  let value = input.name;
  for (;;) {
    const next = readers.get(value) ?? [];
    if (next.length !== 1 || outputs.has(value)) return undefined;
    const n = next[0]!;
    if ((n.domain ?? '') !== '') return undefined;
    if (LAYOUT_OPS.has(n.opType ?? '') && n.input?.[0] === value) {
      value = n.output?.[0] ?? '';
      continue;
    }
    const [a, b] = n.input ?? [];
    const other = n.opType === 'Mul' ? (a === value ? b : a) : n.opType === 'Div' && a === value ? b : undefined;
    if (!other || other === value) return undefined;
    const c = scalarOf(other, initializers, constants);
    if (c === undefined || !(c !== 0)) return undefined;
    const factor = n.opType === 'Mul' ? c : 1 / c;
    const pixel = PIXEL_FACTORS.find((f) => Math.abs(factor / f - 1) < 1e-3);
    return pixel === undefined ? undefined : { node: n.name || `${n.opType} of '${input.name}'`, factor };
  }
}
