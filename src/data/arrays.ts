/**
 * Data sets of NumPy arrays, named as Keras' `(x_train, y_train), (x_test, y_test)`: a directory with
 * x_train.npy, y_train.npy, x_test.npy and y_test.npy — any examples a model takes (images, vectors,
 * token ids) — or, for a model of several inputs, one x file per input name (x_train.input_ids.npy,
 * x_train.attention_mask.npy, ...). What `kiln train` and `kiln evaluate` read besides image sets.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { KilnError, formatShape } from '../errors.js';
import { Tensor } from '../tensor.js';
import { npy } from './npy.js';

/** One split: its examples (one array, or arrays by input name) and class labels. */
export interface LabeledArrays {
  /** `[N, ...]` examples; tensors by input name for a model of several inputs. */
  x: Tensor | Record<string, Tensor>;
  /** `[N]` class indices, or `[N, T, ...]` for a label per position (a token classifier's); negative labels mark positions to ignore. */
  y: Tensor<'int32'>;
}

/** A data set of NumPy arrays: the two splits and the name of each class index ('0', '1', ...). */
export interface ArrayDataset {
  /** The training split. */
  train: LabeledArrays;
  /** The test split. */
  test: LabeledArrays;
  /** The class indices as names: '0' to the largest label in either split. */
  classNames: string[];
}

/** x files of a split: 'x_train.npy' alone, or 'x_train.<input>.npy' per input. */
function xFiles(files: readonly string[], split: 'train' | 'test'): Map<string | undefined, string> {
  const found = new Map<string | undefined, string>();
  for (const f of files) {
    if (f === `x_${split}.npy`) found.set(undefined, f);
    else if (f.startsWith(`x_${split}.`) && f.endsWith('.npy') && f.length > `x_${split}..npy`.length) found.set(f.slice(`x_${split}.`.length, -'.npy'.length), f);
  }
  return found;
}

/** Whether a directory holds a data set of NumPy arrays (x_train / x_test .npy, or their x_<split>.<input>.npy files). */
export function isArrayDataset(dir: string): boolean {
  try {
    if (!statSync(dir).isDirectory()) return false;
    const files = readdirSync(dir);
    return xFiles(files, 'train').size > 0 || xFiles(files, 'test').size > 0;
  } catch {
    return false;
  }
}

/** One array as a model is fed it: float64 (NumPy's default) as float32, as Keras casts to its float type. */
function asFed(t: Tensor): Tensor {
  return t.dtype === 'float64' ? new Tensor(Float32Array.from(t.data as Float64Array), [...t.shape], 'float32') : t;
}

async function readSplit(dir: string, files: readonly string[], split: 'train' | 'test'): Promise<LabeledArrays> {
  const xs = xFiles(files, split);
  if (xs.size === 0) throw new KilnError('FILE_NOT_FOUND', `${dir}: no x_${split}.npy (or x_${split}.<input>.npy per input)`);
  if (xs.has(undefined) && xs.size > 1) {
    throw new KilnError('INVALID_DATA', `${dir}: give x_${split}.npy or one x_${split}.<input>.npy per input, not both (found ${[...xs.values()].join(', ')})`);
  }
  if (!files.includes(`y_${split}.npy`)) throw new KilnError('FILE_NOT_FOUND', `${dir}: y_${split}.npy is missing (the class labels of x_${split})`);
  const labelsFile = path.join(dir, `y_${split}.npy`);
  const raw = await npy(labelsFile);
  if (raw.rank === 0) throw new KilnError('INVALID_SHAPE', `${labelsFile}: class labels must be [N] (or [N, T] for a label per position), got a scalar`);
  const values = Array.from(raw.data as ArrayLike<number | bigint | boolean>, Number);
  // Negative labels mark positions a loss leaves out (Hugging Face's -100): --ignore-class names which.
  const bad = values.findIndex((v) => !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31);
  if (bad >= 0) throw new KilnError('INVALID_DATA', `${labelsFile}: label ${bad} is ${values[bad]}; class labels are integers`);
  const perExample = raw.rank === 1 || (raw.rank === 2 && raw.shape[1] === 1);
  const y = new Tensor(Int32Array.from(values), perExample ? [raw.shape[0]!] : [...raw.shape], 'int32');
  const arrays: Record<string, Tensor> = {};
  for (const [name, file] of xs) {
    const t = asFed(await npy(path.join(dir, file)));
    if (t.shape[0] !== y.shape[0]) throw new KilnError('INVALID_DATA', `${path.join(dir, file)} has ${t.shape[0]} examples, ${labelsFile} ${y.shape[0]} ${perExample ? 'labels' : 'rows of labels'}: they must match`);
    arrays[name ?? ''] = t;
  }
  return { x: xs.has(undefined) ? arrays['']! : arrays, y };
}

function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (cause) {
    throw new KilnError('FILE_NOT_FOUND', `cannot read the data set directory ${dir}: ${(cause as Error).message}`, { cause });
  }
}

/** The class indices as names: '0' to the largest label of the splits (negative ones mark ignored positions, no class). */
function classNamesOf(...splits: LabeledArrays[]): string[] {
  let largest = 0;
  for (const s of splits) for (const v of s.y.data as Int32Array) largest = Math.max(largest, v);
  return Array.from({ length: largest + 1 }, (_, i) => String(i));
}

/** The test split of a directory of NumPy arrays alone (what evaluation reads), with its class names. */
export async function arrayTestSplit(dir: string): Promise<{
  /** The test split. */
  test: LabeledArrays;
  /** The class indices of its labels as names: '0' to the largest. */
  classNames: string[];
}> {
  const test = await readSplit(dir, listFiles(dir), 'test');
  return { test, classNames: classNamesOf(test) };
}

/** Reads a directory of NumPy arrays as a data set; every file, name and count is checked. float64 arrays are fed as float32. */
export async function arrayDataset(dir: string): Promise<ArrayDataset> {
  const files = listFiles(dir);
  const train = await readSplit(dir, files, 'train');
  const test = await readSplit(dir, files, 'test');
  const names = (s: LabeledArrays) => (s.x instanceof Tensor ? '' : Object.keys(s.x).sort().join(', '));
  if (names(train) !== names(test)) {
    throw new KilnError('INVALID_DATA', `${dir}: the splits hold other inputs: train ${names(train) || 'x_train.npy'}, test ${names(test) || 'x_test.npy'}`);
  }
  return { train, test, classNames: classNamesOf(train, test) };
}
