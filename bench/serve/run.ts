/**
 * Benchmark of `kiln serve` (not a test): the tutorial CIFAR-10 CNN served by the real CLI in a child
 * process, driven over loopback by wrk (or autocannon) at concurrency 1, 16 and 64 with
 * batch-1 requests (KServe v2 JSON and binary, TF Serving JSON rows), with and without dynamic
 * batching, next to the in-process ONNX Runtime ceiling measured in the same run (batch 1, and the
 * batch size the server's batches averaged), and the HTTP floor: a bare node:http server under the same load.
 * JPEG request bodies (a 28×28 and a 224×224 image, preprocessed by the server to the CNN's 32×32×3)
 * run with batching at the top concurrency beside them, with the decode cost per image (--no-images skips them).
 * The Python reference, at the top concurrency in the same rounds: a FastAPI + PyTorch server
 * (fastapi_server.py: uvicorn, no batching) with the same weights and the same KServe v2 JSON body, in the
 * best of its worker/thread configurations found by a pilot run (--no-fastapi skips it).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/serve/run.js [--duration 10] [--max-batch-size 32] [--max-queue-delay-ms 0] [--queue-delay fixed|adaptive]
 *        [--instances 1] [--intra-op-threads N] [--concurrency 1,16,64] [--rounds 1] [--client auto|wrk|autocannon] [--no-images]
 *        [--no-fastapi] [--fastapi-workers 1,2] [--fastapi-threads 1,2]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Runtime, type SessionOptions } from '../../src/runtime/runtime.js';
import { formatNumber, formatTable } from '../../src/text/format.js';
import { toTensor } from '../../src/images/to-tensor.js';
import { benchArgs } from '../args.js';
import { httpFloor } from './http-floor.js';
import { generateLoad, hasWrk, type Load, type LoadClient, type LoadResult } from './load.js';
import { encode, fashionImage, picture } from './test-images.js';
import { randomImages, tutorialCnn } from './model.js';
import { findFastApiPython, startFastApi, writeFastApiWeights, type FastApiServer } from './fastapi.js';
import { cpuDescription } from '../train/common.js';
import { HAS_PROC, processCpu, processTreeCpu } from './process-cpu.js';

const args = benchArgs('node dist/bench/serve/run.js [flags]', {
  duration: { type: 'number', default: 10, help: 'seconds per load run' },
  'max-batch-size': { type: 'number', default: 32 },
  'max-queue-delay-ms': { type: 'number', default: 0 },
  'queue-delay': { type: 'string', default: 'fixed', help: "the batched model's queue-delay policy: fixed or adaptive" },
  instances: { type: 'number', default: 1, help: 'ONNX Runtime sessions per model version' },
  'intra-op-threads': { type: 'number' },
  concurrency: { type: 'numbers', default: [1, 16, 64] },
  rounds: { type: 'number', default: 1, help: 'interleaved rounds; medians shown' },
  client: { type: 'string', default: 'auto', help: 'wrk, autocannon or auto (wrk when on the PATH)' },
  'no-images': { type: 'boolean', help: 'skip the JPEG request modes' },
  'no-fastapi': { type: 'boolean', help: 'skip the FastAPI + PyTorch reference server' },
  'fastapi-workers': { type: 'numbers', default: [1, 2], help: 'uvicorn worker processes to try (the pilot keeps the fastest configuration)' },
  'fastapi-threads': { type: 'numbers', default: [1, 2], help: 'PyTorch intra-op threads per worker to try' },
});
const DURATION = args.duration;
const MAX_BATCH = args['max-batch-size'];
const CONCURRENCY = args.concurrency;
const ROUNDS = Math.max(1, args.rounds);
// The load generator: wrk when it is on the PATH, else autocannon; `--client wrk|autocannon` picks one.
const chosen = args.client === 'auto' ? (hasWrk() ? 'wrk' : 'autocannon') : args.client;
if (chosen !== 'wrk' && chosen !== 'autocannon') {
  console.error(`run.js: --client must be wrk, autocannon or auto, got '${args.client}'`);
  process.exit(2);
}
const CLIENT: LoadClient = chosen;
const load = (target: Load) => generateLoad(CLIENT, target);

/** A server CPU time per request for the table: '–' where /proc could not be read. */
const cpuCell = (micros: number) => (Number.isFinite(micros) ? formatNumber(micros, { fractionDigits: 0 }) : '–');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Rows per second running ONNX Runtime in this process (its worker thread) back to back at one batch
 * size: the best of one intra-op thread, all cores without spinning (as the server runs) and ONNX
 * Runtime's defaults, each measured in turns so that load from elsewhere hits them alike.
 */
async function inProcessCeiling(bytes: Uint8Array, batch: number, seconds: number) {
  const configs: [string, SessionOptions][] = [
    ['1 thread', { intraOpThreads: 1 }],
    ['all cores, no spinning', { allowSpinning: false }],
    ['ONNX Runtime defaults', {}],
  ];
  const x = randomImages(batch, 2);
  const candidates = [];
  for (const [name, options] of configs) {
    const runtime = new Runtime();
    const session = await runtime.load(bytes, options);
    for (let i = 0; i < 10; i++) await runtime.run(session, { input: x });
    candidates.push({ name, runtime, session, latencies: [] as number[], elapsed: 0 });
  }
  const slice = 250;
  for (let turn = 0; turn < Math.max(1, Math.round((seconds * 1000) / slice / configs.length)); turn++) {
    for (const c of candidates) {
      const start = performance.now();
      while (performance.now() - start < slice) {
        const t = performance.now();
        await c.runtime.run(c.session, { input: x });
        c.latencies.push(performance.now() - t);
      }
      c.elapsed += performance.now() - start;
    }
  }
  await Promise.all(candidates.map((c) => c.runtime.close()));
  const results = candidates.map((c) => {
    const sorted = [...c.latencies].sort((a, b) => a - b);
    return { config: c.name, rowsPerSecond: (c.latencies.length * batch * 1000) / c.elapsed, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  });
  return results.sort((a, b) => b.rowsPerSecond - a.rowsPerSecond)[0]!;
}

async function startServer(repo: string): Promise<{ child: ChildProcess; url: string }> {
  const bin = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
  const extra = args['intra-op-threads'] !== undefined ? ['--intra-op-threads', String(args['intra-op-threads'])] : [];
  const child = spawn(process.execPath, [bin, 'serve', '--model-repository', repo, '--port', '0', '--instances', String(args.instances), ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string; level?: number; err?: string };
        if (entry.msg === 'kiln serve listening') resolve(entry.url!);
        if ((entry.level ?? 0) >= 50) process.stderr.write(`server: ${line}\n`);
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
  });
  return { child, url };
}

async function counters(url: string, model: string): Promise<{ inferences: number; executions: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name}\\{model="${model}",version="1"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { inferences: read('kiln_inference_count_total'), executions: read('kiln_inference_exec_count_total') };
}

async function main(): Promise<void> {
  const cnn = tutorialCnn();
  const bytes = cnn.toOnnx();
  const repo = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-serve-'));
  const models = { unbatched: 'cnn', batched: 'cnn_batched' };
  for (const [name, config] of [
    [models.unbatched, { maxBatchSize: 0 }],
    [models.batched, { maxBatchSize: MAX_BATCH, maxQueueDelayMs: args['max-queue-delay-ms'], queueDelay: args['queue-delay'] }],
  ] as const) {
    await mkdir(path.join(repo, name, '1'), { recursive: true });
    await writeFile(path.join(repo, name, '1', 'model.onnx'), bytes);
    await writeFile(path.join(repo, name, 'config.json'), JSON.stringify(config));
  }
  const { child, url } = await startServer(repo);
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-fastapi-'));
  let fastapi: FastApiServer | undefined;
  try {
    const x = randomImages(1);
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', data: Array.from(x.data) }] });
    // The served answer must be the in-process one.
    const expected = await cnn.predict(x);
    let outputName = '';
    for (const model of Object.values(models)) {
      const res = (await (await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json()) as {
        outputs: { name: string; data: number[] }[];
      };
      outputName = res.outputs[0]!.name;
      const got = res.outputs[0]!.data;
      if (got.some((v, i) => Math.fround(v) !== (expected.data as Float32Array)[i])) throw new Error(`${model}: served output differs from model.predict`);
    }
    console.log(`kiln serve benchmark: tutorial CNN (${formatNumber(cnn.countParams().total)} parameters), batch-1 requests: KServe v2 JSON (${formatNumber(body.length)} bytes), binary, TF Serving JSON rows, ${DURATION} s per run, ${os.availableParallelism()} cores, node ${process.version}`);
    console.log(`load generator: ${CLIENT}; server: kiln serve --model-repository (child process), dynamic batching maxBatchSize ${MAX_BATCH}, maxQueueDelayMs ${args['max-queue-delay-ms']} (${args['queue-delay']}), instances ${args.instances}; ${ROUNDS} round(s), median shown`);
    console.log(`CPU: ${cpuDescription()}`);
    console.log(`load average at start (other processes share these cores): ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`);
    const top = Math.max(...CONCURRENCY);

    // The Python reference: the same CNN with the same weights behind FastAPI + PyTorch, sent the same JSON
    // body. A pilot run at the top concurrency picks its fastest worker/thread configuration, kept for the rounds.
    const FASTAPI = 'FastAPI + PyTorch, no batching';
    let fastapiLabel = '';
    const python = args['no-fastapi'] ? undefined : findFastApiPython();
    if (args['no-fastapi']) console.log('FastAPI + PyTorch reference: skipped (--no-fastapi)');
    else if (!python) console.log('FastAPI + PyTorch reference: not run (no Python that imports torch, fastapi and uvicorn: bash bench/setup.sh, or set KILN_BENCH_PYTHON)');
    else {
      const weightsFile = path.join(scratch, 'weights.json');
      await writeFastApiWeights(weightsFile, cnn.getWeights(), outputName, x, expected);
      const pilot: string[] = [];
      let best: { server: FastApiServer; rps: number; label: string } | undefined;
      for (const workers of args['fastapi-workers']) {
        for (const threads of args['fastapi-threads']) {
          const server = await startFastApi(python, weightsFile, workers, threads);
          const label = `${workers} worker${workers > 1 ? 's' : ''} × ${threads} thread${threads > 1 ? 's' : ''}`;
          try {
            const res = await fetch(`${server.url}/v2/models/cnn/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
            if (!res.ok) throw new Error(`FastAPI server answered ${res.status}: ${await res.text()}`);
            const out = ((await res.json()) as { outputs: { name: string; data: number[] }[] }).outputs[0]!;
            const diff = Math.max(...out.data.map((v, i) => Math.abs(v - (expected.data as Float32Array)[i]!)));
            if (out.name !== outputName || out.data.length !== expected.data.length || !(diff <= 1e-4)) {
              throw new Error(`FastAPI server's answer differs from model.predict: output '${out.name}', ${out.data.length} values, largest difference ${diff}`);
            }
            const target = { url: `${server.url}/v2/models/cnn/infer`, headers: { 'content-type': 'application/json' }, body, connections: top };
            await load({ ...target, duration: 1 });
            const r = await load({ ...target, duration: DURATION });
            pilot.push(`${label} ${formatNumber(r.rps, { fractionDigits: 0 })} req/s${r.failures ? ` (${r.failures} failed)` : ''}`);
            if (!best || r.rps > best.rps) {
              await best?.server.stop();
              best = { server, rps: r.rps, label };
            } else await server.stop();
          } catch (err) {
            await server.stop();
            throw err;
          }
        }
      }
      fastapi = best!.server;
      fastapiLabel = best!.label;
      const info = fastapi.info;
      console.log(
        `FastAPI + PyTorch reference: ${python} bench/serve/fastapi_server.py (FastAPI ${info.fastapi}, uvicorn ${info.uvicorn}, event loop ${info.loop}, HTTP ${info.http}, torch ${info.torch}; ` +
          `one forward pass per request, no batching; logits within ${info.logitsMaxDiff.toExponential(1)} of Kiln's at start-up); ` +
          `pilot at concurrency ${top}, ${DURATION} s each: ${pilot.join(', ')}; kept: ${fastapiLabel}`,
      );
      const stages = Object.entries(info.stageMicros);
      console.log(
        `FastAPI request steps in its process, one at a time (median CPU µs, ${info.threads} torch thread${info.threads > 1 ? 's' : ''}): ` +
          `${stages.map(([k, v]) => `${k} ${formatNumber(v)}`).join(', ')}; total ${formatNumber(stages.reduce((sum, [, v]) => sum + v, 0))} ` +
          `(parse: json.loads of the body; validate: pydantic into the request model; encode: jsonable_encoder + json.dumps of the reply)`,
      );
    }

    const rows: (string | number)[][] = [];
    const results: Record<string, { rps: number; p50: number; p99: number; avgBatch: number; cpuPerRequest: number }> = {};
    // The same request in Triton's binary tensor format (what tritonclient sends by default).
    const binaryHeader = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 32, 32, 3], datatype: 'FP32', parameters: { binary_data_size: x.data.byteLength } }] }));
    const binaryBody = Buffer.concat([binaryHeader, Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength)]);
    // And in TF Serving's row format, the image nested [32][32][3] (what the seed's TF Serving clients send).
    const image = Array.from({ length: 32 }, (_, h) => Array.from({ length: 32 }, (_, w) => Array.from(x.data.subarray((h * 32 + w) * 3, (h * 32 + w) * 3 + 3))));
    const tfBody = JSON.stringify({ instances: [image] });
    for (const model of Object.values(models)) {
      const res = (await (await fetch(`${url}/v1/models/${model}:predict`, { method: 'POST', body: tfBody })).json()) as { predictions: number[][] };
      if (res.predictions[0]!.some((v, i) => Math.fround(v) !== (expected.data as Float32Array)[i])) throw new Error(`${model}: TF Serving output differs from model.predict`);
    }
    // JPEG files as raw KServe v2 request bodies: a 28×28 grey Fashion-MNIST image (enlarged to 32×32, grey
    // repeated to RGB) and a 224×224 RGB picture (shrunk to 32×32), decoded and preprocessed by the server.
    const jpegs = {
      'jpeg 28×28': await encode(await fashionImage(), 28, 28, 1, 'jpeg'),
      'jpeg 224×224': await encode(picture(224, 224), 224, 224, 3, 'jpeg'),
    };
    for (const [name, jpeg] of Object.entries(jpegs)) {
      const expectedImage = await cnn.predict(await toTensor(jpeg, cnn));
      const res = (await (await fetch(`${url}/v2/models/${models.batched}/infer`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg })).json()) as { outputs: { data: number[] }[] };
      if (res.outputs[0]!.data.some((v, i) => Math.fround(v) !== (expectedImage.data as Float32Array)[i])) throw new Error(`${name}: served output differs from model.predict(kiln.images.toTensor(jpeg))`);
    }
    const formats = {
      json: { body, headers: { 'content-type': 'application/json' }, path: (model: string) => `/v2/models/${model}/infer` },
      'jpeg 28×28': { body: jpegs['jpeg 28×28'], headers: { 'content-type': 'image/jpeg' }, path: (model: string) => `/v2/models/${model}/infer` },
      'jpeg 224×224': { body: jpegs['jpeg 224×224'], headers: { 'content-type': 'image/jpeg' }, path: (model: string) => `/v2/models/${model}/infer` },
      binary: {
        body: binaryBody,
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(binaryHeader.length) },
        path: (model: string) => `/v2/models/${model}/infer`,
      },
      'tf-serving json': { body: tfBody, headers: { 'content-type': 'application/json' }, path: (model: string) => `/v1/models/${model}:predict` },
    };
    const ceilingBefore = await inProcessCeiling(bytes, 1, Math.min(DURATION, 5));
    // Rounds interleave every mode so that the machine's drift hits them alike; each cell is the
    // round with the median throughput.
    const runs: Record<string, { rps: number; p50: number; p99: number; avgBatch: number; failures: number; cpuPerRequest: number }[]> = {};
    const modes = [
      ['json', false],
      ['json', true],
      ['binary', false],
      ['binary', true],
      ['tf-serving json', false],
      ['tf-serving json', true],
      // JPEG requests with batching, at the top concurrency only (the issue's comparison).
      ...(args['no-images'] ? [] : ([['jpeg 28×28', true], ['jpeg 224×224', true]] as const)),
    ] as const;
    const levels = (format: string) => (format.startsWith('jpeg') ? [top] : CONCURRENCY);
    const modeName = (format: string, batching: boolean) => `${format}, ${batching ? 'dynamic batching' : 'no batching'}`;
    for (let round = 0; round < ROUNDS; round++) {
      for (const [format, batching] of modes) {
        const model = batching ? models.batched : models.unbatched;
        const { body: requestBody, headers, path: routeOf } = formats[format];
        for (const connections of levels(format)) {
          const target = { url: `${url}${routeOf(model)}`, headers, body: requestBody, connections };
          await load({ ...target, duration: 1 });
          const before = await counters(url, model);
          const cpuBefore = HAS_PROC ? processCpu(child.pid!).all : NaN;
          const r = await load({ ...target, duration: DURATION });
          const cpuAfter = HAS_PROC ? processCpu(child.pid!).all : NaN;
          const after = await counters(url, model);
          const avgBatch = (after.inferences - before.inferences) / Math.max(1, after.executions - before.executions);
          (runs[`${modeName(format, batching)}@${connections}`] ??= []).push({
            ...r,
            avgBatch,
            cpuPerRequest: (cpuAfter - cpuBefore) / Math.max(1, r.requests),
          });
        }
      }
      if (fastapi) {
        const target = { url: `${fastapi.url}/v2/models/cnn/infer`, headers: formats.json.headers, body, connections: top };
        await load({ ...target, duration: 1 });
        const cpuBefore = HAS_PROC ? processTreeCpu(fastapi.pid) : NaN;
        const r = await load({ ...target, duration: DURATION });
        const cpuAfter = HAS_PROC ? processTreeCpu(fastapi.pid) : NaN;
        (runs[`${FASTAPI}@${top}`] ??= []).push({ ...r, avgBatch: 1, cpuPerRequest: (cpuAfter - cpuBefore) / Math.max(1, r.requests) });
      }
    }
    for (const [format, batching] of modes) {
      for (const connections of levels(format)) {
        const all = runs[`${modeName(format, batching)}@${connections}`]!;
        const median = [...all].sort((a, b) => a.rps - b.rps)[Math.floor(all.length / 2)]!;
        const failures = all.reduce((sum, r) => sum + r.failures, 0);
        results[`${modeName(format, batching)}@${connections}`] = median;
        rows.push([modeName(format, batching), connections, formatNumber(median.rps, { fractionDigits: 0 }), formatNumber(median.p50, { fractionDigits: 1 }), formatNumber(median.p99, { fractionDigits: 1 }), median.avgBatch.toFixed(1), cpuCell(median.cpuPerRequest), failures]);
      }
    }
    if (fastapi) {
      const all = runs[`${FASTAPI}@${top}`]!;
      const median = [...all].sort((a, b) => a.rps - b.rps)[Math.floor(all.length / 2)]!;
      results[`${FASTAPI}@${top}`] = median;
      rows.push([`${FASTAPI} (${fastapiLabel}), json`, top, formatNumber(median.rps, { fractionDigits: 0 }), formatNumber(median.p50, { fractionDigits: 1 }), formatNumber(median.p99, { fractionDigits: 1 }), '1.0', cpuCell(median.cpuPerRequest), all.reduce((sum, r) => sum + r.failures, 0)]);
    }
    const averageBatch = Math.max(1, Math.round(results[`json, dynamic batching@${top}`]?.avgBatch ?? MAX_BATCH));
    const ceilingAfter = await inProcessCeiling(bytes, 1, Math.min(DURATION, 5));
    // The machine is shared: the better of the two batch-1 measurements is the ceiling.
    const ceiling1 = ceilingAfter.rowsPerSecond > ceilingBefore.rowsPerSecond ? ceilingAfter : ceilingBefore;
    const ceilingB = await inProcessCeiling(bytes, averageBatch, Math.min(DURATION, 5));
    const ceilingRows: (string | number)[][] = [];
    const floors: Record<string, LoadResult> = {};
    for (const [format] of modes.filter(([f, batching]) => batching && !f.startsWith('jpeg'))) {
      const { body: requestBody, headers, path: routeOf } = formats[format];
      const res = await fetch(`${url}${routeOf(models.batched)}`, { method: 'POST', headers, body: requestBody });
      if (!res.ok) throw new Error(`${format}: the server answered ${res.status}: ${await res.text()}`);
      const reply = Buffer.from(await res.arrayBuffer());
      floors[format] = await httpFloor(CLIENT, { url: `${url}${routeOf(models.batched)}`, headers, body: requestBody, connections: top, duration: DURATION }, reply);
      ceilingRows.push([`HTTP floor: bare node:http, ${format} body, canned reply`, top, formatNumber(floors[format].rps, { fractionDigits: 0 }), formatNumber(floors[format].p50, { fractionDigits: 1 }), formatNumber(floors[format].p99, { fractionDigits: 1 }), '', '', floors[format].failures]);
    }
    rows.push([`in-process ORT, batch 1 (${ceiling1.config})`, 1, formatNumber(ceiling1.rowsPerSecond, { fractionDigits: 0 }), formatNumber(ceiling1.p50, { fractionDigits: 1 }), formatNumber(ceiling1.p99, { fractionDigits: 1 }), '1.0', '', 0]);
    rows.push([`in-process ORT, batch ${averageBatch} (${ceilingB.config})`, 1, formatNumber(ceilingB.rowsPerSecond, { fractionDigits: 0 }), formatNumber(ceilingB.p50, { fractionDigits: 1 }), formatNumber(ceilingB.p99, { fractionDigits: 1 }), averageBatch.toFixed(1), '', 0]);
    rows.push(...ceilingRows);
    console.log('');
    console.log(formatTable(rows, { header: ['mode', 'concurrency', 'req/s (rows/s)', 'p50 ms', 'p99 ms', 'avg batch', 'server CPU µs/req', 'failed'], align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'] }));
    console.log(`load average at end: ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`);
    console.log(`(in-process batch-1 ceiling measured before the HTTP runs: ${formatNumber(ceilingBefore.rowsPerSecond, { fractionDigits: 0 })}/s, after: ${formatNumber(ceilingAfter.rowsPerSecond, { fractionDigits: 0 })}/s)`);
    for (const format of ['json', 'binary', 'tf-serving json']) {
      const batched = results[`${format}, dynamic batching@${top}`];
      const unbatched = results[`${format}, no batching@${top}`];
      if (!batched || !unbatched) continue;
      const perRound = runs[`${format}, dynamic batching@${top}`]!.map((b, k) => (b.rps / runs[`${format}, no batching@${top}`]![k]!.rps).toFixed(2));
      console.log(
        `${format} at concurrency ${top}: dynamic batching ${(batched.rps / unbatched.rps).toFixed(2)}x no batching (target >= 2x${ROUNDS > 1 ? `; medians of ${ROUNDS} rounds, per round ${perRound.join(', ')}` : ''}); ` +
          `${((100 * batched.rps) / ceilingB.rowsPerSecond).toFixed(0)}% of the in-process ceiling at batch ${averageBatch} (target for binary >= 60%; ` +
          `${((100 * batched.rps) / ceiling1.rowsPerSecond).toFixed(0)}% of the batch-1 ceiling); ` +
          `the bare HTTP server alone answered ${formatNumber(floors[format]!.rps, { fractionDigits: 0 })} req/s`,
      );
    }
    const kilnJson = runs[`json, dynamic batching@${top}`];
    if (fastapi && kilnJson) {
      const reference = results[`${FASTAPI}@${top}`]!;
      const kiln = results[`json, dynamic batching@${top}`]!;
      const perRound = kilnJson.map((k, i) => (k.rps / runs[`${FASTAPI}@${top}`]![i]!.rps).toFixed(2));
      console.log(
        `json at concurrency ${top}: kiln serve with dynamic batching ${formatNumber(kiln.rps, { fractionDigits: 0 })} req/s, the FastAPI + PyTorch server (${fastapiLabel}, no batching) ${formatNumber(reference.rps, { fractionDigits: 0 })} req/s: ` +
          `${(kiln.rps / reference.rps).toFixed(2)}x (target >= 4x${ROUNDS > 1 ? `; medians of ${ROUNDS} rounds, per round ${perRound.join(', ')}` : ''})` +
          (HAS_PROC
            ? `; server CPU per request (all its processes and threads; less moved by other load than req/s): kiln ${cpuCell(kiln.cpuPerRequest)} µs, ` +
              `FastAPI ${cpuCell(reference.cpuPerRequest)} µs: ${(reference.cpuPerRequest / kiln.cpuPerRequest).toFixed(2)}x`
            : ''),
      );
    } else if (kilnJson) console.log(`json at concurrency ${top}: against the FastAPI + PyTorch server: not measured (${args['no-fastapi'] ? '--no-fastapi' : 'no Python with torch, fastapi and uvicorn'})`);
    if (!args['no-images']) {
      // What one image costs the server before it joins a batch: decode (sharp, on libuv's pool) plus resize and
      // normalization (JavaScript, on the event loop), measured in this process one image at a time, interleaved.
      const cost = Object.fromEntries(Object.keys(jpegs).map((k) => [k, [] as number[]]));
      for (let round = 0; round < 5; round++) {
        for (const [name, jpeg] of Object.entries(jpegs)) {
          const end = performance.now() + 200;
          while (performance.now() < end) {
            const t = performance.now();
            await toTensor(jpeg, cnn);
            cost[name]!.push((performance.now() - t) * 1000);
          }
        }
      }
      for (const [name, jpeg] of Object.entries(jpegs)) {
        const r = results[`${modeName(name, true)}@${top}`];
        const tensor = results[`json, dynamic batching@${top}`];
        const binaryTensor = results[`binary, dynamic batching@${top}`];
        if (!r || !tensor || !binaryTensor) continue;
        const sorted = [...cost[name]!].sort((a, b) => a - b);
        console.log(
          `${name} (${formatNumber(jpeg.length)}-byte JPEG body) at concurrency ${top}, dynamic batching: ${formatNumber(r.rps, { fractionDigits: 0 })} req/s, p99 ${r.p99.toFixed(1)} ms ` +
            `(tensor requests: JSON ${formatNumber(tensor.rps, { fractionDigits: 0 })} req/s, p99 ${tensor.p99.toFixed(1)} ms; binary ${formatNumber(binaryTensor.rps, { fractionDigits: 0 })} req/s, p99 ${binaryTensor.p99.toFixed(1)} ms); ` +
            `decode + preprocess to [1,32,32,3] in-process, one at a time: median ${formatNumber(percentile(sorted, 50), { fractionDigits: 0 })} µs per image`,
        );
      }
    }
  } finally {
    await fastapi?.stop();
    await rm(scratch, { recursive: true, force: true });
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    await rm(repo, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
