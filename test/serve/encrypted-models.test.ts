import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { encryptModel } from '../../src/model/encrypt-model-file.js';
import { denseBody, denseModel, http, inferUnderLoad, randomInput, spawnServe, startServer, tmpDir, waitFor } from './helpers.js';

/*
 * Serving encrypted models (kiln encrypt): a single file and repository versions (model.onnx.enc),
 * decrypted in memory with the server's key; a version without the key, with another key, or damaged,
 * fails by name and never replaces a version that serves — also under load, where replacing an
 * encrypted version in place fails no request.
 */

const key = randomBytes(32);

async function writeEncrypted(file: string, model: ReturnType<typeof denseModel>, k = key): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, encryptModel(model.toOnnx(), k));
}

test('kiln serve model.onnx.enc --key-file serves it under its name; without the key, the version fails saying why', async () => {
  const { dir, cleanup } = await tmpDir();
  const model = denseModel(1);
  const file = path.join(dir, 'dense.onnx.enc');
  await writeEncrypted(file, model);
  await writeFile(path.join(dir, 'key'), key.toString('hex'));
  const x = randomInput(2, [3], 81);
  const cli = await spawnServe([file, '--key-file', path.join(dir, 'key')]);
  try {
    const r = await http(cli.url, 'POST', '/v2/models/dense/infer', denseBody(x));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.outputs[0].data, Array.from((await model.predict(x)).data));
  } finally {
    cli.child.kill('SIGTERM');
    await cli.exit;
  }
  const previous = process.env.KILN_MODEL_KEY;
  delete process.env.KILN_MODEL_KEY;
  const keyless = await startServer({ model: file });
  try {
    const r = await http(keyless.url, 'POST', '/v2/models/dense/infer', denseBody(x));
    assert.equal(r.status, 503);
    assert.match(r.json.error, /'dense\.onnx\.enc' is an encrypted model and no key was given/);
  } finally {
    await keyless.close();
    if (previous !== undefined) process.env.KILN_MODEL_KEY = previous;
    await cleanup();
  }
});

test('a repository with encrypted versions: hot reload of an encrypted version under load fails no request; a wrong key or damaged file never replaces the serving one', async () => {
  const { dir, cleanup } = await tmpDir();
  const models = [denseModel(1), denseModel(2), denseModel(3)];
  const file = path.join(dir, 'm', '1', 'model.onnx.enc');
  await writeEncrypted(file, models[0]!);
  // A plain version beside encrypted ones is fine; both files in one version is refused.
  await writeEncrypted(path.join(dir, 'both', '1', 'model.onnx.enc'), models[0]!);
  await models[0]!.save(path.join(dir, 'both', '1', 'model.onnx'));
  const server = await startServer({ modelRepository: dir, pollIntervalMs: 0, modelKey: key.toString('base64') });
  const x = randomInput(1, [3], 82);
  const expected = await Promise.all(models.map(async (m) => Array.from((await m.predict(x)).data as Float32Array)));
  const { failures, seen, stop } = inferUnderLoad(server.url, 'm', x, expected, 6);
  const replace = async (bytes: Uint8Array) => {
    await writeFile(path.join(dir, 'm', '1', '.new'), bytes);
    await rename(path.join(dir, 'm', '1', '.new'), file);
    await server.reload();
  };
  const reason = async () => ((await http(server.url, 'POST', '/v2/repository/index')).json as { name: string; reason: string }[]).find((e) => e.name === 'm')!.reason;
  try {
    await waitFor(() => seen.has(0), 10_000, 'the encrypted version to answer');
    // Replaced in place by another encrypted model: it loads beside the serving one and takes over.
    await replace(encryptModel(models[1]!.toOnnx(), key));
    await waitFor(() => seen.has(1), 10_000, 'the replacement to answer');
    // Encrypted with another key, one flipped byte, cut short: each fails, the serving one stays.
    const good = encryptModel(models[2]!.toOnnx(), key);
    const flipped = Buffer.from(good);
    flipped[100]! ^= 1;
    for (const [bytes, why] of [
      [encryptModel(models[2]!.toOnnx(), randomBytes(32)), /encrypted with another key/],
      [flipped, /failed authentication/],
      [good.subarray(0, good.length - 100), /is truncated/],
    ] as const) {
      await replace(bytes);
      await waitFor(async () => why.test(await reason()), 10_000, `the bad replacement to fail (${why})`);
      assert.match(await reason(), /the replaced model file failed to load, the previous one keeps serving: 'm\/1\/model\.onnx\.enc'/);
      seen.clear();
      await waitFor(() => seen.size > 0, 10_000, 'answers after the bad replacement');
      assert.deepEqual([...seen], [1]);
    }
    const both = ((await http(server.url, 'POST', '/v2/repository/index')).json as { name: string; state: string; reason: string }[]).find((e) => e.name === 'both')!;
    assert.equal(both.state, 'FAILED');
    assert.match(both.reason, /both\/1 holds both model\.onnx and model\.onnx\.enc; keep one/);
  } finally {
    await stop();
    await server.close();
    await cleanup();
  }
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} requests failed`);
});

test('serve({ modelKey }) refuses a malformed key at start-up', async () => {
  await assert.rejects(startServer({ model: denseModel(1), modelKey: 'short' }), /the "modelKey" option must hold a 32-byte key/);
});
