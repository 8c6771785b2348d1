/*
 * The loopback web server that hands a browser Kiln's pages: files from a few folders and pages held
 * in memory, with the headers that make a page cross-origin isolated (COOP same-origin, COEP
 * require-corp), without which a browser gives WebAssembly no threads (no SharedArrayBuffer).
 * Loopback only (127.0.0.1), which browsers treat as a secure context like https.
 */
import { createReadStream, promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { KilnError } from '../errors.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  // Served as bytes: a Content-Encoding would make the browser unpack them before the page sees them.
  '.gz': 'application/octet-stream',
  '.onnx': 'application/octet-stream',
};

export interface StaticServerOptions {
  /** URL prefix (e.g. '/kiln/') and a folder it serves from; a path is looked up in each match in order. */
  folders?: { prefix: string; dir: string }[];
  /** Exact URL path → content served from memory (an HTML page, a generated script). */
  pages?: Record<string, { body: string | Uint8Array; type: string }>;
  /** Send the cross-origin isolation headers (default true; false shows a page without threads). */
  isolated?: boolean;
  /** Port on 127.0.0.1 (default 0: any free one). */
  port?: number;
}

export interface StaticServer {
  /** http://127.0.0.1:PORT (no trailing slash). */
  url: string;
  close(): Promise<void>;
}

function headers(isolated: boolean, type: string): Record<string, string> {
  return {
    'content-type': type,
    'cache-control': 'no-store',
    ...(isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp', 'cross-origin-resource-policy': 'same-origin' } : {}),
  };
}

/** The first existing file a URL path names under the folders, never one outside them. */
async function fileFor(pathname: string, folders: { prefix: string; dir: string }[]): Promise<{ file: string; size: number } | undefined> {
  for (const { prefix, dir } of folders) {
    if (!pathname.startsWith(prefix)) continue;
    const root = path.resolve(dir);
    const file = path.resolve(root, '.' + path.posix.normalize('/' + pathname.slice(prefix.length)));
    if (!file.startsWith(root + path.sep)) continue;
    const stat = await fs.stat(file).catch(() => undefined);
    if (stat?.isFile()) return { file, size: stat.size };
  }
  return undefined;
}

export async function startStaticServer(options: StaticServerOptions = {}): Promise<StaticServer> {
  const folders = options.folders ?? [];
  const pages = options.pages ?? {};
  const isolated = options.isolated ?? true;
  const server = http.createServer((req, res) => {
    void (async () => {
      const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, headers(isolated, 'text/plain')).end('only GET and HEAD\n');
        return;
      }
      // Browsers ask for it unprompted; a 404 would show as an error in the page's console.
      if (pathname === '/favicon.ico' && !pages[pathname]) {
        res.writeHead(204, headers(isolated, 'image/x-icon')).end();
        return;
      }
      const page = pages[pathname];
      if (page) {
        res.writeHead(200, headers(isolated, page.type)).end(req.method === 'HEAD' ? undefined : page.body);
        return;
      }
      const found = await fileFor(pathname, folders);
      if (!found) {
        res.writeHead(404, headers(isolated, 'text/plain')).end(`not found: ${pathname}\n`);
        return;
      }
      res.writeHead(200, { ...headers(isolated, CONTENT_TYPES[path.extname(found.file)] ?? 'application/octet-stream'), 'content-length': String(found.size) });
      if (req.method === 'HEAD') res.end();
      else createReadStream(found.file).pipe(res);
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, headers(isolated, 'text/plain'));
      res.end(`${err.message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new KilnError('IO_ERROR', `could not listen on 127.0.0.1:${options.port ?? 0}: ${err.code ?? err.message}`, { cause: err })),
    );
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
