import { adaptInput } from '../model/input-adapter.js';
import type { Preprocessing } from '../model/imported-graph.js';
import { KilnError } from '../errors.js';
import { Tensor, type AnyTypedArray, type DType } from '../tensor.js';
import { binaryPart, BinaryReader, HEADER_LENGTH, parseRequestBody } from './binary.js';
import { checkShape, decodeElements, ElementBudget, flatValues } from './datatypes.js';
import { ServeError } from './errors.js';
import { stringifyJson } from './json.js';
import { GrpcTransport } from './grpc/client.js';
import { httpsRequest, tlsAgent } from './https-request.js';
import type { ClientTls } from './tls.js';

/*
 * A small KServe v2 client for scripts and `kiln predict`: it talks to `kiln serve`, Triton, KServe
 * or any other server of the Open Inference Protocol over HTTP/JSON, or over gRPC for grpc:// and
 * grpcs:// URLs (grpc/client.ts).
 */

/** Options of `client()`. */
export interface ClientOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Per-request timeout in ms (default 60,000). */
  timeoutMs?: number;
  /** For https:// and grpcs:// URLs: the CA to trust (default: the system's) and a client certificate and key (mutual TLS). */
  tls?: ClientTls;
}

/** A model's KServe v2 metadata: its name, versions, and the tensors it takes and returns. */
export interface ModelMetadata {
  /** The model's name. */
  name: string;
  /** The versions the server has (for a model, not a version). */
  versions?: string[];
  /** The backend ('onnxruntime_onnx' for Kiln and Triton). */
  platform: string;
  /** The inputs a request must carry. */
  inputs: TensorMetadata[];
  /** The outputs a response carries. */
  outputs: TensorMetadata[];
}

/** One input or output in a model's metadata. */
export interface TensorMetadata {
  /** The name requests and responses use (config.json's inputNames/outputNames may rename the ONNX one). */
  name: string;
  /** KServe v2 datatype ('FP32', 'INT64', ...). */
  datatype: string;
  /** The shape, −1 for a variable dimension (the batch). */
  shape: number[];
}

/** Options of `KilnClient.infer`. */
export interface InferOptions {
  /** The model version to ask (default: the latest the server has ready). */
  version?: number | string;
  /** Outputs to return (default: all). */
  outputs?: string[];
  /** A request id the server echoes back. */
  id?: string;
  /**
   * Send inputs and receive outputs as raw bytes instead of numbers: Triton's binary data extension
   * over HTTP (default off), raw_input_contents / raw_output_contents over gRPC (default on).
   */
  binary?: boolean;
}

/** A KServe v2 inference response body, as the server sends it. */
export interface InferResponse {
  /** The model that answered. */
  model_name: string;
  /** The version that answered. */
  model_version?: string;
  /** The request's id, when it had one. */
  id?: string;
  /** The output tensors. */
  outputs: {
    /** The output's name. */
    name: string;
    /** Its shape. */
    shape: number[];
    /** KServe v2 datatype ('FP32', ...). */
    datatype: string;
    /** The elements, flat in row-major order (absent when sent as binary data). */
    data?: unknown;
    /** Triton's binary extension: the byte size of this tensor's data after the JSON. */
    parameters?: {
      /** Bytes of this tensor's data in the binary part of the reply. */
      binary_data_size?: number;
    };
  }[];
}

const DTYPE_OF: Record<string, DType> = { FP32: 'float32', FP64: 'float64', INT8: 'int8', INT32: 'int32', INT64: 'int64', UINT8: 'uint8', BOOL: 'bool' };
const DATATYPE_OF: Record<DType, string> = { float32: 'FP32', float64: 'FP64', int8: 'INT8', int32: 'INT32', int64: 'INT64', uint8: 'UINT8', bool: 'BOOL' };

/** A response tensor (JSON data, or the next tensor of a binary reply) → a Kiln tensor. */
export function tensorFromResponse(o: InferResponse['outputs'][number], binary?: BinaryReader): Tensor {
  const dtype = DTYPE_OF[o.datatype];
  if (!dtype) throw new KilnError('INVALID_DATA', `output '${o.name}' has datatype ${o.datatype}, which Kiln tensors do not carry`);
  const size = checkShape(o.shape, `output '${o.name}'`, new ElementBudget(Number.MAX_SAFE_INTEGER));
  const binarySize = o.parameters?.binary_data_size;
  if (binarySize !== undefined) {
    if (!binary) throw new KilnError('INVALID_DATA', `output '${o.name}' is binary but the reply has no binary part`);
    return new Tensor(binary.read(dtype, size, binarySize, `output '${o.name}'`) as never, o.shape, dtype);
  }
  return new Tensor(decodeElements(o.data, o.shape, dtype, `output '${o.name}'`) as never, o.shape, dtype);
}

/** A Kiln tensor → a request tensor (flat data). */
export function tensorToRequest(name: string, t: Tensor): { name: string; shape: number[]; datatype: string; data: (number | boolean)[] } {
  return { name, shape: [...t.shape], datatype: DATATYPE_OF[t.dtype], data: flatValues(t).values };
}

/**
 * A KServe v2 (Open Inference Protocol) client over HTTP/JSON: `kiln serve`, Triton, KServe. Made by `client(url)`.
 */
export class KilnClient {
  /** The server's base URL, without a trailing slash. */
  readonly url: string;
  private readonly metadataCache = new Map<string, Promise<ModelMetadata>>();
  /** Set for grpc:// and grpcs:// URLs: every call goes over KServe v2 gRPC. */
  private readonly grpc: GrpcTransport | undefined;
  /** Set for https:// URLs with TLS options: requests go through node:https with them. */
  private readonly agent: ReturnType<typeof tlsAgent> | undefined;

  constructor(
    url: string,
    private readonly options: ClientOptions = {},
  ) {
    this.url = url.replace(/\/+$/, '');
    const grpc = /^(grpcs?):\/\/(.+)$/i.exec(this.url);
    if (grpc) {
      const tls = grpc[1]!.toLowerCase() === 'grpcs' ? (options.tls ?? {}) : undefined;
      this.grpc = new GrpcTransport(grpc[2]!, { token: options.token, timeoutMs: options.timeoutMs, tls });
    } else if (options.tls && /^https:/i.test(this.url)) this.agent = tlsAgent(options.tls);
  }

  private httpOnly(what: string): never {
    throw new KilnError('INVALID_ARGUMENT', `${what} is part of the HTTP protocol only (KServe v2 gRPC has no such call); use the server's http:// URL`);
  }

  /** Closes a gRPC channel (HTTP connections need no closing). */
  close(): void {
    this.grpc?.close();
    this.agent?.destroy();
  }

  private modelPath(model: string, version?: number | string): string {
    return `/v2/models/${encodeURIComponent(model)}${version !== undefined ? `/versions/${encodeURIComponent(String(version))}` : ''}`;
  }

  private async request(method: 'GET' | 'POST', path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const payload = body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? body : stringifyJson(body);
    if (this.agent) return httpsRequest(this.url + path, method, headers, payload, this.agent, this.options.timeoutMs ?? 60_000);
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers,
        body: payload,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
      });
    } catch (err) {
      throw new KilnError('IO_ERROR', `${method} ${this.url}${path} failed: ${(err as Error).message}`, { cause: err });
    }
    return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
  }

  /** The parsed JSON body of a 2xx reply (binary tensors attached); anything else is a ServeError with the server's message. */
  private async json<T>(method: 'GET' | 'POST', path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const { status, headers: replyHeaders, bytes } = await this.request(method, path, body, headers);
    let parsed: unknown;
    try {
      parsed = bytes.length === 0 ? undefined : parseRequestBody(bytes, replyHeaders.get(HEADER_LENGTH) ?? undefined);
    } catch {
      parsed = undefined;
    }
    if (status < 200 || status >= 300) {
      const message = (parsed as { error?: string } | undefined)?.error ?? (bytes.toString('utf8', 0, 200) || 'no body');
      throw new ServeError(status, `${method} ${path}: HTTP ${status}: ${message}`);
    }
    return parsed as T;
  }

  private async ok(path: string): Promise<boolean> {
    return (await this.request('GET', path)).status === 200;
  }

  /** Whether the server answers at all (`GET /v2/health/live`). */
  live(): Promise<boolean> {
    if (this.grpc) return this.grpc.live();
    return this.ok('/v2/health/live');
  }

  /** Whether the server is ready for inference (`GET /v2/health/ready`). */
  ready(): Promise<boolean> {
    if (this.grpc) return this.grpc.ready();
    return this.ok('/v2/health/ready');
  }

  /** The server's name, version and protocol extensions (`GET /v2`). */
  serverMetadata(): Promise<{
    /** The server's name ('kiln'). */
    name: string;
    /** Its version. */
    version: string;
    /** Protocol extensions it supports (Triton's binary_tensor_data, model_repository, ...). */
    extensions: string[];
  }> {
    if (this.grpc) return this.grpc.serverMetadata();
    return this.json('GET', '/v2');
  }

  /** Whether a model (or one version of it) is ready. */
  modelReady(model: string, options: { version?: number | string } = {}): Promise<boolean> {
    if (this.grpc) return this.grpc.modelReady(model, options.version);
    return this.ok(`${this.modelPath(model, options.version)}/ready`);
  }

  /** A model's inputs and outputs with their datatypes and shapes. */
  modelMetadata(model: string, options: { version?: number | string } = {}): Promise<ModelMetadata> {
    if (this.grpc) return this.grpc.modelMetadata(model, options.version);
    return this.json('GET', this.modelPath(model, options.version));
  }

  /** Sends a KServe v2 inference request body (JSON) as given and returns the response body (HTTP only). */
  inferRaw(model: string, body: unknown, options: { version?: number | string } = {}): Promise<InferResponse> {
    if (this.grpc) this.httpOnly('inferRaw (a JSON body)');
    return this.json('POST', `${this.modelPath(model, options.version)}/infer`, body);
  }

  /** Runs the model on named tensors; returns its outputs by name. `binary` sends and receives raw tensor bytes. */
  async infer(model: string, inputs: Record<string, Tensor>, options: InferOptions = {}): Promise<Record<string, Tensor>> {
    if (this.grpc) return this.grpc.infer(model, inputs, { version: options.version, outputs: options.outputs, id: options.id, raw: options.binary !== false });
    const path = `${this.modelPath(model, options.version)}/infer`;
    const entries = Object.entries(inputs);
    const header = {
      ...(options.id !== undefined ? { id: options.id } : {}),
      ...(options.binary ? { parameters: { binary_data_output: true } } : {}),
      inputs: entries.map(([name, t]) =>
        options.binary
          ? { name, shape: [...t.shape], datatype: DATATYPE_OF[t.dtype], parameters: { binary_data_size: (t.data as AnyTypedArray).byteLength } }
          : tensorToRequest(name, t),
      ),
      ...(options.outputs ? { outputs: options.outputs.map((name) => ({ name })) } : {}),
    };
    let res: InferResponse;
    if (options.binary) {
      const json = Buffer.from(stringifyJson(header));
      const parts = [json, ...entries.map(([, t]) => Buffer.from((t.data as AnyTypedArray).buffer, (t.data as AnyTypedArray).byteOffset, (t.data as AnyTypedArray).byteLength))];
      res = await this.json('POST', path, Buffer.concat(parts), { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(json.length) });
    } else res = await this.json('POST', path, header);
    const binary = binaryPart(res);
    const reader = binary ? new BinaryReader(binary) : undefined;
    return Object.fromEntries(res.outputs.map((o) => [o.name, tensorFromResponse(o, reader)]));
  }

  /**
   * Single-input models: the model's first output for x, or the one `output` names (input and output
   * names come from the model's metadata, whose first output `kiln serve` makes the one a model of
   * several was trained on). Float images [N, H, W, C] are laid out as the model's input wants them (channels-first
   * for a PyTorch export, flattened for an MLP), then normalized by `preprocessing` — a model file's
   * declared mean/std, e.g. `(await kiln.OnnxModel.load(file)).preprocessing`: the same data the model
   * saw in `kiln train`, `evaluate` and `bench`.
   */
  async predict(model: string, x: Tensor, options: { version?: number | string; preprocessing?: Preprocessing; output?: string } = {}): Promise<Tensor> {
    const key = `${model}@${options.version ?? ''}`;
    let meta = this.metadataCache.get(key);
    if (!meta) {
      meta = this.modelMetadata(model, options);
      this.metadataCache.set(key, meta);
      meta.catch(() => this.metadataCache.delete(key));
    }
    const { inputs, outputs } = await meta;
    if (inputs.length !== 1) throw new KilnError('INVALID_ARGUMENT', `predict(x) needs a model with one input; '${model}' has ${inputs.length}: use infer({name: tensor})`);
    const output = options.output ?? outputs[0]!.name;
    if (!outputs.some((o) => o.name === output)) throw new KilnError('INVALID_ARGUMENT', `predict: model '${model}' has no output '${output}' (outputs: ${outputs.map((o) => `'${o.name}'`).join(', ')})`);
    const input = inputs[0]!;
    const fed = x.dtype === 'float32' ? adaptInput(x, { name: input.name, dtype: 'float32', shape: input.shape.map((d) => (d < 0 ? null : d)) }, options.preprocessing) : x;
    const result = await this.infer(model, { [input.name]: fed }, { version: options.version, outputs: [output] });
    return result[output]!;
  }

  /** Triton's repository index: every model version and its state. */
  repositoryIndex(): Promise<
    {
      /** The model's name. */
      name: string;
      /** The version (absent for a model with no version on disk). */
      version?: string;
      /** 'READY', 'LOADING', 'UNAVAILABLE', ... */
      state: string;
      /** Why the version is not ready, e.g. its load error ('' when ready). */
      reason: string;
    }[]
  > {
    if (this.grpc) this.httpOnly('repositoryIndex');
    return this.json('POST', '/v2/repository/index', {});
  }
}

/** A client for a KServe v2 server at `url`: http://127.0.0.1:8501, or grpc://127.0.0.1:8001 for gRPC (grpcs:// over TLS). */
export function client(url: string, options: ClientOptions = {}): KilnClient {
  return new KilnClient(url, options);
}
