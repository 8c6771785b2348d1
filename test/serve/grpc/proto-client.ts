/*
 * A KServe v2 gRPC client generated from the .proto by @grpc/proto-loader, the way a grpc-js user
 * would write one: it shares no code with Kiln's server or client, so the tests check the wire, not
 * Kiln against itself. Also a client that sends arbitrary bytes as a method's request message.
 */
import { credentials, loadPackageDefinition, makeGenericClientConstructor, Metadata, type ChannelCredentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const PROTO_FILE = path.join(ROOT, 'src', 'serve', 'grpc', 'grpc_predict_v2.proto');

const definition = loadSync(PROTO_FILE, { keepCase: true, longs: Number, defaults: true, oneofs: true });
const inference = (loadPackageDefinition(definition) as any).inference;

export type Call = (method: string, request: object, metadata?: Record<string, string>) => Promise<any>;

export interface ProtoClient {
  call: Call;
  /** Sends `bytes` as the request message of `method` and returns the status code (0 = OK). */
  callBytes(method: string, bytes: Buffer, metadata?: Record<string, string>): Promise<{ code: number; details: string }>;
  close(): void;
}

function metadataOf(entries: Record<string, string>): Metadata {
  const md = new Metadata();
  for (const [k, v] of Object.entries(entries)) md.set(k, v);
  return md;
}

/** A client for address host:port (insecure unless credentials are given). */
export function protoClient(address: string, creds: ChannelCredentials = credentials.createInsecure(), options: object = {}): ProtoClient {
  const client: Client & Record<string, Function> = new inference.GRPCInferenceService(address, creds, { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1, ...options });
  const identity = (b: Buffer) => b;
  const raw = makeGenericClientConstructor(
    Object.fromEntries(
      ['ServerLive', 'ServerReady', 'ModelReady', 'ServerMetadata', 'ModelMetadata', 'ModelInfer'].map((name) => [
        name,
        { path: `/inference.GRPCInferenceService/${name}`, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
      ]),
    ),
    'Raw',
  );
  const rawClient: Client & Record<string, Function> = new raw(address, creds, { 'grpc.max_send_message_length': -1, ...options }) as any;
  const deadline = () => Date.now() + 30_000;
  return {
    call: (method, request, metadata = {}) =>
      new Promise((resolve, reject) => client[method]!(request, metadataOf(metadata), { deadline: deadline() }, (err: ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)))),
    callBytes: (method, bytes, metadata = {}) =>
      new Promise((resolve) =>
        rawClient[method]!(bytes, metadataOf(metadata), { deadline: deadline() }, (err: ServiceError | null) => resolve(err ? { code: err.code, details: err.details } : { code: 0, details: '' })),
      ),
    close: () => {
      client.close();
      rawClient.close();
    },
  };
}
