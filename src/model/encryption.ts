import { KilnError } from '../errors.js';

/*
 * Models encrypted at rest: the file format, model keys, and decryption, on every platform. AES-256-GCM
 * (authenticated: a wrong key, a changed byte or a cut file is refused, never decrypted into garbage),
 * decrypted in memory only. The file is a 40-byte header in the clear, then the ciphertext, then GCM's
 * 16-byte tag. The header is the cipher's additional authenticated data, so it cannot be changed either:
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
 * Decryption uses WebCrypto (globalThis.crypto.subtle), which Node 20+ and browsers both have, so
 * loadModel decrypts the same file in a page as under Node; nothing here imports Node. Writing
 * encrypted files and reading keys from files or the environment are Node's (encrypt-model-file.ts,
 * model-keys.ts).
 */

const MAGIC = new TextEncoder().encode('KILN-ENC');
const FORMAT_VERSION = 1;
const AES_256_GCM = 1;
/** Bytes of the clear header before the ciphertext. */
export const HEADER_BYTES = 40;
/** Bytes of GCM's authentication tag after the ciphertext. */
export const TAG_BYTES = 16;
/** Bytes of GCM's nonce, at offset 12 of the header. */
export const NONCE_BYTES = 12;
/** A model key's length: AES-256. */
export const KEY_BYTES = 32;
/** The environment variable that holds a model key when no key file is given. */
export const MODEL_KEY_ENV = 'KILN_MODEL_KEY';
/** What SHA-256 hashes before the key for the header's key id. */
export const KEY_ID_CONTEXT = 'kiln model key';

/** Whether bytes are an encrypted Kiln model (they start with the magic). */
export function isEncryptedModel(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

/** Bytes as lowercase hex, for messages. */
function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** WebCrypto's SubtleCrypto, or an error saying why this platform has none. */
function subtleCrypto(what: string): typeof globalThis.crypto.subtle {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) {
    throw new KilnError('UNSUPPORTED_PLATFORM', `cannot decrypt '${what}': this platform has no WebCrypto (crypto.subtle); browsers give it only to secure contexts (https:// or localhost)`);
  }
  return subtle;
}

/** The key id a header carries for `key`: the first 8 bytes of SHA-256(KEY_ID_CONTEXT ‖ key). */
async function keyId(key: Uint8Array, what: string): Promise<Uint8Array> {
  const context = new TextEncoder().encode(KEY_ID_CONTEXT);
  const data = new Uint8Array(context.length + key.length);
  data.set(context);
  data.set(key, context.length);
  return new Uint8Array(await subtleCrypto(what).digest('SHA-256', data), 0, 8);
}

/** Refuses a key that is not 32 bytes. */
export function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new KilnError('INVALID_ARGUMENT', `a model key is ${KEY_BYTES} bytes (AES-256), got ${key.length}`);
}

/**
 * The clear header of an encrypted model, which is also the cipher's additional authenticated data.
 * Written by encrypt-model-file.ts, read back by decryptModel.
 */
export function encryptionHeader(nonce: Uint8Array, id: Uint8Array, plaintextLength: number): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  header.set(MAGIC, 0);
  header[8] = FORMAT_VERSION;
  header[9] = AES_256_GCM;
  header.set(nonce, 12);
  header.set(id.subarray(0, 8), 24);
  new DataView(header.buffer).setBigUint64(32, BigInt(plaintextLength), true);
  return header;
}

/** Base64 text to bytes (atob: Node and browsers both have it). */
function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/**
 * A model key from its text or bytes: 32 raw bytes, 64 hex digits or base64 of 32 bytes (surrounding
 * white space ignored). `where` names the source in errors.
 */
export function parseModelKey(source: string | Uint8Array, where: string): Uint8Array {
  if (typeof source !== 'string' && source.length === KEY_BYTES) return new Uint8Array(source);
  const text = (typeof source === 'string' ? source : Array.from(source, (b) => String.fromCharCode(b)).join('')).trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Uint8Array.from(text.match(/../g)!, (pair) => parseInt(pair, 16));
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return fromBase64(text);
  throw new KilnError('INVALID_ARGUMENT', `${where} must hold a ${KEY_BYTES}-byte key: ${KEY_BYTES} raw bytes, 64 hex digits or 44 base64 characters (found ${typeof source === 'string' ? `${text.length} characters` : `${source.length} bytes`})`);
}

/** The error for an encrypted model met without a key (decryptModel's, and parseOnnx's for bytes given alone). */
export function missingKeyError(what: string): KilnError {
  return new KilnError('INVALID_ARGUMENT', `'${what}' is an encrypted model and no key was given: pass it with --key-file FILE or the ${MODEL_KEY_ENV} environment variable (library: { key })`);
}

/**
 * Decrypts an encrypted model in memory. Refuses, naming `what` (the file): a key that is not the one
 * it was encrypted with, a format this Kiln does not know, a truncated file, and any change to its
 * bytes (GCM's tag). Nothing decrypted is returned unless the whole file authenticates.
 */
export async function decryptModel(file: Uint8Array, key: Uint8Array | undefined, what: string): Promise<Uint8Array> {
  if (key === undefined) throw missingKeyError(what);
  checkKey(key);
  if (file.length < HEADER_BYTES + TAG_BYTES) {
    throw new KilnError('CORRUPT_FILE', `'${what}' is truncated: ${file.length} bytes, shorter than an encrypted model's ${HEADER_BYTES}-byte header and ${TAG_BYTES}-byte tag`);
  }
  // A copy (a Buffer's slice() would be a view into its pool, and DataView reads the whole buffer).
  const header = new Uint8Array(file.subarray(0, HEADER_BYTES));
  if (header[8] !== FORMAT_VERSION || header[9] !== AES_256_GCM) {
    throw new KilnError('CORRUPT_FILE', `'${what}' has encryption format ${header[8]} with algorithm ${header[9]}; this Kiln reads format ${FORMAT_VERSION} with AES-256-GCM (${AES_256_GCM}): damaged, or written by a newer Kiln`);
  }
  const length = new DataView(header.buffer).getBigUint64(32, true);
  const expected = BigInt(HEADER_BYTES + TAG_BYTES) + length;
  if (BigInt(file.length) !== expected) {
    throw new KilnError('CORRUPT_FILE', `'${what}' is ${BigInt(file.length) < expected ? 'truncated' : 'longer than its header says'}: its header announces ${length} bytes of model, which makes ${expected} bytes of file; it has ${file.length}`);
  }
  const given = await keyId(key, what);
  const stored = header.subarray(24, 32);
  if (!given.every((b, i) => stored[i] === b)) {
    throw new KilnError('INVALID_ARGUMENT', `'${what}' was encrypted with another key (key id ${hex(stored)}; the key given has id ${hex(given)})`);
  }
  const subtle = subtleCrypto(what);
  const aesKey = await subtle.importKey('raw', new Uint8Array(key), { name: 'AES-GCM' }, false, ['decrypt']);
  let plaintext: ArrayBuffer;
  try {
    // WebCrypto takes the ciphertext with the tag at its end, as the file stores them.
    plaintext = await subtle.decrypt({ name: 'AES-GCM', iv: header.slice(12, 12 + NONCE_BYTES), additionalData: header, tagLength: TAG_BYTES * 8 }, aesKey, file.subarray(HEADER_BYTES));
  } catch {
    throw new KilnError('CORRUPT_FILE', `'${what}' failed authentication (AES-256-GCM): its bytes were changed or damaged after it was encrypted; refusing to load it`);
  }
  return new Uint8Array(plaintext);
}
