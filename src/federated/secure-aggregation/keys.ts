// Owns the cryptography under secure aggregation's masks: X25519 key pairs and their raw encoding,
// the pairwise secrets two clients agree on (ECDH, then HKDF-SHA256 bound to the round), the
// pseudo-random generator that stretches a 32-byte seed into a mask vector (AES-256-CTR keystream),
// and the authenticated encryption (AES-256-GCM) of the secret shares the coordinator relays.
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { endianness } from 'node:os';
import { KilnError } from '../../errors.js';

/** An X25519 key pair with the raw 32-byte public key, as it is advertised. */
export interface AgreementKeyPair {
  /** The private key. */
  privateKey: KeyObject;
  /** The raw public key (32 bytes), base64url. */
  publicKey: string;
}

/** A fresh X25519 key pair. */
export function generateAgreementKeys(): AgreementKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: publicKey.export({ format: 'jwk' }).x! };
}

/** The raw private key (32 bytes), what is secret-shared so a dropped client's masks can be removed. */
export function rawPrivateKey(key: KeyObject): Uint8Array {
  return Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
}

/** A private key back from its raw bytes and its public key (base64url). */
export function privateKeyFromRaw(raw: Uint8Array, publicKey: string): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(raw).toString('base64url'), x: publicKey }, format: 'jwk' });
}

/** Reads an advertised raw public key; a malformed one is an INVALID_DATA naming its owner. */
export function publicKeyFromRaw(publicKey: string, owner: string): KeyObject {
  if (typeof publicKey !== 'string' || Buffer.from(publicKey, 'base64url').length !== 32) {
    throw new KilnError('INVALID_DATA', `secure aggregation: client '${owner}' advertised a malformed X25519 public key (expected 32 bytes, base64url)`);
  }
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: publicKey }, format: 'jwk' });
}

/**
 * The 32-byte secret two parties agree on: ECDH, then HKDF-SHA256 with the round's context as salt
 * and the purpose as info, so the same keys never give the same secret in two rounds or uses.
 */
export function agreedSecret(ownPrivate: KeyObject, otherPublic: KeyObject, context: string, purpose: 'mask' | 'share'): Buffer {
  const shared = diffieHellman({ privateKey: ownPrivate, publicKey: otherPublic });
  return Buffer.from(hkdfSync('sha256', shared, Buffer.from(context), Buffer.from(`kiln secure aggregation ${purpose}`), 32));
}

const bigEndian = endianness() === 'BE';

/**
 * `length` pseudo-random uint32 words from a 32-byte seed: the AES-256-CTR keystream (zero IV; each
 * seed is used for one vector only), read little-endian on every platform so both ends agree.
 */
export function expandSeed(seed: Uint8Array, length: number): Uint32Array {
  const cipher = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16));
  const stream = Buffer.concat([cipher.update(Buffer.alloc(length * 4)), cipher.final()]);
  if (bigEndian) stream.swap32();
  return new Uint32Array(stream.buffer, stream.byteOffset, length).slice();
}

/** Encrypts and authenticates `plain` under a 32-byte key; `aad` binds it to its sender, recipient and round. */
export function seal(key: Uint8Array, plain: Uint8Array, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

/** Decrypts what `seal` wrote; a tampered, misaddressed or foreign ciphertext is an INVALID_DATA. */
export function open(key: Uint8Array, sealed: string, aad: string, what: string): Buffer {
  const bytes = Buffer.from(typeof sealed === 'string' ? sealed : '', 'base64');
  if (bytes.length < 28) throw new KilnError('INVALID_DATA', `${what}: the ciphertext is too short (${bytes.length} bytes)`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]);
  } catch {
    throw new KilnError('INVALID_DATA', `${what}: the ciphertext does not authenticate (tampered, or meant for another client or round)`);
  }
}
