/**
 * What `kiln train` and `kiln evaluate` read with --dataset: an image set (a name or its files) or a
 * directory of NumPy arrays (data/arrays.ts: any examples, token ids included, and one array per input
 * for a model of several), as the same labeled splits.
 */
import { arrayDataset, arrayTestSplit, isArrayDataset, type LabeledArrays } from '../data/arrays.js';
import { loadDataset } from '../data/by-name.js';
import { singleInput } from '../model/input-rows.js';
import type { Tensor } from '../tensor.js';
import { readOnnxFile } from '../model/read-model.js';
import { symbolicDimensions } from '../model/imported-graph.js';
import type { OnnxModel } from '../model/onnx-model.js';
import type { GraphModel, GraphModelOptions } from '../train/graph-model.js';
import { modelFromOnnx, sizedByData } from '../train/load.js';
import type { Sequential } from '../train/sequential.js';

/** One split: its examples (one tensor, or tensors by input name) and class labels. */
export interface LabeledSplit {
  x: Tensor | Record<string, Tensor>;
  y: Tensor;
}

/** The two splits of a --dataset and its class names. */
export interface Splits {
  /** What the examples are: images from an image set, or NumPy arrays. */
  kind: 'images' | 'arrays';
  train: LabeledSplit;
  test: LabeledSplit;
  classNames: string[];
}

/** One input's array given by name (x_train.input.npy) is that array: fed like x_train.npy, to any model of one input. */
function unwrap(split: LabeledArrays): LabeledSplit {
  return { x: singleInput(split.x), y: split.y };
}

export async function loadSplits(spec: string): Promise<Splits> {
  if (isArrayDataset(spec)) {
    const data = await arrayDataset(spec);
    return { kind: 'arrays', train: unwrap(data.train), test: unwrap(data.test), classNames: data.classNames };
  }
  const data = await loadDataset(spec);
  return { kind: 'images', train: { x: data.train.images, y: data.train.labels }, test: { x: data.test.images, y: data.test.labels }, classNames: data.classNames };
}

/** The test split alone (kiln evaluate): a folder of NumPy arrays needs no training arrays. */
export async function loadTestSplit(spec: string): Promise<{ kind: Splits['kind']; test: LabeledSplit; classNames: string[] }> {
  if (isArrayDataset(spec)) {
    const data = await arrayTestSplit(spec);
    return { kind: 'arrays', test: unwrap(data.test), classNames: data.classNames };
  }
  const data = await loadDataset(spec);
  return { kind: 'images', test: { x: data.test.images, y: data.test.labels }, classNames: data.classNames };
}

/** Number of examples of a split. */
export function splitSize(split: LabeledSplit): number {
  return split.y.shape[0]!;
}

/**
 * The model a command fine-tunes on --dataset (kiln prune, kiln optimize), and the data set when it
 * had to be read first: an imported file's free input dimensions (a sequence length) take the data's
 * sizes when --dimension does not give them. Otherwise the model loads first, so that what stops it
 * is said before a large data set loads.
 */
export async function modelForData(file: string, options: GraphModelOptions, dataset: string): Promise<{ model: Sequential | GraphModel | OnnxModel; data?: Splits }> {
  const { bytes, proto } = await readOnnxFile(file);
  if (options.dimensions || symbolicDimensions(proto).free.size === 0) {
    return { model: await modelFromOnnx(bytes, proto, file, options) };
  }
  const data = await loadSplits(dataset);
  return { model: await modelFromOnnx(bytes, proto, file, sizedByData(proto, options, data.train.x, file)), data };
}
