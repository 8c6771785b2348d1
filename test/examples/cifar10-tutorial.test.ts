/**
 * Runs the compiled CIFAR-10 tutorial as a user would, on a tiny CIFAR-10 directory written in the
 * real binary format (64 records per batch file), for one epoch.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadModel } from '../../src/train/load.js';
import { Sequential } from '../../src/train/sequential.js';
import { cifarRecord, concat } from '../data/fixtures.js';

const run = promisify(execFile);
const EXAMPLE = fileURLToPath(new URL('../../examples/cifar10-tutorial.js', import.meta.url));
const RECORDS_PER_FILE = 64;

async function writeTinyCifar10(dir: string): Promise<void> {
  const folder = join(dir, 'cifar-10-batches-bin');
  await mkdir(folder, { recursive: true });
  const batch = (first: number) => concat(...Array.from({ length: RECORDS_PER_FILE }, (_, r) => cifarRecord((first + r) % 10, first + r)));
  for (let i = 1; i <= 5; i++) await writeFile(join(folder, `data_batch_${i}.bin`), batch(i * RECORDS_PER_FILE));
  await writeFile(join(folder, 'test_batch.bin'), batch(0));
}

describe('examples/cifar10-tutorial', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-example-test-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains, evaluates and saves the tutorial CNN on a CIFAR-10 directory', async () => {
    const data = join(dir, 'cifar');
    await writeTinyCifar10(data);
    const out = join(dir, 'cifar10_cnn.onnx');
    const { stdout } = await run(process.execPath, [EXAMPLE, data, '--epochs', '1', '--out', out], { cwd: dir, timeout: 120_000 });
    assert.match(stdout, /320 training and 64 test images of 10 classes: airplane, automobile/);
    assert.match(stdout, /Total params: 122,570/);
    assert.match(stdout, /Epoch 1\/1/);
    assert.match(stdout, /Test loss: \d+\.\d{4} - test accuracy: [01]\.\d{4}/);
    assert.match(stdout, new RegExp(`Saved ${out.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}`));
    assert.ok((await stat(out)).size > 122_570 * 4, 'the file holds the weights');
    const model = await loadModel(out);
    assert.ok(model instanceof Sequential, 'a Kiln model, trainable again');
    assert.deepEqual(model.inputShape, [32, 32, 3]);
    assert.deepEqual(model.outputShape, [10]);
  });

  it('says how to fetch CIFAR-10 when the directory has no data set', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty, { recursive: true });
    const failed = await run(process.execPath, [EXAMPLE, empty, '--epochs', '1'], { cwd: dir, timeout: 60_000 }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    assert.ok(failed, 'expected the example to exit with an error');
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /CIFAR-10 was not found in/);
    assert.match(failed.stderr, /npx kiln data fetch cifar10/);
  });
});
