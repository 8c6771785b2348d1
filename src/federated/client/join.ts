// Owns `kiln federate join`'s library side, `kiln.federated.join()`: a client that fetches the
// coordinator's model once, then polls for tasks — train from the round's global weights on the
// local data and send back only the weights (or, under secure aggregation, take part in the four
// phases and send only a masked update) — until the coordinator says the run is done. The local data
// never leaves the process. With `privacy` (example-level DP) the client trains with DP-SGD, counts
// its own ε over every round it trains in, and refuses a round that would exceed its budget: the
// guarantee is the client's, whatever the coordinator asks.
import { KilnError } from '../../errors.js';
import { loadDataset } from '../../data/by-name.js';
import type { ImageDataset } from '../../data/types.js';
import { parseOnnx } from '../../model/read-model.js';
import { modelFromOnnx } from '../../train/load.js';
import { TrainableModel } from '../../train/model.js';
import { Runtime } from '../../runtime/runtime.js';
import type { ClientTls } from '../../serve/tls.js';
import { checkExamplePrivacy, planClientPrivacy, type ClientPrivacy, type ClientTrainingShape, type ExamplePrivacyOptions } from '../example-privacy.js';
import { trainLocally, type LocalDataset, type LocalTrainingOptions } from '../local-training.js';
import { SecureAggregationClient } from '../secure-aggregation/client.js';
import { encodeFixedPoint } from '../secure-aggregation/fixed-point.js';
import type { EncryptedShare, KeyAdvertisement, UnmaskRequest } from '../secure-aggregation/messages.js';
import type { Task } from '../coordinator/rounds.js';
import { decodeEnvelope, encodeEnvelope, packWeights, unpackWeights } from '../transport/envelope.js';
import { allFinite, checkCompatible, getWeights, type ModelWeights } from '../weights.js';
import { Connection, RefusedError } from './connection.js';

/** Options of `kiln.federated.join()`. */
export interface JoinOptions {
  /** The local data: a data set, its name or path for `loadDataset`, or tensors `{x, y}`. Its training split is used. */
  dataset: string | ImageDataset | LocalDataset;
  /** This client's bearer token (from the coordinator's tokens file). */
  token: string;
  /** TLS settings for an https:// coordinator (a CA to trust, a client certificate). */
  tls?: ClientTls;
  /** How long to keep retrying an unreachable coordinator (default 120,000 ms). */
  retryTimeoutMs?: number;
  /**
   * Example-level DP for this client's examples: DP-SGD in every local epoch, σ calibrated for the
   * coordinator's planned rounds (or given); rounds past the budget are refused.
   */
  privacy?: ExamplePrivacyOptions;
  /** Called after each round this client trained in. */
  onRound?: (info: JoinedRound) => void;
  /** Called with each notable event (retries, refusals), for logs. */
  onEvent?: (message: string) => void;
}

/** One round a client took part in. */
export interface JoinedRound {
  /** The round. */
  round: number;
  /** Local examples trained on. */
  numExamples: number;
  /** The last local epoch's mean loss. */
  loss: number;
  /** Whether the update went out masked (secure aggregation). */
  secure: boolean;
  /** With example-level privacy: ε this client has spent so far, over all its rounds. */
  epsilon?: number;
  /** With example-level privacy: σ of its DP-SGD. */
  noiseMultiplier?: number;
}

/** What a client's run ends with. */
export interface JoinResult {
  /** The client's id at the coordinator. */
  client: string | undefined;
  /** Rounds this client trained in. */
  roundsTrained: number;
  /** The last round the coordinator finished. */
  finalRound: number;
}

function localData(data: ImageDataset | LocalDataset): LocalDataset {
  return 'train' in data ? { x: data.train.images, y: data.train.labels } : data;
}

/** Secure aggregation's per-round state on the client: the trained update and the protocol object. */
interface SecureRound {
  key: string;
  protocol: SecureAggregationClient;
  delta: Float64Array;
  numExamples: number;
}

/**
 * Joins a federation at `url` and trains in every round the coordinator samples this client for,
 * until it says the run is done. Resolves with what this client did.
 */
export async function join(url: string, options: JoinOptions): Promise<JoinResult> {
  const note = options.onEvent ?? (() => undefined);
  const connection = new Connection(url, { token: options.token, tls: options.tls, retryTimeoutMs: options.retryTimeoutMs, onRetry: (err) => note(`coordinator unreachable, retrying: ${err.message}`) });
  const dataset = localData(typeof options.dataset === 'string' ? await loadDataset(options.dataset) : options.dataset);
  const examples = dataset.x.shape[0] ?? 0;
  if (options.privacy) checkExamplePrivacy(options.privacy, examples);
  let privacy: ClientPrivacy | undefined;
  const modelReply = await connection.request('GET', 'model');
  const model = await modelFromOnnx(modelReply.bytes, parseOnnx(modelReply.bytes, `the coordinator's model`), `the coordinator's model`);
  if (!(model instanceof TrainableModel)) throw new KilnError('NOT_TRAINABLE', "the coordinator's model cannot be trained here");
  // A worker of its own: clients sharing a process (tests, demos) then never interleave in one runtime.
  const runtime = new Runtime();
  model.useRuntime(runtime);
  const specs = getWeights(model);
  let seen: string | undefined;
  let client: string | undefined;
  let roundsTrained = 0;
  let secure: SecureRound | undefined;
  try {
    for (;;) {
      const reply = await connection.request('GET', `task${seen ? `?after=${encodeURIComponent(seen)}` : ''}`, undefined, 90_000);
      if (reply.status === 204) continue;
      const task = JSON.parse(reply.bytes.toString('utf8')) as Task;
      seen = task.key;
      client = task.client;
      if (task.kind === 'done') return { client, roundsTrained, finalRound: task.round };
      const stamp = { modelId: task.modelId, run: task.run, round: task.round, attempt: task.attempt };
      try {
        if (task.kind === 'train') {
          const g = decodeEnvelope((await connection.request('GET', `weights?round=${task.round}`)).bytes, 'the global weights');
          if (g.header.modelId !== task.modelId || g.header.round !== task.round) throw new KilnError('INVALID_DATA', `the global weights are for model ${g.header.modelId} round ${g.header.round}, the task for ${task.modelId} round ${task.round}`);
          const global = unpackWeights(g.header.weights, g.payload, 'the global weights');
          checkCompatible(specs, global, "the coordinator's global weights");
          // The coordinator's settings, never its privacy: that is this client's own.
          const training: LocalTrainingOptions = { ...(task.training as LocalTrainingOptions | undefined) };
          delete training.privacy;
          let shape: ClientTrainingShape | undefined;
          if (options.privacy) {
            shape = { examples, batchSize: training.batchSize ?? 32, epochs: training.epochs ?? 1 };
            privacy ??= planClientPrivacy(options.privacy, shape, plannedRounds(task));
            privacy.checkBudget(shape);
          }
          const result = await trainLocally(model, global, dataset, { ...training, ...(privacy ? { privacy: privacy.fitPrivacy() } : {}) });
          // Counted once the noised steps ran: whatever happens to the update, it may have left.
          const epsilon = privacy?.recordRound(shape!);
          if (!allFinite(result.weights)) throw new KilnError('NAN_LOSS', `local training in round ${task.round} produced NaN or infinite weights (loss ${result.loss})`);
          if (task.secure) {
            const protocol = new SecureAggregationClient(task.client, `${task.modelId}/run-${task.run}/round-${task.round}/attempt-${task.attempt}`);
            secure = { key: task.key, protocol, delta: difference(result.weights, global), numExamples: result.numExamples };
            await connection.postJson('secagg/keys', { ...stamp, advertisement: protocol.advertise(), numExamples: result.numExamples });
          } else {
            const { specs: sent, payload } = packWeights(result.weights);
            await connection.request('POST', 'update', encodeEnvelope({ kind: 'update', ...stamp, numExamples: result.numExamples, loss: result.loss, weights: sent }, payload));
          }
          roundsTrained++;
          options.onRound?.({ round: task.round, numExamples: result.numExamples, loss: result.loss, secure: Boolean(task.secure), ...(privacy ? { epsilon, noiseMultiplier: privacy.noiseMultiplier } : {}) });
        } else {
          if (!secure || secure.key.replace(/\.train$/, '') !== task.key.replace(/\.[a-z]+$/, '')) throw new KilnError('INVALID_DATA', `a '${task.kind}' task for round ${task.round} attempt ${task.attempt}, but this client holds no secure-aggregation state for it`);
          if (task.kind === 'shares') {
            await connection.postJson('secagg/shares', { ...stamp, shares: secure.protocol.shareKeys(task.roster as KeyAdvertisement[], task.threshold as number) });
          } else if (task.kind === 'input') {
            // (n / N)·(w − w_global): the masked sum over survivors is their example-weighted update, scaled by their share of N.
            const weight = secure.numExamples / (task.totalExamples as number);
            const scaled = secure.delta.map((v) => v * weight);
            const masked = secure.protocol.maskInput(encodeFixedPoint(scaled, `round ${task.round}'s update`), task.shares as EncryptedShare[]);
            await connection.request('POST', 'secagg/input', encodeEnvelope({ kind: 'masked', ...stamp }, masked));
          } else if (task.kind === 'unmask') {
            await connection.postJson('secagg/unmask', { ...stamp, response: secure.protocol.unmask(task.request as UnmaskRequest) });
            secure = undefined;
          }
        }
      } catch (err) {
        // The coordinator refused a stale message (the round moved on): nothing to undo, poll again.
        if (err instanceof RefusedError && err.status === 409) {
          note(err.message);
          continue;
        }
        if (!(err instanceof KilnError) || err instanceof RefusedError || err.code === 'IO_ERROR') throw err;
        // This client cannot take part in this round (bad local result, a protocol message it refuses): say why and wait for the next.
        note(`round ${task.round}: ${err.message}`);
        await connection.postJson('failure', { ...stamp, reason: err.message });
      }
    }
  } finally {
    model.dispose();
    await runtime.close();
  }
}

/** The run's planned rounds, which a train task carries (the calibration of σ for a target ε needs them). */
function plannedRounds(task: Task): number {
  const rounds = task.rounds;
  if (!(typeof rounds === 'number' && Number.isInteger(rounds) && rounds >= 1)) {
    throw new KilnError('INVALID_DATA', `example-level privacy: the coordinator's train task names no planned rounds (got ${String(rounds)}), so σ cannot be calibrated to the target ε; give the noise multiplier instead`);
  }
  return rounds;
}

function difference(a: ModelWeights, b: ModelWeights): Float64Array {
  const total = a.reduce((n, w) => n + w.data.length, 0);
  const out = new Float64Array(total);
  let offset = 0;
  a.forEach((w, k) => {
    const base = b[k]!.data;
    for (let i = 0; i < w.data.length; i++) out[offset + i] = w.data[i]! - base[i]!;
    offset += w.data.length;
  });
  return out;
}
