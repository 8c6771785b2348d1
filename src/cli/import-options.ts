import { KilnError } from '../errors.js';
import { existsSync } from 'node:fs';
import { isArrayDataset } from '../data/arrays.js';
import { DATASET_NAMES } from '../data/by-name.js';
import { Tensor } from '../tensor.js';
import { INPUT_NAME, Model } from '../model/model.js';
import { OnnxModel } from '../model/onnx-model.js';
import { isPixelScale } from '../model/imported-graph.js';
import type { GraphModelOptions } from '../train/graph-model.js';
import type { Command } from './command.js';

/** The options of commands that read ONNX models other tools exported: input layout and normalization, transfer learning. */
export const IMPORT_OPTIONS: Command['options'] = [
  { name: 'layout', type: 'string', description: "an imported model's input layout: nchw (channels first, PyTorch) or nhwc; default: recognized from the data" },
  { name: 'scale', type: 'string', description: "what an imported model takes per 0–255 pixel value: 1/255 (pixels in [0, 1], the default) or 1 (raw pixels; recognized from a Keras Rescaling layer at the input); stored in the saved model" },
  { name: 'mean', type: 'string', description: "per-channel mean subtracted from the scaled data before an imported model (e.g. 0.485,0.456,0.406); stored in the saved model" },
  { name: 'std', type: 'string', description: 'per-channel standard deviation the data is divided by after --mean (e.g. 0.229,0.224,0.225)' },
  { name: 'train-only', type: 'string', description: "train only the imported model's weights whose names match (e.g. 'fc.*'); the rest keep their values" },
  { name: 'num-classes', type: 'number', integer: true, min: 1, description: "give an imported classifier a new head with N classes (its last Gemm/MatMul and bias re-initialized)" },
  { name: 'dimension', type: 'string', description: "sizes for an imported model's free input dimensions, e.g. sequence=128 (a Hugging Face export's [batch, sequence]); default: the arrays' sizes" },
  { name: 'model-output', type: 'string', description: "which output of an imported model with several (a forward returning (logits, features)) is trained and evaluated; default: the first; stored in the saved model" },
];

/** --dimension sequence=128[,name=n]: sizes by dimension name. */
function dimensionSizes(v: unknown): Record<string, number> | undefined {
  if (v === undefined) return undefined;
  const sizes: Record<string, number> = {};
  for (const part of String(v).split(',')) {
    const m = /^\s*([^=\s]+)\s*=\s*(\d+)\s*$/.exec(part);
    if (!m || Number(m[2]) < 1) throw new KilnError('INVALID_ARGUMENT', `--dimension takes name=size pairs (e.g. sequence=128, sizes from 1), got '${String(v)}'`);
    sizes[m[1]!] = Number(m[2]);
  }
  return sizes;
}

function numbers(v: unknown, flag: string): number[] | undefined {
  if (v === undefined) return undefined;
  const parts = String(v).split(',').map((p) => p.trim());
  const values = parts.map(Number);
  if (parts.some((p) => p === '') || values.some((x) => !Number.isFinite(x))) {
    throw new KilnError('INVALID_ARGUMENT', `--${flag} takes comma-separated numbers (one per channel), got '${String(v)}'`);
  }
  return values;
}

/** --scale 1/255 or 1 (a number, or a fraction a/b). */
function pixelScale(v: unknown): number {
  const m = /^\s*([0-9.eE+-]+)\s*(?:\/\s*([0-9.eE+-]+)\s*)?$/.exec(String(v));
  const value = m ? Number(m[1]) / (m[2] === undefined ? 1 : Number(m[2])) : NaN;
  if (!isPixelScale(value)) {
    throw new KilnError('INVALID_ARGUMENT', `--scale takes a number above 0 or a fraction (1/255 for pixels in [0, 1], 1 for raw 0–255 pixels), got '${String(v)}'`);
  }
  return value;
}

export function importOptions(options: Record<string, unknown>, seed?: number): GraphModelOptions {
  const layout = options.layout;
  if (layout !== undefined && layout !== 'nchw' && layout !== 'nhwc') throw new KilnError('INVALID_ARGUMENT', `--layout must be nchw or nhwc, got '${String(layout)}'`);
  return {
    ...(layout !== undefined ? { layout } : {}),
    ...(options.scale !== undefined ? { scale: pixelScale(options.scale) } : {}),
    ...(options.mean !== undefined ? { mean: numbers(options.mean, 'mean') } : {}),
    ...(options.std !== undefined ? { std: numbers(options.std, 'std') } : {}),
    ...(options.dimension !== undefined ? { dimensions: dimensionSizes(options.dimension) } : {}),
    ...(options['model-output'] !== undefined ? { output: String(options['model-output']) } : {}),
    ...(seed !== undefined ? { seed } : {}),
  };
}

/** A model's data input names: a Kiln or imported model's (Model.inputNames), a plain ONNX file's. */
export function inputNamesOf(model: unknown): string[] {
  if (model instanceof Model) return model.inputNames;
  if (model instanceof OnnxModel) return model.inputs.map((i) => i.name);
  return [INPUT_NAME];
}

/**
 * An imported model of several inputs (input_ids and attention_mask) fed one array is refused by name
 * before any work: `x` is what the command would feed from its --dataset (an image set gives one
 * array; a directory of NumPy arrays may give one per input, whose names the model then checks).
 */
export function requireOneInput(model: unknown, file: string, x: unknown): void {
  const names = inputNamesOf(model);
  if (names.length > 1 && x instanceof Tensor) throw oneArrayError(file, names);
}

/**
 * The same check before --dataset is read: an image set (a known name or an existing path that is not
 * a directory of NumPy arrays) gives one array. A --dataset that is neither is left for the loader to name.
 */
export function requireArraysForInputs(model: unknown, file: string, dataset: string): void {
  const names = inputNamesOf(model);
  const imageSet = (DATASET_NAMES as readonly string[]).includes(dataset) || (existsSync(dataset) && !isArrayDataset(dataset));
  if (names.length > 1 && imageSet) throw oneArrayError(file, names);
}

function oneArrayError(file: string, names: string[]): KilnError {
  const arrays = `a directory of NumPy arrays with one file per input (${names.map((n) => `x_train.${n}.npy`).join(', ')}, the same for x_test, and y_train.npy, y_test.npy)`;
  return new KilnError('INVALID_ARGUMENT', `'${file}' takes ${names.length} inputs (${names.join(', ')}) and --dataset gives one array: give ${arrays}, or use the library with x as {${names.join(', ')}}`);
}
