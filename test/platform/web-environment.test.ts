import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KilnError } from '../../src/errors.js';
import { defaultThreads, describeBrowserFailure, NO_SIMD, NO_WEBASSEMBLY, NOT_ISOLATED, requireRunnable, webEnvironment } from '../../src/platform/web-environment.js';

/* What a browser lacks, read from its global scope (here a stand-in for one) and told in words. */

const wasm = (simd: boolean) => ({ validate: (bytes: Uint8Array) => (bytes.includes(253) ? simd : true) });

test('an isolated page with SIMD runs ONNX Runtime Web on half the cores, at most 4, with nothing to note', () => {
  const env = webEnvironment({ crossOriginIsolated: true, navigator: { hardwareConcurrency: 8 }, WebAssembly: wasm(true) });
  assert.deepEqual(env, { simd: true, crossOriginIsolated: true, cores: 8, threads: 4, notes: [] });
  assert.deepEqual([1, 2, 3, 4, 8, 16].map(defaultThreads), [1, 1, 2, 2, 4, 4]);
});

test('no isolation: one thread, noted where threads were to be had; no SIMD or no WebAssembly: refused', () => {
  assert.deepEqual(webEnvironment({ crossOriginIsolated: false, navigator: { hardwareConcurrency: 8 }, WebAssembly: wasm(true) }).notes, [NOT_ISOLATED]);
  assert.deepEqual(webEnvironment({ crossOriginIsolated: false, navigator: { hardwareConcurrency: 2 }, WebAssembly: wasm(true) }).notes, []);
  const noSimd = webEnvironment({ crossOriginIsolated: true, navigator: { hardwareConcurrency: 2 }, WebAssembly: wasm(false) });
  assert.deepEqual(noSimd.notes, [NO_SIMD]);
  assert.throws(() => requireRunnable(noSimd), (e: unknown) => e instanceof KilnError && e.code === 'UNSUPPORTED_PLATFORM' && e.message === NO_SIMD);
  const none = webEnvironment({ crossOriginIsolated: true, navigator: { hardwareConcurrency: 2 } });
  assert.deepEqual(none.notes, [NO_WEBASSEMBLY]);
  assert.throws(() => requireRunnable(none), /runs no WebAssembly/);
  // The real probe module validates where the engine has SIMD (Node's V8 does).
  assert.equal(webEnvironment({ WebAssembly: (globalThis as unknown as { WebAssembly: never }).WebAssembly }).simd, true);
});

test('allocation failures are named as out of memory; other failures pass unchanged', () => {
  for (const m of ['failed to call OrtRun(). ERROR_CODE: 6, ERROR_MESSAGE: std::bad_alloc', 'RangeError: Array buffer allocation failed', 'Aborted(OOM)', 'Cannot enlarge memory arrays']) {
    assert.match(describeBrowserFailure(new Error(m)), /^out of memory in the browser: .*use a smaller batch or model$/, m);
  }
  assert.equal(describeBrowserFailure(new Error('no value fed for model input x')), 'no value fed for model input x');
});
