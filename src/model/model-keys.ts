import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { KilnError } from '../errors.js';
import { KEY_BYTES, MODEL_KEY_ENV, parseModelKey } from './encryption.js';

/*
 * Model keys under Node (encryption.ts has the format): kept in a file (32 raw bytes, or 64 hex digits,
 * or base64) or in the environment variable KILN_MODEL_KEY (hex or base64) — never on a command line,
 * where other users of the machine can read it.
 */

/** Reads a model key file (see parseModelKey). */
export async function readModelKeyFile(file: string): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KilnError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_ERROR', `the model key file '${file}' cannot be read (${code ?? (err as Error).message})`);
  }
  return parseModelKey(bytes, `the model key file '${file}'`);
}

/** The model key from a key file when one is given, else from KILN_MODEL_KEY when set, else undefined. */
export async function modelKeyFrom(keyFile: string | undefined, env: string | undefined = process.env[MODEL_KEY_ENV]): Promise<Uint8Array | undefined> {
  if (keyFile !== undefined) return readModelKeyFile(keyFile);
  if (env) return parseModelKey(env, MODEL_KEY_ENV);
  return undefined;
}

/** A new random key as 64 hex digits and a newline (what a key file holds). */
export function newModelKeyText(): string {
  return `${randomBytes(KEY_BYTES).toString('hex')}\n`;
}
