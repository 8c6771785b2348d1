import { Agent, request } from 'node:https';
import { KilnError } from '../errors.js';
import { checkClientTls, type ClientTls } from './tls.js';

/*
 * HTTPS requests with a CA of the client's choosing and a client certificate (mutual TLS), for
 * kiln.client: fetch trusts only the system's CAs and cannot present a certificate.
 */

export interface HttpsReply {
  status: number;
  headers: Headers;
  bytes: Buffer;
}

/** A keep-alive agent holding the client's TLS settings. */
export function tlsAgent(tls: ClientTls): Agent {
  checkClientTls(tls);
  return new Agent({ keepAlive: true, ca: tls.ca === undefined ? undefined : Buffer.from(tls.ca), cert: tls.cert === undefined ? undefined : Buffer.from(tls.cert), key: tls.key === undefined ? undefined : Buffer.from(tls.key) });
}

/** One request through `agent`; fails with IO_ERROR as fetch would (no connection, TLS refused, timeout). */
export function httpsRequest(url: string, method: string, headers: Record<string, string>, body: string | Uint8Array | undefined, agent: Agent, timeoutMs: number): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => reject(new KilnError('IO_ERROR', `${method} ${url} failed: ${err.message}`, { cause: err }));
    const req = request(url, { method, headers, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => {
        const replyHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) replyHeaders.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolve({ status: res.statusCode ?? 0, headers: replyHeaders, bytes: Buffer.concat(chunks) });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no reply within ${timeoutMs} ms`)));
    req.on('error', fail);
    req.end(body);
  });
}
