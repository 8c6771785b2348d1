import type { FastifyBaseLogger, FastifyError, FastifyReply } from 'fastify';
import { KilnError } from '../errors.js';
import { HEADER_LENGTH } from './binary.js';
import { ServeError } from './errors.js';

/*
 * What an inference route answers, as data: the protocols' handlers return an Answer, and both
 * writers — Fastify's routes (sendAnswer) and the fast path in front of Fastify (fast-path.ts) — put
 * it on the wire with the same status, headers and bytes. Failures map to their status and
 * {"error": ...} message here, for both.
 */

/** JSON replies' content type, as Fastify writes it for 'application/json' text. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** A successful inference reply. */
export interface Answer {
  contentType: string;
  body: string | Buffer;
  /** Triton's binary extension: the byte length of the JSON header that starts the body. */
  headerLength?: number;
}

/** Writes an answer through Fastify. */
export function sendAnswer(reply: FastifyReply, answer: Answer): FastifyReply {
  if (answer.headerLength !== undefined) reply.header(HEADER_LENGTH, answer.headerLength);
  return reply.type(answer.contentType).send(answer.body);
}

/** The HTTP status of a failure: ServeError's own, Fastify's validation 400 and body-limit 413, KilnError's 400/500. */
export function errorStatus(err: FastifyError | KilnError): number {
  if (err instanceof ServeError) return err.status;
  if ((err as FastifyError).validation) return 400;
  if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 413;
  if (err instanceof KilnError) return err.code === 'RUNTIME_ERROR' || err.code === 'IO_ERROR' ? 500 : 400;
  const status = (err as FastifyError).statusCode;
  return status && status >= 400 && status < 600 ? status : 500;
}

/**
 * A failure's status and message, logged (5xx but 503 as errors, the rest at debug): what the
 * `{"error": message}` reply says. `body` is the request's parsed body (a validation failure on no
 * body says so).
 */
export function failureReply(err: FastifyError | KilnError, body: unknown, bodyLimit: number, log: Pick<FastifyBaseLogger, 'error' | 'debug'>, url: string): { status: number; message: string } {
  const status = errorStatus(err);
  let message = err.message;
  if ((err as FastifyError).validation) {
    message = body == null ? 'the request has no body; expected a JSON object' : `invalid request body: ${err.message.replace(/^body\/?/, '').trim()}`;
  } else if (status === 413) message = `the request body is larger than the ${bodyLimit}-byte limit`;
  if (status >= 500 && status !== 503) log.error({ err, url }, 'request failed');
  else log.debug({ status, url, err: message }, 'request refused');
  return { status, message };
}
