// Owns what a model is fed as data: one tensor for its data input, or — for an imported graph with
// several inputs (a text model's input_ids and attention_mask) — tensors by the model's input names;
// and rows of all of them taken together (batches, validation splits, slices), keyed by the names the
// step graphs give those inputs.
import { KilnError, formatShape } from '../errors.js';
import { Tensor } from '../tensor.js';

/** What fit / evaluate / predict take as x: a tensor, or tensors by the model's input names (as Keras takes a dict). */
export type ModelInputs = Tensor | Readonly<Record<string, Tensor>>;

/** Checks that x is a tensor, or a non-empty object whose every value is a tensor (before counting or slicing it). */
export function checkInputsForm(x: unknown, what = 'x'): asserts x is ModelInputs {
  if (x instanceof Tensor) return;
  const values = x !== null && typeof x === 'object' ? Object.entries(x) : [];
  const bad = values.find(([, v]) => !(v instanceof Tensor));
  if (values.length === 0 || bad) {
    throw new KilnError('INVALID_ARGUMENT', `${what} must be a tensor, or tensors by input name${bad ? `; ${what}.${bad[0]} is not a tensor` : ''}`);
  }
}

/**
 * The error for a model input whose batch is not its first axis: a dimension named as the first
 * input's batch at another axis (PyTorch's h0 [layers·directions, batch, hidden]). Kiln feeds, slices
 * and batches every input along axis 0, so such a file is refused with the export that works.
 */
export function batchNotFirst(inputs: readonly { name: string; shape: readonly (number | string | null)[] | null }[], file?: string): KilnError | undefined {
  const batch = inputs[0]?.shape?.[0];
  if (typeof batch !== 'string') return undefined;
  for (const input of inputs.slice(1)) {
    const axis = (input.shape ?? []).indexOf(batch);
    if (axis <= 0 || input.shape![0] === batch) continue;
    return new KilnError(
      'INVALID_SHAPE',
      `${file === undefined ? 'the model' : `'${file}'`}: input '${input.name}' has shape ${formatShape(input.shape!)}: its batch ('${batch}', the batch of '${inputs[0]!.name}') is axis ${axis}, and Kiln feeds every input batch first (the examples of each input along axis 0): take it batch first in forward and move the axis there (for an LSTM's h0 [layers·directions, batch, hidden]: pass [batch, layers·directions, hidden] and use h0.transpose(0, 1).contiguous()), then export again`,
    );
  }
  return undefined;
}

/**
 * Checks an object of inputs holds a tensor under each of `names`: a missing name is reported with the
 * model's names (and the keys it has no input for, the likely misspellings), a value that is not a
 * tensor by its key. Other keys are left unread, as Hugging Face's Trainer drops the columns a model's
 * forward does not take: one set of arrays (input_ids, attention_mask, token_type_ids) feeds a BERT
 * teacher and a DistilBERT student alike.
 */
export function checkInputNames(x: object, names: readonly string[], what: string): asserts x is Readonly<Record<string, Tensor>> {
  const given = x as Record<string, unknown>;
  const missing = names.filter((k) => !(k in given));
  const unknown = Object.keys(given).filter((k) => !names.includes(k));
  if (missing.length) {
    throw new KilnError('INVALID_ARGUMENT', `${what} must hold a tensor for each of the model's inputs (${names.join(', ')})${missing.length ? `; missing ${missing.join(', ')}` : ''}${unknown.length ? `; the model has no input ${unknown.join(', ')}` : ''}`);
  }
  for (const k of names) if (!(given[k] instanceof Tensor)) throw new KilnError('INVALID_ARGUMENT', `${what}.${k} must be a tensor`);
}

/** x with only the tensors of the given input names (a tensor stays as it is): what is counted, sliced and fed. */
export function inputsNamed(x: ModelInputs, names: readonly string[]): ModelInputs {
  return x instanceof Tensor ? x : Object.fromEntries(names.map((n) => [n, x[n]!]));
}

/** One input's tensor given by name (`{input: t}`) is that tensor, as a model of one input takes it; anything else as it is. */
export function singleInput(x: ModelInputs): ModelInputs {
  if (x instanceof Tensor) return x;
  const values = Object.values(x);
  return values.length === 1 ? values[0]! : x;
}

/** Number of examples in x: its rows (every tensor of an object of inputs has as many; fit checks that). */
export function examplesIn(x: ModelInputs): number {
  const first: unknown = x instanceof Tensor ? x : Object.values(x ?? {})[0];
  return first instanceof Tensor ? (first.shape[0] ?? 0) : 0;
}

/** Rows [start, end) of x, of every input for an object of inputs. */
export function sliceInputs(x: ModelInputs, start: number, end: number): ModelInputs {
  return x instanceof Tensor ? x.slice(start, end) : Object.fromEntries(Object.entries(x).map(([name, t]) => [name, t.slice(start, end)]));
}

/** The rows at `indices` of x, of every input for an object of inputs (a batch order applied to all). */
export function selectRows(x: ModelInputs, indices: ArrayLike<number>): ModelInputs {
  return x instanceof Tensor ? x.gather(indices) : Object.fromEntries(Object.entries(x).map(([name, t]) => [name, t.gather(indices)]));
}

/** The same rows of every data input, by step-graph input name; `primary` is the first input's. */
export class InputRows {
  constructor(
    /** Every input's tensor by the name the step graphs feed it under. */
    readonly feeds: Readonly<Record<string, Tensor>>,
    /** The step name of the first data input (images, vectors or token ids). */
    readonly primaryName: string,
  ) {
    const n = this.primary.shape[0];
    for (const [name, t] of Object.entries(feeds)) {
      if (t.shape[0] !== n) throw new KilnError('INVALID_DATA', `the inputs must have as many examples each: '${primaryName}' has ${n}, '${name}' has ${t.shape[0]}`);
    }
  }

  /** The first data input's tensor. */
  get primary(): Tensor {
    return this.feeds[this.primaryName]!;
  }

  /** Number of examples (rows). */
  get n(): number {
    return this.primary.shape[0]!;
  }

  /** Whether the model has data inputs beside the first. */
  get several(): boolean {
    return Object.keys(this.feeds).length > 1;
  }

  /** Rows [start, end) of every input. */
  slice(start: number, end: number): InputRows {
    return this.map((t) => t.slice(start, end));
  }

  /** The rows at `indices` of every input, in that order. */
  gather(indices: ArrayLike<number>): InputRows {
    return this.map((t) => t.gather(indices));
  }

  /** The same rows with the first input replaced (augmented images). */
  withPrimary(primary: Tensor): InputRows {
    return new InputRows({ ...this.feeds, [this.primaryName]: primary }, this.primaryName);
  }

  private map(f: (t: Tensor) => Tensor): InputRows {
    return new InputRows(Object.fromEntries(Object.entries(this.feeds).map(([k, t]) => [k, f(t)])), this.primaryName);
  }
}
