import { KilnError, formatShape } from '../errors.js';
import type { ModelProto } from '../graph/proto.js';
import { Tensor } from '../tensor.js';
import { dataFactor, definedPreprocessing, isPixelScale, PREPROCESSING_METADATA_KEY, type Preprocessing } from './imported-graph.js';
import { rescalingAtInput, type InputRescaling } from './input-rescaling.js';
import { batchNotFirst, checkInputNames, type ModelInputs } from './input-rows.js';
import { idOutOfRange, sharedDimensionMismatch } from './input-values.js';
import type { TensorDescription } from './onnx-model.js';

/*
 * Kiln's data meeting a model it runs as a plain ONNX file (quantization calibration, bench,
 * distillation teachers): images [N, H, W, C] in the layout the model's input wants, then the model's
 * declared normalization. A GraphModel does the same inside its graphs (model/imported-graph.ts); this
 * is the data-pipeline form for sessions that run the file as it is. A file with several inputs (a
 * text model's input_ids and attention_mask) is fed an object of tensors by its input names.
 */

/**
 * The preprocessing a model declares in its metadata (layout, scale, mean/std), or none; without a
 * declared scale, scale 1 (raw pixels) for a model that rescales its own input (input-rescaling.ts).
 */
export function declaredPreprocessing(proto: ModelProto, file = 'the model'): Preprocessing {
  const metadata = Object.fromEntries((proto.metadataProps ?? []).map((m) => [m.key ?? '', m.value ?? '']));
  return withRecognizedScale(parsePreprocessing(metadata[PREPROCESSING_METADATA_KEY], file), rescalingAtInput(proto), metadata);
}

/**
 * The metadata key a Kiln training run leaves in a saved model (train/model.ts' TRAINING_METADATA_KEY;
 * named here, a layer below it).
 */
const KILN_TRAINED_KEY = 'kiln.training';

/**
 * A declared preprocessing without a scale, for a model that rescales its own pixels: scale 1 (raw
 * pixels). Not for a file Kiln trained and saved without a scale: Kiln before the scale existed fed
 * such a model [0, 1] data and trained it so, and it goes on being fed what it learnt from (every file
 * saved since declares its scale).
 */
export function withRecognizedScale(declared: Preprocessing, rescaling: InputRescaling | undefined, metadata: Readonly<Record<string, string>>): Preprocessing {
  return declared.scale === undefined && rescaling && !(KILN_TRAINED_KEY in metadata) ? { ...declared, scale: 1 } : declared;
}

/** Whether a model is fed raw 0–255 pixels because its graph rescales them and it declares no scale (what `kiln info` says). */
export function scaleRecognized(description: { inputRescaling?: InputRescaling; metadata: Readonly<Record<string, string>> }): boolean {
  const declared = parsePreprocessing(description.metadata[PREPROCESSING_METADATA_KEY]);
  return withRecognizedScale(declared, description.inputRescaling, description.metadata) !== declared;
}

/** The preprocessing in a model's metadata entry (its JSON text), or none when there is no entry. */
export function parsePreprocessing(entry: string | undefined, file = 'the model'): Preprocessing {
  if (!entry) return {};
  let p: unknown;
  try {
    p = JSON.parse(entry);
  } catch (err) {
    throw new KilnError('CORRUPT_FILE', `${file}: metadata '${PREPROCESSING_METADATA_KEY}' is not valid JSON (${(err as Error).message})`);
  }
  if (!p || typeof p !== 'object' || Array.isArray(p)) throw new KilnError('CORRUPT_FILE', `${file}: metadata '${PREPROCESSING_METADATA_KEY}' should be an object {layout, scale, mean, std}, found ${entry.slice(0, 80)}`);
  const { layout, scale, mean, std } = p as Preprocessing;
  if (scale !== undefined && !isPixelScale(scale)) {
    throw new KilnError('CORRUPT_FILE', `${file}: metadata '${PREPROCESSING_METADATA_KEY}' has scale ${JSON.stringify(scale)}, expected a number above 0`);
  }
  return definedPreprocessing({ layout, scale, mean, std });
}

/**
 * Images `[N, H, W, C]` (or volumes `[N, D, H, W, C]`) in the layout a model's input wants: as they
 * are (Kiln models, Keras exports), transposed to `[N, C, H, W]` (PyTorch exports), or flattened to `[N, H·W·C]` (MLPs) — the declared
 * layout when there is one, else whichever fits — then scaled (×255 for a model that takes raw pixels)
 * and normalized by the declared per-channel mean/std.
 */
export function adaptInput(x: Tensor, input: TensorDescription, preprocessing: Preprocessing = {}): Tensor {
  const laidOut = layoutFor(x, input, preprocessing);
  if (!preprocessing.mean && !preprocessing.std && dataFactor(preprocessing.scale) === 1) return laidOut;
  // The channel axis of what the model takes: 1 for a channels-first model, else the last.
  const channelsFirst = preprocessing.layout === 'nchw' || (laidOut !== x && laidOut.rank >= 4);
  return normalize(laidOut as Tensor<'float32'>, channelsFirst ? 1 : laidOut.rank - 1, preprocessing);
}

function layoutFor(x: Tensor, input: TensorDescription, preprocessing: Preprocessing): Tensor {
  const want = input.shape;
  const rest = x.shape.slice(1);
  const fits = (dims: readonly number[]) => want !== null && want.length === dims.length + 1 && want.slice(1).every((d, i) => typeof d !== 'number' || d === dims[i]);
  // Data already in the model's shape goes as it is; a declared channels-last model is never transposed.
  if (want === null || fits(rest) || preprocessing.layout === 'nhwc') return x;
  // Token ids have no layout to change: the shape is right or it is not.
  if (INTEGER_TYPES.has(input.dtype)) throw new KilnError('INVALID_SHAPE', `the model's input '${input.name}' has shape ${formatShape(want)}; the data is ${formatShape([null, ...rest])}`);
  // Images [H, W, C] and volumes [D, H, W, C] to a channels-first model.
  if (rest.length === 3 || rest.length === 4) {
    if (fits([rest.at(-1)!, ...rest.slice(0, -1)])) return toChannelsFirst(x as Tensor<'float32'>);
  }
  // A single-channel image to a model that leaves the channel axis out ([H, W, 1] → [H, W]), and rows
  // [H, W] to a single-channel model ([1, H, W]).
  if (rest.length === 3 && rest[2] === 1 && fits(rest.slice(0, 2))) return x.reshape([x.shape[0]!, rest[0]!, rest[1]!]);
  if (rest.length === 2 && fits([1, ...rest])) return x.reshape([x.shape[0]!, 1, ...rest]);
  const rowSize = rest.reduce((a, b) => a * b, 1);
  if (fits([rowSize])) return x.reshape([x.shape[0]!, rowSize]);
  throw new KilnError(
    'INVALID_SHAPE',
    `the model's input '${input.name}' has shape ${formatShape(want)}; the data is ${formatShape([null, ...rest])}, which fits it neither as is, channels-first nor flattened (--layout nchw|nhwc says which layout the model takes)`,
  );
}

/** [N, ..., C] → [N, C, ...]: each example's positions (H·W, or D·H·W) by channel. */
function toChannelsFirst(x: Tensor<'float32'>): Tensor<'float32'> {
  const [n, ...rest] = x.shape as number[];
  const c = rest.at(-1)!;
  const positions = rest.slice(0, -1).reduce((a, b) => a * b, 1);
  const src = x.data;
  const out = new Float32Array(src.length);
  for (let i = 0; i < n!; i++) {
    const base = i * positions * c;
    for (let p = 0; p < positions; p++) for (let ch = 0; ch < c; ch++) out[base + ch * positions + p] = src[base + p * c + ch]!;
  }
  return new Tensor(out, [n!, c, ...rest.slice(0, -1)], 'float32');
}

function normalize(x: Tensor<'float32'>, axis: number, { scale, mean, std }: Preprocessing): Tensor<'float32'> {
  const channels = x.shape[axis]!;
  for (const [flag, v] of [['mean', mean], ['std', std]] as const) {
    if (v && v.length !== 1 && v.length !== channels) {
      throw new KilnError('INVALID_ARGUMENT', `--${flag} has ${v.length} values; the model's input has ${channels} channels along axis ${axis} of ${formatShape(x.shape)} (give ${channels} values, or one for all)`);
    }
  }
  const inner = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const at = (v: number[] | undefined, c: number, fallback: number) => (v ? (v.length === 1 ? v[0]! : v[c]!) : fallback);
  const factor = dataFactor(scale);
  const out = new Float32Array(x.size);
  const src = x.data;
  for (let i = 0; i < src.length; i++) {
    const c = Math.floor(i / inner) % channels;
    out[i] = (src[i]! * factor - at(mean, c, 0)) / at(std, c, 1);
  }
  return new Tensor(out, x.shape, 'float32');
}

const INTEGER_TYPES: ReadonlySet<string> = new Set(['int64', 'int32', 'int8', 'uint8', 'bool']);

/**
 * Checks x against a model file's inputs before any run or slice: a tensor for a file of one input, or
 * tensors by its input names (every name present, no other, as many rows each), integer inputs (token
 * ids, masks) of the declared type. Float inputs are laid out and converted by adaptInput.
 */
export function checkFileInputs(x: unknown, inputs: readonly TensorDescription[], what = 'x'): asserts x is ModelInputs {
  const names = inputs.map((i) => i.name);
  const typed = (t: Tensor, input: TensorDescription, label: string) => {
    if (INTEGER_TYPES.has(input.dtype) && t.dtype !== input.dtype) throw new KilnError('INVALID_ARGUMENT', `${label} must be ${input.dtype}, as the model's input '${input.name}' is; got ${t.dtype}`);
  };
  if (x instanceof Tensor) {
    if (inputs.length !== 1) throw new KilnError('INVALID_ARGUMENT', `the model has ${inputs.length} inputs (${names.join(', ')}): give ${what} as an object of tensors by those names`);
    typed(x, inputs[0]!, what);
    const bad = inputs[0]!.ids && x.dtype === inputs[0]!.dtype ? idOutOfRange(x, inputs[0]!.ids, what) : undefined;
    if (bad) throw bad;
    return;
  }
  if (x === null || typeof x !== 'object') throw new KilnError('INVALID_ARGUMENT', `${what} must be a tensor, or tensors by the model's input names (${names.join(', ')}); got ${x === null ? 'null' : typeof x}`);
  checkInputNames(x, names, what);
  const notFirst = batchNotFirst(inputs);
  if (notFirst) throw notFirst;
  const rows = x[names[0]!]!.shape[0];
  for (const input of inputs) {
    const t = x[input.name]!;
    if (t.shape[0] !== rows) throw new KilnError('INVALID_DATA', `${what}.${input.name} has ${t.shape[0]} examples, ${what}.${names[0]} ${rows}: they must match`);
    typed(t, input, `${what}.${input.name}`);
  }
  for (const input of inputs) {
    const bad = input.ids && x[input.name]!.dtype === input.dtype ? idOutOfRange(x[input.name]!, input.ids, `${what}.${input.name}`) : undefined;
    if (bad) throw bad;
  }
}

/**
 * x as a model file's feeds: one tensor for a file of one input (laid out and normalized by
 * adaptInput), or, for a file of several, tensors by its input names (the first adapted, the others,
 * such as an attention mask, fed as they are), checked by checkFileInputs.
 */
export function fileFeeds(x: ModelInputs, inputs: readonly TensorDescription[], preprocessing: Preprocessing = {}, what = 'x'): Record<string, Tensor> {
  checkFileInputs(x, inputs, what);
  if (x instanceof Tensor) return { [inputs[0]!.name]: adaptInput(x, inputs[0]!, preprocessing) };
  const feeds = Object.fromEntries(inputs.map((input, k) => [input.name, k === 0 ? adaptInput(x[input.name]!, input, preprocessing) : x[input.name]!]));
  // Named dimensions compared as fed, after the first input's layout is the model's.
  const mismatch = sharedDimensionMismatch(new Map(inputs.map((i) => [i.name, i.shape])), feeds, (name) => `${what}.${name}`);
  if (mismatch) throw mismatch;
  return feeds;
}
