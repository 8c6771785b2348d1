import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ServeError } from './errors.js';

/** An onRequest hook demanding `Authorization: Bearer <token>`; the comparison takes constant time. */
export function bearerAuth(token: string): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const expected = createHash('sha256').update(token).digest();
  return async (req, reply) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = createHash('sha256').update(match ? match[1]!.trim() : '').digest();
    if (!match || !timingSafeEqual(given, expected)) {
      reply.header('www-authenticate', 'Bearer');
      throw new ServeError(401, match ? 'invalid bearer token' : 'this route needs an Authorization: Bearer <token> header');
    }
  };
}

/** Registers the plugins in a scope that checks the token when one is configured. */
export function protectedScope(token: string | undefined, register: (scope: FastifyInstance) => Promise<void>) {
  return async (scope: FastifyInstance): Promise<void> => {
    if (token) scope.addHook('onRequest', bearerAuth(token));
    await register(scope);
  };
}
