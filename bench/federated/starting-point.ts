/*
 * Owns the hand-off of Kiln's starting model from simulate.ts to the PyTorch reference (reference.py),
 * so both sides of a comparison start from the same weights: a folder holding `weights.json` (each
 * trainable weight's name, shape and .npy file, in the model's parameter order, and Kiln's logits on
 * the first test images, which the reference reproduces before training to prove the mapping) and one
 * NumPy .npy per tensor, which the reference reads with numpy alone (no ONNX runtime).
 *
 * Kiln's layouts, which the reference maps to torch's: Conv2D kernels [filters, channels, kH, kW] (as
 * torch's Conv2d), Dense kernels [in, out] (torch's Linear is [out, in]), and Flatten orders features
 * (channel, row, column), as torch's on NCHW, because Kiln's graph runs images channel-first.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readBytes } from '../../src/data/files.js';
import { npy, saveNpy } from '../../src/data/npy.js';
import { KilnError } from '../../src/errors.js';
import type { ModelWeights } from '../../src/federated/weights.js';
import { Tensor } from '../../src/tensor.js';

/** The index file's name inside the folder. */
export const INDEX_FILE = 'weights.json';
/** The index's format tag; the reader refuses anything else. */
export const FORMAT = 'kiln-starting-point/1';

/** A starting model: its weights, and its logits on the first `logits.shape[0]` test images. */
export interface StartingPoint {
  /** The trainable weights, in the model's parameter order. */
  weights: ModelWeights;
  /** The model's outputs (logits) on the first test images, [N, classes]. */
  logits: Tensor;
}

interface IndexEntry {
  name: string;
  dims: number[];
  file: string;
}

/** A file name for a weight: its position and its name with anything but letters, digits and _ made '-'. */
function fileFor(i: number, name: string): string {
  return `${String(i).padStart(2, '0')}-${name.replace(/[^A-Za-z0-9_]+/g, '-')}.npy`;
}

/** Writes `point` into the folder `dir` (created if missing). */
export async function saveStartingPoint(dir: string, point: StartingPoint): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries: IndexEntry[] = point.weights.map((w, i) => ({ name: w.name, dims: [...w.dims], file: fileFor(i, w.name) }));
  for (const [i, w] of point.weights.entries()) await saveNpy(join(dir, entries[i]!.file), new Tensor(w.data, [...w.dims], 'float32'));
  await saveNpy(join(dir, 'logits.npy'), point.logits);
  const index = {
    format: FORMAT,
    layouts: { conv2dKernel: '[filters, channels, kH, kW]', denseKernel: '[in, out]', flatten: '(channel, row, column)' },
    weights: entries,
    logits: { file: 'logits.npy', dims: [...point.logits.shape], inputs: 'the first test images, pixels / 255' },
  };
  await writeFile(join(dir, INDEX_FILE), JSON.stringify(index, null, 1));
}

/** Reads a folder written by `saveStartingPoint`, checking every .npy against the index's shape. */
export async function loadStartingPoint(dir: string): Promise<StartingPoint> {
  const indexPath = join(dir, INDEX_FILE);
  let index: { format?: unknown; weights?: unknown; logits?: { file?: unknown } };
  try {
    index = JSON.parse(new TextDecoder().decode(await readBytes(indexPath, 'starting point index')));
  } catch (cause) {
    if (cause instanceof KilnError) throw cause;
    throw new KilnError('INVALID_DATA', `${indexPath}: not JSON (${(cause as Error).message})`, { cause });
  }
  if (index?.format !== FORMAT) throw new KilnError('INVALID_DATA', `${indexPath}: format should be '${FORMAT}', got ${JSON.stringify(index?.format)}`);
  const entries = index.weights;
  if (!Array.isArray(entries) || entries.some((e) => typeof e?.name !== 'string' || typeof e?.file !== 'string' || !Array.isArray(e?.dims))) {
    throw new KilnError('INVALID_DATA', `${indexPath}: "weights" should list {name, dims, file}`);
  }
  const weights: ModelWeights = [];
  for (const e of entries as IndexEntry[]) {
    const t = await npy(join(dir, e.file));
    if (t.dtype !== 'float32' || t.shape.length !== e.dims.length || t.shape.some((d, k) => d !== e.dims[k])) {
      throw new KilnError('INVALID_SHAPE', `${join(dir, e.file)}: weight '${e.name}' should be float32 of shape [${e.dims.join(', ')}], got ${t.dtype} [${t.shape.join(', ')}]`);
    }
    weights.push({ name: e.name, dims: [...e.dims], data: t.data as Float32Array });
  }
  if (typeof index.logits?.file !== 'string') throw new KilnError('INVALID_DATA', `${indexPath}: "logits" should name its .npy file`);
  return { weights, logits: await npy(join(dir, index.logits.file)) };
}
