/*
 * The Web Worker that owns ONNX Runtime sessions in a browser (onnxruntime-web's WebAssembly build):
 * the same SessionHost as Node's worker thread (session-host.ts), so a page runs the very training
 * and evaluation graphs Node runs, while its own thread stays free for drawing. The first message
 * configures ONNX Runtime (platform/browser.ts sends it); every later one is a runtime request.
 */
import * as ort from 'onnxruntime-web/wasm';
import type { Request, Response, SessionOptions } from './protocol.js';
import { SessionHost } from './session-host.js';
import { describeBrowserFailure, type WebRuntimeConfig } from '../platform/web-environment.js';

interface WorkerScope {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void;
}
const scope = globalThis as unknown as WorkerScope;

let config: WebRuntimeConfig | undefined;
let started = false;

function sessionOptions(options: SessionOptions): ort.InferenceSession.SessionOptions {
  // Threads are one setting for the whole WebAssembly module, read when the first session starts it:
  // the first load's intraOpThreads (a replica's share of the cores), at most what the page allows.
  if (!started) {
    started = true;
    ort.env.wasm.numThreads = Math.max(1, Math.min(config!.numThreads, options.intraOpThreads ?? config!.numThreads));
  }
  // A page has no file for ONNX Runtime to write its optimized graph to; a request for one fails by name.
  if (options.optimizedModelFile !== undefined) throw new Error(`optimizedModelFile '${options.optimizedModelFile}': a browser page has no file system for ONNX Runtime to write the optimized graph to`);
  const spin = options.allowSpinning ?? config!.allowSpinning;
  return {
    graphOptimizationLevel: options.optimizationLevel ?? 'all',
    executionMode: 'sequential',
    executionProviders: ['wasm'],
    ...(spin === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  };
}

let host: SessionHost | undefined;

scope.onmessage = (event: MessageEvent) => {
  if (!host) {
    config = event.data as WebRuntimeConfig;
    // ONNX Runtime runs inside this worker already: its own proxy worker would only add a hop.
    ort.env.wasm.proxy = false;
    if (config.wasmPaths) ort.env.wasm.wasmPaths = config.wasmPaths;
    host = new SessionHost(ort, sessionOptions, describeBrowserFailure);
    return;
  }
  host.accept(event.data as Request, (res: Response, transfer) => scope.postMessage(res, transfer));
};
