import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { KilnError } from '../errors.js';

/*
 * Models encrypted at rest: AES-256-GCM (authenticated: a wrong key, a changed byte or a cut file is
 * refused, never decrypted into garbage), decrypted in memory only. The file is a 40-byte header in
 * the clear, then the ciphertext, then GCM's 16-byte tag. The header is the cipher's additional
 * authenticated data, so it cannot be changed either:
 *
 *   0  8  magic "KILN-ENC"
 *   8  1  format version (1)
 *   9  1  algorithm (1: AES-256-GCM)
 *  10  2  reserved (0)
 *  12 12  nonce (random per file)
 *  24  8  key id: the first 8 bytes of SHA-256("kiln model key" ‖ key), to tell a wrong key from a damaged file
 *  32  8  plaintext length, little-endian (to tell a truncated file from a tampered one)
 *
 * What it protects: model files at rest and on their way to the server (storage, images, copies). Not
 * against someone holding the key, or able to read the serving process's memory.
 *
 * Keys are 32 bytes, kept in a file (32 raw bytes, or 64 hex digits, or base64) or in the environment
 * variable KILN_MODEL_KEY (hex or base64) — never on a command line, where other users of the machine
 * can read it.
 */

const MAGIC = Buffer.from('KILN-ENC', 'latin1');
const FORMAT_VERSION = 1;
const AES_256_GCM = 1;
const HEADER_BYTES = 40;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;
/** The environment variable that holds a model key when no key file is given. */
export const MODEL_KEY_ENV = 'KILN_MODEL_KEY';

/** Whether bytes are an encrypted Kiln model (they start with the magic). */
export function isEncryptedModel(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && Buffer.from(bytes.buffer, bytes.byteOffset, MAGIC.length).equals(MAGIC);
}

function keyId(key: Uint8Array): Buffer {
  return createHash('sha256').update('kiln model key').update(key).digest().subarray(0, 8);
}

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new KilnError('INVALID_ARGUMENT', `a model key is ${KEY_BYTES} bytes (AES-256), got ${key.length}`);
}

/**
 * A model key from its text or bytes: 32 raw bytes, 64 hex digits or base64 of 32 bytes (surrounding
 * white space ignored). `where` names the source in errors.
 */
export function parseModelKey(source: string | Uint8Array, where: string): Uint8Array {
  if (typeof source !== 'string' && source.length === KEY_BYTES) return new Uint8Array(source);
  const text = (typeof source === 'string' ? source : Buffer.from(source).toString('latin1')).trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, 'hex'));
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return new Uint8Array(Buffer.from(text, 'base64'));
  throw new KilnError('INVALID_ARGUMENT', `${where} must hold a ${KEY_BYTES}-byte key: ${KEY_BYTES} raw bytes, 64 hex digits or 44 base64 characters (found ${typeof source === 'string' ? `${text.length} characters` : `${source.length} bytes`})`);
}

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

/** Encrypts model bytes under `key`: header, ciphertext, tag. */
export function encryptModel(plaintext: Uint8Array, key: Uint8Array): Buffer {
  checkKey(key);
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header[8] = FORMAT_VERSION;
  header[9] = AES_256_GCM;
  const nonce = randomBytes(12);
  nonce.copy(header, 12);
  keyId(key).copy(header, 24);
  header.writeBigUInt64LE(BigInt(plaintext.length), 32);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(header);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, body, cipher.getAuthTag()]);
}

/**
 * Decrypts an encrypted model in memory. Refuses, naming `what` (the file): a key that is not the one
 * it was encrypted with, a format this Kiln does not know, a truncated file, and any change to its
 * bytes (GCM's tag). Nothing decrypted is returned unless the whole file authenticates.
 */
export function decryptModel(file: Uint8Array, key: Uint8Array | undefined, what: string): Uint8Array {
  if (key === undefined) {
    throw new KilnError('INVALID_ARGUMENT', `'${what}' is an encrypted model and no key was given: pass it with --key-file FILE or the ${MODEL_KEY_ENV} environment variable (library: { key })`);
  }
  checkKey(key);
  const bytes = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (bytes.length < HEADER_BYTES + TAG_BYTES) {
    throw new KilnError('CORRUPT_FILE', `'${what}' is truncated: ${bytes.length} bytes, shorter than an encrypted model's ${HEADER_BYTES}-byte header and ${TAG_BYTES}-byte tag`);
  }
  const header = bytes.subarray(0, HEADER_BYTES);
  if (header[8] !== FORMAT_VERSION || header[9] !== AES_256_GCM) {
    throw new KilnError('CORRUPT_FILE', `'${what}' has encryption format ${header[8]} with algorithm ${header[9]}; this Kiln reads format ${FORMAT_VERSION} with AES-256-GCM (${AES_256_GCM}): damaged, or written by a newer Kiln`);
  }
  const length = header.readBigUInt64LE(32);
  const expected = BigInt(HEADER_BYTES + TAG_BYTES) + length;
  if (BigInt(bytes.length) !== expected) {
    throw new KilnError('CORRUPT_FILE', `'${what}' is ${BigInt(bytes.length) < expected ? 'truncated' : 'longer than its header says'}: its header announces ${length} bytes of model, which makes ${expected} bytes of file; it has ${bytes.length}`);
  }
  const given = keyId(key);
  const stored = header.subarray(24, 32);
  if (!given.equals(stored)) {
    throw new KilnError('INVALID_ARGUMENT', `'${what}' was encrypted with another key (key id ${stored.toString('hex')}; the key given has id ${given.toString('hex')})`);
  }
  const decipher = createDecipheriv('aes-256-gcm', key, header.subarray(12, 24));
  decipher.setAAD(header);
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  const plaintext = decipher.update(bytes.subarray(HEADER_BYTES, bytes.length - TAG_BYTES));
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    throw new KilnError('CORRUPT_FILE', `'${what}' failed authentication (AES-256-GCM): its bytes were changed or damaged after it was encrypted; refusing to load it`);
  }
  return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
}
