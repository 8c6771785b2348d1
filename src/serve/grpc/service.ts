import { Server, ServerCredentials, status, type MethodDefinition, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Http2Server, Http2Session } from 'node:http2';
import type { Logger } from 'pino';
import { KilnError } from '../../errors.js';
import { Tensor } from '../../tensor.js';
import { requestArrived } from '../arrivals.js';
import { bearerCheck } from '../auth.js';
import { checkShape, ElementBudget, kserveDatatype } from '../datatypes.js';
import { badRequest, ServeError } from '../errors.js';
import { EXTENSIONS, SERVER_NAME, SERVER_VERSION } from '../health.js';
import { infer, selectOutputs, withVersion, type InferenceLimits } from '../inference.js';
import type { ModelVersion } from '../model-version.js';
import { own, record } from '../records.js';
import type { ModelRegistry, VersionRef } from '../registry.js';
import type { TensorSpec } from '../signature.js';
import type { TlsMaterial } from '../tls.js';
import { contentsOf, elementsFromContents, elementsFromRaw, rawOf } from './contents.js';
import {
  messageType,
  toNumber,
  type InferOutputTensor,
  type ModelInferRequest,
  type ModelInferResponse,
  type ModelMetadataResponse,
  type ModelReadyRequest,
  type Parameters,
  type ServerMetadataResponse,
} from './messages.js';

/*
 * KServe v2 over gRPC (`inference.GRPCInferenceService`, what Triton serves on port 8001): the same
 * registry, versions, batching queues, admission limits, bearer token and metrics as the HTTP routes,
 * through the same inference path (inference.ts). Failures carry gRPC status codes mapped from the
 * HTTP statuses the shared code raises (400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 404 NOT_FOUND, 429
 * RESOURCE_EXHAUSTED, 503 UNAVAILABLE, a request timeout DEADLINE_EXCEEDED, 500 INTERNAL); a message
 * over the size limit is refused by grpc-js with RESOURCE_EXHAUSTED before it is decoded.
 * ServerLive, ServerReady and ServerMetadata need no token (as /v2/health/* and /v2 over HTTP).
 */

/** A request as the server receives it: decoded, or the reason it could not be, and its size on the wire. */
export interface Received<T> {
  message?: T;
  error?: string;
  bytes: number;
}

const SERVICE = 'inference.GRPCInferenceService';

/** The service's six methods: name → request and response message types. */
export const METHODS = {
  ServerLive: ['ServerLiveRequest', 'ServerLiveResponse'],
  ServerReady: ['ServerReadyRequest', 'ServerReadyResponse'],
  ModelReady: ['ModelReadyRequest', 'ModelReadyResponse'],
  ServerMetadata: ['ServerMetadataRequest', 'ServerMetadataResponse'],
  ModelMetadata: ['ModelMetadataRequest', 'ModelMetadataResponse'],
  ModelInfer: ['ModelInferRequest', 'ModelInferResponse'],
} as const;

export type MethodName = keyof typeof METHODS;

function encoder(typeName: string): (value: object) => Buffer {
  const type = messageType(typeName);
  return (value) => {
    const bytes = type.encode(value).finish();
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/**
 * The method definitions grpc-js needs, for a server (requests decode to Received: a malformed message
 * is the handler's INVALID_ARGUMENT, not grpc-js' INTERNAL) or a client (plain messages both ways).
 */
export function serviceDefinition(side: 'server' | 'client'): Record<MethodName, MethodDefinition<object, object>> {
  const out = {} as Record<MethodName, MethodDefinition<object, object>>;
  for (const [name, [requestName, responseName]] of Object.entries(METHODS) as [MethodName, readonly [string, string]][]) {
    const request = messageType(requestName);
    const response = messageType(responseName);
    out[name] = {
      path: `/${SERVICE}/${name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: encoder(requestName),
      requestDeserialize:
        side === 'server'
          ? (bytes: Buffer): Received<object> => {
              try {
                return { message: request.decode(bytes), bytes: bytes.length };
              } catch (err) {
                return { error: `the ${requestName} message is malformed: ${(err as Error).message}`, bytes: bytes.length };
              }
            }
          : (bytes: Buffer) => request.decode(bytes),
      responseSerialize: encoder(responseName),
      responseDeserialize: (bytes: Buffer) => response.decode(bytes),
      originalName: name[0]!.toLowerCase() + name.slice(1),
    } as MethodDefinition<object, object>;
  }
  return out;
}

/** The gRPC status for a failure of the shared inference path. */
export function grpcStatus(err: unknown): status {
  if (err instanceof ServeError) {
    switch (err.status) {
      case 400:
        return status.INVALID_ARGUMENT;
      case 401:
        return status.UNAUTHENTICATED;
      case 404:
        return status.NOT_FOUND;
      case 429:
        return status.RESOURCE_EXHAUSTED;
      case 501:
        return status.UNIMPLEMENTED;
      case 503:
        return err.reason === 'timeout' ? status.DEADLINE_EXCEEDED : status.UNAVAILABLE;
      default:
        return status.INTERNAL;
    }
  }
  if (err instanceof KilnError) return err.code === 'RUNTIME_ERROR' || err.code === 'IO_ERROR' ? status.INTERNAL : status.INVALID_ARGUMENT;
  return status.INTERNAL;
}

export interface GrpcServiceOptions {
  registry: ModelRegistry;
  limits: InferenceLimits;
  /** Required as `authorization: Bearer <token>` metadata on model RPCs when set. */
  authToken: string | undefined;
  /** Largest request message in bytes (grpc-js refuses larger ones with RESOURCE_EXHAUSTED). */
  maxMessageBytes: number;
  isClosing(): boolean;
  log: Logger;
}

function refOf(version: string | undefined): VersionRef {
  return version ? { version } : {};
}

function boolParameter(parameters: Parameters | undefined, name: string): boolean {
  const p = parameters ? (own(parameters, name) as Parameters[string] | undefined) : undefined;
  return p?.parameter_choice === 'bool_param' && p.bool_param === true;
}

function tensorMetadata(t: TensorSpec) {
  return { name: t.name, datatype: kserveDatatype(t.dtype), shape: t.shape ?? [-1] };
}

function modelMetadata(registry: ModelRegistry, version: ModelVersion): ModelMetadataResponse {
  const model = registry.models.get(version.model)!;
  const versions = [...model.versions.values()].filter((v) => v.state === 'AVAILABLE').map((v) => v.version).sort((a, b) => a - b).map(String);
  const sig = version.signature!;
  return { name: version.model, versions, platform: 'onnxruntime_onnx', inputs: sig.inputs.map(tensorMetadata), outputs: sig.outputs.map(tensorMetadata) };
}

/** Refuses a client-given string longer than `max` characters (the limits of HTTP's body schema). */
function checkLength(text: string, max: number, what: string): void {
  if (text.length > max) throw badRequest(`${what} is ${text.length} characters long, at most ${max} are accepted`);
}

/** Request tensors → Kiln tensors, in the element type the model declares for each input. */
function decodeInputs(version: ModelVersion, request: ModelInferRequest, limits: InferenceLimits): Record<string, Tensor> {
  const specs = version.signature!.inputs;
  if (request.inputs.length === 0) throw badRequest('the request has no inputs');
  const raw = request.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== request.inputs.length) {
    throw badRequest(`raw_input_contents has ${raw.length} entries for ${request.inputs.length} inputs; give one per input, in the order of "inputs"`);
  }
  const feeds = record<Tensor>();
  const budget = new ElementBudget(limits.maxElements);
  request.inputs.forEach((input, i) => {
    checkLength(input.name, 256, 'an input name');
    checkLength(input.datatype, 16, `input '${input.name}': the datatype`);
    const what = `input '${input.name}'`;
    if (input.name in feeds) throw badRequest(`${what} is given twice`);
    const spec = specs.find((s) => s.name === input.name);
    if (!spec) throw badRequest(`unexpected ${what}; the model's inputs are ${specs.map((s) => `'${s.name}'`).join(', ')}`);
    const expected = kserveDatatype(spec.dtype);
    if (input.datatype !== expected) throw badRequest(`${what} has datatype ${expected} in the model, the request says ${JSON.stringify(input.datatype)}`);
    const shape = input.shape.map(toNumber);
    const size = checkShape(shape, what, budget);
    let data;
    if (raw.length > 0) {
      if (input.contents) throw badRequest(`${what}: give its elements in raw_input_contents or in contents, not both`);
      data = elementsFromRaw(raw[i]!, spec.dtype, size, what);
    } else data = elementsFromContents(input.contents, spec.dtype, size, what, expected);
    feeds[input.name] = new Tensor(data as never, shape, spec.dtype);
  });
  return feeds;
}

/** The six RPCs over one registry. */
function handlers(options: GrpcServiceOptions): UntypedServiceImplementation {
  const { registry, limits, log } = options;
  const checkToken = options.authToken !== undefined ? bearerCheck(options.authToken) : undefined;

  /** Answers one call: the handler's result, or its failure as a status. */
  const unary =
    <Req, Res>(handle: (request: Req, call: ServerUnaryCall<Received<Req>, Res>) => Res | Promise<Res>, authenticated: boolean) =>
    (call: ServerUnaryCall<Received<Req>, Res>, callback: sendUnaryData<Res>): void => {
      const answer = async (): Promise<Res> => {
        if (authenticated && checkToken) {
          const values = call.metadata.get('authorization');
          const refusal = checkToken(typeof values[0] === 'string' ? values[0] : undefined);
          if (refusal !== undefined) throw new ServeError(401, refusal);
        }
        const { message, error } = call.request;
        if (message === undefined) throw badRequest(error!);
        return handle(message, call);
      };
      answer().then(
        (response) => callback(null, response),
        (err: unknown) => {
          const code = grpcStatus(err);
          const message = err instanceof Error ? err.message : String(err);
          if (code === status.INTERNAL) log.error({ err, rpc: call.getPath() }, 'gRPC request failed');
          else log.debug({ code, rpc: call.getPath(), err: message }, 'gRPC request refused');
          callback({ code, details: message });
        },
      );
    };

  const modelInfer = async (request: ModelInferRequest, call: ServerUnaryCall<Received<ModelInferRequest>, ModelInferResponse>): Promise<ModelInferResponse> => {
    requestArrived();
    const ref = refOf(request.model_version);
    // Admission from the message's size, as HTTP admits from its headers: a full queue is refused
    // before the tensors are decoded.
    const admitted = registry.resolve(request.model_name, ref);
    const bytes = call.request.bytes;
    let release: () => void;
    try {
      release = admitted.admit({ declared: bytes, received: () => bytes });
    } catch (err) {
      if (err instanceof ServeError) admitted.metrics?.failed(err.reason, 0);
      throw err;
    }
    try {
      return await withVersion(registry, request.model_name, ref, async (version) => {
        const feeds = decodeInputs(version, request, limits);
        checkLength(request.id ?? '', 1024, 'the request id');
        const requested = request.outputs ?? [];
        for (const o of requested) checkLength(o.name, 256, 'an output name');
        const wanted = selectOutputs(version, requested.map((o) => o.name));
        // Raw outputs answer raw inputs (what tritonclient sends and reads) or a request for binary
        // data; the protocol allows raw contents for every output or for none.
        const raw = (request.raw_input_contents?.length ?? 0) > 0 || boolParameter(request.parameters, 'binary_data_output') || requested.some((o) => boolParameter(o.parameters, 'binary_data'));
        const outputs = await infer(version, feeds, limits);
        const tensors: InferOutputTensor[] = wanted.map((spec) => {
          const t = outputs[spec.name]!;
          return { name: spec.name, datatype: kserveDatatype(t.dtype), shape: [...t.shape], ...(raw ? {} : { contents: contentsOf(t) }) };
        });
        return {
          model_name: version.model,
          model_version: String(version.version),
          id: request.id ?? '',
          outputs: tensors,
          raw_output_contents: raw ? wanted.map((spec) => rawOf(outputs[spec.name]!)) : [],
        };
      });
    } finally {
      release();
    }
  };

  return {
    ServerLive: unary(() => ({ live: true }), false),
    ServerReady: unary(() => ({ ready: !options.isClosing() && registry.isReady() }), false),
    ServerMetadata: unary((): ServerMetadataResponse => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS }), false),
    // Unknown or not ready: false, as HTTP's 404 and 503 mean false; a malformed name or version is INVALID_ARGUMENT.
    ModelReady: unary((request: ModelReadyRequest) => {
      try {
        registry.resolve(request.name, refOf(request.version));
        return { ready: true };
      } catch (err) {
        if (err instanceof ServeError && err.status === 400) throw err;
        return { ready: false };
      }
    }, true),
    ModelMetadata: unary((request: ModelReadyRequest) => modelMetadata(registry, registry.resolve(request.name, refOf(request.version))), true),
    ModelInfer: unary(modelInfer, true),
  };
}

/** Server credentials for TLS: the certificate and key, and with a client CA, mutual TLS. */
export function grpcCredentials(tls: TlsMaterial): ServerCredentials {
  return ServerCredentials.createSsl(tls.clientCa ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], tls.clientCa !== undefined);
}

/**
 * The HTTP/2 connection-level receive window each gRPC connection gets: 1 MiB, grpc-java's (Netty's)
 * default. Node starts every session at the RFC's 64 KiB and grpc-js has no server option to change it
 * (grpc/grpc-node#3058, open). With 64 KiB, a client multiplexing its calls on one connection (ghz's
 * and tritonclient's default) can send only ~5 requests of a 12 KB tensor before it waits for a
 * WINDOW_UPDATE, so calls reach the batching queue a few at a time: measured with h2load, 64 calls in
 * flight on one connection to the tutorial CNN, Kiln batched 3–6 rows per run against 22 with this
 * window (HTTP/1.1 with 64 connections: 25), and answered 1.1–2.8× more calls per second
 * (bench/serve/request-cost.js, bench/README.md). A client can then have this much unread data per
 * connection on the server: the message size limit and admission control still apply per call.
 */
export const GRPC_CONNECTION_WINDOW_BYTES = 1 << 20;

/** The gRPC server: listens on its own port beside the HTTP one. */
export class GrpcInferenceServer {
  private readonly server: Server;
  private readonly log: Logger;
  private readonly widened = new WeakSet<object>();
  private closed: Promise<void> | undefined;

  constructor(options: GrpcServiceOptions) {
    this.server = new Server({ 'grpc.max_receive_message_length': options.maxMessageBytes });
    this.server.addService(serviceDefinition('server'), handlers(options));
    this.log = options.log;
  }

  /**
   * Gives every new connection GRPC_CONNECTION_WINDOW_BYTES of receive window. grpc-js keeps its
   * node:http2 servers in a private map (no public hook until grpc/grpc-node#3058): if a grpc-js
   * release moves it, the server still works at Node's 64 KiB window and says so in its log.
   */
  private widenConnectionWindows(): void {
    const servers = (this.server as unknown as { http2Servers?: unknown }).http2Servers;
    if (!(servers instanceof Map)) {
      this.log.warn('grpc-js no longer exposes its HTTP/2 servers: gRPC connections keep the 64 KiB receive window, which limits batching of calls multiplexed on one connection');
      return;
    }
    for (const http2Server of servers.keys() as IterableIterator<Http2Server>) {
      if (this.widened.has(http2Server)) continue;
      this.widened.add(http2Server);
      http2Server.on('session', (session: Http2Session) => {
        try {
          session.setLocalWindowSize(GRPC_CONNECTION_WINDOW_BYTES);
        } catch (err) {
          // A session that closed before it was set up: nothing to widen.
          this.log.debug({ err }, 'gRPC connection window not widened');
        }
      });
    }
  }

  /** Binds host:port (0: a free port) and resolves with the port. */
  listen(host: string, port: number, credentials: ServerCredentials = ServerCredentials.createInsecure()): Promise<number> {
    const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, bound) => {
        if (err) reject(new KilnError('IO_ERROR', `cannot listen for gRPC on ${address}: ${err.message}`, { cause: err }));
        else {
          this.widenConnectionWindows();
          resolve(bound);
        }
      });
    });
  }

  /**
   * Stops taking calls and waits for those in flight (each ends within the request timeout); after
   * `graceMs` more, whatever is left is cancelled.
   */
  close(graceMs: number): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      const force = setTimeout(() => this.server.forceShutdown(), graceMs);
      force.unref();
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    return this.closed;
  }
}
