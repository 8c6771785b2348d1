import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KilnError } from '../errors.js';
import { writeFileAtomic } from './atomic-write.js';
import { encryptModel, isEncryptedModel } from './encryption.js';
import { parseOnnx } from './read-model.js';

/*
 * `kiln encrypt`: an .onnx file → an encrypted model file (encryption.ts), written atomically, so a
 * failed run leaves no partial output. Only a readable ONNX model is encrypted: encrypting a damaged
 * file would hide the damage until the server, holding the key, tried to load it.
 */

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
