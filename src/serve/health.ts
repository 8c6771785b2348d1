import type { FastifyInstance } from 'fastify';
import type { ModelRegistry } from './registry.js';

/*
 * Liveness, readiness and server metadata (KServe v2). No auth: orchestrators probe these. They only
 * read in-memory state, so they answer while models compute in their worker threads.
 */

export const SERVER_NAME = 'kiln';
export const SERVER_VERSION = '0.1.0';
export const EXTENSIONS = ['classification', 'model_repository'];

export async function healthRoutes(app: FastifyInstance, opts: { registry: ModelRegistry; isClosing: () => boolean }): Promise<void> {
  app.get('/v2/health/live', async (_req, reply) => reply.code(200).send());
  app.get('/v2/health/ready', async (_req, reply) => reply.code(!opts.isClosing() && opts.registry.isReady() ? 200 : 503).send());
  app.get('/v2', async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS }));
}
