import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { KilnError } from '../errors.js';

/**
 * One file over HTTP(S) into `<file>.part`, resumable: a restart asks for the missing tail with a
 * Range header and appends it when the server answers 206, or starts over when it answers 200.
 * Failing to reach the host at all (DNS failure, connection refused, no connection within the
 * connect timeout) fails at once, because retrying cannot help someone who is offline; a
 * connection that drops mid-file is retried from where the .part file ends.
 */
export interface DownloadOptions {
  /** Expected size, when known: a .part file of exactly this size is complete, a larger one is stale. */
  expectedBytes?: number;
  /** Give up on a host that has not accepted the connection after this long (DNS included). Default 10 s. */
  connectTimeoutMs?: number;
  /** Give up on a connection that delivers nothing for this long, then resume. Default 30 s. */
  idleTimeoutMs?: number;
  /** Further attempts after a dropped connection or a server error. Default 5. */
  retries?: number;
  /** Pause before attempt k is k times this. Default 1 s. */
  retryDelayMs?: number;
  /** Resolves host names (default: the system resolver). */
  lookup?: LookupFunction;
  /** Called as bytes arrive: the bytes in the .part file so far and the full size when known. */
  onProgress?: (receivedBytes: number, totalBytes: number | undefined, resumedFrom: number) => void;
}

/** A failed attempt: whether another attempt could help, and whether the host was never reached. */
class AttemptFailure extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly unreachable = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Errors that mean the host cannot be reached from here, as opposed to a connection that broke. */
const UNREACHABLE_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'ECONNREFUSED',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'CONNECT_TIMEOUT',
]);

const MAX_REDIRECTS = 5;

function reasonOf(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as NodeJS.ErrnoException).code;
  return code && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
}

function failureOf(cause: unknown, url: URL): AttemptFailure {
  if (cause instanceof AttemptFailure) return cause;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && UNREACHABLE_CODES.has(code)) {
    return new AttemptFailure(`cannot reach ${url.host} (${reasonOf(cause)})`, false, true, { cause });
  }
  return new AttemptFailure(`connection to ${url.host} failed (${reasonOf(cause)})`, true, false, { cause });
}

/** One GET, resolved with the response head; redirects are followed. */
function get(url: URL, headers: Record<string, string>, options: DownloadOptions, redirects = 0): Promise<{ response: IncomingMessage; url: URL }> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new AttemptFailure(`cannot download ${url.href}: only http and https addresses are supported`, false));
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const request = client.get(url, { headers: { 'user-agent': 'kiln', ...headers }, agent: false, ...(options.lookup ? { lookup: options.lookup } : {}) });
    request.on('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => {
        const error = Object.assign(new Error(`no connection within ${connectTimeoutMs} ms`), { code: 'CONNECT_TIMEOUT' });
        request.destroy(error);
      }, connectTimeoutMs);
      const clear = (): void => clearTimeout(timer);
      socket.once('connect', clear);
      socket.once('close', clear);
    });
    // Once connected, a silent connection is a stalled one: drop it and let the caller resume.
    request.setTimeout(idleTimeoutMs, () => request.destroy(Object.assign(new Error(`no data for ${idleTimeoutMs} ms`), { code: 'ETIMEDOUT_IDLE' })));
    request.once('error', (cause) => reject(failureOf(cause, url)));
    request.once('response', (response) => {
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (status >= 300 && status < 400 && status !== 304 && location) {
        response.resume();
        if (redirects >= MAX_REDIRECTS) {
          reject(new AttemptFailure(`${url.href}: more than ${MAX_REDIRECTS} redirects`, false));
          return;
        }
        get(new URL(location, url), headers, options, redirects + 1).then(resolve, reject);
        return;
      }
      resolve({ response, url });
    });
  });
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** `bytes <start>-<end>/<total>` → start and total (total undefined when the server writes '*'). */
function parseContentRange(header: string | undefined): { start: number; total: number | undefined } | undefined {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header?.trim() ?? '');
  if (!match) return undefined;
  return { start: Number(match[1]), total: match[2] === '*' ? undefined : Number(match[2]) };
}

function contentLength(response: IncomingMessage): number | undefined {
  const value = response.headers['content-length'];
  return value === undefined || !/^\d+$/.test(value) ? undefined : Number(value);
}

type AttemptResult = 'complete' | 'restart';

/**
 * Writes a response body to a file. When the connection breaks, the file is flushed and closed
 * before the promise rejects: it holds a clean prefix of the body for the next attempt to measure,
 * and no late write can land after that measurement.
 */
function saveBody(response: IncomingMessage, path: string, flags: 'w' | 'a', onChunk: (bytes: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const file = createWriteStream(path, { flags });
    let broken: unknown;
    let writeFailed: unknown;
    response.on('data', (chunk: Buffer) => {
      onChunk(chunk.length);
      if (!file.write(chunk)) {
        response.pause();
        file.once('drain', () => response.resume());
      }
    });
    response.once('error', (cause) => {
      broken ??= cause;
    });
    // 'close' comes after 'end' or after a failure; `complete` tells which.
    response.once('close', () => {
      if (!response.complete) broken ??= new Error('the connection closed before the end of the body');
      if (!file.destroyed) file.end();
    });
    file.once('error', (cause) => {
      writeFailed = cause;
      response.destroy();
    });
    file.once('close', () => {
      if (writeFailed !== undefined) {
        reject(new KilnError('IO_ERROR', `cannot write ${path}: ${reasonOf(writeFailed)}`, { cause: writeFailed }));
      } else if (broken !== undefined) {
        reject(broken);
      } else {
        resolve();
      }
    });
  });
}

/** One request: appends what the server sends to the .part file. */
async function attempt(url: URL, partPath: string, options: DownloadOptions): Promise<AttemptResult> {
  let have = await sizeOf(partPath);
  const expected = options.expectedBytes;
  if (expected !== undefined && have > expected) {
    await rm(partPath, { force: true });
    have = 0;
  }
  if (expected !== undefined && have === expected) return 'complete';

  const { response, url: finalUrl } = await get(url, have > 0 ? { range: `bytes=${have}-` } : {}, options);
  const status = response.statusCode ?? 0;
  let start: number;
  let total: number | undefined;
  if (status === 206 && have > 0) {
    const range = parseContentRange(response.headers['content-range']);
    if (range === undefined || range.start !== have) {
      // The server sent some other part than the one asked for: keep nothing and start over.
      response.resume();
      await rm(partPath, { force: true });
      return 'restart';
    }
    start = have;
    total = range.total ?? expected;
  } else if (status === 200) {
    start = 0;
    const length = contentLength(response);
    total = length ?? expected;
  } else if (status === 416 && have > 0) {
    // Asked past the end: the .part file is already as long as the file (or longer and stale).
    response.resume();
    if (expected === undefined) return 'complete';
    await rm(partPath, { force: true });
    return 'restart';
  } else {
    response.resume();
    const retryable = status >= 500 || status === 408 || status === 429;
    throw new AttemptFailure(`${finalUrl.href} answered HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}`, retryable);
  }

  let received = start;
  options.onProgress?.(received, total, start);
  try {
    await saveBody(response, partPath, start === 0 ? 'w' : 'a', (bytes) => {
      received += bytes;
      options.onProgress?.(received, total, start);
    });
  } catch (cause) {
    throw cause instanceof KilnError ? cause : failureOf(cause, finalUrl);
  }
  if (total !== undefined && received < total) {
    throw new AttemptFailure(`${finalUrl.href}: the connection ended after ${received} of ${total} bytes`, true);
  }
  return 'complete';
}

/**
 * Downloads `url` into `partPath`, resuming what an earlier run left there. Resolves when the .part
 * file holds the whole body; checking it and renaming it into place is the caller's business.
 */
export async function downloadResumable(url: string, partPath: string, options: DownloadOptions = {}): Promise<void> {
  const retries = options.retries ?? 5;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new KilnError('INVALID_ARGUMENT', `cannot download '${url}': not a valid URL`, { cause });
  }
  let failures = 0;
  // Restarts after a mismatched range are bounded too, so a confused server cannot loop forever.
  for (let round = 0; ; round++) {
    try {
      if ((await attempt(parsed, partPath, options)) === 'complete') return;
      if (round > retries) throw new AttemptFailure(`${url}: the server kept sending the wrong byte ranges`, false);
    } catch (cause) {
      // Local failures (a disk that cannot be written) are not the network's: no retry, no rewording.
      if (cause instanceof KilnError) throw cause;
      const failure = failureOf(cause, parsed);
      failures++;
      if (!failure.retryable || failures > retries) {
        const tries = failures > 1 ? ` (after ${failures} attempts)` : '';
        throw new KilnError('IO_ERROR', `${failure.message}${tries}`, { cause: failure });
      }
      await sleep(retryDelayMs * failures);
    }
  }
}

/** True when a download failed on the network (as opposed to, say, a disk that cannot be written). */
export function isNetworkFailure(error: unknown): boolean {
  return error instanceof KilnError && error.cause instanceof AttemptFailure;
}

/** True when a download failed because the host could not be reached at all (offline, refused, DNS). */
export function isUnreachable(error: unknown): boolean {
  return error instanceof KilnError && error.cause instanceof AttemptFailure && error.cause.unreachable;
}
