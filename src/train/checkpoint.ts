// Owns training checkpoints: the file format that lets fit() continue exactly where it stopped, and
// the check that a checkpoint fits the optimizer it resumes into.
import { platform } from '#platform';
import { KilnError } from '../errors.js';
import type { Random } from '../random.js';
import { Tensor } from '../tensor.js';

/**
 * Everything needed to continue training exactly where it stopped: all weights, the optimizer's flat
 * slots, the epoch and step reached, and the shuffling RNG's state.
 * File layout: 8-byte magic, 4-byte header length, JSON header, then raw float32 data.
 */
export interface TrainingCheckpoint {
  epoch: number;
  step: number;
  rngState: number[];
  optimizer: { name: string; config: Record<string, unknown> };
  weights: Map<string, Tensor<'float32'>>;
  slots: Map<string, Tensor<'float32'>>;
}

const MAGIC = 'KILNCKP1';

/** A checkpoint as bytes (the file saveCheckpoint writes; training packages carry one too). */
export function encodeCheckpoint(c: TrainingCheckpoint): Uint8Array {
  const entries: { group: 'weights' | 'slots'; name: string; shape: number[]; offset: number; length: number }[] = [];
  let offset = 0;
  const blobs: Float32Array[] = [];
  for (const [group, map] of [['weights', c.weights], ['slots', c.slots]] as const) {
    for (const [name, t] of map) {
      entries.push({ group, name, shape: [...t.shape], offset, length: t.size });
      blobs.push(t.data);
      offset += t.size;
    }
  }
  const header = new TextEncoder().encode(JSON.stringify({ epoch: c.epoch, step: c.step, rngState: c.rngState, optimizer: c.optimizer, tensors: entries }));
  const headerPad = (4 - ((12 + header.length) % 4)) % 4;
  const out = new Uint8Array(12 + header.length + headerPad + offset * 4);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length + headerPad, true);
  out.set(header, 12);
  out.fill(0x20, 12 + header.length, 12 + header.length + headerPad);
  const data = new Float32Array(out.buffer, 12 + header.length + headerPad, offset);
  let k = 0;
  for (const b of blobs) {
    data.set(b, k);
    k += b.length;
  }
  return out;
}

export async function saveCheckpoint(file: string, c: TrainingCheckpoint): Promise<void> {
  await platform.writeFileAtomic(file, encodeCheckpoint(c));
}

export async function loadCheckpoint(file: string): Promise<TrainingCheckpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await platform.readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new KilnError(e.code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_ERROR', `cannot read checkpoint '${file}': ${e.message}`);
  }
  return decodeCheckpoint(bytes, file);
}

/** Reads checkpoint bytes; `file` names them in messages. */
export function decodeCheckpoint(bytes: Uint8Array, file: string): TrainingCheckpoint {
  const magic = String.fromCharCode(...bytes.subarray(0, 8));
  if (bytes.length < 12 || magic !== MAGIC) {
    throw new KilnError('CORRUPT_FILE', `'${file}' is not a Kiln training checkpoint (expected magic ${MAGIC}, found ${JSON.stringify(magic)})`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  let header: { epoch: number; step: number; rngState: number[]; optimizer: TrainingCheckpoint['optimizer']; tensors: { group: string; name: string; shape: number[]; offset: number; length: number }[] };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)));
  } catch {
    throw new KilnError('CORRUPT_FILE', `checkpoint '${file}' has a damaged header`);
  }
  const dataStart = 12 + headerLength;
  const total = header.tensors.reduce((n, t) => n + t.length, 0);
  if (bytes.length !== dataStart + total * 4) {
    throw new KilnError('CORRUPT_FILE', `checkpoint '${file}' should hold ${dataStart + total * 4} bytes, has ${bytes.length} (truncated?)`);
  }
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + dataStart, bytes.byteOffset + bytes.length));
  const weights = new Map<string, Tensor<'float32'>>();
  const slots = new Map<string, Tensor<'float32'>>();
  for (const t of header.tensors) {
    const tensor = new Tensor(data.slice(t.offset, t.offset + t.length), t.shape, 'float32');
    (t.group === 'weights' ? weights : slots).set(t.name, tensor);
  }
  return { epoch: header.epoch, step: header.step, rngState: header.rngState, optimizer: header.optimizer, weights, slots };
}

/** Reads a checkpoint fit() resumes from; one written by another optimizer has slots this one cannot use. */
async function loadCheckpointToResume(file: string, optimizerName: string): Promise<TrainingCheckpoint> {
  const ckpt = await loadCheckpoint(file);
  if (ckpt.optimizer.name !== optimizerName) {
    throw new KilnError('INVALID_ARGUMENT', `checkpoint '${file}' was written with optimizer ${ckpt.optimizer.name}, the model is compiled with ${optimizerName}`);
  }
  return ckpt;
}

/** Where fit() starts its epochs: the epoch and step reached, and the optimizer slots to restore (none: keep the model's). */
export interface ResumePoint {
  startEpoch: number;
  step: number;
  slots?: Map<string, Tensor<'float32'>>;
}

/**
 * Where fit() starts. With `resumeFrom`, the checkpoint's weights go into the model and its RNG state
 * into `model.rng`, so the run continues exactly where it stopped; without it, epoch 0 at the model's step.
 */
export async function resumePoint(
  resumeFrom: string | undefined,
  optimizerName: string,
  model: { step: number; rng: Random; setWeights(weights: Map<string, Tensor>): void },
): Promise<ResumePoint> {
  if (!resumeFrom) return { startEpoch: 0, step: model.step };
  const ckpt = await loadCheckpointToResume(resumeFrom, optimizerName);
  model.setWeights(ckpt.weights);
  model.rng.setState(ckpt.rngState);
  return { startEpoch: ckpt.epoch, step: ckpt.step, slots: ckpt.slots };
}
