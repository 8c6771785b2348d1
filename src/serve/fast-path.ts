import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { KilnError } from '../errors.js';
import { failureReply, JSON_CONTENT_TYPE, type Answer } from './answers.js';
import { requestArrived } from './arrivals.js';
import { HEADER_LENGTH } from './binary.js';
import { releaseWhenDone } from './connections.js';
import type { ModelRegistry, VersionRef } from './registry.js';

/*
 * The inference routes' fast path: a node:http 'request' listener in front of Fastify's that answers
 * well-formed KServe v2 infer and TF Serving POSTs itself — matching method and path with one regular
 * expression, reading the body, and calling the same handlers, body parser, admission and failure
 * mapping as the Fastify routes — without Fastify's routing, hooks, request/reply objects and
 * promise chain, which cost about a third of the event loop's time per request. Anything it does not
 * take whole goes to Fastify untouched: other routes and methods, query strings, percent-encoded or
 * long paths, other content types, chunked or over-limit bodies, and every request refused before
 * its body is read (auth, unknown model, version not ready, queue full), so those refusals are
 * written in one place. The checks that decide are free of side effects, so Fastify repeats them.
 */

const KSERVE_INFER = /^\/v2\/models\/([A-Za-z0-9_.-]{1,512})\/(?:versions\/([A-Za-z0-9_.-]{1,512})\/)?infer$/;
const TF_SERVING_POST = /^\/v1\/models\/([A-Za-z0-9_./-]{1,512}:[A-Za-z]{1,16})$/;

/** What the fast path shares with the Fastify routes. */
export interface FastPathRoutes {
  registry: ModelRegistry;
  bodyLimit: number;
  log: Logger;
  /** The bearer check (auth.ts), when a token is enforced: a refusal message, or undefined. */
  authCheck: ((authorization: string | undefined) => string | undefined) | undefined;
  /** The body parser of every route (server.ts). */
  parseBody(body: Buffer, headers: IncomingMessage['headers'], url: string): unknown;
  /** KServe v2 inference (kserve-v2.ts). */
  kserve(model: string, ref: VersionRef, parsed: unknown): Promise<Answer>;
  /** TF Serving's POST /v1/models/<rest> (tf-serving.ts). */
  tfServing(rest: string, parsed: unknown): Promise<Answer>;
  /** Where a TF Serving path goes (throws when it matches no route). */
  tfServingTarget(rest: string): { name: string; ref: VersionRef };
  isClosing(): boolean;
}

/** Answers one request's body, once read. */
type Handler = (parsed: unknown) => Promise<Answer>;

export class InferenceFastPath {
  /** Requests answered here rather than by Fastify (tests read it). */
  answered = 0;

  constructor(private readonly routes: FastPathRoutes) {}

  /** Puts the fast path in front of the server's 'request' listeners (Fastify's). */
  install(server: Server): void {
    const fallback = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.take(req, res)) return;
      for (const listener of fallback) listener.call(server, req, res);
    });
  }

  /** Takes the request when it can answer it whole; false leaves it untouched for Fastify. */
  take(req: IncomingMessage, res: ServerResponse): boolean {
    const { routes } = this;
    if (req.method !== 'POST' || routes.isClosing()) return false;
    const url = req.url!;
    const headers = req.headers;
    const type = headers['content-type'];
    if (type !== 'application/json' && type !== 'application/octet-stream') return false;
    const length = headers['content-length'];
    if (length === undefined || headers['transfer-encoding'] !== undefined) return false;
    const declared = Number(length);
    if (!(declared > 0 && declared <= routes.bodyLimit)) return false;
    if (routes.authCheck && routes.authCheck(headers.authorization) !== undefined) return false;
    let name: string;
    let ref: VersionRef;
    let handler: Handler;
    let m = KSERVE_INFER.exec(url);
    if (m) {
      name = m[1]!;
      ref = m[2] === undefined ? {} : { version: m[2] };
      handler = (parsed) => routes.kserve(name, ref, parsed);
    } else if ((m = TF_SERVING_POST.exec(url))) {
      const rest = m[1]!;
      try {
        ({ name, ref } = routes.tfServingTarget(rest));
      } catch {
        return false;
      }
      handler = (parsed) => routes.tfServing(rest, parsed);
    } else return false;
    let release: () => void;
    const socket = req.socket;
    try {
      const start = socket.bytesRead;
      release = routes.registry.resolve(name, ref).admit({ declared, received: () => Math.min(declared, socket.bytesRead - start) });
    } catch {
      return false;
    }
    requestArrived();
    this.answered++;
    releaseWhenDone(res, socket, release);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      let parsed: unknown;
      try {
        parsed = routes.parseBody(body, headers, url);
      } catch (err) {
        // As Fastify's parser failures do: the connection is closed, its client may send more.
        this.fail(res, err as KilnError, undefined, url, true);
        return;
      }
      handler(parsed).then(
        (answer) => this.write(res, answer),
        (err: KilnError) => this.fail(res, err, parsed, url),
      );
    });
    return true;
  }

  /** The reply Fastify's sendAnswer writes: the same headers in the same order. */
  private write(res: ServerResponse, answer: Answer): void {
    const { body } = answer;
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    const head: string[] = answer.headerLength === undefined ? [] : [HEADER_LENGTH, String(answer.headerLength)];
    head.push('content-type', answer.contentType, 'content-length', String(size));
    // Replies during shutdown close their connection so clients move on (server.ts's onSend hook).
    if (this.routes.isClosing()) head.push('connection', 'close');
    res.writeHead(200, head);
    res.end(body);
  }

  /** The failure Fastify's error handler writes. */
  private fail(res: ServerResponse, err: KilnError, parsed: unknown, url: string, unparsed = false): void {
    const { status, message } = failureReply(err, parsed, this.routes.bodyLimit, this.routes.log, url);
    const body = JSON.stringify({ error: message });
    const head = unparsed ? ['connection', 'close'] : [];
    head.push('content-type', JSON_CONTENT_TYPE, 'content-length', String(Buffer.byteLength(body)));
    if (!unparsed && this.routes.isClosing()) head.push('connection', 'close');
    res.writeHead(status, head);
    res.end(body);
  }
}
