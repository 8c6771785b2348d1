/**
 * Shared pieces of the coordinator and client tests: a tiny trainable model saved as .onnx, small
 * local data sets that differ per client (three Gaussian blobs in 2-D, each client's own draw), and tokens.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { layers, sequential } from '../../src/index.js';
import type { LocalDataset } from '../../src/federated/local-training.js';
import { Random } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';

/** Tokens for clients alice, bob, carol, dave. */
export const TOKENS: Record<string, string> = {
  alice: 'alice-token-0123456789',
  bob: 'bob-token-0123456789abc',
  carol: 'carol-token-0123456789',
  dave: 'dave-token-0123456789ab',
};

/** Writes the tiny model (2 → 8 relu → 3 logits) to DIR/start.onnx and returns its path. */
export async function writeTinyModel(dir: string): Promise<string> {
  const model = sequential({ seed: 5, layers: [layers.dense({ units: 8, activation: 'relu', inputShape: [2] }), layers.dense({ units: 3 })] });
  const file = join(dir, 'start.onnx');
  await writeFile(file, model.toOnnx());
  return file;
}

/** A client's local data: `n` points of three blobs, drawn with the client's own seed. */
export function blobs(seed: number, n = 48): LocalDataset {
  const r = new Random(seed);
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  const centres = [[-2, 0], [2, 0], [0, 2]];
  for (let i = 0; i < n; i++) {
    const c = (i + seed) % 3;
    y[i] = c;
    x[2 * i] = centres[c]![0]! + 0.5 * r.normal();
    x[2 * i + 1] = centres[c]![1]! + 0.5 * r.normal();
  }
  return { x: new Tensor(x, [n, 2], 'float32'), y: new Tensor(y, [n], 'int32') };
}
