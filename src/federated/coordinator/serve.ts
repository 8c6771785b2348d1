// Owns `kiln federate serve`'s library side, `kiln.federated.serve()`: the coordinator's HTTP(S)
// server on Kiln's server stack (Fastify, bearer tokens compared in constant time, TLS from
// serve/tls.ts). Clients long-poll for their next task and exchange binary messages; long polling
// over plain HTTP needs no new dependency and passes any proxy, and a round's few messages per client
// gain nothing from a WebSocket's open channel. Also owns the start: the model id, resuming from the
// round checkpoint, and what is saved after every round (the global .onnx, then the checkpoint).
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type Logger } from 'pino';
import { KilnError } from '../../errors.js';
import { writeFileAtomic } from '../../model/atomic-write.js';
import { readOnnxFile } from '../../model/read-model.js';
import { ServeError } from '../../serve/errors.js';
import { loadTls, type TlsOptions } from '../../serve/tls.js';
import { modelFromOnnx } from '../../train/load.js';
import { TrainableModel } from '../../train/model.js';
import { dpFedAvg } from '../privacy.js';
import { strategyByName, type StrategySettings } from '../strategies/index.js';
import type { Strategy } from '../strategies/strategy.js';
import { decodeEnvelope, encodeEnvelope, FEDERATED_API, packWeights } from '../transport/envelope.js';
import { parseTokens, readTokens, type ClientTokens } from '../transport/tokens.js';
import { countValues, getWeights, setWeights, type ModelWeights } from '../weights.js';
import { loadRoundCheckpoint, saveRoundCheckpoint } from './checkpoint.js';
import { Coordinator, type RoundSummary } from './rounds.js';

/** Options of `kiln.federated.serve()`; `kiln federate serve` takes the same as flags. */
export interface FederatedServeOptions {
  /** The starting model: an .onnx file Kiln trains (a Kiln model, or an imported float graph). */
  model: string;
  /** Rounds to run (default 20); a resumed run continues up to this many. */
  rounds?: number;
  /** Clients sampled per round (default 4). */
  clientsPerRound?: number;
  /** Fewest updates a round may aggregate after the round timeout (default: clientsPerRound). */
  minClients?: number;
  /** Client credentials: a tokens file (`client-id token` per line), or tokens by client id. */
  tokens: string | Record<string, string>;
  /** 'fedavg' (default), 'fedprox', 'fedavgm', 'fedadam', or a Strategy. */
  strategy?: string | Strategy;
  /** Settings of a strategy given by name (μ, server learning rate, momentum, τ). */
  strategySettings?: StrategySettings;
  /** Where the round checkpoint goes (default: beside the model, `<model>.federated/`). */
  checkpointDir?: string;
  /** The global model written after every round (default `<checkpointDir>/global.onnx`). */
  out?: string;
  /** Time a round (and each later secure-aggregation phase) waits for its clients (default 600,000 ms). */
  roundTimeoutMs?: number;
  /** Local epochs per round (default 1). */
  localEpochs?: number;
  /** Local batch size (default 32). */
  batchSize?: number;
  /** Local optimizer (default 'sgd'); its state starts fresh every round. */
  localOptimizer?: string;
  /** Local learning rate (default: the optimizer's). */
  learningRate?: number;
  /** Seed for client sampling and the clients' shuffling (default 42). */
  seed?: number;
  /** Secure aggregation (Bonawitz et al. 2017): the coordinator sees only the sum of the updates. */
  secureAggregation?: boolean;
  /** Secure aggregation's threshold t (default: a majority of the cohort, at least 2). */
  threshold?: number;
  /**
   * DP-FedAvg: the ε the whole run may spend (client-level, RDP accountant; σ calibrated over the
   * planned rounds at sampling rate clientsPerRound / clients in the tokens). Not with secure
   * aggregation: DP-FedAvg clips each client's update at the coordinator, which then sees them.
   */
  dpEpsilon?: number;
  /** DP-FedAvg's δ (default 1e-5). */
  dpDelta?: number;
  /** DP-FedAvg's clip norm C of each client's update (default 1). */
  dpClipNorm?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 8600; 0 picks a free one). */
  port?: number;
  /** HTTPS with this certificate and key (and mutual TLS with clientCa). */
  tls?: TlsOptions;
  /** A pino logger, else a JSON logger on stdout at `logLevel` (default 'info'). */
  logger?: Logger;
  /** Level of the default logger: fatal, error, warn, info, debug, silent. */
  logLevel?: string;
  /** Called after every committed round. */
  onRound?: (summary: RoundSummary) => void;
}

/** What a finished run reports. */
export interface FederatedRunResult {
  /** Rounds finished (resumed ones included). */
  rounds: number;
  /** The global model file. */
  out: string;
  /** The round checkpoint file. */
  checkpoint: string;
}

/** A running coordinator. */
export interface CoordinatorHandle {
  /** http(s)://host:port */
  readonly url: string;
  /** The port it listens on (the one picked when 0 was asked for). */
  readonly port: number;
  /** The federation's model id (a hash of the starting model file), carried by every message. */
  readonly modelId: string;
  /** The round the run resumed after (0 for a fresh run). */
  readonly resumedFrom: number;
  /** Resolves when the last round is committed (rejects if a round cannot be saved). */
  readonly finished: Promise<FederatedRunResult>;
  /** The Fastify instance (for `inject()` in tests). */
  readonly app: FastifyInstance;
  /** The round loop. @internal */
  readonly coordinator: Coordinator;
  /**
   * Waits (up to `graceMs`, default 10,000) until every client that took part has been told the run is
   * over, so they exit cleanly; then stops.
   */
  close(graceMs?: number): Promise<void>;
}

const API = FEDERATED_API;
/** Room for a message's JSON header (names and shapes, round, roster) beyond the weights themselves. */
const HEADER_MARGIN_BYTES = 64 * 1024;

function tokensFrom(option: FederatedServeOptions['tokens']): Promise<ClientTokens> | ClientTokens {
  if (typeof option === 'string') return readTokens(option);
  return parseTokens(Object.entries(option).map(([id, token]) => `${id} ${token}`).join('\n'), 'the "tokens" option');
}

function positiveInteger(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new KilnError('INVALID_ARGUMENT', `${what} must be a positive integer, got ${v}`);
  return v;
}

/** The body of a JSON message (the routes read every body as bytes, under the size limit). */
function jsonBody<T>(req: FastifyRequest): T {
  try {
    const parsed = JSON.parse((req.body as Buffer).toString('utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
    return parsed as T;
  } catch {
    throw new ServeError(400, 'the body must be a JSON object');
  }
}

/**
 * Starts a federated-learning coordinator: it listens, resumes from the round checkpoint if there is
 * one, and runs the rounds as clients join (`join()`); `finished` resolves after the last round.
 */
export async function serve(options: FederatedServeOptions): Promise<CoordinatorHandle> {
  const log = options.logger ?? pino({ level: options.logLevel ?? 'info', base: { service: 'kiln-federate' } });
  const rounds = positiveInteger(options.rounds, 20, 'rounds');
  const clientsPerRound = positiveInteger(options.clientsPerRound, 4, 'clientsPerRound');
  const minClients = positiveInteger(options.minClients, clientsPerRound, 'minClients');
  if (minClients > clientsPerRound) throw new KilnError('INVALID_ARGUMENT', `minClients (${minClients}) cannot exceed clientsPerRound (${clientsPerRound})`);
  if (options.secureAggregation && minClients < 2) throw new KilnError('INVALID_ARGUMENT', 'secure aggregation needs minClients of at least 2: the sum of one update is the update');
  const roundTimeoutMs = options.roundTimeoutMs ?? 600_000;
  if (!(roundTimeoutMs > 0)) throw new KilnError('INVALID_ARGUMENT', `roundTimeoutMs must be > 0, got ${roundTimeoutMs}`);
  const tokens = await tokensFrom(options.tokens);
  if (tokens.ids.length < minClients) throw new KilnError('INVALID_ARGUMENT', `the tokens name ${tokens.ids.length} clients, fewer than minClients ${minClients}`);
  const chosen = typeof options.strategy === 'object' ? options.strategy : strategyByName(options.strategy ?? 'fedavg', options.strategySettings);
  if (options.dpEpsilon !== undefined && options.secureAggregation) {
    throw new KilnError('INVALID_ARGUMENT', 'DP-FedAvg (dpEpsilon) and secure aggregation cannot run together here: DP-FedAvg clips each client\'s update at the coordinator, and secure aggregation hides them');
  }
  const strategy =
    options.dpEpsilon === undefined
      ? chosen
      : dpFedAvg({ strategy: chosen, targetEpsilon: options.dpEpsilon, delta: options.dpDelta, clipNorm: options.dpClipNorm ?? 1, clients: tokens.ids.length, clientsPerRound, rounds });

  const modelFile = path.resolve(options.model);
  const { bytes: modelBytes, proto } = await readOnnxFile(modelFile);
  const model = await modelFromOnnx(modelBytes, proto, modelFile);
  if (!(model instanceof TrainableModel)) {
    throw new KilnError('NOT_TRAINABLE', `'${options.model}' cannot be federated: ${(model as { notTrainable?: string }).notTrainable ?? 'Kiln cannot train it'}`);
  }
  const modelId = createHash('sha256').update(modelBytes).digest('hex').slice(0, 16);
  const checkpointDir = path.resolve(options.checkpointDir ?? modelFile.replace(/\.onnx$/i, '') + '.federated');
  const out = path.resolve(options.out ?? path.join(checkpointDir, 'global.onnx'));
  if (out === modelFile) throw new KilnError('INVALID_ARGUMENT', `the global model (out) must not overwrite the starting model '${options.model}': its hash is the federation's model id, which a resumed run checks`);
  const checkpointFile = path.join(checkpointDir, 'round-checkpoint.kfed');
  await fs.mkdir(checkpointDir, { recursive: true });
  let global: ModelWeights = getWeights(model);
  let resumedFrom = 0;
  const saved = await loadRoundCheckpoint(checkpointFile);
  if (saved) {
    if (saved.modelId !== modelId) throw new KilnError('INVALID_ARGUMENT', `the checkpoint '${checkpointFile}' belongs to model ${saved.modelId}, not to '${options.model}' (${modelId}); give another --checkpoint-dir`);
    if (saved.strategy !== strategy.name) throw new KilnError('INVALID_ARGUMENT', `the checkpoint '${checkpointFile}' was written by strategy ${saved.strategy}, this run uses ${strategy.name}`);
    setWeights(model, saved.weights);
    strategy.restore?.(saved.strategyState);
    global = saved.weights;
    resumedFrom = saved.round;
    log.info({ round: saved.round, checkpoint: checkpointFile }, 'resumed from the round checkpoint');
  }

  const commit = async (round: number, weights: ModelWeights) => {
    setWeights(model, weights);
    await writeFileAtomic(out, model.toOnnx());
    await saveRoundCheckpoint(checkpointFile, { modelId, round, strategy: strategy.name, strategyState: strategy.state?.(), weights });
  };
  const coordinator = new Coordinator(
    modelId,
    global,
    resumedFrom,
    strategy,
    {
      rounds,
      clientsPerRound,
      minClients,
      roundTimeoutMs,
      training: { epochs: options.localEpochs ?? 1, batchSize: options.batchSize ?? 32, optimizer: options.localOptimizer ?? 'sgd', ...(options.learningRate !== undefined ? { learningRate: options.learningRate } : {}) },
      seed: options.seed ?? 42,
      secureAggregation: options.secureAggregation ?? false,
      threshold: options.threshold,
    },
    { log, commit, onRound: options.onRound },
  );

  // Every message is at most the weights (4 bytes each) plus a header: larger bodies are refused unread.
  const bodyLimit = countValues(global) * 4 + HEADER_MARGIN_BYTES + clientsPerRound * 2048;
  const tls = options.tls ? await loadTls(options.tls) : undefined;
  const app = Fastify({
    ...(tls ? { https: { cert: tls.cert, key: tls.key, ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}) } } : {}),
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    return503OnClosing: false,
  });
  const clientOf = new WeakMap<FastifyRequest, string>();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: FastifyError | KilnError, req: FastifyRequest, reply: FastifyReply) => {
    const fe = err as FastifyError;
    const status = err instanceof ServeError ? err.status : fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 413 : err instanceof KilnError ? 400 : (fe.statusCode ?? 500);
    const message = status === 413 ? `the message is larger than the ${bodyLimit}-byte limit (the model's weights plus ${HEADER_MARGIN_BYTES + clientsPerRound * 2048} bytes)` : err.message;
    if (status >= 500) req.log.error({ err, url: req.url }, 'request failed');
    else req.log.warn({ client: clientOf.get(req) ?? null, status, url: req.url.split('?')[0], reason: message }, 'message rejected');
    return reply.code(status).type('application/json').send(JSON.stringify({ error: message }));
  });
  app.addHook('onRequest', (req, reply, done) => {
    const who = tokens.identify(req.headers.authorization);
    if ('refusal' in who) {
      reply.header('www-authenticate', 'Bearer');
      reply.header('connection', 'close');
      return done(new ServeError(401, who.refusal));
    }
    clientOf.set(req, who.client);
    done();
  });
  const client = (req: FastifyRequest) => clientOf.get(req)!;

  app.get(`${API}/model`, async (_req, reply) => reply.type('application/octet-stream').header('x-kiln-model-id', modelId).send(Buffer.from(modelBytes)));
  app.get(`${API}/task`, async (req, reply) => {
    const after = (req.query as { after?: string }).after;
    const abort = new AbortController();
    req.raw.once('close', () => abort.abort());
    const task = await coordinator.poll(client(req), after, abort.signal);
    if (!task) return reply.code(204).send();
    return reply.type('application/json').send(JSON.stringify(task));
  });
  app.get(`${API}/weights`, async (req, reply) => {
    const round = Number((req.query as { round?: string }).round);
    const expected = coordinator.roundsDone + 1;
    if (round !== expected) throw new ServeError(409, `global weights for round ${round} are not on offer; the coordinator is at round ${expected}`);
    const { specs, payload } = packWeights(coordinator.weights);
    return reply.type('application/octet-stream').send(encodeEnvelope({ kind: 'global', modelId, round, weights: specs }, payload));
  });
  const envelopeRoute = (route: string, kind: string, accept: (client: string, e: ReturnType<typeof decodeEnvelope>) => void) =>
    app.post(`${API}/${route}`, async (req, reply) => {
      const e = decodeEnvelope(req.body as Buffer, `${kind} from '${client(req)}'`);
      if (e.header.kind !== kind) throw new ServeError(400, `expected a '${kind}' message, got '${e.header.kind}'`);
      accept(client(req), e);
      return reply.code(202).type('application/json').send('{"accepted":true}');
    });
  envelopeRoute('update', 'update', (c, e) => coordinator.acceptUpdate(c, e));
  envelopeRoute('secagg/input', 'masked', (c, e) => coordinator.acceptMaskedInput(c, e));
  const jsonRoute = (route: string, accept: (client: string, body: Record<string, unknown>) => void) =>
    app.post(`${API}/${route}`, async (req, reply) => {
      accept(client(req), jsonBody(req));
      return reply.code(202).type('application/json').send('{"accepted":true}');
    });
  jsonRoute('failure', (c, b) => coordinator.acceptFailure(c, b));
  jsonRoute('secagg/keys', (c, b) => coordinator.acceptKeys(c, b));
  jsonRoute('secagg/shares', (c, b) => coordinator.acceptShares(c, b as never));
  jsonRoute('secagg/unmask', (c, b) => coordinator.acceptUnmask(c, b as never));

  const host = options.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port: options.port ?? 8600 });
  } catch (err) {
    await app.close();
    throw new KilnError('IO_ERROR', `cannot listen on ${host}:${options.port ?? 8600}: ${(err as Error).message}`, { cause: err });
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8600);
  const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, modelId, rounds, clientsPerRound, minClients, strategy: strategy.name, secureAggregation: options.secureAggregation ?? false, resumedFrom, clients: tokens.ids.length }, 'kiln federate coordinator listening');
  const finished = coordinator.run().then(() => ({ rounds: coordinator.roundsDone, out, checkpoint: checkpointFile }));
  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    modelId,
    resumedFrom,
    finished,
    app,
    coordinator,
    close(graceMs = 10_000) {
      closed ??= (async () => {
        coordinator.finish();
        const deadline = Date.now() + graceMs;
        while (Date.now() < deadline && coordinator.participants.some((c) => !coordinator.toldDone.has(c))) await new Promise((r) => setTimeout(r, 100));
        await app.close();
        model.dispose();
      })();
      return closed;
    },
  };
}
