import { KilnError, formatShape } from '../errors.js';
import { tensorFromProto, tensorToProto } from '../graph/onnx-io.js';
import type { ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../graph/proto.js';
import { dataInputs, encodeModel } from '../graph/proto.js';
import { Random } from '../random.js';
import { sharedRuntime, type Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { OnnxModel } from './onnx-model.js';

/*
 * Owns freeing the batch size of a model exported at a fixed one. torch.onnx.export without
 * dynamic_axes (its default) writes the example batch into the file — inputs [1, 3, 224, 224] — and
 * so do many ONNX Model Zoo files, often also as the first entry of a Reshape target ([1, 256]).
 * Kiln trains in batches, so such a file gets the symbolic batch 'batch' on its inputs and outputs,
 * Reshape targets that start with the fixed size take it from their input instead (0: copy that
 * dimension), and its intermediate shape annotations are dropped (ONNX Runtime infers them again).
 * That rewrite is a guess about what the fixed size meant, so it is kept only when it computes what
 * the file computes: the freed graph on two batches' rows at once must give, row for row, the file's
 * own outputs on each batch; otherwise the model is refused with the way to export it again.
 */

/** Element types the check can make sample inputs of: float32, int64 and int32 (token ids, masks). */
const SAMPLED_TYPES = new Set([1, 6, 7]);

/**
 * The batch size every data input and output of the file fixes on axis 0, or undefined where one is
 * free — or where the check could not run the file: an input of another element type, or with a free
 * size past the batch axis (those files go on as they are, to be named by the steps after this one).
 */
export function fixedBatchOf(proto: ModelProto): number | undefined {
  const graph = proto.graph;
  if (!graph) return undefined;
  const inputs = dataInputs(graph);
  const values = [...inputs, ...(graph.output ?? [])];
  const firsts = values.map((v) => v.type?.tensorType?.shape?.dim?.[0]?.dimValue);
  if (values.length === 0 || firsts.some((d) => d === undefined || d === null)) return undefined;
  for (const i of inputs) {
    if (!SAMPLED_TYPES.has(i.type?.tensorType?.elemType ?? 0)) return undefined;
    if ((i.type?.tensorType?.shape?.dim ?? []).slice(1).some((d) => d.dimValue === undefined || d.dimValue === null)) return undefined;
  }
  const sizes = new Set(firsts.map(Number));
  return sizes.size === 1 ? [...sizes][0] : undefined;
}

const withFreeBatch = (v: ValueInfoProto): ValueInfoProto => {
  const dims = v.type!.tensorType!.shape!.dim!;
  return { ...v, type: { ...v.type, tensorType: { ...v.type!.tensorType, shape: { dim: [{ dimParam: 'batch' }, ...dims.slice(1)] } } } };
};

/** The graph with a free batch: see the module comment. `batch` is the size the file fixes. */
function freed(proto: ModelProto, batch: number): ModelProto {
  const graph = proto.graph!;
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const constants = new Map<string, TensorProto>();
  for (const n of graph.node ?? []) {
    const value = n.opType === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined;
    if (value && n.output?.[0]) constants.set(n.output[0], value);
  }
  const added: TensorProto[] = [];
  const replaced = new Set<string>();
  const node = (graph.node ?? []).map((n): NodeProto => {
    const [data, target] = n.input ?? [];
    const allowZero = n.attribute?.find((a) => a.name === 'allowzero')?.i;
    if (n.opType !== 'Reshape' || (n.domain ?? '') !== '' || !data || !target || initializers.has(data) || Number(allowZero ?? 0) !== 0) return n;
    const shape = initializers.get(target) ?? constants.get(target);
    if (!shape) return n;
    const values = tensorFromProto(shape);
    if (values.rank !== 1 || values.size === 0 || Number(values.data[0]) !== batch) return n;
    const copy = BigInt64Array.from(values.data as BigInt64Array);
    copy[0] = 0n;
    const name = `${target}/free_batch`;
    if (!added.some((t) => t.name === name)) added.push(tensorToProto(name, new Tensor(copy, [copy.length], 'int64')));
    replaced.add(target);
    return { ...n, input: [data, name, ...(n.input ?? []).slice(2)] };
  });
  // A target no node reads any more goes (ONNX Runtime would warn about it on every load).
  const read = new Set(node.flatMap((n) => n.input ?? []));
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  const kept = (graph.initializer ?? []).filter((t) => read.has(t.name ?? '') || outputs.has(t.name) || !replaced.has(t.name ?? ''));
  return {
    ...proto,
    graph: {
      ...graph,
      node,
      initializer: [...kept, ...added],
      input: (graph.input ?? []).map((i) => (initializers.has(i.name ?? '') ? i : withFreeBatch(i))),
      output: (graph.output ?? []).map(withFreeBatch),
      valueInfo: [],
    },
  };
}

/** Seeded inputs of `rows` rows: floats in [0, 1), token ids and masks 0 or 1 (valid for any embedding). */
function sampleInputs(proto: ModelProto, rows: number): Record<string, Tensor> {
  const rng = new Random(11);
  const feeds: Record<string, Tensor> = {};
  for (const i of dataInputs(proto.graph!)) {
    const dims = i.type!.tensorType!.shape!.dim!.slice(1).map((d) => Number(d.dimValue));
    const shape = [rows, ...dims];
    const size = shape.reduce((a, b) => a * b, 1);
    const type = i.type!.tensorType!.elemType;
    feeds[i.name!] =
      type === 7
        ? new Tensor(BigInt64Array.from({ length: size }, () => BigInt(rng.next() < 0.5 ? 0 : 1)), shape, 'int64')
        : type === 6
          ? new Tensor(Int32Array.from({ length: size }, () => (rng.next() < 0.5 ? 0 : 1)), shape, 'int32')
          : new Tensor(Float32Array.from({ length: size }, () => rng.next()), shape, 'float32');
  }
  return feeds;
}

function rowsOf(t: Tensor, start: number, count: number): Tensor {
  const row = t.size / t.shape[0]!;
  return new Tensor((t.data as Float32Array).slice(start * row, (start + count) * row) as never, [count, ...t.shape.slice(1)], t.dtype);
}

/** Why the freed graph's outputs are not the file's, or undefined when they are (within float rounding). */
function difference(freedOut: Record<string, Tensor>, chunks: Record<string, Tensor>[], batch: number): string | undefined {
  for (const [name, whole] of Object.entries(freedOut)) {
    if (whole.shape[0] !== batch * chunks.length) return `output '${name}' has shape ${formatShape(whole.shape)} for ${batch * chunks.length} rows`;
    for (let c = 0; c < chunks.length; c++) {
      const own = chunks[c]![name]!;
      const mine = rowsOf(whole, c * batch, batch);
      if (own.size !== mine.size) return `output '${name}' has ${mine.size} values per ${batch} rows, the file gives ${own.size}`;
      const a = own.data as ArrayLike<number | bigint>;
      const b = mine.data as ArrayLike<number | bigint>;
      let scale = 1;
      for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(Number(a[i])));
      for (let i = 0; i < a.length; i++) {
        const d = Math.abs(Number(a[i]) - Number(b[i]));
        if (!(d <= 1e-4 * scale)) return `output '${name}' differs from the file's by ${d} on rows ${c * batch}–${c * batch + batch - 1}`;
      }
    }
  }
  return undefined;
}

/**
 * The file with its batch size freed, when every input and output fixes one (else the file as it is);
 * a KilnError when the freed graph does not compute what the file computes, batch for batch.
 */
export async function freeFixedBatch(proto: ModelProto, file: string, runtime: Runtime): Promise<ModelProto> {
  const batch = fixedBatchOf(proto);
  if (batch === undefined) return proto;
  const candidate = freed(proto, batch);
  const inputs = dataInputs(proto.graph!);
  const input = inputs[0]!;
  const names = inputs.map((i) => i.name ?? '');
  const refuse = (why: string) => {
    const axes = names.map((n) => `'${n}': {0: 'batch'}`).join(', ');
    return new KilnError(
      'INVALID_SHAPE',
      `'${file}' was exported at a fixed batch size of ${batch} (input '${input.name}' ${formatShape(input.type!.tensorType!.shape!.dim!.map((d) => (d.dimValue !== undefined ? Number(d.dimValue) : (d.dimParam ?? null))))}), and freeing it did not give the same model (${why}); Kiln trains in batches: export it again with a dynamic batch dimension (torch.onnx.export(..., dynamic_axes={${axes}}))`,
    );
  };
  let original;
  try {
    original = await runtime.load(encodeModel(proto));
  } catch {
    // A file ONNX Runtime cannot run as it is (an opset it lacks kernels for) is left for the steps
    // after this one to name.
    return proto;
  }
  let loaded;
  try {
    loaded = await runtime.load(encodeModel(candidate));
  } catch (err) {
    await runtime.release(original);
    throw refuse(`it does not load: ${(err as Error).message}`);
  }
  try {
    // Two and three batches' rows at once: a constant that happened to equal twice the batch would not
    // pass both.
    const feeds = sampleInputs(proto, 3 * batch);
    const chunks = [];
    for (let c = 0; c < 3; c++) {
      try {
        chunks.push(await runtime.run(original, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, rowsOf(t, c * batch, batch)]))));
      } catch {
        // The file does not run on sample data of its own declared shapes (a value range it needs, say):
        // there is nothing to compare against, and the file goes on as it is.
        return proto;
      }
    }
    for (const count of [2, 3]) {
      let whole;
      try {
        whole = await runtime.run(loaded, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, rowsOf(t, 0, count * batch)])));
      } catch (err) {
        throw refuse(`at ${count * batch} rows, ${(err as Error).message}`);
      }
      const why = difference(whole, chunks.slice(0, count), batch);
      if (why !== undefined) throw refuse(why);
    }
    return candidate;
  } finally {
    await Promise.all([runtime.release(original), runtime.release(loaded)]);
  }
}

/**
 * A model file as the data pipeline runs it (bench, distillation teachers): the same model, with its
 * batch size freed when the file fixes one (freeFixedBatch), so that it takes batches of any size.
 */
export async function batchable(model: OnnxModel, file = 'the model'): Promise<OnnxModel> {
  let proto;
  try {
    proto = await freeFixedBatch(model.proto, file, sharedRuntime());
  } catch (err) {
    // Not freeable: the file as it is, which runs at its own batch size (and says so when fed another).
    if (err instanceof KilnError && err.code === 'INVALID_SHAPE') return model;
    throw err;
  }
  if (proto === model.proto) return model;
  const bytes = encodeModel(proto);
  return new OnnxModel(bytes, proto);
}
