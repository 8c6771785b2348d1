/*
 * The serve bench's gRPC load generators (ghz is not packaged for Debian). Both keep `connections`
 * unary calls in flight on one HTTP/2 connection (ghz's default) for `duration` seconds, sending the
 * same encoded request bytes:
 * - h2load (Debian's nghttp2-client, written in C like wrk, so HTTP and gRPC are loaded by clients of
 *   the same kind), when it is on the PATH. It sees HTTP status codes, not gRPC's grpc-status trailer:
 *   the caller checks answered calls against the server's own counters.
 * - otherwise a node:http2 child process that reads grpc-status and prints `KILN {json}` like the wrk
 *   script. Run as: node grpc-load.js ADDRESS METHOD_PATH BODY_FILE CONNECTIONS SECONDS
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:http2';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadResult } from './load.js';

/** Which gRPC load generator runs: h2load (C) or this file's node:http2 client. */
export type GrpcLoadClient = 'h2load' | 'node';

export interface GrpcLoad {
  address: string;
  /** /package.Service/Method */
  method: string;
  body: Buffer;
  connections: number;
  duration: number;
}

export function hasH2load(): boolean {
  return spawnSync('h2load', ['--version']).error === undefined;
}

/** One gRPC frame: the uncompressed flag, the message's length (big-endian), the message. */
export function grpcFrame(message: Buffer): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

/**
 * h2load's summary and its per-request log (`--log-file`: start µs, HTTP status, µs to the end of the
 * response, one row per request) as a LoadResult: requests/s from its "finished in" line, latency
 * percentiles from the log, failures from its "requests:" line.
 */
export function parseH2loadSummary(out: string, log: string): LoadResult {
  const finished = /^finished in ([\d.]+)(s|ms), ([\d.]+) req\/s/m.exec(out);
  const counts = /^requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(out);
  if (!finished || !counts) throw new Error(`h2load printed no summary: ${out}`);
  const micros = log
    .split('\n')
    .filter((row) => row.trim() !== '')
    .map((row) => Number(row.split('\t')[2]))
    .sort((a, b) => a - b);
  const at = (p: number) => (micros.length === 0 ? 0 : micros[Math.min(micros.length - 1, Math.floor(p * micros.length))]! / 1000);
  const done = Number(counts[1]);
  const succeeded = Number(counts[2]);
  return { rps: Number(finished[3]), requests: succeeded, p50: at(0.5), p99: at(0.99), failures: done - succeeded + Number(counts[4]) + Number(counts[5]) };
}

/**
 * Runs a generator in a child process (its CPU is not the server's) and returns its summary; the
 * request body is written to `bodyFile` first.
 */
export async function grpcLoad(load: GrpcLoad, bodyFile: string, client: GrpcLoadClient = 'node'): Promise<LoadResult> {
  const { writeFile } = await import('node:fs/promises');
  if (client === 'h2load') {
    await writeFile(bodyFile, grpcFrame(load.body));
    const logFile = path.join(path.dirname(bodyFile), 'h2load.log');
    const args = ['-D', String(Math.max(1, Math.ceil(load.duration))), '-c', '1', '-m', String(load.connections), '-t', '1', '-d', bodyFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--log-file', logFile, `http://${load.address}${load.method}`];
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (c: Buffer) => (text += c.toString()));
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`h2load exited with ${code}: ${text}`))));
    });
    return parseH2loadSummary(out, await readFile(logFile, 'utf8'));
  }
  await writeFile(bodyFile, load.body);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), load.address, load.method, bodyFile, String(load.connections), String(load.duration)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`grpc-load exited with ${code}: ${text}`))));
  });
  const line = /^KILN (.*)$/m.exec(out);
  if (!line) throw new Error(`grpc-load printed no summary: ${out}`);
  const r = JSON.parse(line[1]!) as { requests: number; micros: number; p50: number; p99: number; failures: number };
  return { rps: (r.requests * 1e6) / r.micros, requests: r.requests, p50: r.p50 / 1000, p99: r.p99 / 1000, failures: r.failures };
}

/**
 * Unary gRPC calls written straight onto node:http2 (a 5-byte length prefix, then the message;
 * grpc-status read from the trailers): grpc-js' own client takes several times the CPU per call, and
 * here every microsecond the client takes is one the server on the same cores does not get.
 */
async function generate(address: string, method: string, bodyFile: string, connections: number, seconds: number): Promise<void> {
  const frame = grpcFrame(readFileSync(bodyFile));
  const session = connect(`http://${address}`);
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  const headers = { ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' };
  const call = () =>
    new Promise<boolean>((resolve) => {
      const stream = session.request(headers);
      let status: string | undefined;
      stream.on('trailers', (t) => (status = String(t['grpc-status'])));
      stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      });
      stream.on('data', () => undefined);
      stream.on('error', () => resolve(false));
      stream.on('close', () => resolve(status === '0'));
      stream.end(frame);
    });
  const latencies: number[] = [];
  let failures = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      if (await call()) latencies.push(performance.now() - t);
      else failures++;
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const micros = Math.round((performance.now() - start) * 1000);
  session.close();
  latencies.sort((a, b) => a - b);
  const at = (p: number) => Math.round(1000 * (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0));
  process.stdout.write(`KILN ${JSON.stringify({ requests: latencies.length, micros, p50: at(0.5), p99: at(0.99), failures })}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [address, method, bodyFile, connections, seconds] = process.argv.slice(2);
  generate(address!, method!, bodyFile!, Number(connections), Number(seconds)).catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
