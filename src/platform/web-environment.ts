/*
 * What a browser offers ONNX Runtime Web and what it lacks, told in words: WebAssembly SIMD (which
 * every build of onnxruntime-web 1.30 needs: its only binaries are ort-wasm-simd-threaded*), threads
 * (which need SharedArrayBuffer, so a cross-origin-isolated page), and memory (a wasm32 heap stops at
 * 4 GiB). No DOM here: the page (platform/browser.ts) and the runtime's Web Worker both use it.
 */
import { KilnError } from '../errors.js';

/** How the runtime's Web Worker starts ONNX Runtime (sent as its first message). */
export interface WebRuntimeConfig {
  numThreads: number;
  /** Let idle ONNX Runtime threads spin waiting for work (ONNX Runtime's default, true). */
  allowSpinning?: boolean;
  /** Where onnxruntime-web's .wasm and .mjs files are served from (default: beside the worker script). */
  wasmPaths?: string;
}

/** The browser's side of the runtime, for a page to show (and for `kiln browser-demo` to print). */
export interface WebEnvironment {
  simd: boolean;
  crossOriginIsolated: boolean;
  /** Cores the browser reports (navigator.hardwareConcurrency). */
  cores: number;
  /** Threads ONNX Runtime runs with: defaultThreads(cores) (or as configured) when the page is isolated, else 1. */
  threads: number;
  /** Why the runtime runs slower than it could, or cannot run at all; empty when nothing is missing. */
  notes: string[];
}

/**
 * A module of one function returning a v128 (i8x16.popcnt of an i8x16.splat): it validates exactly
 * where the engine has WebAssembly SIMD (the probe wasm-feature-detect uses).
 */
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

export const NO_WEBASSEMBLY =
  'this browser runs no WebAssembly (turned off, or too old), and ONNX Runtime Web is WebAssembly: Kiln cannot train or run models here; ' +
  'turn WebAssembly on, or use a browser from 2021 on';

export const NO_SIMD =
  'this browser has no WebAssembly SIMD, which onnxruntime-web 1.30 needs (it ships only SIMD builds): Kiln cannot run ONNX Runtime here; ' +
  'use a browser from 2021 on (Chrome/Edge 91, Firefox 89, Safari 16.4) or turn WebAssembly SIMD back on';

export const NOT_ISOLATED =
  'the page is not cross-origin isolated, so WebAssembly threads (SharedArrayBuffer) are off and ONNX Runtime runs on 1 thread; ' +
  'serve the page with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp to train on more cores';

/**
 * ONNX Runtime Web's own rule for its threads: half the cores, at most 4. Measured here it is also
 * the faster choice on 2 cores: 1 thread trained the tutorial CNN 1.5-2x faster than 2 threads in
 * the same page on a loaded 2-core machine (bench/browser/train.ts), where every operator's barrier
 * waits for the thread the host has descheduled.
 */
export function defaultThreads(cores: number): number {
  return Math.min(4, Math.ceil(cores / 2));
}

/** What webEnvironment reads of a page's or a worker's global scope. */
export interface WebScope {
  crossOriginIsolated?: boolean;
  navigator?: { hardwareConcurrency?: number };
  WebAssembly?: { validate(bytes: Uint8Array): boolean };
}

/** Reads the environment of the calling context (a page or a worker). */
export function webEnvironment(scope: WebScope = globalThis as unknown as WebScope): WebEnvironment {
  const wasm = typeof scope.WebAssembly?.validate === 'function';
  const simd = wasm && scope.WebAssembly!.validate(SIMD_PROBE) === true;
  const isolated = scope.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';
  const cores = Math.max(1, scope.navigator?.hardwareConcurrency ?? 1);
  const threads = isolated ? defaultThreads(cores) : 1;
  const notes: string[] = [];
  if (!simd) notes.push(wasm ? NO_SIMD : NO_WEBASSEMBLY);
  if (!isolated && defaultThreads(cores) > 1) notes.push(NOT_ISOLATED);
  return { simd, crossOriginIsolated: isolated, cores, threads, notes };
}

/** Throws where ONNX Runtime Web cannot run at all (no SIMD); a missing isolation only costs threads. */
export function requireRunnable(env: WebEnvironment): void {
  if (!env.simd) throw new KilnError('UNSUPPORTED_PLATFORM', env.notes[0] ?? NO_SIMD);
}

/** Messages of a WebAssembly heap that could not grow (V8's, Emscripten's, ONNX Runtime's allocator). */
const OUT_OF_MEMORY = /out of memory|\bOOM\b|bad_alloc|enlarge memory|allocation failed|Memory\.grow|maximum memory|could not allocate|failed to allocate/i;

/**
 * A runtime failure's message as the page and the terminal should read it: memory exhaustion named as
 * such, with what to do, rather than whatever the allocator said.
 */
export function describeBrowserFailure(err: unknown): string {
  const message = err instanceof Error ? err.message || err.name : String(err);
  if (OUT_OF_MEMORY.test(message)) {
    return `out of memory in the browser: ONNX Runtime's WebAssembly heap could not grow to hold this step (a wasm32 heap stops at 4 GiB, and a browser may allow less) (${message}); use a smaller batch or model`;
  }
  return message;
}
