/*
 * An encrypted model (kiln encrypt: Node's AES-256-GCM, node:crypto) loaded in a browser page: the
 * page's loadModel decrypts it with the browser's WebCrypto, by URL and from bytes, and predicts as the
 * original does in Node; a wrong key, no key and a changed byte are refused in the page by name.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { encryptModel } from '../../src/model/encrypt-model-file.js';
import { denseModel, randomInput } from '../serve/helpers.js';
import { tempDir } from '../train/helpers.js';
import { needsChromium, openBlankPage } from './helpers.js';

test('a model encrypted in Node decrypts in Chromium (WebCrypto) and predicts as the original; bad keys and bytes are refused', async (t) => {
  if (!needsChromium(t)) return;
  const dir = await tempDir();
  const model = denseModel(5);
  const key = randomBytes(32);
  const encrypted = encryptModel(model.toOnnx(), key);
  const damaged = Buffer.from(encrypted);
  damaged[60]! ^= 1;
  await writeFile(dir.path('model.onnx.enc'), encrypted);
  await writeFile(dir.path('damaged.onnx.enc'), damaged);
  const x = randomInput(3, [3], 9);
  const session = await openBlankPage({ folders: [{ prefix: '/models/', dir: dir.dir }] });
  try {
    const page = (await session.browser.page.evaluate(
      `(async () => {
        const kiln = await import('/kiln/kiln.js');
        const key = ${JSON.stringify(key.toString('hex'))};
        const x = new kiln.Tensor(Float32Array.from(${JSON.stringify(Array.from(x.data as Float32Array))}), [3, 3], 'float32');
        const failure = (e) => e.code + ': ' + e.message;
        const byUrl = await kiln.loadModel('/models/model.onnx.enc', { key });
        const bytes = new Uint8Array(await (await fetch('/models/model.onnx.enc')).arrayBuffer());
        const fromBytes = await kiln.loadModel(bytes, { key });
        return {
          secure: globalThis.isSecureContext,
          kind: byUrl instanceof kiln.Sequential ? 'Sequential' : 'other',
          byUrl: Array.from((await byUrl.predict(x)).data),
          fromBytes: Array.from((await fromBytes.predict(x)).data),
          noKey: await kiln.loadModel('/models/model.onnx.enc').then(() => 'loaded', failure),
          otherKey: await kiln.loadModel('/models/model.onnx.enc', { key: ${JSON.stringify(randomBytes(32).toString('base64'))} }).then(() => 'loaded', failure),
          changed: await kiln.loadModel('/models/damaged.onnx.enc', { key }).then(() => 'loaded', failure),
        };
      })()`,
    )) as { secure: boolean; kind: string; byUrl: number[]; fromBytes: number[]; noKey: string; otherKey: string; changed: string };
    assert.equal(page.secure, true, 'a loopback page is a secure context, where browsers give WebCrypto');
    assert.equal(page.kind, 'Sequential');
    const expected = Array.from((await model.predict(x)).data);
    for (const got of [page.byUrl, page.fromBytes]) got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `page ${got} vs Node ${expected}`));
    assert.equal(page.noKey, "INVALID_ARGUMENT: '/models/model.onnx.enc' is an encrypted model and no key was given: pass it with --key-file FILE or the KILN_MODEL_KEY environment variable (library: { key })");
    assert.match(page.otherKey, /^INVALID_ARGUMENT: '\/models\/model\.onnx\.enc' was encrypted with another key \(key id [0-9a-f]{16}; the key given has id [0-9a-f]{16}\)$/);
    assert.match(page.changed, /^CORRUPT_FILE: '\/models\/damaged\.onnx\.enc' failed authentication \(AES-256-GCM\)/);
  } finally {
    await session.close();
    await dir.remove();
    model.dispose();
  }
});
