import { KilnError } from '../errors.js';
import { serve, type ServeOptions } from '../serve/server.js';
import type { ModelConfig } from '../serve/config.js';
import { defaultedNumber, defaultedString, numberOption, stringOption } from './args.js';
import type { Command } from './command.js';
import { modelKeyFrom } from '../model/model-keys.js';

/*
 * The server also takes its places from the environment, as container platforms set them: KServe and
 * Knative give a container PORT; the Dockerfile `kiln deploy kserve` writes sets KILN_* (see
 * serve/deploy/kserve.ts). Flags win over the environment.
 */
function portFromEnv(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) throw new KilnError('INVALID_ARGUMENT', `kiln serve: environment variable ${name}=${JSON.stringify(text)} must be a port number from 0 to 65535`);
  return Number(text);
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Serve models over KServe v2 (Triton; HTTP and gRPC), TF Serving REST and TorchServe, with batching, hot reload and metrics',
  usage: 'kiln serve <model.onnx | model.onnx.enc> [--name NAME] [--port 8501] | kiln serve --model-repository DIR [options]',
  options: [
    { name: 'model-repository', type: 'string', description: "a directory in Triton's layout: DIR/<model>/<version>/model.onnx (+ optional config.json); default: env KILN_MODEL_REPOSITORY when no model file is given" },
    { name: 'name', type: 'string', description: 'model name for a single model file (default: the file name)' },
    { name: 'host', type: 'string', description: "interface to listen on ('0.0.0.0' for all; default: env KILN_HOST, else 127.0.0.1)" },
    { name: 'port', type: 'number', integer: true, min: 0, max: 65535, description: "port (0: any free port; default: env KILN_PORT, else PORT as Knative and KServe set it, else 8501)" },
    { name: 'grpc-port', type: 'number', integer: true, min: 0, max: 65535, description: "also serve KServe v2 gRPC on this port (Triton's is 8001; 0: any free port; default: env KILN_GRPC_PORT, else no gRPC)" },
    { name: 'key-file', type: 'string', description: 'the key of encrypted models (kiln encrypt), decrypted in memory only (default: env KILN_MODEL_KEY)' },
    { name: 'tls-cert', type: 'string', description: 'serve HTTPS and gRPC over TLS with this certificate chain (PEM file)' },
    { name: 'tls-key', type: 'string', description: "the certificate's private key (PEM file)" },
    { name: 'tls-client-ca', type: 'string', description: 'mutual TLS: require client certificates signed by this CA (PEM file)' },
    { name: 'max-batch-size', type: 'number', integer: true, min: 0, description: 'default largest batch per request and per run (256); above 1 merges concurrent requests (dynamic batching); 0: no limit, no merging' },
    { name: 'max-queue-delay-ms', type: 'number', description: 'default time a request waits for others to fill a batch' },
    { name: 'queue-delay', type: 'string', description: "default queue-delay policy: 'fixed' waits --max-queue-delay-ms for company, 'adaptive' only while arrivals can fill the batch (fixed)" },
    { name: 'max-queue-size', type: 'number', integer: true, min: 1, description: 'default requests queued per version before 429 (1024)' },
    { name: 'max-queue-bytes', type: 'number', integer: true, min: 1, description: 'default request-body bytes admitted per version before 429 (134217728)' },
    { name: 'max-elements', type: 'number', integer: true, min: 1, description: 'elements one request may carry over all its tensors', default: 1 << 22 },
    { name: 'instances', type: 'number', integer: true, min: 1, description: 'default ONNX Runtime sessions (worker threads) per version' },
    { name: 'intra-op-threads', type: 'number', integer: true, min: 1, description: 'default ONNX Runtime threads per session' },
    { name: 'poll-interval-ms', type: 'number', description: 'repository rescan interval (0: file-system events only)', default: 1000 },
    { name: 'auth-token', type: 'string', description: 'require "Authorization: Bearer <token>" on inference and management routes (or env KILN_AUTH_TOKEN)' },
    { name: 'body-limit', type: 'number', integer: true, min: 1, description: 'largest request body in bytes', default: 32 * 1024 * 1024 },
    { name: 'management-port', type: 'number', integer: true, min: 0, max: 65535, description: "serve TorchServe's management reads (GET /models) on this port (TorchServe's 8081) instead of --port" },
    { name: 'max-image-pixels', type: 'number', integer: true, min: 1, description: 'pixels an image in a request may declare, refused from its header before decoding', default: 4096 * 4096 },
    { name: 'request-timeout-ms', type: 'number', description: 'time a request may spend queued and running (0: none)', default: 30_000 },
    { name: 'log-level', type: 'string', description: 'JSON log level: fatal, error, warn, info, debug, silent', default: 'info' },
  ],
  async run({ positionals, options }) {
    const repository = stringOption(options, 'model-repository') ?? (positionals.length === 0 ? process.env.KILN_MODEL_REPOSITORY || undefined : undefined);
    if (positionals.length > 1) throw new KilnError('INVALID_ARGUMENT', `kiln serve: give one model file or --model-repository DIR, got ${positionals.join(' ')}`);
    if ((positionals.length === 1) === (repository !== undefined)) {
      throw new KilnError('INVALID_ARGUMENT', 'kiln serve: give either a model file (kiln serve model.onnx) or --model-repository DIR (or env KILN_MODEL_REPOSITORY)');
    }
    const config: Partial<ModelConfig> = {};
    const setNumber = (option: string, field: 'maxBatchSize' | 'maxQueueDelayMs' | 'maxQueueSize' | 'maxQueueBytes' | 'instances' | 'intraOpThreads') => {
      const value = numberOption(options, option);
      if (value !== undefined) config[field] = value;
    };
    setNumber('max-batch-size', 'maxBatchSize');
    setNumber('max-queue-delay-ms', 'maxQueueDelayMs');
    setNumber('max-queue-size', 'maxQueueSize');
    setNumber('max-queue-bytes', 'maxQueueBytes');
    setNumber('instances', 'instances');
    setNumber('intra-op-threads', 'intraOpThreads');
    const queueDelay = stringOption(options, 'queue-delay');
    if (queueDelay !== undefined) {
      if (queueDelay !== 'fixed' && queueDelay !== 'adaptive') throw new KilnError('INVALID_ARGUMENT', `kiln serve: --queue-delay takes fixed or adaptive, got '${queueDelay}'`);
      config.queueDelay = queueDelay;
    }
    const [cert, key, clientCa] = ['tls-cert', 'tls-key', 'tls-client-ca'].map((o) => stringOption(options, o));
    if ((cert === undefined) !== (key === undefined) || (clientCa !== undefined && cert === undefined)) {
      throw new KilnError('INVALID_ARGUMENT', 'kiln serve: TLS needs --tls-cert and --tls-key together (and --tls-client-ca only with them)');
    }
    const serveOptions: ServeOptions = {
      ...(repository !== undefined ? { modelRepository: repository } : { model: positionals[0]!, name: stringOption(options, 'name') }),
      host: stringOption(options, 'host') ?? (process.env.KILN_HOST || '127.0.0.1'),
      port: numberOption(options, 'port') ?? portFromEnv('KILN_PORT') ?? portFromEnv('PORT') ?? 8501,
      grpcPort: numberOption(options, 'grpc-port') ?? portFromEnv('KILN_GRPC_PORT'),
      modelKey: await modelKeyFrom(stringOption(options, 'key-file')),
      ...(cert !== undefined ? { tls: { cert, key: key!, ...(clientCa !== undefined ? { clientCa } : {}) } } : {}),
      config,
      pollIntervalMs: defaultedNumber(options, 'poll-interval-ms'),
      authToken: stringOption(options, 'auth-token'),
      bodyLimit: defaultedNumber(options, 'body-limit'),
      maxElements: defaultedNumber(options, 'max-elements'),
      requestTimeoutMs: defaultedNumber(options, 'request-timeout-ms'),
      maxImagePixels: defaultedNumber(options, 'max-image-pixels'),
      managementPort: numberOption(options, 'management-port'),
      logLevel: defaultedString(options, 'log-level'),
    };
    const server = await serve(serveOptions);
    // Graceful shutdown: stop accepting, finish what is in flight, unload, exit 0. A second signal forces exit.
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        server.log.info({ signal }, 'signal received');
        process.once('SIGTERM', () => process.exit(1));
        process.once('SIGINT', () => process.exit(1));
        server.close().then(resolve, (err: Error) => {
          server.log.error({ err: err.message }, 'shutdown failed');
          resolve();
        });
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    return 0;
  },
};
