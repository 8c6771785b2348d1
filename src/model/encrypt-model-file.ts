import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KilnError } from '../errors.js';
import { writeFileAtomic } from './atomic-write.js';
import { checkKey, encryptionHeader, isEncryptedModel, KEY_ID_CONTEXT, NONCE_BYTES } from './encryption.js';
import { parseOnnx } from './read-model.js';

/*
 * `kiln encrypt`: an .onnx file → an encrypted model file (encryption.ts), written atomically, so a
 * failed run leaves no partial output. Only a readable ONNX model is encrypted: encrypting a damaged
 * file would hide the damage until the server, holding the key, tried to load it. Encryption is Node's
 * own AES-256-GCM (node:crypto); decryption is WebCrypto's (encryption.ts), on every platform.
 */

/** Encrypts model bytes under `key`: header, ciphertext, tag (the layout in encryption.ts). */
export function encryptModel(plaintext: Uint8Array, key: Uint8Array): Buffer {
  checkKey(key);
  const nonce = randomBytes(NONCE_BYTES);
  const keyId = createHash('sha256').update(KEY_ID_CONTEXT).update(key).digest();
  const header = encryptionHeader(nonce, keyId, plaintext.length);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(header);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, body, cipher.getAuthTag()]);
}

/** `kiln encrypt`'s work: reads `input`, checks it is an ONNX model, writes it encrypted under `key` to `output`. */
export async function encryptModelFile(input: string, output: string, key: Uint8Array): Promise<{ bytes: number; encryptedBytes: number }> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(input);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KilnError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_ERROR', `model file '${input}' cannot be read (${code ?? (err as Error).message})`);
  }
  if (isEncryptedModel(bytes)) throw new KilnError('INVALID_ARGUMENT', `'${input}' is already an encrypted model`);
  parseOnnx(bytes, input);
  if (path.resolve(output) === path.resolve(input)) throw new KilnError('INVALID_ARGUMENT', `--out '${output}' is the input file; write the encrypted model beside it`);
  const encrypted = encryptModel(bytes, key);
  await writeFileAtomic(output, encrypted);
  return { bytes: bytes.length, encryptedBytes: encrypted.length };
}
