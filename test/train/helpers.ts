/** Shared data and assertions for the training tests: seeded toy datasets, temp dirs, KilnError checks, small imported graphs. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KilnError, type KilnErrorCode } from '../../src/errors.js';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import { Random } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';

/**
 * Three Gaussian blobs in 2-D (std 0.5, centres ≥ 2.5 apart), shuffled: a problem a small dense net
 * solves to ~100% accuracy. Labels are int32 class indices.
 */
export function blobs(n: number, seed = 1): { x: Tensor<'float32'>; y: Tensor<'int32'> } {
  const centres = [
    [-2, -1],
    [2, -1],
    [0, 2],
  ];
  const rng = new Random(seed);
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  const order = rng.permutation(n);
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    const c = k % 3;
    y[i] = c;
    x[i * 2] = centres[c]![0]! + 0.5 * rng.normal();
    x[i * 2 + 1] = centres[c]![1]! + 0.5 * rng.normal();
  }
  return { x: new Tensor(x, [n, 2], 'float32'), y: new Tensor(y, [n], 'int32') };
}

/** y = x·[1, −2, 0.5] + 0.3 with small seeded noise: a linear regression problem. */
export function linear(n: number, seed = 2): { x: Tensor<'float32'>; y: Tensor<'float32'> } {
  const rng = new Random(seed);
  const x = Float32Array.from({ length: n * 3 }, () => rng.uniform(-1, 1));
  const y = Float32Array.from({ length: n }, (_, i) => x[i * 3]! - 2 * x[i * 3 + 1]! + 0.5 * x[i * 3 + 2]! + 0.3 + 0.01 * rng.normal());
  return { x: new Tensor(x, [n, 3], 'float32'), y: new Tensor(y, [n, 1], 'float32') };
}

export async function tempDir(): Promise<{ dir: string; path: (name: string) => string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-train-test-'));
  return { dir, path: (name) => join(dir, name), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A predicate for assert.throws/rejects: a KilnError with this code whose message contains each fragment. */
export function kilnError(code: KilnErrorCode, ...fragments: (string | RegExp)[]): (e: unknown) => true {
  return (e: unknown) => {
    assert.ok(e instanceof KilnError, `expected a KilnError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, code, `code of: ${e.message}`);
    for (const f of fragments) {
      assert.ok(typeof f === 'string' ? e.message.includes(f) : f.test(e.message), `message "${e.message}" should mention ${String(f)}`);
    }
    return true;
  };
}

/** All weights of a model as plain arrays, by name. */
export function weightsOf(model: { getWeights(): Map<string, Tensor> }): Record<string, number[]> {
  return Object.fromEntries([...model.getWeights()].map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
}

export function maxAbsDifference(a: Record<string, number[]>, b: Record<string, number[]>): number {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  let worst = 0;
  for (const k of Object.keys(a)) a[k]!.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b[k]![i]!))));
  return worst;
}

/**
 * Writes `wrapped.onnx` in `dir` (opset 19): x [batch, 4] → MatMul → Pad mode 'wrap' (node
 * 'the_wrap'), an op Kiln has a gradient rule for but not in that mode. Returns its path.
 */
export async function writeWrapPadModel(dir: string): Promise<string> {
  const g = new Graph('wrapped');
  const x = g.input('x', 'float32', ['batch', 4]);
  const w = g.initializer('w', new Tensor(new Float32Array(8).fill(0.1), [4, 2], 'float32'));
  const pads = g.int64s([0, 1, 0, 1], 'pads');
  const padded = g.importNode('Pad', [g.op1('MatMul', [x, w]).name, pads.name], { mode: 'wrap' }, [{ name: 'padded', dtype: 'float32', shape: ['batch', 4] }], { name: 'the_wrap' })[0]!;
  g.output(padded, 'y');
  const proto = modelToProto(g);
  proto.opsetImport = [{ domain: '', version: 19 }];
  proto.irVersion = 9;
  const file = join(dir, 'wrapped.onnx');
  await writeFile(file, encodeModel(proto));
  return file;
}
