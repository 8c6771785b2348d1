/*
 * The serve bench's Python reference: a FastAPI + PyTorch server (bench/serve/fastapi_server.py, run by
 * uvicorn in a child process) holding the same tutorial CNN with the Kiln model's own weights, answering
 * the same KServe v2 JSON request. This module finds a Python that has PyTorch, FastAPI and uvicorn,
 * writes the Kiln model's weights and a check input for it, and starts and stops the server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Tensor } from '../../src/tensor.js';
import { findTorchPython, torchEnv } from '../train/common.js';

export const FASTAPI_SCRIPT = fileURLToPath(new URL('../../../bench/serve/fastapi_server.py', import.meta.url));

/** A Python that imports torch, fastapi and uvicorn (Debian's python3-torch, python3-fastapi, python3-uvicorn), or undefined. */
export function findFastApiPython(): string | undefined {
  return findTorchPython(torchEnv(), ['torch', 'fastapi', 'uvicorn']);
}

/**
 * Writes what fastapi_server.py loads: the model's weights by name (Kiln's initializers, float32 values
 * as JSON numbers, which keep them exactly), the name of its output, and one input with Kiln's logits for it.
 */
export async function writeFastApiWeights(file: string, weights: Map<string, Tensor>, output: string, input: Tensor, logits: Tensor): Promise<void> {
  const entries = Object.fromEntries([...weights].map(([name, t]) => [name, { shape: t.shape, data: Array.from(t.data as Float32Array) }]));
  await writeFile(file, JSON.stringify({ weights: entries, output, check: { shape: input.shape, input: Array.from(input.data as Float32Array), logits: Array.from(logits.data as Float32Array) } }));
}

export interface FastApiServer {
  url: string;
  /** The Python process (uvicorn's workers, with --workers above 1, are its children). */
  pid: number;
  /** What the server printed about itself: torch version, threads, workers, event loop, HTTP parser, the start-up check's difference. */
  info: {
    logitsMaxDiff: number;
    fastapi: string;
    uvicorn: string;
    torch: string;
    threads: number;
    workers: number;
    loop: string;
    http: string;
    /** Median µs of one request's steps run in the server's process one at a time: parse, validate, tensor, forward, encode. */
    stageMicros: Record<string, number>;
  };
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts fastapi_server.py and resolves once it answers its readiness route (PyTorch's import is slow on a loaded machine). */
export async function startFastApi(python: string, weightsFile: string, workers: number, threads: number): Promise<FastApiServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(python, [FASTAPI_SCRIPT, '--weights', weightsFile, '--port', String(port), '--workers', String(workers), '--threads', String(threads)], {
    env: torchEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`fastapi_server.py exited with ${code}: ${out.trim()}`))));
  exited.catch(() => {});
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(timer);
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 300_000;
  try {
    for (;;) {
      const ok = await Promise.race([
        exited,
        fetch(`${url}/v2/health/ready`).then(
          (r) => r.ok,
          () => false,
        ),
      ]);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`fastapi_server.py did not answer in 300 s: ${out.trim()}`);
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 250))]);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const line = /^\{"msg": "fastapi reference".*$/m.exec(out);
  if (!line) {
    await stop();
    throw new Error(`fastapi_server.py printed no description of itself: ${out.trim()}`);
  }
  return { url, pid: child.pid!, info: JSON.parse(line[0]) as FastApiServer['info'], stop };
}
