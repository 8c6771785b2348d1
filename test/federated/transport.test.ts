/**
 * The wire and the edges of kiln.federated.serve/join: the tokens file (formats, refusals, the id a
 * header maps to), the binary envelope (round trip, every malformed form refused), a round over HTTPS
 * with mutual TLS (and a client without the CA refused), DP-FedAvg at the coordinator reporting ε per
 * round, and the combinations the coordinator refuses up front.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { join } from '../../src/federated/client/join.js';
import type { RoundSummary } from '../../src/federated/coordinator/rounds.js';
import { serve } from '../../src/federated/coordinator/serve.js';
import { decodeEnvelope, encodeEnvelope, packWeights, unpackWeights } from '../../src/federated/transport/envelope.js';
import { parseTokens } from '../../src/federated/transport/tokens.js';
import { makeTempDir } from '../data/fixtures.js';
import { clientCertificate, makeCa, serverCertificate } from '../serve/certificates.js';
import { blobs, TOKENS, writeTinyModel } from './helpers.js';

const silent = pino({ level: 'silent' });

describe('the tokens file', () => {
  it('maps a bearer header to its client; ids default to the line', () => {
    const t = parseTokens('# comment\nalice aaaaaaaaaaaaaaaa1\n\nbbbbbbbbbbbbbbbb2\n', 'tokens.txt');
    assert.deepEqual(t.ids, ['alice', 'client-2']);
    assert.deepEqual(t.identify('Bearer aaaaaaaaaaaaaaaa1'), { client: 'alice' });
    assert.deepEqual(t.identify('bearer   bbbbbbbbbbbbbbbb2 '), { client: 'client-2' });
    assert.deepEqual(t.identify('Bearer aaaaaaaaaaaaaaaa'), { refusal: 'invalid bearer token' });
    assert.match((t.identify(undefined) as { refusal: string }).refusal, /needs an Authorization: Bearer/);
  });

  it('refuses short, duplicate or malformed entries, naming the line', () => {
    assert.throws(() => parseTokens('alice short\n', 't.txt'), /t\.txt:1: a token must be at least 16/);
    assert.throws(() => parseTokens('a aaaaaaaaaaaaaaaa1\nb aaaaaaaaaaaaaaaa1\n', 't.txt'), /t\.txt:2: the token of 'b' is also another client's/);
    assert.throws(() => parseTokens('a aaaaaaaaaaaaaaaa1\na aaaaaaaaaaaaaaaa2\n', 't.txt'), /client id 'a' appears twice/);
    assert.throws(() => parseTokens('a b c\n', 't.txt'), /expected 'client-id token' or 'token', got 3 fields/);
    assert.throws(() => parseTokens('# nothing\n', 't.txt'), /no client tokens/);
  });
});

describe('the binary envelope', () => {
  const weights = [{ name: 'w', dims: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-7, -0]) }, { name: 'b', dims: [3], data: Float32Array.from([7, 8, 9]) }];

  it('carries weights bit for bit after a JSON header', () => {
    const { specs, payload } = packWeights(weights);
    const bytes = encodeEnvelope({ kind: 'update', modelId: 'm', round: 3, weights: specs }, payload);
    assert.equal(bytes.length, 12 + Buffer.byteLength(JSON.stringify({ kind: 'update', modelId: 'm', round: 3, weights: specs })) + 9 * 4);
    const e = decodeEnvelope(bytes, 'msg');
    assert.equal(e.header.round, 3);
    assert.deepEqual(unpackWeights(e.header.weights, e.payload, 'msg'), weights);
  });

  it('refuses what is not an envelope, a torn one, a bad header, or specs that do not match the payload', () => {
    const { specs, payload } = packWeights(weights);
    const good = encodeEnvelope({ kind: 'update', modelId: 'm', round: 1, weights: specs }, payload);
    assert.throws(() => decodeEnvelope(Buffer.from('{"round": 1}'), 'msg'), /msg: not a Kiln federated message/);
    assert.throws(() => decodeEnvelope(good.subarray(0, 20), 'msg'), /the header claims/);
    assert.throws(() => decodeEnvelope(good.subarray(0, good.length - 2), 'msg'), /not a whole number of 4-byte words/);
    assert.throws(() => decodeEnvelope(encodeEnvelope({ kind: 'x', modelId: 'm', round: 1.5 } as never, new Float32Array(0)), 'msg'), /an integer round/);
    const e = decodeEnvelope(good, 'msg');
    assert.throws(() => unpackWeights([{ name: 'w', dims: [2, 4] }, { name: 'b', dims: [3] }], e.payload, 'msg'), /declares 11 float32 values, the payload holds 9/);
    assert.throws(() => unpackWeights([{ name: 'w', dims: [-1] }], e.payload, 'msg'), /whole, non-negative dimensions/);
    assert.throws(() => unpackWeights('nope', e.payload, 'msg'), /must list \{name, dims\}/);
  });
});

describe('the coordinator over HTTPS, with DP-FedAvg, and its up-front refusals', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let model: string;
  before(async () => {
    ({ dir, remove } = await makeTempDir());
    model = await writeTinyModel(dir);
  });
  after(() => remove());

  it('runs a round over mutual TLS; a client that does not trust the CA cannot join', async () => {
    const ca = makeCa();
    const server = serverCertificate(ca);
    const client = clientCertificate(ca);
    await writeFile(joinPath(dir, 'cert.pem'), server.cert);
    const handle = await serve({ model, tokens: TOKENS, rounds: 1, clientsPerRound: 2, port: 0, logger: silent, checkpointDir: joinPath(dir, 'tls'), tls: { cert: joinPath(dir, 'cert.pem'), key: Buffer.from(server.key), clientCa: Buffer.from(ca.cert) } });
    assert.match(handle.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    await assert.rejects(join(handle.url, { dataset: blobs(1), token: TOKENS.dave!, retryTimeoutMs: 300 }), /stayed unreachable/);
    const tls = { ca: ca.cert, cert: client.cert, key: client.key };
    const results = await Promise.all(['alice', 'bob'].map((c) => join(handle.url, { dataset: blobs(c.length), token: TOKENS[c]!, tls })));
    assert.deepEqual(results.map((r) => r.roundsTrained), [1, 1]);
    assert.equal((await handle.finished).rounds, 1);
    await handle.close();
  });

  it('DP-FedAvg at the coordinator reports the ε spent after every round, growing', async () => {
    const rounds: RoundSummary[] = [];
    const handle = await serve({ model, tokens: TOKENS, rounds: 2, clientsPerRound: 2, port: 0, logger: silent, checkpointDir: joinPath(dir, 'dp'), dpEpsilon: 8, dpClipNorm: 0.5, onRound: (s) => rounds.push(s) });
    await Promise.all(['alice', 'bob'].map((c) => join(handle.url, { dataset: blobs(c.length), token: TOKENS[c]! })));
    await handle.finished;
    await handle.close();
    const eps = rounds.map((r) => r.epsilon!);
    assert.ok(eps[0]! > 0 && eps[1]! > eps[0]! && eps[1]! <= 8 + 1e-9, `ε per round ${eps}`);
  });

  it('refuses settings that cannot work before listening', async () => {
    const base = { model, tokens: TOKENS, port: 0, logger: silent, checkpointDir: joinPath(dir, 'refused') };
    await assert.rejects(serve({ ...base, secureAggregation: true, dpEpsilon: 8, clientsPerRound: 3 }), /cannot run together/);
    await assert.rejects(serve({ ...base, clientsPerRound: 2, minClients: 3 }), /minClients \(3\) cannot exceed clientsPerRound \(2\)/);
    await assert.rejects(serve({ ...base, clientsPerRound: 6, minClients: 5 }), /the tokens name 4 clients, fewer than minClients 5/);
    await assert.rejects(serve({ ...base, out: model }), /must not overwrite the starting model/);
    await assert.rejects(serve({ ...base, secureAggregation: true, clientsPerRound: 2, minClients: 1 }), /secure aggregation needs minClients of at least 2/);
  });
});
