/**
 * The coordinator and clients in one process over loopback HTTP: rounds end to end (the global model
 * file loads and changed, the checkpoint holds the last round), secure aggregation reaching the same
 * model as plain FedAvg within the fixed-point rounding, resuming from the checkpoint, and every
 * fault the issue lists — wrong token, NaN, a wrong shape, another round or model, an oversized body,
 * a client that vanishes mid-round, a client that drops after masking — refused with its reason while
 * the round completes with the others and the global model stays finite.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join as joinPath } from 'node:path';
import { pino } from 'pino';
import { Connection, RefusedError } from '../../src/federated/client/connection.js';
import { join } from '../../src/federated/client/join.js';
import { loadRoundCheckpoint } from '../../src/federated/coordinator/checkpoint.js';
import type { RoundSummary, Task } from '../../src/federated/coordinator/rounds.js';
import { serve, type FederatedServeOptions } from '../../src/federated/coordinator/serve.js';
import { SecureAggregationClient } from '../../src/federated/secure-aggregation/client.js';
import { decodeEnvelope, encodeEnvelope, packWeights, unpackWeights } from '../../src/federated/transport/envelope.js';
import { allFinite, getWeights, type ModelWeights } from '../../src/federated/weights.js';
import { loadModel } from '../../src/index.js';
import { makeTempDir } from '../data/fixtures.js';
import { blobs, TOKENS, writeTinyModel } from './helpers.js';

const silent = pino({ level: 'silent' });

function maxDifference(a: ModelWeights, b: ModelWeights): number {
  let worst = 0;
  a.forEach((w, k) => w.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b[k]!.data[i]!)))));
  return worst;
}

async function run(dir: string, options: Partial<FederatedServeOptions>, clients: string[], seedOf = (c: string) => c.length * 7 + c.charCodeAt(0)) {
  const rounds: RoundSummary[] = [];
  const handle = await serve({ model: joinPath(dir, 'start.onnx'), tokens: TOKENS, rounds: 2, clientsPerRound: clients.length, minClients: 2, port: 0, logger: silent, learningRate: 0.1, batchSize: 16, onRound: (s) => rounds.push(s), ...options });
  const joined = Promise.all(clients.map((c) => join(handle.url, { dataset: blobs(seedOf(c)), token: TOKENS[c]! })));
  const result = await handle.finished;
  const clientResults = await joined;
  await handle.close();
  return { handle, result, rounds, clientResults };
}

/** A client driven by hand over the wire, for the faults: poll, fetch weights, send what the test says. */
class HandClient {
  readonly connection: Connection;
  seen: string | undefined;
  constructor(url: string, readonly id: string) {
    this.connection = new Connection(url, { token: TOKENS[id]!, retryTimeoutMs: 1000 });
  }
  async task(): Promise<Task> {
    for (;;) {
      const r = await this.connection.request('GET', `task${this.seen ? `?after=${this.seen}` : ''}`, undefined, 90_000);
      if (r.status === 204) continue;
      const t = JSON.parse(r.bytes.toString('utf8')) as Task;
      this.seen = t.key;
      return t;
    }
  }
  async global(round: number): Promise<ModelWeights> {
    const e = decodeEnvelope((await this.connection.request('GET', `weights?round=${round}`)).bytes, 'global');
    return unpackWeights(e.header.weights, e.payload, 'global');
  }
  update(task: Task, weights: ModelWeights, extra: Record<string, unknown> = {}) {
    const { specs, payload } = packWeights(weights);
    return this.connection.request('POST', 'update', encodeEnvelope({ kind: 'update', modelId: task.modelId, run: task.run, round: task.round, attempt: task.attempt, numExamples: 10, loss: 1, weights: specs, ...extra }, payload));
  }
}

describe('kiln.federated.serve and join over loopback', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let start: ModelWeights;
  before(async () => {
    ({ dir, remove } = await makeTempDir());
    start = getWeights((await loadModel(await writeTinyModel(dir))) as never);
  });
  after(() => remove());

  let plainFinal: ModelWeights;
  it('runs rounds end to end: the global model file loads, changed, and the checkpoint holds the last round', async () => {
    const { result, rounds, clientResults } = await run(dir, { checkpointDir: joinPath(dir, 'plain') }, ['alice', 'bob', 'carol']);
    assert.equal(result.rounds, 2);
    assert.deepEqual(rounds.map((r) => [r.round, r.aggregated]), [[1, ['alice', 'bob', 'carol']], [2, ['alice', 'bob', 'carol']]]);
    assert.ok(rounds.every((r) => r.numExamples === 144 && Number.isFinite(r.meanLoss)));
    assert.deepEqual(clientResults.map((c) => [c.client, c.roundsTrained, c.finalRound]), [['alice', 2, 2], ['bob', 2, 2], ['carol', 2, 2]]);
    plainFinal = getWeights((await loadModel(result.out)) as never);
    assert.ok(maxDifference(plainFinal, start) > 1e-3, 'the global model did not change');
    const ckpt = await loadRoundCheckpoint(result.checkpoint);
    assert.equal(ckpt!.round, 2);
    assert.ok(maxDifference(ckpt!.weights, plainFinal) === 0);
  });

  it('reaches the same model with secure aggregation, within the fixed-point rounding', async () => {
    const { result, rounds } = await run(dir, { checkpointDir: joinPath(dir, 'secure'), secureAggregation: true }, ['alice', 'bob', 'carol']);
    assert.deepEqual(rounds.map((r) => r.aggregated), [['alice', 'bob', 'carol'], ['alice', 'bob', 'carol']]);
    const secureFinal = getWeights((await loadModel(result.out)) as never);
    const d = maxDifference(secureFinal, plainFinal);
    assert.ok(d < 1e-4, `secure aggregation's model differs from plain FedAvg's by ${d}`);
    assert.ok(Number.isNaN(rounds[0]!.meanLoss), 'secure aggregation must not report per-client losses');
  });

  it('resumes from the round checkpoint: a run of 3 rounds after 2 runs only round 3', async () => {
    const { handle, rounds } = await run(dir, { checkpointDir: joinPath(dir, 'plain'), rounds: 3 }, ['alice', 'bob', 'carol']);
    assert.equal(handle.resumedFrom, 2);
    assert.deepEqual(rounds.map((r) => r.round), [3]);
    await assert.rejects(serve({ model: joinPath(dir, 'start.onnx'), tokens: TOKENS, checkpointDir: joinPath(dir, 'plain'), strategy: 'fedadam', port: 0, logger: silent, clientsPerRound: 3 }), /written by strategy fedavg, this run uses fedadam/);
  });

  it('refuses a wrong token, NaN, a wrong shape, another round or model and an oversized body, and completes the round with the others', async () => {
    const rounds: RoundSummary[] = [];
    const handle = await serve({ model: joinPath(dir, 'start.onnx'), tokens: TOKENS, rounds: 1, clientsPerRound: 4, minClients: 2, port: 0, logger: silent, checkpointDir: joinPath(dir, 'faults'), onRound: (s) => rounds.push(s) });
    const stranger = new Connection(handle.url, { token: 'not-a-client-token-at-all', retryTimeoutMs: 1000 });
    await assert.rejects(stranger.request('GET', 'task'), (e: RefusedError) => e.status === 401 && /invalid bearer token/.test(e.message));
    const dave = new HandClient(handle.url, 'dave');
    const carol = new HandClient(handle.url, 'carol');
    const goodClients = Promise.all(['alice', 'bob'].map((c) => join(handle.url, { dataset: blobs(c.length), token: TOKENS[c]! })));
    const [tDave, tCarol] = await Promise.all([dave.task(), carol.task()]);
    const g = await dave.global(tDave.round);
    const refusal = (status: number, pattern: RegExp) => (e: RefusedError) => e.status === status && pattern.test(e.message);
    await assert.rejects(dave.update({ ...tDave, round: 7 }, g), refusal(409, /round 7 attempt 1; the coordinator is at round 1 attempt 1/));
    await assert.rejects(dave.update({ ...tDave, modelId: 'feedfacefeedface' }, g), refusal(409, /for model "feedfacefeedface"/));
    const tooBig = new Uint8Array(64 * 4 + 200_000);
    await assert.rejects(dave.connection.request('POST', 'update', tooBig), refusal(413, /larger than the \d+-byte limit/));
    const wrongShape = g.map((w, k) => (k === 0 ? { ...w, dims: [w.dims[1]!, w.dims[0]!] } : w));
    await assert.rejects(dave.update(tDave, wrongShape), refusal(400, /should have shape \[2, 8\], got \[8, 2\]/));
    const nan = g.map((w, k) => (k === 1 ? { ...w, data: w.data.map((v, i) => (i === 3 ? Number.NaN : v)) } : w));
    await assert.rejects(carol.update(tCarol, nan), refusal(400, /holds NaN at index 3/));
    await goodClients;
    const result = await handle.finished;
    await handle.close();
    assert.deepEqual(rounds[0]!.aggregated, ['alice', 'bob']);
    assert.deepEqual(rounds[0]!.rejected.map((r) => r.client).sort(), ['carol', 'dave']);
    assert.match(rounds[0]!.rejected.find((r) => r.client === 'dave')!.reason, /should have shape/);
    assert.ok(allFinite(getWeights((await loadModel(result.out)) as never)));
  });

  it('completes a round after the timeout with --min-clients when a client vanishes mid-round', async () => {
    const rounds: RoundSummary[] = [];
    const handle = await serve({ model: joinPath(dir, 'start.onnx'), tokens: TOKENS, rounds: 1, clientsPerRound: 3, minClients: 2, roundTimeoutMs: 10_000, port: 0, logger: silent, checkpointDir: joinPath(dir, 'vanish'), onRound: (s) => rounds.push(s) });
    const carol = new HandClient(handle.url, 'carol');
    const good = Promise.all(['alice', 'bob'].map((c) => join(handle.url, { dataset: blobs(c.length), token: TOKENS[c]! })));
    await carol.task(); // takes the round's task, then is never heard from again
    await good;
    await handle.finished;
    await handle.close(0);
    const last = rounds.at(-1)!;
    assert.deepEqual(last.aggregated, ['alice', 'bob']);
    assert.match(last.rejected.find((r) => r.client === 'carol')!.reason, /no answer in phase 'train'/);
  });

  it('with secure aggregation, recovers a client that drops after masking: the same model as plain FedAvg without it', async () => {
    // Plain: carol is in the cohort but sends NaN, so alice's and bob's updates are averaged.
    const results: ModelWeights[] = [];
    for (const secure of [false, true]) {
      const handle = await serve({ model: joinPath(dir, 'start.onnx'), tokens: TOKENS, rounds: 1, clientsPerRound: 3, minClients: 2, roundTimeoutMs: 10_000, port: 0, logger: silent, checkpointDir: joinPath(dir, `drop-${secure}`), secureAggregation: secure });
      const carol = new HandClient(handle.url, 'carol');
      const good = Promise.all(['alice', 'bob'].map((c) => join(handle.url, { dataset: blobs(c.length), token: TOKENS[c]! })));
      const t = await carol.task();
      const g = await carol.global(t.round);
      if (!secure) {
        await assert.rejects(carol.update(t, g.map((w) => ({ ...w, data: w.data.map(() => Number.NaN) }))), /NaN/);
      } else {
        // Carol takes part up to masking, then never sends her input. On a loaded machine a phase can time
        // out before alice and bob finish training and the round is tried again: she follows each attempt.
        let protocol: SecureAggregationClient | undefined;
        for (let task = t; ; task = await carol.task()) {
          const at = { modelId: task.modelId, run: task.run, round: task.round, attempt: task.attempt };
          if (task.kind === 'train') {
            protocol = new SecureAggregationClient('carol', `${task.modelId}/run-${task.run}/round-${task.round}/attempt-${task.attempt}`);
            await carol.connection.postJson('secagg/keys', { ...at, advertisement: protocol.advertise(), numExamples: 48 });
          } else if (task.kind === 'shares') {
            await carol.connection.postJson('secagg/shares', { ...at, shares: protocol!.shareKeys(task.roster as never, task.threshold as number) });
          } else {
            assert.equal(task.kind, 'input');
            protocol!.maskInput(new Uint32Array(g.reduce((n, w) => n + w.data.length, 0)), task.shares as never); // masked, never sent
            break;
          }
        }
      }
      await good;
      const result = await handle.finished;
      await handle.close(0);
      results.push(getWeights((await loadModel(result.out)) as never));
    }
    const d = maxDifference(results[0]!, results[1]!);
    assert.ok(d < 1e-4, `the recovered secure round differs from the plain one by ${d}`);
    assert.ok(maxDifference(results[1]!, start) > 1e-3);
  });
});
