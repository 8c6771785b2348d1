// Owns the coordinator's side of one secure-aggregation round (Bonawitz et al. 2017, Fig. 4,
// semi-honest): collect the advertised keys into a roster, relay each client's encrypted shares to
// their holders, collect masked inputs, then from at least t survivors' revealed shares rebuild each
// survivor's self mask and each dropped client's masking key, remove those masks, and return the
// sum of the survivors' inputs. It never holds an unmasked input of any single client.
import { KilnError } from '../../errors.js';
import { addInto, subtractInto } from './fixed-point.js';
import { agreedSecret, expandSeed, privateKeyFromRaw, publicKeyFromRaw } from './keys.js';
import { checkDistinct, MIN_THRESHOLD, type EncryptedShare, type KeyAdvertisement, type UnmaskRequest, type UnmaskResponse } from './messages.js';
import { combineShares, SHARE_VALUE_BYTES, type SecretShare } from './shamir.js';

/** The coordinator's state through one round. */
export class SecureAggregationServer {
  private roster: KeyAdvertisement[] = [];
  private readonly shareSenders = new Set<string>();
  private readonly inputs = new Map<string, Uint32Array>();
  private readonly shares = new Map<string, EncryptedShare[]>();

  /**
   * @param context binds the round's secrets to one model and round: the clients' context
   * @param threshold t: shares needed to rebuild a secret, and the fewest survivors a round may end with
   * @param vectorLength the length of every masked input
   */
  constructor(readonly context: string, readonly threshold: number, readonly vectorLength: number) {
    if (!Number.isInteger(threshold) || threshold < MIN_THRESHOLD) throw new KilnError('INVALID_ARGUMENT', `secure aggregation: the threshold must be an integer of at least ${MIN_THRESHOLD}, got ${threshold}`);
  }

  /** Round 0 ends: the roster, sorted by id (refused below the threshold). */
  setRoster(advertisements: readonly KeyAdvertisement[]): KeyAdvertisement[] {
    checkDistinct(advertisements.map((a) => a.id), 'secure aggregation advertisements');
    for (const a of advertisements) {
      publicKeyFromRaw(a.sharingKey, a.id);
      publicKeyFromRaw(a.maskingKey, a.id);
    }
    if (advertisements.length < this.threshold) {
      throw new KilnError('INVALID_DATA', `secure aggregation: ${advertisements.length} clients advertised keys, fewer than the threshold ${this.threshold}`);
    }
    this.roster = [...advertisements].sort((a, b) => (a.id < b.id ? -1 : 1));
    return this.roster;
  }

  /**
   * Round 1: one client's encrypted shares, checked (from the sender, one to every other roster
   * member) and kept; `sharesFor` hands them out once round 1 ends.
   */
  addShares(sender: string, shares: readonly EncryptedShare[]): void {
    if (!this.roster.some((r) => r.id === sender)) throw new KilnError('INVALID_DATA', `secure aggregation: '${sender}' is not in this round's roster`);
    if (this.shareSenders.has(sender)) throw new KilnError('INVALID_DATA', `secure aggregation: '${sender}' already sent its shares`);
    const expected = this.roster.filter((r) => r.id !== sender).map((r) => r.id).sort();
    const got = shares.map((s) => s?.to).sort();
    if (shares.some((s) => s?.from !== sender || typeof s.ciphertext !== 'string') || got.join('\n') !== expected.join('\n')) {
      throw new KilnError('INVALID_DATA', `secure aggregation: '${sender}' must send one share from itself to each of ${expected.join(', ')}; got shares to ${got.join(', ')}`);
    }
    this.shareSenders.add(sender);
    this.shares.set(sender, [...shares]);
  }

  /** Clients that shared keys (U2). */
  get sharedKeys(): string[] {
    return [...this.shareSenders].sort();
  }

  /** Round 1 ends: the shares addressed to `recipient` from every client that shared keys. */
  sharesFor(recipient: string): EncryptedShare[] {
    if (this.shareSenders.size < this.threshold) {
      throw new KilnError('INVALID_DATA', `secure aggregation: ${this.shareSenders.size} clients shared keys, fewer than the threshold ${this.threshold}`);
    }
    return [...this.shares.values()].flatMap((list) => list.filter((s) => s.to === recipient));
  }

  /** Round 2: one client's masked input (it must have shared keys; one input each, of the agreed length). */
  addMaskedInput(sender: string, masked: Uint32Array): void {
    if (!this.shareSenders.has(sender)) throw new KilnError('INVALID_DATA', `secure aggregation: '${sender}' sent a masked input but did not share keys this round`);
    if (this.inputs.has(sender)) throw new KilnError('INVALID_DATA', `secure aggregation: '${sender}' already sent its masked input`);
    if (masked.length !== this.vectorLength) throw new KilnError('INVALID_SHAPE', `secure aggregation: '${sender}' sent ${masked.length} values, expected ${this.vectorLength}`);
    this.inputs.set(sender, masked);
  }

  /** Clients whose masked input arrived (U3). */
  get survivors(): string[] {
    return [...this.inputs.keys()].sort();
  }

  /** Round 2 ends: what to ask the survivors to reveal (refused below the threshold). */
  unmaskRequest(): UnmaskRequest {
    const survivors = this.survivors;
    if (survivors.length < this.threshold) {
      throw new KilnError('INVALID_DATA', `secure aggregation: ${survivors.length} masked inputs arrived, fewer than the threshold ${this.threshold}`);
    }
    return { survivors, dropped: this.sharedKeys.filter((id) => !this.inputs.has(id)) };
  }

  /**
   * Round 3 ends: with the answers of at least t survivors, the sum of the survivors' inputs
   * (mod 2^32; decode with fixed-point.ts).
   */
  sum(responses: readonly UnmaskResponse[]): Uint32Array {
    const { survivors, dropped } = this.unmaskRequest();
    const answered = responses.filter((r) => survivors.includes(r.from));
    checkDistinct(answered.map((r) => r.from), 'secure aggregation unmask responses');
    if (answered.length < this.threshold) {
      throw new KilnError('INVALID_DATA', `secure aggregation: ${answered.length} survivors revealed their shares, fewer than the threshold ${this.threshold}`);
    }
    const recover = (owner: string, which: 'selfMaskShares' | 'maskingKeyShares'): Uint8Array => {
      const shares: SecretShare[] = answered.map((r) => {
        const s = (r[which] ?? []).find((x) => x?.owner === owner);
        const y = Buffer.from(typeof s?.y === 'string' ? s.y : '', 'base64');
        if (!s || y.length !== SHARE_VALUE_BYTES) throw new KilnError('INVALID_DATA', `secure aggregation: '${r.from}' revealed no valid share of '${owner}'`);
        return { x: s.x, y };
      });
      return combineShares(shares.slice(0, Math.max(this.threshold, shares.length)), 32);
    };
    const total = new Uint32Array(this.vectorLength);
    for (const u of survivors) addInto(total, this.inputs.get(u)!);
    for (const u of survivors) subtractInto(total, expandSeed(recover(u, 'selfMaskShares'), this.vectorLength));
    const byId = new Map(this.roster.map((r) => [r.id, r]));
    for (const v of dropped) {
      const key = privateKeyFromRaw(recover(v, 'maskingKeyShares'), byId.get(v)!.maskingKey);
      for (const u of survivors) {
        // Survivor u added +PRG(s_uv) when u < v and −PRG(s_uv) otherwise; v's input never came, so undo u's side.
        const mask = expandSeed(agreedSecret(key, publicKeyFromRaw(byId.get(u)!.maskingKey, u), this.context, 'mask'), this.vectorLength);
        if (u < v) subtractInto(total, mask);
        else addInto(total, mask);
      }
    }
    return total;
  }
}
