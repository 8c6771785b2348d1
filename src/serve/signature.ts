import { KilnError, formatShape } from '../errors.js';
import type { ModelDescription } from '../model/onnx-model.js';
import { idOutOfRange, sharedDimensionMismatch, type IdTable } from '../model/input-values.js';
import { OUTPUT_METADATA_KEY, defaultOutput } from '../model/trained-output.js';
import type { DType, Tensor } from '../tensor.js';
import type { ModelConfig } from './config.js';
import { isServableType } from './datatypes.js';
import { badRequest } from './errors.js';
import { own, record } from './records.js';

/*
 * What clients see of a model: its inputs and outputs under their served names, with element type
 * and shape (-1 for a variable dimension), and whether the first dimension is a batch dimension.
 * Outputs are listed in the file's order, except that the output the model trains comes first (the
 * one a Kiln-saved model of several records, else the first float one, as training chooses it):
 * clients that read "the first output" of the metadata (kiln.client's predict, --topk, :classify, a
 * Triton config written from it) then read that one.
 */

export interface TensorSpec {
  /** The name clients use (config inputNames/outputNames, else the ONNX name). */
  name: string;
  onnxName: string;
  dtype: DType;
  /** null when the model does not declare a rank. */
  shape: number[] | null;
  /** The shape as the model declares it, with its dimensions' names (inputs sharing one must agree on it). */
  declared?: (number | string | null)[] | null;
  /** For an input of token ids: the table they index. */
  ids?: IdTable;
}

export interface Signature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Every input and output has a variable first dimension, so requests may be merged and split along it. */
  batchable: boolean;
}

export function signatureOf(description: ModelDescription, config: ModelConfig): Signature {
  const spec = (kind: 'input' | 'output', names: Record<string, string>) => (d: ModelDescription['inputs'][number]): TensorSpec => {
    if (!isServableType(d.dtype)) {
      throw new KilnError('UNSUPPORTED_OP', `model ${kind} '${d.name}' has element type ${d.dtype}; Kiln serves float32, float64, int8, int32, int64, uint8 and bool tensors`);
    }
    const served: TensorSpec = { name: (own(names, d.name) as string | undefined) ?? d.name, onnxName: d.name, dtype: d.dtype, shape: d.shape ? d.shape.map((x) => (typeof x === 'number' ? x : -1)) : null };
    return kind === 'input' ? { ...served, declared: d.shape, ...(d.ids ? { ids: d.ids } : {}) } : served;
  };
  const inputs = description.inputs.map(spec('input', config.inputNames));
  // The output the model trains comes first (the same rule as training's: trained-output.ts).
  const first = defaultOutput(description.outputs.map((d) => ({ name: d.name, float: d.dtype === 'float32' })), description.metadata[OUTPUT_METADATA_KEY]);
  const ordered = [...description.outputs.filter((d) => d.name === first), ...description.outputs.filter((d) => d.name !== first)];
  const outputs = ordered.map(spec('output', config.outputNames));
  if (inputs.length === 0) throw new KilnError('INVALID_ARGUMENT', 'the model has no inputs to feed');
  const batchDim = (t: TensorSpec) => t.shape !== null && t.shape.length > 0 && t.shape[0] === -1;
  return { inputs, outputs, batchable: inputs.every(batchDim) && outputs.every(batchDim) };
}

/**
 * Checks decoded request tensors against the signature: every input present and no other, element
 * types equal, ranks and fixed dimensions equal, one shared batch size within maxBatchSize. Returns
 * the feeds under ONNX names and the batch size (1 for models without a batch dimension).
 */
export function checkFeeds(signature: Signature, feeds: Record<string, Tensor>, maxBatchSize: number): { feeds: Record<string, Tensor>; rows: number } {
  const known = new Set(signature.inputs.map((i) => i.name));
  for (const name of Object.keys(feeds)) {
    if (!known.has(name)) throw badRequest(`unexpected input '${name}'; the model's inputs are ${[...known].map((n) => `'${n}'`).join(', ')}`);
  }
  const out = record<Tensor>();
  let rows: number | undefined;
  for (const spec of signature.inputs) {
    const t = feeds[spec.name];
    if (!t) throw badRequest(`input '${spec.name}' is missing; the model's inputs are ${signature.inputs.map((i) => `'${i.name}'`).join(', ')}`);
    if (t.dtype !== spec.dtype) throw badRequest(`input '${spec.name}' must be ${spec.dtype}, found ${t.dtype}`);
    if (spec.shape) {
      if (t.rank !== spec.shape.length || spec.shape.some((d, i) => d !== -1 && d !== t.shape[i])) {
        throw badRequest(`input '${spec.name}' must have shape ${formatShape(spec.shape)} (-1: any size), found ${formatShape(t.shape)}`);
      }
    }
    if (signature.batchable) {
      const n = t.shape[0]!;
      if (rows !== undefined && n !== rows) throw badRequest(`inputs must share the batch size (first dimension): '${spec.name}' has ${n}, others ${rows}`);
      rows = n;
    }
    // Token ids outside their table: this request's mistake, answered before it joins a batch.
    const bad = spec.ids ? idOutOfRange(t, spec.ids, `input '${spec.name}'`) : undefined;
    if (bad) throw badRequest(bad.message);
    out[spec.onnxName] = t;
  }
  const mismatch = sharedDimensionMismatch(new Map(signature.inputs.map((i) => [i.name, i.declared ?? null])), feeds, (name) => `input '${name}'`);
  if (mismatch) throw badRequest(mismatch.message);
  if (signature.batchable) {
    if (rows === 0) throw badRequest('the batch is empty: the first dimension must be at least 1');
    if (maxBatchSize > 0 && rows! > maxBatchSize) throw badRequest(`batch size ${rows} exceeds the model's maxBatchSize ${maxBatchSize}`);
  }
  return { feeds: out, rows: rows ?? 1 };
}
