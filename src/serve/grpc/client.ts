import { credentials, makeGenericClientConstructor, Metadata, status, type ChannelCredentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { bytesPerElement } from '../../graph/dtype.js';
import { formatShape, KilnError } from '../../errors.js';
import { Tensor, type AnyTypedArray } from '../../tensor.js';
import { elementsFromBytes } from '../binary.js';
import { checkShape, dtypeOfDatatype, ElementBudget, kserveDatatype } from '../datatypes.js';
import { ServeError } from '../errors.js';
import { contentsOf, elementsFromContents, rawOf } from './contents.js';
import { toNumber, type InferOutputTensor, type ModelInferRequest, type ModelInferResponse, type ModelMetadataResponse, type ServerMetadataResponse } from './messages.js';
import { checkClientTls, type ClientTls } from '../tls.js';
import { serviceDefinition, type MethodName } from './service.js';

/*
 * The gRPC side of kiln.client (`grpc://host:port`, or `grpcs://` over TLS): KServe v2's
 * GRPCInferenceService, so it talks to `kiln serve --grpc-port`, Triton (port 8001) or KServe.
 */

const GrpcInferenceClient = makeGenericClientConstructor(serviceDefinition('client'), 'GRPCInferenceService');

/** gRPC status → the HTTP status the same failure has over HTTP (ServeError's). */
const HTTP_STATUS: Partial<Record<status, number>> = {
  [status.INVALID_ARGUMENT]: 400,
  [status.UNAUTHENTICATED]: 401,
  [status.PERMISSION_DENIED]: 403,
  [status.NOT_FOUND]: 404,
  [status.RESOURCE_EXHAUSTED]: 429,
  [status.UNIMPLEMENTED]: 501,
  [status.UNAVAILABLE]: 503,
  [status.DEADLINE_EXCEEDED]: 504,
};

const bytesOf = (v: string | Uint8Array | undefined): Buffer | null => (v === undefined ? null : Buffer.from(v));

export class GrpcTransport {
  private readonly client: Client;
  private readonly metadata = new Metadata();

  /** `address` is host:port; `tls` given (even empty) means TLS. */
  constructor(
    readonly address: string,
    private readonly options: { token?: string; timeoutMs?: number; tls?: ClientTls },
  ) {
    const tls = options.tls;
    let creds: ChannelCredentials;
    if (tls) {
      checkClientTls(tls);
      creds = credentials.createSsl(bytesOf(tls.ca), bytesOf(tls.key), bytesOf(tls.cert));
    } else creds = credentials.createInsecure();
    if (options.token) this.metadata.set('authorization', `Bearer ${options.token}`);
    // Replies are bounded by what the server sends; the default 4 MiB would refuse large outputs.
    this.client = new GrpcInferenceClient(address, creds, { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
  }

  private call<T>(method: MethodName, request: object): Promise<T> {
    const deadline = Date.now() + (this.options.timeoutMs ?? 60_000);
    return new Promise((resolve, reject) => {
      const invoke = (this.client as unknown as Record<MethodName, (req: object, md: Metadata, opts: object, cb: (err: ServiceError | null, res: T) => void) => void>)[method];
      invoke.call(this.client, request, this.metadata, { deadline }, (err, response) => {
        if (!err) return resolve(response);
        const name = status[err.code] ?? String(err.code);
        reject(new ServeError(HTTP_STATUS[err.code as status] ?? 500, `${method} grpc://${this.address}: gRPC ${name}: ${err.details}`));
      });
    });
  }

  async live(): Promise<boolean> {
    return (await this.call<{ live: boolean }>('ServerLive', {})).live;
  }

  async ready(): Promise<boolean> {
    return (await this.call<{ ready: boolean }>('ServerReady', {})).ready;
  }

  async serverMetadata(): Promise<ServerMetadataResponse> {
    const m = await this.call<ServerMetadataResponse>('ServerMetadata', {});
    return { name: m.name, version: m.version, extensions: [...m.extensions] };
  }

  async modelReady(model: string, version?: number | string): Promise<boolean> {
    return (await this.call<{ ready: boolean }>('ModelReady', { name: model, version: version === undefined ? '' : String(version) })).ready;
  }

  async modelMetadata(model: string, version?: number | string) {
    const m = await this.call<ModelMetadataResponse>('ModelMetadata', { name: model, version: version === undefined ? '' : String(version) });
    const tensor = (t: ModelMetadataResponse['inputs'][number]) => ({ name: t.name, datatype: t.datatype, shape: t.shape.map(toNumber) });
    return { name: m.name, versions: m.versions, platform: m.platform, inputs: m.inputs.map(tensor), outputs: m.outputs.map(tensor) };
  }

  /** ModelInfer with raw contents (or typed contents when `raw` is false); the outputs by name. */
  async infer(model: string, inputs: Record<string, Tensor>, options: { version?: number | string; outputs?: string[]; id?: string; raw: boolean }): Promise<Record<string, Tensor>> {
    const entries = Object.entries(inputs);
    const request: ModelInferRequest = {
      model_name: model,
      model_version: options.version === undefined ? '' : String(options.version),
      id: options.id ?? '',
      inputs: entries.map(([name, t]) => ({ name, datatype: kserveDatatype(t.dtype), shape: [...t.shape], ...(options.raw ? {} : { contents: contentsOf(t) }) })),
      outputs: (options.outputs ?? []).map((name) => ({ name })),
      raw_input_contents: options.raw ? entries.map(([, t]) => rawOf(t)) : [],
    };
    const response = await this.call<ModelInferResponse>('ModelInfer', request);
    const out: Record<string, Tensor> = {};
    response.outputs.forEach((o, i) => (out[o.name] = tensorOf(o, response.raw_output_contents[i])));
    return out;
  }

  close(): void {
    this.client.close();
  }
}

/** A reply tensor (raw bytes or typed contents) → a Kiln tensor. */
function tensorOf(o: InferOutputTensor, raw: Uint8Array | undefined): Tensor {
  const what = `output '${o.name}'`;
  const dtype = dtypeOfDatatype(o.datatype);
  if (!dtype) throw new KilnError('INVALID_DATA', `${what} has datatype ${o.datatype}, which Kiln tensors do not carry`);
  const shape = o.shape.map(toNumber);
  const size = checkShape(shape, what, new ElementBudget(Number.MAX_SAFE_INTEGER));
  let data: AnyTypedArray;
  if (raw !== undefined) {
    const expected = size * bytesPerElement(dtype);
    if (raw.length !== expected) throw new KilnError('INVALID_DATA', `${what}: shape ${formatShape(shape)} of ${o.datatype} needs ${expected} bytes, the reply's raw contents have ${raw.length}`);
    data = elementsFromBytes(dtype, size, raw);
  } else data = elementsFromContents(o.contents, dtype, size, what, o.datatype);
  return new Tensor(data as never, shape, dtype);
}
