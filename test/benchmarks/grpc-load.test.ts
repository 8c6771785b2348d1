/**
 * bench/serve's gRPC load generators and floors: h2load's printout is read into requests/s, latency
 * percentiles and failures as wrk's is (from a real h2load run's text, so the test needs no h2load),
 * and the bare node:http2 floor answers real gRPC calls with grpc-status 0 (the node:http2 generator
 * counts any other status as a failure).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { GRPC_FLOOR_SCRIPT } from '../../bench/serve/grpc-floor.js';
import { grpcFrame, grpcLoad, parseH2loadSummary } from '../../bench/serve/grpc-load.js';

// h2load 1.52's printout for 5 calls (`-n 5 -c 1 -m 2 --log-file`), one of them answered 503.
const H2LOAD_OUT = `finished in 7.68ms, 650.87 req/s, 88.99KB/s
requests: 5 total, 5 started, 5 done, 4 succeeded, 1 failed, 0 errored, 0 timeout
status codes: 4 2xx, 0 3xx, 0 4xx, 1 5xx
traffic: 700B (700) total, 115B (115) headers (space savings 83.45%), 385B (385) data
                     min         max         mean         sd        +/- sd
time for request:     1.57ms      4.93ms      2.73ms      1.38ms    80.00%
`;
const H2LOAD_LOG = ['1796573908768317\t200\t3228', '1796573908768320\t503\t4932', '1796573908771601\t200\t2076', '1796573908773282\t200\t1866', '1796573908773698\t200\t1565', ''].join('\n');

describe('bench/serve gRPC load', () => {
  it('reads h2load: requests/s from "finished in", percentiles from the per-request log, failures from "requests:"', () => {
    const r = parseH2loadSummary(H2LOAD_OUT, H2LOAD_LOG);
    assert.equal(r.rps, 650.87);
    assert.equal(r.requests, 4);
    assert.equal(r.p50, 2.076); // sorted µs: 1565 1866 2076 3228 4932; the middle one, in ms
    assert.equal(r.p99, 4.932);
    assert.equal(r.failures, 1);
    assert.throws(() => parseH2loadSummary('connect failed', ''), /h2load printed no summary/);
  });

  it('frames a message as gRPC does: flag 0, big-endian length, the bytes', () => {
    assert.deepEqual([...grpcFrame(Buffer.from([7, 8, 9]))], [0, 0, 0, 0, 3, 7, 8, 9]);
  });

  it('the bare node:http2 floor answers gRPC calls with grpc-status 0', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-grpc-floor-'));
    await writeFile(path.join(dir, 'reply'), Buffer.from([1, 2, 3]));
    const child = spawn(process.execPath, [GRPC_FLOOR_SCRIPT, path.join(dir, 'reply'), '--http2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<string>((resolve, reject) => {
        child.stdout.once('data', (c: Buffer) => resolve(c.toString().trim()));
        child.once('exit', (code) => reject(new Error(`floor exited with ${code}`)));
      });
      const r = await grpcLoad({ address: `127.0.0.1:${port}`, method: '/inference.GRPCInferenceService/ModelInfer', body: Buffer.from([4, 5]), connections: 4, duration: 1 }, path.join(dir, 'body'), 'node');
      assert.equal(r.failures, 0);
      assert.ok(r.rps > 0, `no call answered: ${JSON.stringify(r)}`);
    } finally {
      child.kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
