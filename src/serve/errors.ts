import type { FastifyReply, FastifyRequest } from 'fastify';
import { KilnError } from '../errors.js';

/**
 * A failure answered over HTTP: the status follows Triton's mapping (NOT_FOUND → 404, UNAVAILABLE → 503,
 * UNSUPPORTED → 501, a full queue → 429, everything the caller got wrong → 400), and the message
 * becomes the body's `{"error": "..."}`.
 */
export class ServeError extends KilnError {
  /** The HTTP status the server answered (or would answer) with. */
  readonly status: number;
  /** Why, for the failure metric: bad_request, queue_full, timeout, unavailable, internal. */
  readonly reason: string;
  constructor(status: number, message: string, options?: { cause?: unknown; reason?: string }) {
    super(status >= 500 && status !== 501 && status !== 503 ? 'RUNTIME_ERROR' : 'INVALID_ARGUMENT', message, options);
    this.name = 'ServeError';
    this.status = status;
    this.reason = options?.reason ?? reasonOf(status);
  }
}

function reasonOf(status: number): string {
  if (status === 429) return 'queue_full';
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'internal';
  return 'bad_request';
}

export const badRequest = (message: string): ServeError => new ServeError(400, message);
export const notFound = (message: string): ServeError => new ServeError(404, message);
export const unavailable = (message: string): ServeError => new ServeError(503, message);

/** Bodies up to this size are read and dropped after an early refusal; reconnecting would cost the client more. */
const DISCARDED_BODY_BYTES = 64 * 1024;

/** A refusal answered before a large (or chunked) body is read closes the connection, so that body is never read. */
export function closeIfBodyPending(req: FastifyRequest, reply: FastifyReply): void {
  const length = Number(req.headers['content-length'] ?? 0);
  if (req.headers['transfer-encoding'] !== undefined || !(length <= DISCARDED_BODY_BYTES)) reply.header('connection', 'close');
}
