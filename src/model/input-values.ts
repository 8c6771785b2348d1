// Owns what a model's inputs must hold beyond their types and shapes, read from the graph: token ids
// within the embedding table they index (an ONNX Gather wraps a negative id to the last row and fails
// on one past the end deep inside ONNX Runtime, where PyTorch's nn.Embedding refuses both by name),
// and the same size wherever two inputs share a named dimension (input_ids and attention_mask of one
// sequence length). Checked before any run — by the library, the command line and the server, which
// answers 400 for the one bad request instead of failing every request batched with it.
import { KilnError, formatShape } from '../errors.js';
import { type ModelProto, type NodeProto, type TensorProto } from '../graph/proto.js';
import type { Tensor } from '../tensor.js';

/** The table an input's ids index: its rows, and where (the initializer, the Gather reading it). */
export interface IdTable {
  /** Rows of the table: ids must be in [0, rows). */
  rows: number;
  /** The initializer holding the table. */
  table: string;
  /** The Gather node that looks the ids up. */
  node: string;
}

/** Ops that pass ids through unchanged (their values, perhaps rearranged). */
const PASSES_IDS = new Set(['Cast', 'Identity', 'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Transpose']);

/** Ops a table passes through keeping its rows: a tie (Identity), and the 8-bit storage quantization writes (Cast, Mul by per-row scales, DequantizeLinear). */
const KEEPS_ROWS = new Set(['Identity', 'Cast', 'Mul', 'DequantizeLinear']);

/**
 * The integer inputs whose values index an initializer's rows through a Gather (axis 0): each with
 * the smallest such table. Ids that go anywhere else too (arithmetic on them) are still checked
 * against the table, which they must index.
 */
export function idTables(proto: ModelProto): Map<string, IdTable> {
  const graph = proto.graph ?? {};
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const readers = new Map<string, NodeProto[]>();
  const producers = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) {
    for (const i of n.input ?? []) if (i) (readers.get(i) ?? readers.set(i, []).get(i)!).push(n);
    for (const o of n.output ?? []) if (o) producers.set(o, n);
  }
  // The initializer a table is, perhaps through a tie or its 8-bit storage (a quantized model's embedding).
  const tableOf = (value: string): TensorProto | undefined => {
    for (let v = value, hops = 0; hops < 8; hops++) {
      const t = initializers.get(v);
      if (t) return t;
      const maker = producers.get(v);
      if (!maker || !KEEPS_ROWS.has(maker.opType ?? '') || (maker.domain ?? '') !== '') return undefined;
      v = maker.input?.[0] ?? '';
    }
    return undefined;
  };
  const found = new Map<string, IdTable>();
  for (const input of graph.input ?? []) {
    const name = input.name ?? '';
    const elem = input.type?.tensorType?.elemType;
    // int32, int64 (and the unsigned and smaller integer types): ids.
    if (initializers.has(name) || elem === undefined || ![2, 3, 4, 5, 6, 7, 12, 13].includes(elem)) continue;
    const seen = new Set<string>();
    const walk = (value: string) => {
      if (seen.has(value)) return;
      seen.add(value);
      for (const n of readers.get(value) ?? []) {
        if (PASSES_IDS.has(n.opType ?? '') && n.input?.[0] === value) walk(n.output?.[0] ?? '');
        if (n.opType !== 'Gather' || n.input?.[1] !== value || (n.domain ?? '') !== '') continue;
        const table = tableOf(n.input?.[0] ?? '');
        const rank = table?.dims?.length ?? 0;
        const axis = Number(n.attribute?.find((a) => a.name === 'axis')?.i ?? 0);
        if (table && rank > 0 && (axis === 0 || axis === -rank)) {
          const rows = Number(table.dims![0]);
          const known = found.get(name);
          if (!known || rows < known.rows) found.set(name, { rows, table: table.name ?? '', node: n.name || 'Gather' });
        }
      }
    };
    walk(name);
  }
  return found;
}

/** The error for the first id of `t` outside its table's rows, or undefined. */
export function idOutOfRange(t: Tensor, table: IdTable, label: string): KilnError | undefined {
  const data = t.data as ArrayLike<number | bigint>;
  for (let i = 0; i < data.length; i++) {
    const id = Number(data[i]);
    if (id >= 0 && id < table.rows) continue;
    const at = position(i, t.shape);
    return new KilnError(
      'INVALID_DATA',
      `${label}${at} is ${id}: it indexes the ${table.rows} rows of '${table.table}' (Gather '${table.node}'), so ids must be in [0, ${table.rows - 1}]${id < 0 ? ' (ONNX would take a negative id from the end; PyTorch\'s nn.Embedding refuses it)' : ''}`,
    );
  }
  return undefined;
}

/** Indices of element i in a tensor of the shape, as `[r, c]`. */
function position(i: number, shape: readonly number[]): string {
  const at: number[] = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    at.unshift(i % shape[k]!);
    i = Math.floor(i / shape[k]!);
  }
  return `[${at.join(', ')}]`;
}

/**
 * The error for two inputs whose sizes differ along a dimension they share by name (an
 * attention_mask shorter than its input_ids), or undefined. `shapes` are the declared ones
 * (a dimension's name, its size, or null), `given` the tensors by the same input names.
 */
export function sharedDimensionMismatch(shapes: ReadonlyMap<string, readonly (number | string | null)[] | null>, given: Readonly<Record<string, Tensor>>, label: (input: string) => string): KilnError | undefined {
  const seen = new Map<string, { input: string; size: number }>();
  for (const [input, shape] of shapes) {
    const t = given[input];
    if (!t || !shape) continue;
    for (let axis = 0; axis < shape.length; axis++) {
      const dim = shape[axis];
      if (typeof dim !== 'string' || t.shape[axis] === undefined) continue;
      const first = seen.get(dim);
      if (!first) seen.set(dim, { input, size: t.shape[axis]! });
      else if (first.size !== t.shape[axis]) {
        return new KilnError('INVALID_SHAPE', `${label(input)} has shape ${formatShape(t.shape)}: its dimension '${dim}' (axis ${axis}) is ${t.shape[axis]}, and ${first.size} in ${label(first.input)}; inputs sharing a dimension must agree on it`);
      }
    }
  }
  return undefined;
}
