import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Tensor } from '../tensor.js';
import { releaseWhenDone } from './connections.js';
import { badRequest, closeIfBodyPending, ServeError } from './errors.js';
import { own, record } from './records.js';
import type { ModelVersion } from './model-version.js';
import type { ModelRegistry, VersionRef } from './registry.js';
import { checkFeeds, type TensorSpec } from './signature.js';

/*
 * The inference path both protocols share, top to bottom: resolve the version (and hold it so a
 * drain waits for this request) → the protocol decodes its body into tensors → check them against
 * the model → queue / batch → run → the protocol encodes the outputs. Success, failure and duration
 * are counted per model version.
 */

export interface InferenceLimits {
  /** Elements one request tensor may have. */
  maxElements: number;
  /** Time a request may spend queued and running (0: no limit). */
  requestTimeoutMs: number;
  /** Pixels (width × height) an image in a request may declare; more is refused from its header (default 16,777,216). */
  maxImagePixels?: number;
}

/** Where an inference request goes, read from its URL: model name and version. */
export type LocateTarget = (req: FastifyRequest) => { name: string; ref: VersionRef };

/**
 * An onRequest hook for inference routes: resolves the addressed version and admits the request from
 * its headers (ModelVersion.admit), so a request that cannot be served — unknown model, version not
 * ready, queue full — is answered before its body is read, let alone parsed.
 */
export function admission(registry: ModelRegistry, locate: LocateTarget): (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void {
  // A callback hook, not an async one: no promise per request for work that never waits.
  return (req, reply, done) => {
    let version: ModelVersion | undefined;
    try {
      const target = locate(req);
      version = registry.resolve(target.name, target.ref);
      // Bytes read on the connection since the headers, up to the declared length (a keep-alive
      // client may already be sending its next request).
      const socket = req.raw.socket;
      const start = socket.bytesRead;
      const length = req.headers['content-length'];
      const declared = length !== undefined ? Number(length) || 0 : req.headers['transfer-encoding'] !== undefined ? Infinity : 0;
      releaseWhenDone(reply.raw, socket, version.admit({ declared, received: () => Math.min(declared, socket.bytesRead - start) }));
    } catch (err) {
      if (err instanceof ServeError && err.status === 429) version?.metrics?.failed(err.reason, 0);
      closeIfBodyPending(req, reply);
      return done(err as Error);
    }
    done();
  };
}

/** Runs `handle` against the addressed version while holding it; counts the outcome. */
export async function withVersion<T>(registry: ModelRegistry, name: string, ref: VersionRef, handle: (version: ModelVersion) => Promise<T>): Promise<T> {
  const version = registry.resolve(name, ref);
  const release = version.acquire();
  const start = performance.now();
  try {
    const result = await handle(version);
    version.metrics?.succeeded((performance.now() - start) / 1000);
    return result;
  } catch (err) {
    version.metrics?.failed(err instanceof ServeError ? err.reason : 'bad_request', (performance.now() - start) / 1000);
    throw err;
  } finally {
    release();
  }
}

/** The outputs a request asks for (all when none are named), checked against the model. */
export function selectOutputs(version: ModelVersion, names: readonly string[] | undefined): TensorSpec[] {
  const outputs = version.signature!.outputs;
  if (!names || names.length === 0) return outputs;
  return names.map((name) => {
    const spec = outputs.find((o) => o.name === name);
    if (!spec) throw badRequest(`unknown output '${name}'; the model's outputs are ${outputs.map((o) => `'${o.name}'`).join(', ')}`);
    return spec;
  });
}

/** Checks decoded inputs (by served name), queues them and returns the outputs by served name. */
export async function infer(version: ModelVersion, feeds: Record<string, Tensor>, limits: InferenceLimits): Promise<Record<string, Tensor>> {
  const signature = version.signature!;
  const checked = checkFeeds(signature, feeds, version.config.maxBatchSize);
  const outputs = await version.batcher!.submit(checked.feeds, checked.rows, limits.requestTimeoutMs);
  const byName = record<Tensor>();
  for (const spec of signature.outputs) {
    const t = own(outputs, spec.onnxName) as Tensor | undefined;
    if (!t) throw new ServeError(500, `${version.what}: ONNX Runtime returned no output '${spec.onnxName}'`);
    byName[spec.name] = t;
  }
  return byName;
}
