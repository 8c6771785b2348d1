import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import { conv2d, dense, flatten, maxPooling2d } from '../../src/layers/index.js';
import { sequential, type Sequential } from '../../src/train/sequential.js';
import { serve, type ServeOptions, type ServerHandle } from '../../src/serve/server.js';
import { Random } from '../../src/random.js';
import { Tensor, type DType } from '../../src/tensor.js';

/* Tiny models, temporary model repositories and a loopback server for the serve tests. */

export async function tmpDir(prefix = 'kiln-serve-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** [N, 3] → dense 4 relu → dense 2; the seed picks the weights. */
export function denseModel(seed = 1): Sequential {
  return sequential({ seed, layers: [dense({ units: 4, activation: 'relu', inputShape: [3] }), dense({ units: 2 })] });
}

/** [N, 3] → dense 5 (logits for :classify). */
export function classifierModel(seed = 3): Sequential {
  return sequential({ seed, layers: [dense({ units: 5, inputShape: [3] })] });
}

/** [N, 6, 6, 2] → conv 3 relu → maxpool → flatten → dense 3. */
export function smallCnn(seed = 7): Sequential {
  return sequential({
    seed,
    layers: [conv2d({ filters: 3, kernelSize: 3, activation: 'relu', inputShape: [6, 6, 2] }), maxPooling2d({ poolSize: 2 }), flatten(), dense({ units: 3 })],
  });
}

function graphBytes(build: (g: Graph) => void): Uint8Array {
  const g = new Graph('test');
  build(g);
  return encodeModel(modelToProto(g));
}

export const TYPED_INPUTS: [string, DType][] = [
  ['f32', 'float32'],
  ['f64', 'float64'],
  ['i8', 'int8'],
  ['i32', 'int32'],
  ['i64', 'int64'],
  ['u8', 'uint8'],
  ['b', 'bool'],
];

/** One [N, 2] input per Kiln dtype, each returned unchanged as out_<name>. */
export function typedModel(): Uint8Array {
  return graphBytes((g) => {
    for (const [name, dtype] of TYPED_INPUTS) g.output(g.op1('Identity', [g.input(name, dtype, ['N', 2])]), `out_${name}`);
  });
}

/** x, y: [N, 3] → sum = x + y, product = x * y. */
export function twoInputModel(): Uint8Array {
  return graphBytes((g) => {
    const x = g.input('x', 'float32', ['N', 3]);
    const y = g.input('y', 'float32', ['N', 3]);
    g.output(g.op1('Add', [x, y]), 'sum');
    g.output(g.op1('Mul', [x, y]), 'product');
  });
}

/** A fixed [2, 3] input (no batch dimension) → x * 2. */
export function fixedShapeModel(): Uint8Array {
  return graphBytes((g) => {
    const x = g.input('x', 'float32', [2, 3]);
    g.output(g.op1('Mul', [x, g.scalar(2)]), 'y');
  });
}

export async function writeVersion(repo: string, model: string, version: number, content: Sequential | Uint8Array): Promise<string> {
  const dir = path.join(repo, model, String(version));
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'model.onnx');
  if (content instanceof Uint8Array) await writeFile(file, content);
  else await content.save(file);
  return file;
}

export async function writeConfig(repo: string, model: string, config: unknown): Promise<void> {
  await mkdir(path.join(repo, model), { recursive: true });
  await writeFile(path.join(repo, model, 'config.json'), JSON.stringify(config));
}

export function startServer(options: ServeOptions): Promise<ServerHandle> {
  return serve({ host: '127.0.0.1', port: 0, logLevel: 'silent', pollIntervalMs: 200, idleConnectionGraceMs: 50, ...options });
}

export interface HttpResult {
  status: number;
  text: string;
  json: any;
  headers: Headers;
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

/** One request to the test server (keep-alive, 20 s timeout); body objects are sent as JSON, strings and Buffers as they are. */
export function http(base: string, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const allHeaders: Record<string, string> = payload ? { 'content-type': 'application/json', 'content-length': String(payload.length), ...headers } : headers;
  return new Promise((resolve, reject) => {
    const req = request(base + urlPath, { method, headers: allHeaders, agent, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        const replyHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') replyHeaders.set(k, v);
        resolve({ status: res.statusCode ?? 0, text, json, headers: replyHeaders });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export function randomInput(rows: number, shape: number[], seed = 5): Tensor<'float32'> {
  const rng = new Random(seed);
  const size = rows * shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = rng.uniform(-1, 1);
  return new Tensor(data, [rows, ...shape], 'float32');
}

/** Float arrays equal as float32 values (what went through JSON as doubles comes back exact). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 0): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = Math.fround(actual[i]!);
    const e = Math.fround(expected[i]!);
    if (!(Math.abs(a - e) <= tolerance)) throw new Error(`element ${i}: ${a} != ${e}`);
  }
}

/** TF Serving's half_plus_two example: x [N] → 0.5·x + 2. */
export function halfPlusTwoModel(): Uint8Array {
  return graphBytes((g) => {
    const x = g.input('x', 'float32', ['N']);
    g.output(g.op1('Add', [g.op1('Mul', [x, g.scalar(0.5)]), g.scalar(2)]), 'y');
  });
}

/** The KServe v2 documentation's example shapes: input0 INT32 [2, 2] and input1 BOOL [3] → output0 FP32 [2, 2], output1 BOOL [3]. */
export function kserveExampleModel(): Uint8Array {
  return graphBytes((g) => {
    const input0 = g.input('input0', 'int32', [2, 2]);
    const input1 = g.input('input1', 'bool', [3]);
    g.output(g.op1('Cast', [input0], { to: 1 }), 'output0');
    g.output(g.op1('Not', [input1]), 'output1');
  });
}

/** TF Serving's REST example features without the string one: signal [N, 5], sensor [N, 2, 2] → signal·2, sensor+1. */
export function signalSensorModel(): Uint8Array {
  return graphBytes((g) => {
    const signal = g.input('signal', 'float32', ['N', 5]);
    const sensor = g.input('sensor', 'float32', ['N', 2, 2]);
    g.output(g.op1('Mul', [signal, g.scalar(2)]), 'doubled');
    g.output(g.op1('Add', [sensor, g.scalar(1)]), 'shifted');
  });
}

/** Polls until check() is truthy (or throws after timeoutMs). */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A v2 infer body for the dense test model. */
export function denseBody(x: Tensor): unknown {
  return { inputs: [{ name: 'input', shape: [...x.shape], datatype: 'FP32', data: Array.from(x.data as Float32Array) }] };
}

export interface InferLoad {
  /** Every request that got no 200, as `status text`. */
  failures: string[];
  /** Which of the expected outputs the answers matched, by index (-1: none of them); the test may clear it. */
  seen: Set<number>;
  /** Ends the clients' loops and waits for their last requests. */
  stop(): Promise<void>;
}

/**
 * `clients` clients sending the dense test model's body for `x` to `/v2/models/<model>/infer`, each one
 * request after another until stop() (bounded: at most 20,000 requests per client). Each answer is
 * matched against `expected` (one output per candidate model) to tell which model served it.
 */
export function inferUnderLoad(base: string, model: string, x: Tensor, expected: number[][], clients: number): InferLoad {
  const failures: string[] = [];
  const seen = new Set<number>();
  let stopped = false;
  const client = async () => {
    for (let i = 0; i < 20_000 && !stopped; i++) {
      const r = await http(base, 'POST', `/v2/models/${model}/infer`, denseBody(x)).catch((err: Error) => ({ status: 0, text: err.message, json: undefined }));
      if (r.status !== 200) failures.push(`${r.status} ${r.text}`);
      else seen.add(expected.findIndex((e) => e.every((v, k) => Math.abs(v - r.json.outputs[0].data[k]) < 1e-6)));
    }
  };
  const running = Array.from({ length: clients }, client);
  return {
    failures,
    seen,
    stop: async () => {
      stopped = true;
      await Promise.all(running);
    },
  };
}

/** x [N, 512] through `layers` MatMuls with 512×512 weights: slow enough to keep ONNX Runtime busy for a while. */
export function slowModel(layers = 16): Uint8Array {
  const rng = new Random(9);
  return graphBytes((g) => {
    let x = g.input('x', 'float32', ['N', 512]);
    for (let i = 0; i < layers; i++) {
      const w = new Float32Array(512 * 512);
      for (let k = 0; k < w.length; k++) w[k] = rng.uniform(-0.04, 0.04);
      x = g.op1('MatMul', [x, g.constant(new Tensor(w, [512, 512], 'float32'), `w${i}`)]);
    }
    g.output(x, 'y');
  });
}

/** A counter from the Prometheus text for one model version (0 when absent). */
export function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** The built CLI entry point (dist/src/cli/bin.js). */
export const CLI = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));

export interface CliServer {
  child: ChildProcess;
  url: string;
  logs: Record<string, unknown>[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `kiln serve ...args` as a child process and resolves once it logs that it listens. */
export async function spawnServe(args: string[]): Promise<CliServer> {
  const child = spawn(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kiln serve did not start in 20 s: ${stderr}`)), 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'kiln serve listening') {
          clearTimeout(timer);
          resolve(entry.url as string);
        }
      } catch {
        logs.push({ text: line });
      }
    });
    void exit.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`kiln serve exited with ${code} before listening: ${stderr}`));
    });
  });
  return { child, url, logs, exit };
}

export interface EarlyReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends a request's head and only `bodyPrefix` of the `contentLength` bytes it announces, over a raw
 * socket. Resolves once the server has answered and closed the connection or sent a whole short reply:
 * an answer can only come from the headers, since the rest of the body is never sent.
 */
export function headersOnlyRequest(base: string, method: string, urlPath: string, contentLength: number, headers: Record<string, string> = {}, bodyPrefix = ''): Promise<EarlyReply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${method} ${urlPath}: no answer within 15 s to a request whose body was not sent`));
    }, 15_000);
    const finish = () => {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const [statusLine, ...lines] = received.slice(0, end).split('\r\n');
      const replyHeaders: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        replyHeaders[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const body = received.slice(end + 4);
      if (replyHeaders['content-length'] !== undefined && Buffer.byteLength(body) < Number(replyHeaders['content-length'])) return false;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: Number(statusLine!.split(' ')[1]), headers: replyHeaders, body });
      return true;
    };
    socket.on('data', (d: Buffer) => {
      received += d.toString('utf8');
      finish();
    });
    socket.on('end', () => {
      if (!finish()) {
        clearTimeout(timer);
        reject(new Error(`${method} ${urlPath}: the connection closed without a whole reply: ${JSON.stringify(received)}`));
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (!finish()) reject(err);
    });
    const head = [`${method} ${urlPath} HTTP/1.1`, `host: ${url.host}`, 'content-type: application/json', `content-length: ${contentLength}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    socket.write(`${head.join('\r\n')}\r\n\r\n${bodyPrefix}`);
  });
}
