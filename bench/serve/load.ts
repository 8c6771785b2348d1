/*
 * The serve bench's load generators: wrk (Debian's `wrk`, written in C: ~35 µs of CPU per request
 * measured here, mostly in the kernel) or autocannon (Node: several times more), both taking their
 * CPU from the same two cores the server runs on. Either one keeps a fixed number of connections busy
 * with the same request for a number of seconds.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';

export type LoadClient = 'wrk' | 'autocannon';

export interface Load {
  url: string;
  headers: Record<string, string>;
  body: string | Buffer;
  connections: number;
  /** Seconds; wrk takes whole seconds, so it is rounded up for wrk. */
  duration: number;
}

export interface LoadResult {
  rps: number;
  /** Requests answered in the run. */
  requests: number;
  /** Milliseconds. */
  p50: number;
  p99: number;
  failures: number;
}

export function hasWrk(): boolean {
  return spawnSync('wrk', ['--version']).error === undefined;
}

/** A Lua string literal; only printable ASCII is written, so that JSON's quoting is also Lua's. */
function luaString(text: string): string {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new Error(`wrk script: only printable ASCII can be quoted, got ${JSON.stringify(text)}`);
  return JSON.stringify(text);
}

/**
 * wrk's script: POST the body read from `bodyFile` (binary-safe) with the headers, and print wrk's
 * own summary as one `KILN {json}` line (wrk gives microseconds for the duration and the latencies).
 */
export function wrkScript(headers: Record<string, string>, bodyFile: string): string {
  return [
    `local f = assert(io.open(${luaString(bodyFile)}, "rb"))`,
    'wrk.method = "POST"',
    'wrk.body = f:read("*a")',
    'f:close()',
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`),
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'KILN {"requests":%d,"micros":%d,"p50":%d,"p99":%d,"failures":%d}\\n\',',
    '    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout + e.status))',
    'end',
  ].join('\n');
}

/** Reads the summary line wrkScript makes wrk print. */
export function parseWrkSummary(out: string): LoadResult {
  const line = /^KILN (.*)$/m.exec(out);
  if (!line) throw new Error(`wrk printed no summary: ${out}`);
  const r = JSON.parse(line[1]!) as { requests: number; micros: number; p50: number; p99: number; failures: number };
  return { rps: (r.requests * 1e6) / r.micros, requests: r.requests, p50: r.p50 / 1000, p99: r.p99 / 1000, failures: r.failures };
}

export async function generateLoad(client: LoadClient, load: Load): Promise<LoadResult> {
  if (client === 'autocannon') {
    const r = await autocannon({ url: load.url, method: 'POST', headers: load.headers, body: load.body, connections: load.connections, duration: load.duration, timeout: 30 });
    return { rps: r.requests.average, requests: r.requests.total, p50: r.latency.p50, p99: r.latency.p99, failures: r.errors + r.timeouts + r.non2xx };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-wrk-'));
  try {
    const bodyFile = path.join(dir, 'body');
    await writeFile(bodyFile, load.body);
    const script = path.join(dir, 'post.lua');
    await writeFile(script, wrkScript(load.headers, bodyFile));
    const seconds = Math.max(1, Math.ceil(load.duration));
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('wrk', ['-t1', `-c${load.connections}`, `-d${seconds}s`, '--timeout', '30s', '-s', script, load.url], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.once('error', reject);
      // 'close', not 'exit': the last of stdout (the summary) may still be unread at 'exit'.
      child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}: ${text}`))));
    });
    return parseWrkSummary(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
