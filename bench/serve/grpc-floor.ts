/*
 * The gRPC floors: bare servers (no model, no decoding) answering every ModelInfer call with the real
 * reply's bytes — what gRPC alone costs on this machine, as http-floor.ts is for HTTP. Two of them: a
 * grpc-js server (the library Kiln's gRPC endpoint is built on), and, with --http2, the same answer
 * written straight onto node:http2 (a 5-byte frame, grpc-status in the trailers) — what Node's HTTP/2
 * costs under any gRPC library. Runs as a child process that prints its port:
 *   node grpc-floor.js REPLY_FILE [--http2]
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export const GRPC_FLOOR_SCRIPT = fileURLToPath(import.meta.url);

function http2Floor(reply: Buffer): void {
  const frame = Buffer.alloc(5 + reply.length);
  frame.writeUInt32BE(reply.length, 1);
  reply.copy(frame, 5);
  const server = createServer();
  server.on('stream', (stream) => {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame);
    });
    stream.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1', () => console.log((server.address() as AddressInfo).port));
}

if (process.argv[1] === GRPC_FLOOR_SCRIPT && process.argv[3] === '--http2') {
  http2Floor(readFileSync(process.argv[2]!));
} else if (process.argv[1] === GRPC_FLOOR_SCRIPT) {
  const reply = readFileSync(process.argv[2]!);
  const identity = (b: Buffer) => b;
  const server = new Server({ 'grpc.max_receive_message_length': -1 });
  server.addService(
    { ModelInfer: { path: '/inference.GRPCInferenceService/ModelInfer', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
    { ModelInfer: (_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => callback(null, reply) },
  );
  server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    console.log(port);
  });
}
