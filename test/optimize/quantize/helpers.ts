/** Shared models, data and checks for the quantization tests. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { embedded } from '../../../src/data/embedded.js';
import type { ImageDataset } from '../../../src/data/types.js';
import { KilnError, type KilnErrorCode } from '../../../src/errors.js';
import { decodeModel } from '../../../src/graph/proto.js';
import { batchNormalization, conv2d, dense, flatten, maxPooling2d } from '../../../src/layers/index.js';
import { Tensor } from '../../../src/tensor.js';
import { sparseCategoricalCrossentropy } from '../../../src/train/losses.js';
import { Sequential, sequential } from '../../../src/train/sequential.js';
import { adam } from '../../../src/train/optimizers.js';

let data: Promise<ImageDataset> | undefined;
/** The Fashion-MNIST subset shipped with Kiln (10,000 training and 2,000 test images). */
export function fashion(): Promise<ImageDataset> {
  data ??= embedded();
  return data;
}

/** conv 8 → pool → conv 16 → pool → dense 32 → dense 10 (logits) on [28, 28, 1]. */
export function smallCnn(seed = 3): Sequential {
  return sequential({
    seed,
    layers: [
      conv2d({ filters: 8, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }),
      maxPooling2d({ poolSize: 2 }),
      conv2d({ filters: 16, kernelSize: 3, activation: 'relu' }),
      maxPooling2d({ poolSize: 2 }),
      flatten(),
      dense({ units: 32, activation: 'relu' }),
      dense({ units: 10 }),
    ],
  });
}

/** A conv without bias followed by batch normalization (folding target), as in the small-VGG preset. */
export function batchNormCnn(seed = 5): Sequential {
  return sequential({
    seed,
    layers: [
      conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, inputShape: [28, 28, 1] }),
      batchNormalization(),
      conv2d({ filters: 8, kernelSize: 3, activation: 'relu' }),
      maxPooling2d({ poolSize: 2 }),
      flatten(),
      dense({ units: 10 }),
    ],
  });
}

/** Trains a model briefly on the first n training images (Adam 3e-3, batch 64). */
export async function trained(model: Sequential, n = 4000, epochs = 1): Promise<Sequential> {
  const d = await fashion();
  model.compile({ optimizer: adam({ learningRate: 3e-3 }), loss: sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
  await model.fit(d.train.images.slice(0, n), d.train.labels.slice(0, n), { epochs, batchSize: 64, verbose: 0 });
  return model;
}

export async function tmpDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-quantize-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Asserts that fn rejects with a KilnError of the code whose message matches. */
export async function rejectsWith(fn: () => Promise<unknown>, code: KilnErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof KilnError, `expected a KilnError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

/** Op type counts of a serialized model. */
export function opCounts(bytes: Uint8Array): Record<string, number> {
  const ops: Record<string, number> = {};
  for (const n of decodeModel(bytes).graph?.node ?? []) {
    const k = n.domain ? `${n.domain}.${n.opType}` : n.opType!;
    ops[k] = (ops[k] ?? 0) + 1;
  }
  return ops;
}

/**
 * The op types ONNX Runtime runs after its graph optimizations (the fusions of QDQ groups into
 * integer kernels), read from the optimized model it writes.
 */
export async function optimizedOps(bytes: Uint8Array, dir: string): Promise<Record<string, number>> {
  const file = join(dir, `optimized-${Math.random().toString(36).slice(2)}.onnx`);
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3 });
  await session.release();
  const { readFile } = await import('node:fs/promises');
  return opCounts(await readFile(file));
}

/** Runs a model's bytes directly in onnxruntime-node (not through Kiln's runtime). */
export async function runOrt(bytes: Uint8Array, x: Tensor): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) });
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}
