/**
 * Shared helpers for the model, layer and CLI tests: temp directories, KilnError assertions, seeded
 * inputs, and running a model's exported ONNX bytes as ONNX Runtime sees them (so a test checks the
 * shape the graph really produces, not the shape Kiln computes for it).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KilnError, type KilnErrorCode } from '../../src/errors.js';
import { decodeModel } from '../../src/graph/proto.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import type { Sequential } from '../../src/train/sequential.js';
import { Random } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';

export async function makeTempDir(prefix = 'kiln-model-test-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Checks a thrown value is a KilnError with this code whose message contains every fragment. */
export function isKilnError(code: KilnErrorCode, ...fragments: string[]): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof KilnError, `expected a KilnError, got ${error instanceof Error ? error.stack : String(error)}`);
    assert.equal(error.code, code, `code of: ${error.message}`);
    for (const fragment of fragments) {
      assert.ok(error.message.includes(fragment), `message "${error.message}" should mention "${fragment}"`);
    }
    return true;
  };
}

export function assertThrowsKiln(fn: () => unknown, code: KilnErrorCode, ...fragments: string[]): void {
  assert.throws(fn, isKilnError(code, ...fragments));
}

export async function assertRejectsKiln(fn: () => Promise<unknown>, code: KilnErrorCode, ...fragments: string[]): Promise<void> {
  await assert.rejects(fn, isKilnError(code, ...fragments));
}

/** A float32 tensor of the given shape with seeded values in [-1, 1). */
export function randomInput(shape: number[], seed = 7): Tensor<'float32'> {
  const rng = new Random(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-1, 1);
  return new Tensor(data, shape, 'float32');
}

/**
 * Runs the model's exported .onnx bytes through a plain OnnxModel: the output shape is whatever ONNX
 * Runtime produces, not one Kiln computes.
 */
export async function runExported(model: Sequential, x: Tensor): Promise<Tensor> {
  const bytes = model.toOnnx();
  return new OnnxModel(bytes, decodeModel(bytes)).predict(x);
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-6, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tolerance * Math.max(1, Math.abs(e)), `${what}[${i}]: expected ${e}, got ${a}`);
  }
}
