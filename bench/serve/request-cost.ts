/**
 * What one request costs the server's event loop (not a test): CPU time of the server process's main
 * thread per answered request (from /proc/PID/task/PID/stat), for `kiln serve` and for the floors — a
 * bare node:http server and a bare grpc-js server answering the same bodies with canned replies —
 * under the same load, rounds interleaved. CPU per request is what a shared, loaded machine moves
 * least: requests per second there measure the neighbours as much as the server. With `--baseline
 * BIN` (another build's dist/src/cli/bin.js, e.g. a worktree of main) that build runs in the same
 * rounds, for before/after in one run. Linux only (/proc).
 *
 *   node dist/bench/serve/request-cost.js [--duration 5] [--rounds 3] [--concurrency 64] [--baseline BIN]
 *        [--max-batch-size 32] [--max-queue-delay-ms 0]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { messageType } from '../../src/serve/grpc/messages.js';
import { formatNumber, formatTable } from '../../src/text/format.js';
import { benchArgs } from '../args.js';
import { cpuDescription } from '../train/common.js';
import { GRPC_FLOOR_SCRIPT } from './grpc-floor.js';
import { grpcLoad, hasH2load } from './grpc-load.js';
import { generateLoad, hasWrk, type LoadResult } from './load.js';
import { randomImages, tutorialCnn } from './model.js';
import { processCpu } from './process-cpu.js';

const args = benchArgs('node dist/bench/serve/request-cost.js [flags]', {
  duration: { type: 'number', default: 5, help: 'seconds per load run' },
  rounds: { type: 'number', default: 3, help: 'interleaved rounds; medians shown' },
  concurrency: { type: 'number', default: 64 },
  baseline: { type: 'string', help: "another build's dist/src/cli/bin.js, measured in the same rounds" },
  'max-batch-size': { type: 'number', default: 32 },
  'max-queue-delay-ms': { type: 'number', default: 0 },
  formats: { type: 'string', default: 'binary,json,grpc', help: 'which bodies to measure: binary, json, grpc (comma-separated)' },
});
const FORMATS = new Set(args.formats.split(',').map((f) => f.trim()));
for (const f of FORMATS) {
  if (!['binary', 'json', 'grpc'].includes(f)) {
    console.error(`request-cost.js: --formats takes binary, json, grpc; got '${f}'`);
    process.exit(2);
  }
}

interface Server {
  name: string;
  child: ChildProcess;
  url?: string;
  grpc?: string;
}

/** Spawns a process and resolves with its first stdout line that `pick` accepts. */
function spawnUntil(argv: string[], pick: (line: string) => Record<string, string> | undefined): Promise<{ child: ChildProcess; found: Record<string, string> }> {
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const found = pick(line);
      if (found) resolve({ child, found });
    });
    child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited with ${code} before it was ready`)));
  });
}

async function kilnServer(name: string, bin: string, repo: string, grpc: boolean): Promise<Server> {
  const { child, found } = await spawnUntil([bin, 'serve', '--model-repository', repo, '--port', '0', ...(grpc ? ['--grpc-port', '0'] : [])], (line) => {
    try {
      const entry = JSON.parse(line) as { msg?: string; url?: string; grpc?: string };
      return entry.msg === 'kiln serve listening' ? { url: entry.url!, grpc: entry.grpc ?? '' } : undefined;
    } catch {
      return undefined;
    }
  });
  return { name, child, url: found.url, grpc: found.grpc || undefined };
}

async function counters(url: string): Promise<{ rows: number; runs: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (metric: string) => Number(new RegExp(`^${metric}\\{model="cnn",version="1"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { rows: read('kiln_inference_count_total'), runs: read('kiln_inference_exec_count_total') };
}

interface Measured {
  rps: number;
  mainUs: number;
  allUs: number;
  avgBatch: number | undefined;
  failures: number;
}

async function main(): Promise<void> {
  if (!hasWrk()) throw new Error('request-cost.js needs wrk on the PATH (bash bench/setup.sh): a Node load generator would take the CPU it measures');
  const cnn = tutorialCnn();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-cost-'));
  const repo = path.join(dir, 'repo');
  await mkdir(path.join(repo, 'cnn', '1'), { recursive: true });
  await writeFile(path.join(repo, 'cnn', '1', 'model.onnx'), cnn.toOnnx());
  await writeFile(path.join(repo, 'cnn', 'config.json'), JSON.stringify({ maxBatchSize: args['max-batch-size'], maxQueueDelayMs: args['max-queue-delay-ms'] }));
  const servers: Server[] = [];
  try {
    const bin = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
    const kiln = await kilnServer('kiln', bin, repo, true);
    servers.push(kiln);
    const baseline = args.baseline ? await kilnServer('baseline', path.resolve(args.baseline), repo, false) : undefined;
    if (baseline) servers.push(baseline);

    const x = randomImages(1);
    const raw = Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', parameters: { binary_data_size: raw.length } }] }));
    const bodies = {
      binary: { body: Buffer.concat([header, raw]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } },
      json: { body: Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', data: Array.from(x.data) }] })), headers: { 'content-type': 'application/json' } },
    };
    const grpcBody = Buffer.from(messageType('ModelInferRequest').encode({ model_name: 'cnn', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 3] }], raw_input_contents: [raw] }).finish());
    const expected = Array.from((await cnn.predict(x)).data as Float32Array);

    // The floors answer with the real replies' bytes.
    const replies: Record<string, Buffer> = {};
    for (const [format, { body, headers }] of Object.entries(bodies)) {
      const res = await fetch(`${kiln.url}/v2/models/cnn/infer`, { method: 'POST', headers, body });
      replies[format] = Buffer.from(await res.arrayBuffer());
      if (!res.ok) throw new Error(`${format}: kiln answered ${res.status}: ${replies[format]!.toString()}`);
    }
    const json = JSON.parse(replies.json!.toString()) as { outputs: { data: number[] }[] };
    if (json.outputs[0]!.data.some((v, i) => Math.fround(v) !== expected[i])) throw new Error('the served output differs from model.predict');
    const grpcReply = messageType('ModelInferResponse').encode({ model_name: 'cnn', model_version: '1', outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 10] }], raw_output_contents: [Buffer.from(new Float32Array(expected).buffer)] }).finish();
    await writeFile(path.join(dir, 'grpc-reply'), grpcReply);
    const httpFloorSource = `const http = require('node:http'); const replies = ${JSON.stringify(Object.fromEntries(Object.entries(replies).map(([k, v]) => [k, v.toString('base64')])))};
      const server = http.createServer((req, res) => { const reply = Buffer.from(replies[req.headers['inference-header-content-length'] ? 'binary' : 'json'], 'base64');
        req.on('data', () => {}); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': reply.length }); res.end(reply); }); });
      server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
    const floorHttp = await spawnUntil(['-e', httpFloorSource], (line) => ({ port: line }));
    servers.push({ name: 'floor', child: floorHttp.child, url: `http://127.0.0.1:${floorHttp.found.port}` });
    const floorGrpc = await spawnUntil([GRPC_FLOOR_SCRIPT, path.join(dir, 'grpc-reply')], (line) => ({ port: line }));
    servers.push({ name: 'grpc floor', child: floorGrpc.child, grpc: `127.0.0.1:${floorGrpc.found.port}` });
    const floorHttp2 = await spawnUntil([GRPC_FLOOR_SCRIPT, path.join(dir, 'grpc-reply'), '--http2'], (line) => ({ port: line }));
    servers.push({ name: 'http2 floor', child: floorHttp2.child, grpc: `127.0.0.1:${floorHttp2.found.port}` });
    const grpcClient = hasH2load() ? 'h2load' : 'node';

    type Target = { name: string; server: Server; run: (duration: number) => Promise<LoadResult>; kiln?: string };
    const httpTarget = (server: Server, format: 'binary' | 'json'): Target => ({
      name: `${server.name === 'floor' ? 'bare node:http' : server.name}, ${format}`,
      server,
      kiln: server.name === 'floor' ? undefined : server.url,
      run: (duration) => generateLoad('wrk', { url: `${server.url}/v2/models/cnn/infer`, ...bodies[format], connections: args.concurrency, duration }),
    });
    const grpcFloors: Record<string, string> = { 'grpc floor': 'bare grpc-js, gRPC raw', 'http2 floor': 'bare node:http2, gRPC raw' };
    const grpcTarget = (server: Server): Target => ({
      name: grpcFloors[server.name] ?? `${server.name}, gRPC raw`,
      server,
      kiln: grpcFloors[server.name] ? undefined : server.url,
      run: (duration) => grpcLoad({ address: server.grpc!, method: '/inference.GRPCInferenceService/ModelInfer', body: grpcBody, connections: args.concurrency, duration }, path.join(dir, 'grpc-body'), grpcClient),
    });
    const floor = servers.find((s) => s.name === 'floor')!;
    const targets: Target[] = [
      ...(['binary', 'json'] as const).filter((f) => FORMATS.has(f)).flatMap((f) => [httpTarget(floor, f), httpTarget(kiln, f), ...(baseline ? [httpTarget(baseline, f)] : [])]),
      ...(FORMATS.has('grpc') ? [grpcTarget(servers.find((s) => s.name === 'http2 floor')!), grpcTarget(servers.find((s) => s.name === 'grpc floor')!), grpcTarget(kiln)] : []),
    ];

    console.log(`kiln serve request cost: tutorial CNN, batch-1 requests, concurrency ${args.concurrency}, ${args.duration} s per run, ${args.rounds} interleaved round(s), median shown`);
    console.log(`CPU: ${cpuDescription()}; node ${process.version}; load generators: wrk (HTTP), ${grpcClient === 'h2load' ? 'h2load (gRPC, one connection, written in C like wrk)' : 'node:http2 in a child process (gRPC, bench/serve/grpc-load.ts; h2load not found: bash bench/setup.sh)'}`);
    console.log(`server: kiln serve --model-repository, maxBatchSize ${args['max-batch-size']}, maxQueueDelayMs ${args['max-queue-delay-ms']}${baseline ? `; baseline: ${args.baseline}` : ''}`);
    console.log(`load average at start (other processes share these cores): ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`);

    const measured = new Map<string, Measured[]>();
    for (let round = 0; round < Math.max(1, args.rounds); round++) {
      for (const t of targets) {
        await t.run(1);
        const pid = t.server.child.pid!;
        const before = processCpu(pid);
        const countsBefore = t.kiln ? await counters(t.kiln) : undefined;
        const r = await t.run(args.duration);
        const after = processCpu(pid);
        const countsAfter = t.kiln ? await counters(t.kiln) : undefined;
        // Requests answered in the window: the generator's own count.
        const requests = r.requests;
        // h2load sees HTTP statuses, not grpc-status: a call Kiln refused would count as answered.
        // Kiln's own counter of inferred rows says how many calls really got logits.
        const unanswered = grpcClient === 'h2load' && t.name.endsWith('gRPC raw') && countsBefore && countsAfter ? Math.max(0, Math.round(requests - (countsAfter.rows - countsBefore.rows))) : 0;
        const avgBatch = countsBefore && countsAfter ? (countsAfter.rows - countsBefore.rows) / Math.max(1, countsAfter.runs - countsBefore.runs) : undefined;
        const list = measured.get(t.name) ?? [];
        list.push({ rps: r.rps, mainUs: (after.main - before.main) / requests, allUs: (after.all - before.all) / requests, avgBatch, failures: r.failures + unanswered });
        measured.set(t.name, list);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const summary = new Map<string, { rps: number; mainUs: number; allUs: number; avgBatch: number | undefined; failures: number; perRound: number[] }>();
    for (const [name, list] of measured) {
      summary.set(name, {
        rps: median(list.map((m) => m.rps)),
        mainUs: median(list.map((m) => m.mainUs)),
        allUs: median(list.map((m) => m.allUs)),
        avgBatch: list[0]!.avgBatch === undefined ? undefined : median(list.map((m) => m.avgBatch!)),
        failures: list.reduce((s, m) => s + m.failures, 0),
        perRound: list.map((m) => m.mainUs),
      });
    }
    console.log('');
    console.log(
      formatTable(
        [...summary].map(([name, s]) => [name, formatNumber(s.rps, { fractionDigits: 0 }), formatNumber(s.mainUs, { fractionDigits: 0 }), s.perRound.map((u) => u.toFixed(0)).join(', '), formatNumber(s.allUs, { fractionDigits: 0 }), s.avgBatch?.toFixed(1) ?? '', s.failures]),
        { header: ['server, body', 'req/s', 'main thread µs/req', 'per round', 'process µs/req', 'avg batch', 'failed'], align: ['left', 'right', 'right', 'right', 'right', 'right', 'right'] },
      ),
    );
    console.log(`load average at end: ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`);
    const ratio = (a: string, b: string) => summary.get(a)!.mainUs / summary.get(b)!.mainUs;
    for (const format of ['binary', 'json'].filter((f) => FORMATS.has(f))) {
      console.log(`${format}: kiln's event loop ${formatNumber(summary.get(`kiln, ${format}`)!.mainUs, { fractionDigits: 0 })} µs per request, ${ratio(`kiln, ${format}`, `bare node:http, ${format}`).toFixed(2)}x the bare node:http server's (target <= 1.5x)` + (baseline ? `; the baseline build ${ratio(`baseline, ${format}`, `bare node:http, ${format}`).toFixed(2)}x (this build ${ratio(`kiln, ${format}`, `baseline, ${format}`).toFixed(2)}x the baseline's cost)` : ''));
    }
    if (FORMATS.has('grpc') && FORMATS.has('binary')) console.log(`gRPC raw: kiln's event loop ${formatNumber(summary.get('kiln, gRPC raw')!.mainUs, { fractionDigits: 0 })} µs per request, ${ratio('kiln, gRPC raw', 'bare grpc-js, gRPC raw').toFixed(2)}x the bare grpc-js server's, ${ratio('kiln, gRPC raw', 'kiln, binary').toFixed(2)}x kiln's HTTP binary; req/s ${(summary.get('kiln, gRPC raw')!.rps / summary.get('kiln, binary')!.rps).toFixed(2)}x HTTP binary's (target >= 1); the bare node:http2 server ${ratio('bare node:http2, gRPC raw', 'bare node:http, binary').toFixed(2)}x the bare node:http server's cost` + (grpcClient === 'h2load' ? '' : ` (gRPC's load generator is node:http2, HTTP's is wrk in C: they take different CPU from the shared cores)`));
  } finally {
    for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
