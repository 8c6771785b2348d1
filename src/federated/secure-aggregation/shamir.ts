// Owns Shamir's t-of-n secret sharing (Shamir 1979) of 32-byte secrets, as secure aggregation needs it
// to recover a dropped client's mask key: a random polynomial of degree t − 1 over the prime field
// GF(2^521 − 1) (a Mersenne prime, larger than any 256-bit secret), evaluated at x = 1..n; any t
// shares give the secret back by Lagrange interpolation at 0, fewer say nothing about it.
import { randomBytes } from 'node:crypto';
import { KilnError } from '../../errors.js';

/** The field's prime, 2^521 − 1. */
const PRIME = (1n << 521n) - 1n;
/** Bytes of a share's value (521 bits). */
export const SHARE_VALUE_BYTES = 66;

/** One share: the point x (1..n) and the polynomial's value there. */
export interface SecretShare {
  /** The evaluation point, 1 or more (never 0, where the secret sits). */
  x: number;
  /** The polynomial's value at x, big-endian, SHARE_VALUE_BYTES long. */
  y: Uint8Array;
}

const mod = (a: bigint): bigint => ((a % PRIME) + PRIME) % PRIME;

function toBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function toBytes(v: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** a^e mod p by square and multiply. */
function power(a: bigint, e: bigint): bigint {
  let result = 1n;
  a = mod(a);
  while (e > 0n) {
    if (e & 1n) result = (result * a) % PRIME;
    a = (a * a) % PRIME;
    e >>= 1n;
  }
  return result;
}

/** Splits `secret` (at most 64 bytes) into shares at x = 1..n, any `threshold` of which recover it. */
export function splitSecret(secret: Uint8Array, n: number, threshold: number): SecretShare[] {
  if (!Number.isInteger(threshold) || threshold < 1 || !Number.isInteger(n) || n < threshold) {
    throw new KilnError('INVALID_ARGUMENT', `secret sharing needs 1 <= threshold <= n, got threshold ${threshold} of n ${n}`);
  }
  if (secret.length > 64) throw new KilnError('INVALID_ARGUMENT', `secret sharing takes secrets of at most 64 bytes, got ${secret.length}`);
  // Coefficients uniform in the field: 66 random bytes reduced mod p (bias below 2^-7, immaterial for hiding).
  const coefficients = [toBigInt(secret), ...Array.from({ length: threshold - 1 }, () => mod(toBigInt(randomBytes(SHARE_VALUE_BYTES))))];
  const shares: SecretShare[] = [];
  for (let x = 1; x <= n; x++) {
    let y = 0n;
    for (let k = coefficients.length - 1; k >= 0; k--) y = (y * BigInt(x) + coefficients[k]!) % PRIME;
    shares.push({ x, y: toBytes(y, SHARE_VALUE_BYTES) });
  }
  return shares;
}

/**
 * The secret behind `shares` (at least the threshold many, distinct x), `length` bytes long. Fewer
 * shares than the threshold give a wrong value, not an error: the caller counts them.
 */
export function combineShares(shares: readonly SecretShare[], length: number): Uint8Array {
  const xs = shares.map((s) => s.x);
  if (shares.length === 0) throw new KilnError('INVALID_ARGUMENT', 'secret recovery needs at least one share');
  if (new Set(xs).size !== xs.length || xs.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new KilnError('INVALID_DATA', `secret recovery needs distinct share points 1, 2, ..., got ${xs.join(', ')}`);
  }
  let secret = 0n;
  for (let i = 0; i < shares.length; i++) {
    // Lagrange basis at 0: Π_{j≠i} x_j / (x_j − x_i).
    let num = 1n;
    let den = 1n;
    for (let j = 0; j < shares.length; j++) {
      if (j === i) continue;
      num = (num * BigInt(xs[j]!)) % PRIME;
      den = mod(den * BigInt(xs[j]! - xs[i]!));
    }
    const y = toBigInt(shares[i]!.y);
    secret = (secret + y * num % PRIME * power(den, PRIME - 2n)) % PRIME;
  }
  if (secret >> BigInt(8 * length) !== 0n) throw new KilnError('INVALID_DATA', `the recovered secret does not fit ${length} bytes: the shares are inconsistent or too few`);
  return toBytes(secret, length);
}
