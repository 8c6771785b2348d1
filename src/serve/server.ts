import path from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type Logger } from 'pino';
import { KilnError } from '../errors.js';
import { requestArrived } from './arrivals.js';
import { authTokenFrom, protectedScope } from './auth.js';
import { DEFAULT_MODEL_CONFIG, parseModelConfig, type ModelConfig } from './config.js';
import { closeIfBodyPending, notFound, ServeError } from './errors.js';
import { ConnectionTracker } from './connections.js';
import { healthRoutes } from './health.js';
import { MemoryReclaimer } from './memory.js';
import type { InferenceLimits } from './inference.js';
import { HEADER_LENGTH, parseRequestBody } from './binary.js';
import type { TensorJsonLayout } from './number-lists.js';
import { kserveRoutes } from './kserve-v2.js';
import { metricsRoutes, ServeMetrics } from './metrics.js';
import { FixedSource, RepositorySource, type ModelSource } from './model-sources.js';
import { GrpcInferenceServer, grpcCredentials } from './grpc/service.js';
import { loadTls, type TlsOptions } from './tls.js';
import { modelKeyFrom, parseModelKey } from '../model/encryption.js';
import { ModelRegistry } from './registry.js';
import { tfServingRoutes } from './tf-serving.js';

/** A model given in code: an .onnx path, ONNX bytes, or a model object (Sequential: toOnnx(); OnnxModel: bytes). */
export type ServableModel = string | Uint8Array | { toOnnx(): Uint8Array } | { bytes: Uint8Array };

export interface ServeOptions {
  /** One model (served as version 1). Give this or modelRepository. */
  model?: ServableModel;
  /** Its name in URLs (default: the file name without .onnx, else 'model'). */
  name?: string;
  /** Several models in Triton's layout: DIR/<model>/<version>/model.onnx and optional DIR/<model>/config.json. */
  modelRepository?: string;
  /** Interface to listen on (default 127.0.0.1; '0.0.0.0' for every interface). */
  host?: string;
  /** Port (default 8501, TF Serving's; 0 picks a free one). */
  port?: number;
  /** Also serve KServe v2 over gRPC on this port (Triton's is 8001; 0 picks a free one). Default: no gRPC. */
  grpcPort?: number;
  /**
   * The key of encrypted models (`kiln encrypt`): 32 bytes, or 64 hex digits / base64 text. Versions
   * whose files are encrypted are decrypted in memory with it. Default: env KILN_MODEL_KEY.
   */
  modelKey?: Uint8Array | string;
  /** HTTPS and gRPC over TLS with this certificate and key; with clientCa, clients must present a certificate it signed (mutual TLS). */
  tls?: TlsOptions;
  /** Defaults for every model's config (config.json fields override them). */
  config?: Partial<ModelConfig>;
  /** Repository rescan interval in ms, besides file-system events (default 1000; 0: events only). */
  pollIntervalMs?: number;
  /** Require `Authorization: Bearer <token>` on inference and management routes (default: env KILN_AUTH_TOKEN). */
  authToken?: string;
  /** Largest request body in bytes (default 32 MiB); larger ones get 413. */
  bodyLimit?: number;
  /** Elements one request may carry over all its tensors (default 4,194,304: 16 MiB of float32); more is a 400 before anything is allocated. */
  maxElements?: number;
  /** Time a request may spend queued and running before it fails with 503 (default 30,000 ms; 0: none). */
  requestTimeoutMs?: number;
  /** Time a client has to send a whole request, body included (default 30,000 ms): a stalled upload is cut off. */
  uploadTimeoutMs?: number;
  /**
   * On close, how long a keep-alive connection may stay idle before it is closed (default 500 ms): a
   * request its client sends meanwhile is still answered (with Connection: close), not reset.
   */
  idleConnectionGraceMs?: number;
  /** A pino logger, or the level of the JSON logger written to stdout (default 'info'; 'silent' for none). */
  logger?: Logger;
  logLevel?: string;
}

export interface ServerHandle {
  /** http://host:port (https:// with TLS) */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** host:port of the gRPC service, when grpcPort was given (what kiln.client takes as grpc://host:port). */
  readonly grpcAddress: string | undefined;
  readonly grpcPort: number | undefined;
  readonly registry: ModelRegistry;
  readonly metrics: ServeMetrics;
  readonly app: FastifyInstance;
  readonly log: Logger;
  /** Rescans the repository now and waits for the loads and unloads it starts. */
  reload(): Promise<void>;
  /** Stops accepting connections, answers the requests sent on open ones, finishes those in flight, unloads every model. */
  close(): Promise<void>;
}

function modelSource(options: ServeOptions, defaults: ModelConfig, log: Logger): ModelSource {
  const given = [options.model !== undefined, options.modelRepository !== undefined].filter(Boolean).length;
  if (given !== 1) throw new KilnError('INVALID_ARGUMENT', `serve needs exactly one of "model" (one model) or "modelRepository" (a directory), got ${given === 0 ? 'neither' : 'both'}`);
  if (options.modelRepository !== undefined) return new RepositorySource(options.modelRepository, defaults, log);
  const m = options.model!;
  const name = options.name ?? (typeof m === 'string' ? path.basename(m).replace(/\.onnx(\.enc)?$/i, '') : 'model');
  if (typeof m === 'string') return new FixedSource([{ name, file: path.resolve(m), config: defaults }]);
  const bytes = m instanceof Uint8Array ? m : 'toOnnx' in m ? m.toOnnx() : m.bytes;
  return new FixedSource([{ name, bytes, config: defaults }]);
}

/** Inference routes, whose tensors the body parser reads into NumberLists (see number-lists.ts). */
const KSERVE_INFER_URL = /^\/v2\/models\/[^?]*\/infer(\?|$)/;
const TF_PREDICT_URL = /^\/v1\/models\/[^?]*:predict(\?|$)/;

function tensorLayout(url: string): TensorJsonLayout | undefined {
  return KSERVE_INFER_URL.test(url) ? 'kserve' : TF_PREDICT_URL.test(url) ? 'tf-serving' : undefined;
}

function errorStatus(err: FastifyError | KilnError): number {
  if (err instanceof ServeError) return err.status;
  if ((err as FastifyError).validation) return 400;
  if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 413;
  if (err instanceof KilnError) return err.code === 'RUNTIME_ERROR' || err.code === 'IO_ERROR' ? 500 : 400;
  const status = (err as FastifyError).statusCode;
  return status && status >= 400 && status < 600 ? status : 500;
}

/**
 * Starts a model server speaking KServe v2 (Triton's HTTP/REST protocol) and TF Serving's REST API
 * on one port, with Prometheus metrics at /metrics, and KServe v2 gRPC on a second port when
 * grpcPort is given. Resolves once it listens and the models found
 * at start have loaded (or failed: see their status).
 */
export async function serve(options: ServeOptions): Promise<ServerHandle> {
  const log = options.logger ?? pino({ level: options.logLevel ?? 'info', base: { service: 'kiln-serve' } });
  const defaults = parseModelConfig(options.config ?? {}, DEFAULT_MODEL_CONFIG, 'serve options "config"');
  const bodyLimit = options.bodyLimit ?? 32 * 1024 * 1024;
  const limits: InferenceLimits = { maxElements: options.maxElements ?? 1 << 22, requestTimeoutMs: options.requestTimeoutMs ?? 30_000 };
  const authToken = authTokenFrom(options.authToken, process.env.KILN_AUTH_TOKEN);
  const tls = options.tls !== undefined ? await loadTls(options.tls) : undefined;
  const modelKey = options.modelKey !== undefined ? parseModelKey(options.modelKey, 'the "modelKey" option') : await modelKeyFrom(undefined);
  let registry: ModelRegistry | undefined;
  const metrics = new ServeMetrics(() => registry);
  registry = new ModelRegistry(modelSource(options, defaults, log), {
    log,
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    modelKey,
    metricsFor: (model, version) => metrics.forVersion(model, version),
  });
  let closing = false;

  const app = Fastify({
    ...(tls ? { https: { cert: tls.cert, key: tls.key, ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}) } } : {}),
    loggerInstance: log as FastifyBaseLogger,
    // Per-request lines would dominate the log at serving rates; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    return503OnClosing: true,
    requestTimeout: options.uploadTimeoutMs ?? 30_000,
    routerOptions: { maxParamLength: 512 },
    // Errors Fastify raises before routing (a malformed URL) answer in the same {"error": ...} form.
    frameworkErrors: (err, _req, reply) => {
      void (reply as FastifyReply).code(400).type('application/json').send(JSON.stringify({ error: err.message }));
    },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
  });

  const connections = new ConnectionTracker(app.server);
  const reclaimer = new MemoryReclaimer();

  // JSON with TF Serving's NaN/Infinity tokens (plus Triton's binary tensors), whatever the content type:
  // curl -d sends form encoding.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (req, body, done) => {
    reclaimer.bodyReceived((body as Buffer).length);
    try {
      done(null, parseRequestBody(body as Buffer, req.headers[HEADER_LENGTH], tensorLayout(req.url), limits.maxElements));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.setErrorHandler((err: FastifyError | KilnError, req, reply) => {
    const status = errorStatus(err);
    let message = err.message;
    if ((err as FastifyError).validation) {
      message = req.body == null ? 'the request has no body; expected a JSON object' : `invalid request body: ${err.message.replace(/^body\/?/, '').trim()}`;
    }
    else if (status === 413) message = `the request body is larger than the ${bodyLimit}-byte limit`;
    if (status >= 500 && status !== 503) req.log.error({ err, url: req.url }, 'request failed');
    else req.log.debug({ status, url: req.url, err: message }, 'request refused');
    return reply.code(status).type('application/json').send(JSON.stringify({ error: message }));
  });
  const noRoute = (req: FastifyRequest) => notFound(`no route for ${req.method} ${req.url.split('?')[0]}`);
  app.addHook('onRequest', (req, reply, done) => {
    requestArrived();
    if (!req.is404) return done();
    // Unrouted requests are refused before their body is read: parsing it would cost the server, not the sender.
    closeIfBodyPending(req, reply);
    done(noRoute(req));
  });
  // The hook above answers first; the handler stays for Fastify's lifecycle, and says the same.
  app.setNotFoundHandler(async (req) => {
    throw noRoute(req);
  });
  // Replies during shutdown close their connection so clients move on.
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  await app.register(healthRoutes, { registry, isClosing: () => closing });
  await app.register(metricsRoutes, { metrics });
  await app.register(
    protectedScope(authToken, async (scope) => {
      await scope.register(kserveRoutes, { registry: registry!, limits });
      await scope.register(tfServingRoutes, { registry: registry!, limits });
    }),
  );

  const grpc =
    options.grpcPort !== undefined
      ? new GrpcInferenceServer({ registry, limits, authToken, maxMessageBytes: bodyLimit, isClosing: () => closing, log })
      : undefined;

  await registry.start();
  const host = options.host ?? '127.0.0.1';
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  let grpcPort: number | undefined;
  try {
    await app.listen({ host, port: options.port ?? 8501 });
    if (grpc) grpcPort = await grpc.listen(host, options.grpcPort!, tls && grpcCredentials(tls));
  } catch (err) {
    await app.close();
    await grpc?.close(0);
    await registry.close();
    if (err instanceof KilnError) throw err;
    throw new KilnError('IO_ERROR', `cannot listen on ${host}:${options.port ?? 8501}: ${(err as Error).message}`, { cause: err });
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8501);
  const url = `${tls ? 'https' : 'http'}://${hostInUrl}:${port}`;
  const grpcAddress = grpcPort !== undefined ? `${hostInUrl}:${grpcPort}` : undefined;
  const models = [...registry.models.values()].map((m) => ({ name: m.name, versions: [...m.versions.values()].map((v) => `${v.version}:${v.state}`) }));
  const tlsLog = tls && { subject: tls.subject, validTo: tls.validTo, clientCertificates: tls.clientCa !== undefined };
  if (tls && Date.parse(tls.validTo) < Date.now()) log.warn({ validTo: tls.validTo }, 'the TLS certificate has expired: clients will refuse it');
  log.info({ url, ...(grpcAddress !== undefined ? { grpc: grpcAddress } : {}), models, auth: authToken !== undefined, ...(tlsLog ? { tls: tlsLog } : {}) }, 'kiln serve listening');

  let closed: Promise<void> | undefined;
  const reg = registry;
  return {
    url,
    host,
    port,
    grpcAddress,
    grpcPort,
    registry: reg,
    metrics,
    app,
    log,
    async reload() {
      await reg.scan();
      await reg.settled();
    },
    close() {
      closed ??= (async () => {
        closing = true;
        log.info('shutting down: finishing in-flight requests');
        await Promise.all([connections.drain(options.idleConnectionGraceMs ?? 500), grpc?.close(limits.requestTimeoutMs > 0 ? limits.requestTimeoutMs : 30_000)]);
        await app.close();
        reclaimer.stop();
        await reg.close();
        log.info('shut down');
      })();
      return closed;
    },
  };
}
