// Owns a client's side of one secure-aggregation round (Bonawitz et al. 2017, Fig. 4, semi-honest):
// make two key pairs, secret-share the masking key and a fresh self-mask seed t-of-n among the roster,
// mask the input with the self mask and one pairwise mask per peer (peers' masks cancel in the sum),
// and at the end reveal, for each peer, either its self-mask share (it sent an input) or its
// masking-key share (it dropped) — never both, so no single input is ever unmasked.
import { randomBytes } from 'node:crypto';
import { KilnError } from '../../errors.js';
import { addInto, subtractInto } from './fixed-point.js';
import { agreedSecret, expandSeed, generateAgreementKeys, open, publicKeyFromRaw, rawPrivateKey, seal, type AgreementKeyPair } from './keys.js';
import { checkDistinct, MIN_THRESHOLD, type EncryptedShare, type KeyAdvertisement, type RevealedShare, type UnmaskRequest, type UnmaskResponse } from './messages.js';
import { splitSecret, SHARE_VALUE_BYTES } from './shamir.js';

/** The shares one peer holds for one owner: of its masking key and its self-mask seed. */
interface HeldShares {
  x: number;
  maskingKey: Uint8Array;
  selfMask: Uint8Array;
}

/** A client's state through one round; one object per round (keys are never reused across rounds). */
export class SecureAggregationClient {
  private readonly sharing: AgreementKeyPair = generateAgreementKeys();
  private readonly masking: AgreementKeyPair = generateAgreementKeys();
  private readonly selfMaskSeed = randomBytes(32);
  private roster: KeyAdvertisement[] = [];
  private threshold = 0;
  /** Peers that shared keys with us (U2), and the shares they gave us. */
  private readonly held = new Map<string, HeldShares>();
  private masked = false;
  private revealed = false;

  /**
   * @param id this client's id in the round
   * @param context binds every secret and ciphertext to one model and round (e.g. 'model-hash/round-3')
   */
  constructor(readonly id: string, readonly context: string) {}

  /** Round 0: the public keys to advertise. */
  advertise(): KeyAdvertisement {
    return { id: this.id, sharingKey: this.sharing.publicKey, maskingKey: this.masking.publicKey };
  }

  /**
   * Round 1: given the roster (every advertisement the coordinator received, this client's included)
   * and the threshold t, the shares of this client's secrets, one ciphertext per peer.
   */
  shareKeys(roster: readonly KeyAdvertisement[], threshold: number): EncryptedShare[] {
    checkDistinct(roster.map((r) => r.id), 'secure aggregation roster');
    const own = roster.find((r) => r.id === this.id);
    if (!own || own.sharingKey !== this.sharing.publicKey || own.maskingKey !== this.masking.publicKey) {
      throw new KilnError('INVALID_DATA', `secure aggregation: the roster does not hold client '${this.id}' with the keys it advertised`);
    }
    if (!Number.isInteger(threshold) || threshold < MIN_THRESHOLD || threshold > roster.length) {
      throw new KilnError('INVALID_DATA', `secure aggregation: threshold ${threshold} is not between ${MIN_THRESHOLD} and the roster's ${roster.length} clients`);
    }
    this.roster = [...roster].sort((a, b) => (a.id < b.id ? -1 : 1));
    this.threshold = threshold;
    const n = this.roster.length;
    const keyShares = splitSecret(rawPrivateKey(this.masking.privateKey), n, threshold);
    const seedShares = splitSecret(this.selfMaskSeed, n, threshold);
    const out: EncryptedShare[] = [];
    this.roster.forEach((peer, k) => {
      const plain = Buffer.concat([Buffer.from([k + 1]), keyShares[k]!.y, seedShares[k]!.y]);
      if (peer.id === this.id) {
        this.held.set(this.id, { x: k + 1, maskingKey: keyShares[k]!.y, selfMask: seedShares[k]!.y });
        return;
      }
      const key = agreedSecret(this.sharing.privateKey, publicKeyFromRaw(peer.sharingKey, peer.id), this.context, 'share');
      out.push({ from: this.id, to: peer.id, ciphertext: seal(key, plain, `${this.context}|${this.id}|${peer.id}`) });
    });
    return out;
  }

  /**
   * Round 2: `input` (fixed-point, see fixed-point.ts) masked: y = x + PRG(b) + Σ_{v>u} PRG(s_uv) − Σ_{v<u} PRG(s_uv)
   * over the peers whose shares arrived (`incoming`: the ciphertexts addressed to this client).
   */
  maskInput(input: Uint32Array, incoming: readonly EncryptedShare[]): Uint32Array {
    if (this.roster.length === 0) throw new KilnError('INVALID_ARGUMENT', 'secure aggregation: maskInput before shareKeys');
    if (this.masked) throw new KilnError('INVALID_ARGUMENT', 'secure aggregation: a client masks one input per round');
    const byId = new Map(this.roster.map((r, k) => [r.id, { ad: r, x: k + 1 }]));
    checkDistinct(incoming.map((s) => s.from), 'secure aggregation shares');
    for (const share of incoming) {
      const sender = byId.get(share.from);
      if (!sender || share.to !== this.id || share.from === this.id) {
        throw new KilnError('INVALID_DATA', `secure aggregation: a share from '${share.from}' to '${share.to}' does not belong to client '${this.id}' in this roster`);
      }
      const key = agreedSecret(this.sharing.privateKey, publicKeyFromRaw(sender.ad.sharingKey, sender.ad.id), this.context, 'share');
      const plain = open(key, share.ciphertext, `${this.context}|${share.from}|${this.id}`, `secure aggregation share from '${share.from}'`);
      const x = byId.get(this.id)!.x;
      if (plain.length !== 1 + 2 * SHARE_VALUE_BYTES || plain[0] !== x) {
        throw new KilnError('INVALID_DATA', `secure aggregation: the share from '${share.from}' is for point ${plain[0]}, expected ${x}`);
      }
      this.held.set(share.from, { x, maskingKey: plain.subarray(1, 1 + SHARE_VALUE_BYTES), selfMask: plain.subarray(1 + SHARE_VALUE_BYTES) });
    }
    if (this.held.size < this.threshold) {
      throw new KilnError('INVALID_DATA', `secure aggregation: only ${this.held.size} clients shared keys, fewer than the threshold ${this.threshold}`);
    }
    const y = input.slice();
    addInto(y, expandSeed(this.selfMaskSeed, y.length));
    for (const peerId of this.held.keys()) {
      if (peerId === this.id) continue;
      const peer = byId.get(peerId)!.ad;
      const seed = agreedSecret(this.masking.privateKey, publicKeyFromRaw(peer.maskingKey, peer.id), this.context, 'mask');
      if (this.id < peerId) addInto(y, expandSeed(seed, y.length));
      else subtractInto(y, expandSeed(seed, y.length));
    }
    this.masked = true;
    return y;
  }

  /**
   * Round 3: reveal self-mask shares of the survivors and masking-key shares of the dropped. Refused
   * when the request is inconsistent — a client named both, one that never shared keys, fewer
   * survivors than the threshold — since revealing both shares of one client would unmask its input.
   */
  unmask(request: UnmaskRequest): UnmaskResponse {
    if (!this.masked) throw new KilnError('INVALID_ARGUMENT', 'secure aggregation: unmask before maskInput');
    if (this.revealed) throw new KilnError('INVALID_DATA', 'secure aggregation: a client answers one unmask request per round');
    const survivors = request.survivors ?? [];
    const dropped = request.dropped ?? [];
    checkDistinct([...survivors, ...dropped], 'secure aggregation unmask request');
    const sharedWith = [...this.held.keys()];
    const named = new Set([...survivors, ...dropped]);
    if (sharedWith.some((id) => !named.has(id)) || named.size !== sharedWith.length) {
      throw new KilnError('INVALID_DATA', `secure aggregation: the unmask request names ${[...named].sort().join(', ')}, but the clients that shared keys are ${sharedWith.sort().join(', ')}`);
    }
    if (!survivors.includes(this.id)) throw new KilnError('INVALID_DATA', `secure aggregation: client '${this.id}' sent its input but is not among the survivors`);
    if (survivors.length < this.threshold) {
      throw new KilnError('INVALID_DATA', `secure aggregation: ${survivors.length} survivors, fewer than the threshold ${this.threshold}; refusing to reveal shares`);
    }
    this.revealed = true;
    const reveal = (owner: string, which: 'maskingKey' | 'selfMask'): RevealedShare => {
      const h = this.held.get(owner)!;
      return { owner, x: h.x, y: Buffer.from(h[which]).toString('base64') };
    };
    return { from: this.id, selfMaskShares: survivors.map((u) => reveal(u, 'selfMask')), maskingKeyShares: dropped.map((v) => reveal(v, 'maskingKey')) };
  }
}

