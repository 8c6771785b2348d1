/**
 * What `kiln train` and `kiln evaluate` read with --dataset: an image set (a name or its files) or a
 * directory of NumPy arrays (data/arrays.ts: any examples, token ids included, and one array per input
 * for a model of several), as the same two labeled splits.
 */
import { arrayDataset, isArrayDataset } from '../data/arrays.js';
import { loadDataset } from '../data/by-name.js';
import type { Tensor } from '../tensor.js';

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

export async function loadSplits(spec: string): Promise<Splits> {
  if (isArrayDataset(spec)) return { kind: 'arrays', ...(await arrayDataset(spec)) };
  const data = await loadDataset(spec);
  return { kind: 'images', train: { x: data.train.images, y: data.train.labels }, test: { x: data.test.images, y: data.test.labels }, classNames: data.classNames };
}

/** Number of examples of a split. */
export function splitSize(split: LabeledSplit): number {
  return split.y.shape[0]!;
}
