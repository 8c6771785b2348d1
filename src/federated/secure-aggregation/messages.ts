// Owns the messages of one secure-aggregation round (Bonawitz et al. 2017, §4, the semi-honest
// protocol): what a client advertises, the encrypted shares the coordinator relays, what the
// coordinator asks survivors to reveal, and what they reveal. All plain JSON; the masked vector
// itself travels as binary beside them.
import { KilnError } from '../../errors.js';

/** Round 0 (AdvertiseKeys): a client's two X25519 public keys. */
export interface KeyAdvertisement {
  /** The client's id (unique in the round). */
  id: string;
  /** Key for encrypting the shares sent to this client (the paper's c^PK), raw base64url. */
  sharingKey: string;
  /** Key for the pairwise mask seeds (the paper's s^PK), raw base64url. */
  maskingKey: string;
}

/** Round 1 (ShareKeys): one client's shares of its secrets for one other client, encrypted for it. */
export interface EncryptedShare {
  /** The owner of the shared secrets. */
  from: string;
  /** The client that holds the share. */
  to: string;
  /** AES-256-GCM of the shares, base64 (see keys.ts seal). */
  ciphertext: string;
}

/** Round 3 (Unmasking): who sent a masked input, and who dropped after sharing keys. */
export interface UnmaskRequest {
  /** Clients whose masked input arrived: reveal shares of their self-mask seeds. */
  survivors: string[];
  /** Clients that shared keys but sent no masked input: reveal shares of their masking keys. */
  dropped: string[];
}

/** One revealed share: whose secret, the point, the value (base64). */
export interface RevealedShare {
  /** The client whose secret this is a share of. */
  owner: string;
  /** The share's point (1-based, the holder's place in the roster). */
  x: number;
  /** The share's value, base64. */
  y: string;
}

/** Round 3's answer: shares of survivors' self-mask seeds and of dropped clients' masking keys. */
export interface UnmaskResponse {
  /** The client answering. */
  from: string;
  /** Shares of b_u for each survivor u. */
  selfMaskShares: RevealedShare[];
  /** Shares of s^SK_v for each dropped client v. */
  maskingKeyShares: RevealedShare[];
}

/** The smallest threshold allowed: with one survivor the "sum" would be a single client's update. */
export const MIN_THRESHOLD = 2;

/**
 * The default threshold t for n clients: a majority, ⌊n/2⌋ + 1 (at least 2), the paper's condition for
 * the coordinator never learning a single input even when it lies about who dropped.
 */
export function defaultThreshold(n: number): number {
  return Math.max(MIN_THRESHOLD, Math.floor(n / 2) + 1);
}

/** Checks that `ids` are distinct strings; `what` names them in the error. */
export function checkDistinct(ids: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (typeof id !== 'string' || id === '') throw new KilnError('INVALID_DATA', `${what}: a client id is empty or not a string`);
    if (seen.has(id)) throw new KilnError('INVALID_DATA', `${what}: client '${id}' appears twice`);
    seen.add(id);
  }
}
