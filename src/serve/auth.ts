import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KilnError } from '../errors.js';
import { closeIfBodyPending, ServeError } from './errors.js';

/*
 * Bearer-token auth: which token a server enforces (a given token that cannot work is a start-up
 * error, never a silent "no auth"), and the hook that checks it before a request's body is read.
 */

/**
 * The token to enforce: the option when given (even empty), else a non-empty KILN_AUTH_TOKEN, else
 * none. An empty or blank token, or one that cannot travel in an HTTP header, is refused.
 */
export function authTokenFrom(option: string | undefined, env: string | undefined): string | undefined {
  const [token, where] = option !== undefined ? [option, 'the auth token (--auth-token / authToken)'] : env ? [env, 'KILN_AUTH_TOKEN'] : [undefined, ''];
  if (token === undefined) return undefined;
  if (token.trim() === '') throw new KilnError('INVALID_ARGUMENT', `${where} is empty; give a non-empty token, or none to serve without auth`);
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new KilnError('INVALID_ARGUMENT', `${where} must be printable ASCII without spaces (it is sent in an Authorization header)`);
  }
  return token;
}

/**
 * A check of an `Authorization` value (HTTP header or gRPC metadata) against `Bearer <token>`: the
 * refusal's message, or undefined when it matches. The comparison takes constant time.
 */
export function bearerCheck(token: string): (authorization: string | undefined) => string | undefined {
  const expected = createHash('sha256').update(token).digest();
  return (authorization) => {
    const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
    const given = createHash('sha256').update(match ? match[1]!.trim() : '').digest();
    if (match && timingSafeEqual(given, expected)) return undefined;
    return match ? 'invalid bearer token' : 'this route needs an Authorization: Bearer <token> header';
  };
}

/** An onRequest hook demanding `Authorization: Bearer <token>`. */
export function bearerAuth(token: string): (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void {
  const check = bearerCheck(token);
  return (req, reply, done) => {
    const refusal = check(req.headers.authorization);
    if (refusal === undefined) return done();
    reply.header('www-authenticate', 'Bearer');
    closeIfBodyPending(req, reply);
    done(new ServeError(401, refusal));
  };
}

/** Registers the plugins in a scope that checks the token when one is configured. */
export function protectedScope(token: string | undefined, register: (scope: FastifyInstance) => Promise<void>) {
  return async (scope: FastifyInstance): Promise<void> => {
    if (token !== undefined) scope.addHook('onRequest', bearerAuth(token));
    await register(scope);
  };
}
