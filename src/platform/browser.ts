/*
 * The platform in a browser: ONNX Runtime Web in a Web Worker (runtime/web-worker.ts), files as URLs
 * (fetched; written only as downloads), navigator.hardwareConcurrency, the console. Resolved by
 * '#platform' under a bundler's "browser" condition; imports nothing of Node.
 */
import { KilnError } from '../errors.js';
import type { ProgressStream } from '../text/progress.js';
import { OUTSIDE_FOLDER, type Platform, type RuntimeWorker, type WorkerMessage } from './platform.js';
import { describeBrowserFailure, NOT_ISOLATED, requireRunnable, webEnvironment, type WebEnvironment, type WebRuntimeConfig } from './web-environment.js';

/* The few DOM pieces used here, declared locally: the project compiles against Node's types. */
interface WebWorker {
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: { message?: string; preventDefault?: () => void }) => void) | null;
  onmessageerror: ((event: unknown) => void) | null;
  terminate(): void;
}
interface BrowserScope {
  Worker: new (url: URL | string, options: { type: 'module'; name?: string }) => WebWorker;
  document?: { createElement(tag: 'a'): { href: string; download: string; click(): void; remove(): void }; body: { append(node: unknown): void } };
  location?: { href: string };
}
const browser = globalThis as unknown as BrowserScope;

/** Set by the prebuilt bundle (esbuild's define): the worker script's name beside the bundle. */
declare const KILN_BUNDLED_WORKER: string | undefined;

export interface BrowserRuntimeOptions {
  /** The runtime worker script (default: runtime/web-worker.js, or kiln-worker.js beside the prebuilt bundle). */
  workerUrl?: string | URL;
  /** Where onnxruntime-web's ort-wasm-simd-threaded.{mjs,wasm} are served (default: beside the worker script). */
  wasmPaths?: string;
  /** ONNX Runtime threads (default: half the cores, at most 4, when the page is cross-origin isolated, else 1). */
  numThreads?: number;
  /** Let idle ONNX Runtime threads spin waiting for work (default: ONNX Runtime's, true). */
  allowSpinning?: boolean;
}

let options: BrowserRuntimeOptions = {};
let warnedIsolation = false;

/**
 * Sets how runtimes started from now on find their worker and ONNX Runtime's files, and how many
 * threads they use. Runtimes already running keep theirs.
 */
export function configureBrowserRuntime(next: BrowserRuntimeOptions): void {
  if (next.numThreads !== undefined && (!Number.isInteger(next.numThreads) || next.numThreads < 1)) {
    throw new KilnError('INVALID_ARGUMENT', `numThreads must be a positive integer, got ${next.numThreads}`);
  }
  options = { ...options, ...next };
}

/** The environment runtimes start in, and the threads they will use. */
export function browserRuntimeInfo(): WebEnvironment {
  const env = webEnvironment();
  if (options.numThreads === undefined) return env;
  // Threads asked for that the page cannot give: say why.
  const notes = !env.crossOriginIsolated && options.numThreads > 1 && !env.notes.includes(NOT_ISOLATED) ? [...env.notes, NOT_ISOLATED] : env.notes;
  return { ...env, threads: env.crossOriginIsolated ? options.numThreads : 1, notes };
}

function workerUrl(): URL | string {
  if (options.workerUrl) return options.workerUrl;
  return typeof KILN_BUNDLED_WORKER === 'string' ? new URL(KILN_BUNDLED_WORKER, import.meta.url) : new URL('../runtime/web-worker.js', import.meta.url);
}

/** A worker that never started: every request fails with `error`, after the caller has registered it. */
function failedWorker(error: Error): RuntimeWorker {
  let fail: (e: Error) => void = () => undefined;
  return {
    post: () => queueMicrotask(() => fail(error)),
    onReply: () => undefined,
    onError: (handler) => void (fail = handler),
    takeReplies: () => [],
    keepAlive: () => undefined,
    terminate: async () => undefined,
  };
}

function startRuntimeWorker(): RuntimeWorker {
  const env = browserRuntimeInfo();
  try {
    requireRunnable(env);
  } catch (err) {
    return failedWorker(err as Error);
  }
  if (env.notes.includes(NOT_ISOLATED) && !warnedIsolation) {
    warnedIsolation = true;
    console.warn(`kiln: ${NOT_ISOLATED}`);
  }
  const url = workerUrl();
  const worker = new browser.Worker(url, { type: 'module', name: 'kiln-runtime' });
  const config: WebRuntimeConfig = { numThreads: env.threads, ...(options.wasmPaths ? { wasmPaths: options.wasmPaths } : {}), ...(options.allowSpinning !== undefined ? { allowSpinning: options.allowSpinning } : {}) };
  worker.postMessage(config);
  return {
    post: (message, transfer) => worker.postMessage(message, transfer),
    onReply: (handler) => void (worker.onmessage = (event) => handler(event.data as WorkerMessage)),
    onError(handler) {
      worker.onerror = (event) => {
        event.preventDefault?.();
        // An uncaught failure inside the worker (an aborted WebAssembly heap among them) ends up here.
        handler(new Error(event.message ? `${describeBrowserFailure(new Error(event.message))} (worker ${String(url)})` : `the runtime worker ${String(url)} did not load or crashed`));
      };
      worker.onmessageerror = () => handler(new Error('a reply from the runtime worker could not be read'));
    },
    takeReplies: () => [],
    keepAlive: () => undefined,
    terminate: async () => worker.terminate(),
  };
}

/** A file's bytes from a URL (relative ones against the page), with 404 as a missing file. */
async function readFile(url: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw Object.assign(new Error(`could not fetch ${url}: ${(err as Error).message}`), { cause: err });
  }
  if (response.status === 404) throw Object.assign(new Error(`${url}: HTTP 404 Not Found`), { code: 'ENOENT' });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** `location` beside the model's URL: the URL resolved against it, read only on the same origin and under the same folder. */
async function readBeside(file: string, location: string): Promise<Uint8Array> {
  const base = new URL(file, browser.location?.href);
  const target = new URL(location, base);
  const folder = base.href.slice(0, base.href.lastIndexOf('/') + 1);
  if (target.origin !== base.origin || !target.href.startsWith(folder)) {
    throw Object.assign(new Error(`'${location}' resolves to ${target.href}, outside the model's folder ${folder}`), { code: OUTSIDE_FOLDER });
  }
  return readFile(target.href);
}

const DOWNLOADS = 'downloads://';

/**
 * A page has no files to write: 'downloads://name' (TensorFlow.js' scheme) saves through the
 * browser's download instead; anything else says where the bytes can be had.
 */
async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  if (!target.startsWith(DOWNLOADS)) {
    throw new KilnError('UNSUPPORTED_PLATFORM', `cannot write '${target}': a browser page has no file system; save to 'downloads://${target.split('/').pop() || 'model.onnx'}' to download it, or take the bytes (model.toOnnx())`);
  }
  const doc = browser.document;
  if (!doc) throw new KilnError('UNSUPPORTED_PLATFORM', `cannot download '${target}' from a worker: downloads start from a page`);
  const name = target.slice(DOWNLOADS.length) || 'model.onnx';
  const blob = new Blob([typeof data === 'string' ? data : (data as Uint8Array<ArrayBuffer>)], { type: 'application/octet-stream' });
  const href = URL.createObjectURL(blob);
  const a = doc.createElement('a');
  a.href = href;
  a.download = name;
  doc.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

/** fit()'s progress without a terminal: each finished line to the console. */
function standardOutput(): ProgressStream {
  let pending = '';
  return {
    isTTY: false,
    write(text: string) {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') console.log(line);
      return true;
    },
  };
}

export const platform: Platform = {
  name: 'browser',
  startRuntimeWorker,
  beforeExit: () => undefined,
  availableCores: () => browserRuntimeInfo().cores,
  readFile,
  readBeside,
  writeFileAtomic,
  standardOutput,
};
