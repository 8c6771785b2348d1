import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { decryptModel, isEncryptedModel, parseModelKey } from '../../src/model/encryption.js';
import { encryptModel } from '../../src/model/encrypt-model-file.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { loadModel } from '../../src/train/load.js';
import { Sequential } from '../../src/train/sequential.js';
import { denseModel, randomInput, tmpDir } from '../serve/helpers.js';

/*
 * Models encrypted at rest (src/model/encryption.ts): the format against Node's AES-256-GCM used by
 * hand, the refusals (wrong key, any changed byte, a cut or lengthened file, no key), key files, and
 * `kiln encrypt`.
 */

const key = randomBytes(32);
const otherKey = randomBytes(32);

describe('encrypted model format', () => {
  const plaintext = denseModel(1).toOnnx();

  test('round trip; the layout is header (magic, version, algorithm, nonce, key id, length) + AES-256-GCM ciphertext + tag', async () => {
    const file = encryptModel(plaintext, key);
    assert.equal(file.length, 40 + plaintext.length + 16);
    assert.equal(file.subarray(0, 8).toString('latin1'), 'KILN-ENC');
    assert.deepEqual([file[8], file[9], file[10], file[11]], [1, 1, 0, 0]);
    assert.equal(file.readBigUInt64LE(32), BigInt(plaintext.length));
    assert.ok(isEncryptedModel(file));
    assert.ok(!isEncryptedModel(plaintext));
    // Decrypted independently of decryptModel: Node's cipher, the header as additional data.
    const d = createDecipheriv('aes-256-gcm', key, file.subarray(12, 24));
    d.setAAD(file.subarray(0, 40));
    d.setAuthTag(file.subarray(file.length - 16));
    assert.deepEqual(Buffer.concat([d.update(file.subarray(40, file.length - 16)), d.final()]), Buffer.from(plaintext));
    assert.deepEqual(Buffer.from(await decryptModel(file, key, 'm.enc')), Buffer.from(plaintext));
    // A fresh nonce per file: the same model encrypts differently each time.
    assert.notDeepEqual(encryptModel(plaintext, key).subarray(12, 24), file.subarray(12, 24));
  });

  test('a wrong key is refused by name, and no key at all', async () => {
    const file = encryptModel(plaintext, key);
    await assert.rejects(() => decryptModel(file, otherKey, 'm.enc'), /'m\.enc' was encrypted with another key \(key id [0-9a-f]{16}; the key given has id [0-9a-f]{16}\)/);
    await assert.rejects(() => decryptModel(file, undefined, 'm.enc'), /'m\.enc' is an encrypted model and no key was given: pass it with --key-file FILE or the KILN_MODEL_KEY environment variable/);
    await assert.rejects(() => decryptModel(file, key.subarray(0, 16), 'm.enc'), /a model key is 32 bytes \(AES-256\), got 16/);
  });

  test('one flipped byte anywhere is refused: header, ciphertext or tag', async () => {
    const file = encryptModel(plaintext, key);
    for (const at of [12, 23, 40, 40 + Math.floor(plaintext.length / 2), file.length - 17, file.length - 16, file.length - 1]) {
      const damaged = Buffer.from(file);
      damaged[at]! ^= 0x01;
      await assert.rejects(() => decryptModel(damaged, key, 'm.enc'), /'m\.enc' failed authentication \(AES-256-GCM\): its bytes were changed or damaged/, `byte ${at}`);
    }
    // The key id and length fields are checked first, with their own messages.
    const keyIdFlipped = Buffer.from(file);
    keyIdFlipped[24]! ^= 1;
    await assert.rejects(() => decryptModel(keyIdFlipped, key, 'm.enc'), /encrypted with another key/);
    const versionFlipped = Buffer.from(file);
    versionFlipped[8] = 2;
    await assert.rejects(() => decryptModel(versionFlipped, key, 'm.enc'), /has encryption format 2 with algorithm 1; this Kiln reads format 1/);
  });

  test('a truncated or lengthened file is refused, saying which', async () => {
    const file = encryptModel(plaintext, key);
    await assert.rejects(() => decryptModel(file.subarray(0, file.length - 1), key, 'm.enc'), /'m\.enc' is truncated: its header announces \d+ bytes of model, which makes \d+ bytes of file; it has \d+/);
    await assert.rejects(() => decryptModel(file.subarray(0, 30), key, 'm.enc'), /'m\.enc' is truncated: 30 bytes, shorter than an encrypted model's 40-byte header/);
    await assert.rejects(() => decryptModel(Buffer.concat([file, Buffer.from([0])]), key, 'm.enc'), /'m\.enc' is longer than its header says/);
  });

  test('decryption is WebCrypto (crypto.subtle), the same code a browser runs: a file node:crypto encrypted opens; without WebCrypto the error says why', async () => {
    // encryptModel is Node's own cipher; decryptModel reaches no Node module (the browser bundle test checks that).
    const file = encryptModel(plaintext, key);
    assert.deepEqual(Buffer.from(await decryptModel(file, key, 'm.enc')), Buffer.from(plaintext));
    const model = await loadModel(file, { key: key.toString('hex') });
    assert.ok(model instanceof Sequential, 'loadModel(bytes, { key }) decrypts too');
    model.dispose();
    const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'crypto')!;
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
    try {
      await assert.rejects(() => decryptModel(file, key, 'm.enc'), /cannot decrypt 'm\.enc': this platform has no WebCrypto \(crypto\.subtle\); browsers give it only to secure contexts \(https:\/\/ or localhost\)/);
    } finally {
      Object.defineProperty(globalThis, 'crypto', descriptor);
    }
  });

  test('keys: 32 raw bytes, 64 hex digits or base64, with white space around; anything else is refused', () => {
    assert.deepEqual(Buffer.from(parseModelKey(key, 'k')), key);
    assert.deepEqual(Buffer.from(parseModelKey(`${key.toString('hex')}\n`, 'k')), key);
    assert.deepEqual(Buffer.from(parseModelKey(Buffer.from(` ${key.toString('base64')}\r\n`), 'k')), key);
    assert.throws(() => parseModelKey('abc', 'the key file'), /the key file must hold a 32-byte key: 32 raw bytes, 64 hex digits or 44 base64 characters \(found 3 characters\)/);
    assert.throws(() => parseModelKey(randomBytes(31), 'k'), /found 31 bytes/);
  });
});

describe('loading encrypted models and kiln encrypt', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const model = denseModel(3);
  const keyFile = () => path.join(dir, 'model.key');

  before(async () => {
    ({ dir, cleanup } = await tmpDir('kiln-encrypt-'));
    await model.save(path.join(dir, 'model.onnx'));
  });
  after(() => cleanup());

  const run = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(args, (l) => out.push(l), (l) => err.push(l));
    return { code, out: out.join('\n'), err: err.join('\n') };
  };

  test('kiln encrypt --new-key writes an owner-only key, then the encrypted model; it refuses to replace a key', async () => {
    const r = await run('encrypt', path.join(dir, 'model.onnx'), '--key-file', keyFile(), '--new-key', '--out', path.join(dir, 'model.onnx.enc'));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /wrote a new key to .*model\.key/);
    assert.match(r.out, /encrypted .*model\.onnx \(.*\) to .*model\.onnx\.enc \(.*, AES-256-GCM\)/);
    assert.equal((await stat(keyFile())).mode & 0o777, 0o600);
    assert.match(await readFile(keyFile(), 'utf8'), /^[0-9a-f]{64}\n$/);
    const again = await run('encrypt', path.join(dir, 'model.onnx'), '--key-file', keyFile(), '--new-key');
    assert.equal(again.code, 1);
    assert.match(again.err, /model\.key' exists; refusing to replace a key/);
  });

  test('loadModel(file, { key }) and OnnxModel.load decrypt in memory; the loaded model predicts as the original', async () => {
    const k = await readFile(keyFile(), 'utf8');
    const x = randomInput(3, [3], 71);
    const loaded = await loadModel(path.join(dir, 'model.onnx.enc'), { key: k });
    assert.ok(loaded instanceof Sequential);
    assert.deepEqual(Array.from((await loaded.predict(x)).data), Array.from((await model.predict(x)).data));
    const onnx = await OnnxModel.load(path.join(dir, 'model.onnx.enc'), { key: Buffer.from(k.trim(), 'hex') });
    assert.deepEqual(Buffer.from(onnx.bytes), Buffer.from(await readFile(path.join(dir, 'model.onnx'))));
    await assert.rejects(loadModel(path.join(dir, 'model.onnx.enc')), /model\.onnx\.enc' is an encrypted model and no key was given/);
    await assert.rejects(loadModel(path.join(dir, 'model.onnx.enc'), { key: otherKey }), /was encrypted with another key/);
  });

  test('the key from KILN_MODEL_KEY; no key, a missing key file, an already encrypted or non-ONNX input: errors, and no output', async () => {
    const previous = process.env.KILN_MODEL_KEY;
    try {
      process.env.KILN_MODEL_KEY = key.toString('base64');
      const viaEnv = await run('encrypt', path.join(dir, 'model.onnx'), '--out', path.join(dir, 'env.enc'));
      assert.equal(viaEnv.code, 0, viaEnv.err);
      assert.ok((await loadModel(path.join(dir, 'env.enc'), { key })) instanceof Sequential);
      delete process.env.KILN_MODEL_KEY;
      const noKey = await run('encrypt', path.join(dir, 'model.onnx'), '--out', path.join(dir, 'x.enc'));
      assert.match(noKey.err, /give the key with --key-file FILE or the KILN_MODEL_KEY environment variable/);
      const missing = await run('encrypt', path.join(dir, 'model.onnx'), '--key-file', path.join(dir, 'nope.key'), '--out', path.join(dir, 'x.enc'));
      assert.match(missing.err, /error \[FILE_NOT_FOUND\]: the model key file '.*nope\.key' cannot be read \(ENOENT\)/);
      const twice = await run('encrypt', path.join(dir, 'model.onnx.enc'), '--key-file', keyFile(), '--out', path.join(dir, 'x.enc'));
      assert.match(twice.err, /model\.onnx\.enc' is already an encrypted model/);
      await writeFile(path.join(dir, 'junk.onnx'), 'not a model');
      const junk = await run('encrypt', path.join(dir, 'junk.onnx'), '--key-file', keyFile(), '--out', path.join(dir, 'x.enc'));
      assert.match(junk.err, /junk\.onnx' is not a valid ONNX model/);
      await assert.rejects(stat(path.join(dir, 'x.enc')), /ENOENT/);
    } finally {
      if (previous === undefined) delete process.env.KILN_MODEL_KEY;
      else process.env.KILN_MODEL_KEY = previous;
    }
  });
});
