import { KilnError } from '../errors.js';

/**
 * A failure answered over HTTP: the status follows Triton's mapping (NOT_FOUND → 404, UNAVAILABLE → 503,
 * UNSUPPORTED → 501, a full queue → 429, everything the caller got wrong → 400), and the message
 * becomes the body's `{"error": "..."}`.
 */
export class ServeError extends KilnError {
  readonly status: number;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(status >= 500 && status !== 501 && status !== 503 ? 'RUNTIME_ERROR' : 'INVALID_ARGUMENT', message, options);
    this.name = 'ServeError';
    this.status = status;
  }
}

export const badRequest = (message: string): ServeError => new ServeError(400, message);
export const notFound = (message: string): ServeError => new ServeError(404, message);
export const unavailable = (message: string): ServeError => new ServeError(503, message);
