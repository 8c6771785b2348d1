import type { IncomingHttpHeaders, Server as HttpServer } from 'node:http';
import path from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type Logger } from 'pino';
import { KilnError } from '../errors.js';
import { requestArrived } from './arrivals.js';
import { authTokenFrom, bearerCheck, protectedScope } from './auth.js';
import { failureReply } from './answers.js';
import { InferenceFastPath } from './fast-path.js';
import { DEFAULT_MODEL_CONFIG, parseModelConfig, type ModelConfig } from './config.js';
import { closeIfBodyPending, notFound, ServeError } from './errors.js';
import { ConnectionTracker } from './connections.js';
import { healthRoutes } from './health.js';
import { ImageBody, imagesOrJson } from './image-requests.js';
import { MemoryReclaimer } from './memory.js';
import type { InferenceLimits } from './inference.js';
import { HEADER_LENGTH, parseRequestBody } from './binary.js';
import type { TensorJsonLayout } from './number-lists.js';
import { kserveInference, kserveRoutes } from './kserve-v2.js';
import { metricsRoutes, ServeMetrics } from './metrics.js';
import { FixedSource, RepositorySource, type ModelSource } from './model-sources.js';
import { GrpcInferenceServer, grpcCredentials } from './grpc/service.js';
import { loadTls, type TlsOptions } from './tls.js';
import { parseModelKey } from '../model/encryption.js';
import { modelKeyFrom } from '../model/model-keys.js';
import { ModelRegistry } from './registry.js';
import { tfServingInference, tfServingRoutes, tfServingTarget } from './tf-serving.js';
import { torchServeInferenceRoutes, torchServeManagementRoutes, torchServePing } from './torchserve.js';
import { DEFAULT_MAX_IMAGE_PIXELS } from '../images/header.js';

/** A model given in code: an .onnx path, ONNX bytes, or a model object (Sequential: toOnnx(); OnnxModel: bytes). */
export type ServableModel =
  | string
  | Uint8Array
  | {
      /** The model as ONNX bytes (a Sequential or GraphModel). */
      toOnnx(): Uint8Array;
    }
  | {
      /** The model's ONNX bytes (an OnnxModel or QuantizedModel). */
      bytes: Uint8Array;
    };

/** Options of `serve()`; `kiln serve` takes the same as flags. */
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
  /** Pixels (width × height) an image in a request may declare (default 16,777,216: 4096 × 4096); larger ones are refused from their header, before decoding. */
  maxImagePixels?: number;
  /** Serve TorchServe's management reads (GET /models...) on this port instead of the inference port (TorchServe's 8081; 0 picks a free one). */
  managementPort?: number;
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
  /**
   * Answer well-formed inference requests (KServe v2 infer, TF Serving POSTs) from a node:http
   * listener in front of Fastify (default true; false: every request through Fastify).
   * @internal
   */
  fastPath?: boolean;
  /** Level of the JSON log written to stdout when no logger is given: fatal, error, warn, info (default), debug, silent. */
  logLevel?: string;
}

/** A running server, as `serve()` resolves it. */
export interface ServerHandle {
  /** http://host:port (https:// with TLS) */
  readonly url: string;
  /** http://host:port of the management port, when one was asked for (managementPort). */
  readonly managementUrl: string | undefined;
  /** The interface it listens on. */
  readonly host: string;
  /** The port it listens on (the one picked when 0 was asked for). */
  readonly port: number;
  /** host:port of the gRPC service, when grpcPort was given (what kiln.client takes as grpc://host:port). */
  readonly grpcAddress: string | undefined;
  /** The gRPC port (the one picked when 0 was asked for), when grpcPort was given. */
  readonly grpcPort: number | undefined;
  /**
   * The models and their versions' states.
   * @internal
   */
  readonly registry: ModelRegistry;
  /**
   * The Prometheus metrics served at /metrics.
   * @internal
   */
  readonly metrics: ServeMetrics;
  /** The Fastify instance (for `inject()` in tests, or to register more routes before traffic arrives). */
  readonly app: FastifyInstance;
  /** The server's pino logger. */
  readonly log: Logger;
  /**
   * The inference routes' fast path in front of Fastify, unless turned off (fastPath: false).
   * @internal
   */
  readonly fastPath: InferenceFastPath | undefined;
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

/**
 * Starts a model server speaking KServe v2 (Triton's HTTP/REST protocol), TF Serving's REST API and
 * TorchServe's inference and management APIs on one port (management optionally on its own), with
 * Prometheus metrics at /metrics, and KServe v2 gRPC on another port when grpcPort is given.
 * Resolves once it listens and the models found
 * at start have loaded (or failed: see their status).
 */
export async function serve(options: ServeOptions): Promise<ServerHandle> {
  const log = options.logger ?? pino({ level: options.logLevel ?? 'info', base: { service: 'kiln-serve' } });
  const defaults = parseModelConfig(options.config ?? {}, DEFAULT_MODEL_CONFIG, 'serve options "config"');
  const bodyLimit = options.bodyLimit ?? 32 * 1024 * 1024;
  const limits: InferenceLimits = {
    maxElements: options.maxElements ?? 1 << 22,
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
    maxImagePixels: options.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS,
  };
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
  const reclaimer = new MemoryReclaimer();
  // Every route's body parser, the fast path's too.
  const parseBody = (body: Buffer, headers: IncomingHttpHeaders, url: string): unknown => {
    reclaimer.bodyReceived(body.length);
    // Image files (raw, or in a multipart form) go to the routes as they are: image-requests.ts.
    const content = headers[HEADER_LENGTH] === undefined ? imagesOrJson(body, headers['content-type']) : body;
    return content instanceof ImageBody ? content : parseRequestBody(content, headers[HEADER_LENGTH], tensorLayout(url), limits.maxElements);
  };
  // The inference routes' fast path, in front of Fastify (fast-path.ts).
  const fastPath =
    options.fastPath === false
      ? undefined
      : new InferenceFastPath({
          registry,
          bodyLimit,
          log,
          authCheck: authToken !== undefined ? bearerCheck(authToken) : undefined,
          parseBody,
          kserve: kserveInference(registry, limits),
          tfServing: tfServingInference(registry, limits),
          tfServingTarget,
          isClosing: () => closing,
        });

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

  // Before the connection tracker's listener: the fast path takes Fastify's place as the server's first 'request' listener.
  fastPath?.install(app.server as HttpServer);
  const connections = new ConnectionTracker(app.server);

  // JSON with TF Serving's NaN/Infinity tokens (plus Triton's binary tensors), whatever the content type:
  // curl -d sends form encoding.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (req, body, done) => {
    try {
      done(null, parseBody(body as Buffer, req.headers, req.url));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  const onError = (err: FastifyError | KilnError, req: FastifyRequest, reply: FastifyReply) => {
    const { status, message } = failureReply(err, req.body, bodyLimit, req.log, req.url);
    return reply.code(status).type('application/json').send(JSON.stringify({ error: message }));
  };
  app.setErrorHandler(onError);
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
  await app.register(torchServePing, { registry, isClosing: () => closing });
  await app.register(metricsRoutes, { metrics });
  await app.register(
    protectedScope(authToken, async (scope) => {
      await scope.register(kserveRoutes, { registry: registry!, limits });
      await scope.register(tfServingRoutes, { registry: registry!, limits });
      await scope.register(torchServeInferenceRoutes, { registry: registry!, limits });
      if (options.managementPort === undefined) await scope.register(torchServeManagementRoutes, { registry: registry! });
    }),
  );
  // TorchServe's management API on a port of its own, when asked: reads only, same auth.
  let management: FastifyInstance | undefined;
  if (options.managementPort !== undefined) {
    management = Fastify({
      ...(tls ? { https: { cert: tls.cert, key: tls.key, ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}) } } : {}),
      loggerInstance: log as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), routerOptions: { maxParamLength: 512 } });
    management.setErrorHandler(onError);
    management.setNotFoundHandler(async (req) => {
      throw noRoute(req);
    });
    await management.register(protectedScope(authToken, async (scope) => scope.register(torchServeManagementRoutes, { registry: registry! })));
  }

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
  const urlOf = (p: number) => `${tls ? 'https' : 'http'}://${hostInUrl}:${p}`;
  const url = urlOf(port);
  let managementUrl: string | undefined;
  if (management) {
    try {
      await management.listen({ host, port: options.managementPort });
    } catch (err) {
      await app.close();
      await grpc?.close(0);
      await registry.close();
      throw new KilnError('IO_ERROR', `cannot listen on ${host}:${options.managementPort} (management port): ${(err as Error).message}`, { cause: err });
    }
    const managed = management.server.address();
    managementUrl = urlOf(typeof managed === 'object' && managed ? managed.port : options.managementPort!);
  }
  const grpcAddress = grpcPort !== undefined ? `${hostInUrl}:${grpcPort}` : undefined;
  const models = [...registry.models.values()].map((m) => ({ name: m.name, versions: [...m.versions.values()].map((v) => `${v.version}:${v.state}`) }));
  const tlsLog = tls && { subject: tls.subject, validTo: tls.validTo, clientCertificates: tls.clientCa !== undefined };
  if (tls && Date.parse(tls.validTo) < Date.now()) log.warn({ validTo: tls.validTo }, 'the TLS certificate has expired: clients will refuse it');
  log.info({ url, ...(managementUrl ? { managementUrl } : {}), ...(grpcAddress !== undefined ? { grpc: grpcAddress } : {}), models, auth: authToken !== undefined, ...(tlsLog ? { tls: tlsLog } : {}) }, 'kiln serve listening');

  let closed: Promise<void> | undefined;
  const reg = registry;
  return {
    url,
    managementUrl,
    host,
    port,
    grpcAddress,
    grpcPort,
    registry: reg,
    metrics,
    app,
    log,
    fastPath,
    async reload() {
      await reg.scan();
      await reg.settled();
    },
    close() {
      closed ??= (async () => {
        closing = true;
        log.info('shutting down: finishing in-flight requests');
        await Promise.all([connections.drain(options.idleConnectionGraceMs ?? 500), grpc?.close(limits.requestTimeoutMs > 0 ? limits.requestTimeoutMs : 30_000)]);
        await management?.close();
        await app.close();
        reclaimer.stop();
        await reg.close();
        log.info('shut down');
      })();
      return closed;
    },
  };
}
