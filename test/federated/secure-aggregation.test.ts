/**
 * Secure aggregation (Bonawitz et al. 2017) run in-process: Shamir sharing against its definition, the
 * fixed-point ring, and whole rounds of the client and server state machines — the aggregate equals
 * the plain sum, one client's masked input is uncorrelated with its input, a client dropping after
 * masking or before is recovered through the shared seeds, and inconsistent or tampered messages are
 * refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SecureAggregationClient } from '../../src/federated/secure-aggregation/client.js';
import { decodeFixedPoint, encodeFixedPoint, FIXED_POINT_BITS } from '../../src/federated/secure-aggregation/fixed-point.js';
import { defaultThreshold } from '../../src/federated/secure-aggregation/messages.js';
import { SecureAggregationServer } from '../../src/federated/secure-aggregation/server.js';
import { combineShares, splitSecret } from '../../src/federated/secure-aggregation/shamir.js';
import { Random } from '../../src/random.js';

function randomVector(n: number, seed: number, scale = 1): Float64Array {
  const r = new Random(seed);
  return Float64Array.from({ length: n }, () => r.normal() * scale);
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]! / n;
    mb += b[i]! / n;
  }
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb);
    saa += (a[i]! - ma) ** 2;
    sbb += (b[i]! - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** One round among `ids` with inputs `x`; `dropAfterSharing` send no masked input; returns the sum and the masked inputs. */
function runRound(ids: string[], x: Map<string, Float64Array>, options: { dropAfterSharing?: string[]; dropBeforeSharing?: string[]; threshold?: number } = {}) {
  const context = 'model-abc/round-1';
  const length = x.values().next().value!.length;
  const threshold = options.threshold ?? defaultThreshold(ids.length);
  const clients = new Map(ids.map((id) => [id, new SecureAggregationClient(id, context)]));
  const server = new SecureAggregationServer(context, threshold, length);
  const roster = server.setRoster([...clients.values()].map((c) => c.advertise()));
  for (const [id, c] of clients) if (!options.dropBeforeSharing?.includes(id)) server.addShares(id, c.shareKeys(roster, threshold));
  const masked = new Map<string, Uint32Array>();
  for (const id of server.sharedKeys) {
    const y = clients.get(id)!.maskInput(encodeFixedPoint(x.get(id)!, id), server.sharesFor(id));
    if (options.dropAfterSharing?.includes(id)) continue; // masked, then never sent
    masked.set(id, y);
    server.addMaskedInput(id, y);
  }
  const request = server.unmaskRequest();
  const responses = request.survivors.map((id) => clients.get(id)!.unmask(request));
  return { sum: decodeFixedPoint(server.sum(responses)), masked, request, clients, server };
}

function plainSum(ids: string[], x: Map<string, Float64Array>): Float64Array {
  const out = new Float64Array(x.get(ids[0]!)!.length);
  for (const id of ids) x.get(id)!.forEach((v, i) => (out[i] += v));
  return out;
}

function assertCloseVectors(got: Float64Array, want: Float64Array, tolerance: number) {
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  assert.ok(worst <= tolerance, `largest difference ${worst} exceeds ${tolerance}`);
}

describe('Shamir secret sharing', () => {
  it('any t of n shares give the secret back; t − 1 do not', () => {
    const secret = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
    const shares = splitSecret(secret, 5, 3);
    for (const pick of [[0, 1, 2], [0, 2, 4], [1, 3, 4], [4, 3, 2, 1, 0]]) {
      assert.deepEqual(combineShares(pick.map((k) => shares[k]!), 32), secret);
    }
    assert.throws(() => combineShares([shares[0]!, shares[0]!, shares[1]!], 32), /distinct share points/);
    let wrong: Uint8Array | undefined;
    try {
      wrong = combineShares([shares[0]!, shares[3]!], 32);
    } catch (err) {
      assert.match((err as Error).message, /does not fit|inconsistent/);
    }
    if (wrong) assert.notDeepEqual(wrong, secret);
  });

  it('a threshold of 1 is the secret itself at every point; bad thresholds are refused', () => {
    const secret = new Uint8Array(32).fill(7);
    assert.deepEqual(combineShares([splitSecret(secret, 3, 1)[2]!], 32), secret);
    assert.throws(() => splitSecret(secret, 2, 3), /threshold/);
  });
});

describe('the fixed-point ring', () => {
  it('sums of encodings decode to the sum within one step per term, negatives included', () => {
    const a = Float64Array.from([-1.5, 0.25, 1000.123, -2047.5]);
    const b = Float64Array.from([0.5, -0.25, -999.5, 0.5]);
    const ea = encodeFixedPoint(a, 'a');
    const eb = encodeFixedPoint(b, 'b');
    const s = ea.map((v, i) => (v + eb[i]!) >>> 0);
    assertCloseVectors(decodeFixedPoint(s), a.map((v, i) => v + b[i]!), 2 ** -FIXED_POINT_BITS);
  });

  it('refuses NaN, infinities and values outside the range before they wrap', () => {
    assert.throws(() => encodeFixedPoint([0, Number.NaN], 'update'), /update: value NaN at index 1/);
    assert.throws(() => encodeFixedPoint([Infinity], 'update'), /Infinity/);
    assert.throws(() => encodeFixedPoint([4096], 'update'), /outside the secure-aggregation range/);
  });
});

describe('a secure-aggregation round', () => {
  const ids = ['alice', 'bob', 'carol', 'dave', 'erin'];
  const x = new Map(ids.map((id, k) => [id, randomVector(4000, 100 + k)]));

  it('gives the plain sum of the inputs within the fixed-point rounding', () => {
    const { sum } = runRound(ids, x);
    assertCloseVectors(sum, plainSum(ids, x), ids.length * 2 ** -FIXED_POINT_BITS);
  });

  it("shows the server masked inputs uncorrelated with the clients' inputs", () => {
    const { masked } = runRound(ids, x);
    for (const id of ids) {
      const y = decodeFixedPoint(masked.get(id)!);
      const r = correlation(y, x.get(id)!);
      assert.ok(Math.abs(r) < 0.08, `client ${id}: correlation ${r} between masked and true input`);
      // And the masked values fill the ring, far beyond the inputs' own spread (|x| ≲ 5).
      assert.ok(y.some((v) => Math.abs(v) > 1000));
    }
    // Sanity of the measure: the same correlation of an input with itself plus small noise is near 1.
    assert.ok(correlation(x.get('alice')!, x.get('alice')!.map((v, i) => v + 0.01 * x.get('bob')![i]!)) > 0.99);
  });

  it('recovers a client that drops after masking: the sum of the survivors, exactly', () => {
    const { sum, request } = runRound(ids, x, { dropAfterSharing: ['carol'] });
    assert.deepEqual(request, { survivors: ['alice', 'bob', 'dave', 'erin'], dropped: ['carol'] });
    assertCloseVectors(sum, plainSum(['alice', 'bob', 'dave', 'erin'], x), 5 * 2 ** -FIXED_POINT_BITS);
  });

  it('recovers two dropped clients while t survivors remain, and one that dropped before sharing keys', () => {
    const { sum } = runRound(ids, x, { dropAfterSharing: ['alice', 'erin'], dropBeforeSharing: ['bob'], threshold: 2 });
    assertCloseVectors(sum, plainSum(['carol', 'dave'], x), 5 * 2 ** -FIXED_POINT_BITS);
  });

  it('refuses to finish with fewer survivors than the threshold', () => {
    assert.throws(() => runRound(ids, x, { dropAfterSharing: ['alice', 'bob', 'carol'] }), /2 masked inputs arrived, fewer than the threshold 3/);
  });

  it('a client never reveals both shares of one peer, nor answers a request without itself', () => {
    const context = 'm/round-2';
    const clients = ['a', 'b', 'c'].map((id) => new SecureAggregationClient(id, context));
    const server = new SecureAggregationServer(context, 2, 8);
    const roster = server.setRoster(clients.map((c) => c.advertise()));
    clients.forEach((c) => server.addShares(c.id, c.shareKeys(roster, 2)));
    clients.forEach((c) => c.maskInput(new Uint32Array(8), server.sharesFor(c.id)));
    assert.throws(() => clients[0]!.unmask({ survivors: ['a', 'b', 'c'], dropped: ['c'] }), /appears twice/);
    assert.throws(() => clients[0]!.unmask({ survivors: ['b', 'c'], dropped: ['a'] }), /not among the survivors/);
    assert.throws(() => clients[0]!.unmask({ survivors: ['a', 'b'], dropped: [] }), /clients that shared keys are a, b, c/);
    assert.ok(clients[0]!.unmask({ survivors: ['a', 'b'], dropped: ['c'] }));
    assert.throws(() => clients[0]!.unmask({ survivors: ['a', 'b', 'c'], dropped: [] }), /one unmask request per round/);
  });

  it('refuses shares tampered with, or relayed to the wrong client', () => {
    const context = 'm/round-3';
    const clients = ['a', 'b', 'c'].map((id) => new SecureAggregationClient(id, context));
    const server = new SecureAggregationServer(context, 2, 4);
    const roster = server.setRoster(clients.map((c) => c.advertise()));
    const fromA = clients[0]!.shareKeys(roster, 2);
    const toB = fromA.find((s) => s.to === 'b')!;
    const flipped = Buffer.from(toB.ciphertext, 'base64');
    flipped[flipped.length - 1] ^= 1;
    clients[1]!.shareKeys(roster, 2);
    assert.throws(() => clients[1]!.maskInput(new Uint32Array(4), [{ ...toB, ciphertext: flipped.toString('base64') }]), /does not authenticate/);
    const clientC = clients[2]!;
    clientC.shareKeys(roster, 2);
    assert.throws(() => clientC.maskInput(new Uint32Array(4), [toB]), /does not belong to client 'c'/);
    assert.throws(() => server.addShares('a', fromA.slice(1)), /must send one share from itself to each of b, c/);
    assert.throws(() => server.addShares('zed', []), /not in this round's roster/);
  });
});
