/** Kiln's model server (KServe v2 over HTTP and gRPC + TF Serving REST) and its client. */
export { serve, type ServeOptions, type ServerHandle, type ServableModel } from './server.js';
export { client, KilnClient, type ClientOptions, type InferOptions, type ModelMetadata, type InferResponse } from './client.js';
export { ServeError } from './errors.js';
export type { ClientTls, TlsOptions, PemSource } from './tls.js';
export type { ModelConfig, VersionPolicy } from './config.js';
export type { TensorMetadata } from './client.js';
