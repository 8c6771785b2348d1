import { Server as NetServer, type Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';

/*
 * The server's open connections, for a shutdown that drops no request a client already sent. Node's
 * server.close() (and Fastify's close) destroys every keep-alive connection with no request in
 * progress at once — including one whose next request is already on its way or sitting unread in
 * the socket buffer, which the client then sees as a reset. So shutdown first stops accepting while
 * keeping the open connections; each request that arrives on one is answered (with Connection: close,
 * see server.ts), and a connection is closed only once it has been idle for a grace period.
 */

interface Tracked {
  /** Requests in progress on the connection. */
  busy: number;
  /** When its last response ended (or it opened), in ms since the epoch. */
  idleSince: number;
}

export class ConnectionTracker {
  private readonly sockets = new Map<Socket, Tracked>();

  constructor(private readonly server: HttpServer) {
    // Over TLS, requests arrive on the TLS socket the handshake makes, not on the TCP one under it.
    server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (socket: Socket) => {
      this.sockets.set(socket, { busy: 0, idleSince: Date.now() });
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const tracked = this.sockets.get(req.socket);
      if (!tracked) return;
      tracked.busy++;
      res.once('close', () => {
        tracked.busy--;
        tracked.idleSince = Date.now();
      });
    });
  }

  /**
   * Stops accepting connections, keeping the open ones; then closes each one once it has been idle
   * for `graceMs` since the drain began (or since its last response, if later: a connection idle for
   * long may hold a request sent just now, not yet read), and resolves when only connections with a
   * request in progress are left (their responses close them).
   */
  async drain(graceMs: number): Promise<void> {
    const started = Date.now();
    // net.Server's close, not http.Server's: the latter also destroys idle keep-alive connections now.
    if (this.server.listening) NetServer.prototype.close.call(this.server);
    // Requests already in the socket buffers are read within a turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    for (;;) {
      const now = Date.now();
      let waitMs = Infinity;
      for (const [socket, tracked] of this.sockets) {
        if (tracked.busy > 0) continue;
        const idleMs = now - Math.max(tracked.idleSince, started);
        if (idleMs >= graceMs) socket.destroy();
        else waitMs = Math.min(waitMs, graceMs - idleMs);
      }
      if (waitMs === Infinity) return;
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, waitMs)));
    }
  }
}

/** Admission releases waiting on each connection (see releaseWhenDone). */
const pendingReleases = new WeakMap<Socket, Set<() => void>>();

/**
 * Runs `release` once a request is answered or abandoned. A response's 'close' fires when it is sent
 * or its connection drops — but not for a pipelined request whose response never reached the socket
 * (an earlier request on the connection was still being answered when the client reset it), which
 * would hold its admission (a slot, and its body's bytes against maxQueueBytes) for good. So the
 * connection's own 'close' releases too: one listener per connection, however many requests it
 * pipelines.
 */
export function releaseWhenDone(res: ServerResponse, socket: Socket, release: () => void): void {
  if (socket.destroyed) {
    release();
    return;
  }
  let pending = pendingReleases.get(socket);
  if (!pending) {
    const releases = new Set<() => void>();
    pendingReleases.set(socket, releases);
    socket.once('close', () => {
      for (const r of releases) r();
      releases.clear();
    });
    pending = releases;
  }
  const waiting = pending;
  waiting.add(release);
  res.once('close', () => {
    waiting.delete(release);
    release();
  });
}
