/*
 * The gRPC floor: a bare grpc-js server (no model, no decoding) answering every ModelInfer call with
 * the real reply's bytes — what gRPC alone costs on this machine, as http-floor.ts is for HTTP. Runs
 * as a child process that prints its port: node grpc-floor.js REPLY_FILE
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const GRPC_FLOOR_SCRIPT = fileURLToPath(import.meta.url);

if (process.argv[1] === GRPC_FLOOR_SCRIPT) {
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
