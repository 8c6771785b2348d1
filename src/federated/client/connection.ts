// Owns a client's link to the coordinator: authenticated requests over HTTP or HTTPS (a CA and a
// client certificate of the user's choosing, as kiln.client), refusals turned into KilnErrors that
// quote the coordinator's reason, and retrying while the coordinator is unreachable (restarting after
// a kill) for up to a set time.
import type { Agent } from 'node:https';
import { KilnError } from '../../errors.js';
import { httpsRequest, tlsAgent } from '../../serve/https-request.js';
import type { ClientTls } from '../../serve/tls.js';
import { FEDERATED_API as API } from '../transport/envelope.js';

/** A coordinator's answer. */
export interface CoordinatorReply {
  /** HTTP status. */
  status: number;
  /** The body. */
  bytes: Buffer;
}

/** The coordinator refused a message: its status and reason. */
export class RefusedError extends KilnError {
  /** The HTTP status (400 bad data, 401 token, 403 not in the cohort, 409 stale or foreign, 413 too large). */
  readonly status: number;
  constructor(status: number, message: string) {
    super(status === 401 ? 'INVALID_ARGUMENT' : 'INVALID_DATA', message);
    this.name = 'RefusedError';
    this.status = status;
  }
}

/** Options of a connection. */
export interface ConnectionOptions {
  /** The client's bearer token. */
  token: string;
  /** TLS settings for https:// coordinators (CA to trust, client certificate). */
  tls?: ClientTls;
  /** How long to keep retrying an unreachable coordinator before giving up (default 120,000 ms). */
  retryTimeoutMs?: number;
  /** Called when a request fails and is retried. */
  onRetry?: (error: Error) => void;
}

/** One client's authenticated link to a coordinator. */
export class Connection {
  private readonly url: string;
  private readonly agent: Agent | undefined;

  constructor(url: string, private readonly options: ConnectionOptions) {
    if (!/^https?:\/\//.test(url)) throw new KilnError('INVALID_ARGUMENT', `the coordinator URL must start with http:// or https://, got '${url}'`);
    this.url = url.replace(/\/+$/, '');
    this.agent = url.startsWith('https://') ? tlsAgent(options.tls ?? {}) : undefined;
  }

  private async once(method: 'GET' | 'POST', route: string, body: Uint8Array | string | undefined, timeoutMs: number): Promise<CoordinatorReply> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.token}` };
    if (body !== undefined) headers['content-type'] = typeof body === 'string' ? 'application/json' : 'application/octet-stream';
    const target = `${this.url}${API}/${route}`;
    if (this.agent) return httpsRequest(target, method, headers, body, this.agent, timeoutMs);
    let res: Response;
    try {
      res = await fetch(target, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new KilnError('IO_ERROR', `${method} ${target} failed: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, { cause: err });
    }
    return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
  }

  /**
   * One request, retried while the coordinator cannot be reached (or answers 503) for up to the retry
   * time; a refusal (4xx) is a RefusedError with the coordinator's reason, never retried.
   */
  async request(method: 'GET' | 'POST', route: string, body?: Uint8Array | string, timeoutMs = 60_000): Promise<CoordinatorReply> {
    const giveUp = Date.now() + (this.options.retryTimeoutMs ?? 120_000);
    for (let wait = 200; ; wait = Math.min(wait * 2, 5000)) {
      let failure: Error;
      try {
        const reply = await this.once(method, route, body, timeoutMs);
        if (reply.status < 400) return reply;
        let reason = reply.bytes.toString('utf8');
        try {
          reason = (JSON.parse(reason) as { error?: string }).error ?? reason;
        } catch {
          // not JSON: the raw text is the reason
        }
        if (reply.status !== 503 && reply.status < 500) throw new RefusedError(reply.status, `the coordinator refused ${method} ${route} (${reply.status}): ${reason}`);
        failure = new KilnError('IO_ERROR', `the coordinator answered ${reply.status}: ${reason}`);
      } catch (err) {
        if (err instanceof RefusedError || !(err instanceof KilnError) || err.code !== 'IO_ERROR') throw err;
        failure = err;
      }
      if (Date.now() + wait > giveUp) throw new KilnError('IO_ERROR', `the coordinator at ${this.url} stayed unreachable for ${this.options.retryTimeoutMs ?? 120_000} ms: ${failure.message}`, { cause: failure });
      this.options.onRetry?.(failure);
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** A JSON POST. */
  postJson(route: string, body: unknown): Promise<CoordinatorReply> {
    return this.request('POST', route, JSON.stringify(body));
  }
}
