/*
 * The browser's bad input, each a clear error or a stated fallback: a page that is not cross-origin
 * isolated (one thread, and a note saying why), a browser without WebAssembly (UNSUPPORTED_PLATFORM
 * before anything runs), a step too big for the WebAssembly heap (named as out of memory in the page,
 * the runtime usable after; and in the terminal under `kiln browser-demo --headless`), data of the wrong
 * shape (the same checks as Node's). A memory-capped Chromium (V8's --wasm-max-mem-pages) stands for a
 * device with less memory, so the out-of-memory cases need no 4 GiB.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runMain } from '../cli/helpers.js';
import { tempDir } from '../train/helpers.js';
import { needsChromium, openBlankPage } from './helpers.js';

/** Evaluates `body` (an async function body with `kiln` in scope) in the page; returns its value. */
function inPage<T>(session: Awaited<ReturnType<typeof openBlankPage>>, body: string): Promise<T> {
  return session.browser.page.evaluate(`(async () => { const kiln = await import('/kiln/kiln.js'); ${body} })()`) as Promise<T>;
}

const CATCH = `.then(() => 'no error', (e) => (e.code ?? e.name) + ': ' + e.message)`;

test('a page without cross-origin isolation trains on one thread and says why', async (t) => {
  if (!needsChromium(t)) return;
  const session = await openBlankPage({ isolated: false });
  try {
    const r = await inPage<{ info: { crossOriginIsolated: boolean; threads: number; notes: string[] }; loss: number }>(
      session,
      `kiln.configureBrowserRuntime({ numThreads: 2 });
       const info = kiln.browserRuntimeInfo();
       const model = kiln.sequential({ layers: [kiln.layers.dense({ units: 3, inputShape: [4] })] });
       model.compile({ optimizer: 'sgd', loss: 'mse' });
       const h = await model.fit(new kiln.Tensor(new Float32Array(32).fill(0.5), [8, 4], 'float32'), new kiln.Tensor(new Float32Array(24), [8, 3], 'float32'), { epochs: 1, batchSize: 4, verbose: 0 });
       return { info, loss: h.history.loss[0] };`,
    );
    assert.equal(r.info.crossOriginIsolated, false);
    assert.equal(r.info.threads, 1);
    assert.match(r.info.notes.join(' '), /not cross-origin isolated.*runs on 1 thread.*Cross-Origin-Opener-Policy: same-origin/);
    assert.ok(Number.isFinite(r.loss));
    assert.ok(session.browser.log.some((l) => /^warning: kiln: the page is not cross-origin isolated/.test(l)), session.browser.log.join('\n'));
  } finally {
    await session.close();
  }
});

test('data of the wrong shape is refused in the page as in Node', async (t) => {
  if (!needsChromium(t)) return;
  const session = await openBlankPage();
  try {
    const message = await inPage<string>(
      session,
      `const model = kiln.sequential({ layers: kiln.layers.tutorialCnn([28, 28, 1], 10) });
       model.compile({ optimizer: 'adam', loss: kiln.losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
       return model.fit(new kiln.Tensor(new Float32Array(4 * 28 * 28), [4, 28, 28], 'float32'), new kiln.Tensor(new Int32Array(4), [4], 'int32'))${CATCH};`,
    );
    assert.equal(message, 'INVALID_SHAPE: x must have shape [null, 28, 28, 1] (batch first), got [4, 28, 28]');
  } finally {
    await session.close();
  }
});

test('a browser without WebAssembly is told so before anything runs (UNSUPPORTED_PLATFORM)', async (t) => {
  if (!needsChromium(t)) return;
  // V8 without its compilers (jitless, as some browsers' hardened modes run) has no WebAssembly.
  const session = await openBlankPage({ args: ['--js-flags=--jitless'] });
  try {
    const r = await inPage<{ simd: boolean; notes: string[]; error: string }>(
      session,
      `const info = kiln.browserRuntimeInfo();
       const model = kiln.sequential({ layers: [kiln.layers.dense({ units: 2, inputShape: [3] })] });
       const error = await model.predict(new kiln.Tensor(new Float32Array(3), [1, 3], 'float32'))${CATCH};
       return { simd: info.simd, notes: info.notes, error };`,
    );
    assert.equal(r.simd, false);
    assert.match(r.notes[0]!, /runs no WebAssembly/);
    assert.match(r.error, /^UNSUPPORTED_PLATFORM: this browser runs no WebAssembly .* Kiln cannot train or run models here/);
  } finally {
    await session.close();
  }
});

test('a step too big for the WebAssembly heap fails as out of memory in the page; the runtime runs the next one', async (t) => {
  if (!needsChromium(t)) return;
  const session = await openBlankPage({ args: ['--js-flags=--wasm-max-mem-pages=2048'] });
  try {
    const r = await inPage<{ big: string; small: string }>(
      session,
      `const model = kiln.sequential({ layers: [kiln.layers.conv2d({ filters: 64, kernelSize: 3, inputShape: [256, 256, 1] })] });
       const big = await model.predict(new kiln.Tensor(new Float32Array(16 * 256 * 256), [16, 256, 256, 1], 'float32'), { batchSize: 16 })${CATCH};
       const small = await model.predict(new kiln.Tensor(new Float32Array(256 * 256), [1, 256, 256, 1], 'float32')).then((y) => 'ran ' + y.shape.join('x'), (e) => e.message);
       return { big, small };`,
    );
    assert.match(r.big, /^RUNTIME_ERROR: ONNX Runtime: out of memory in the browser: .*use a smaller batch or model/);
    assert.equal(r.small, 'ran 1x254x254x64');
  } finally {
    await session.close();
  }
});

test('out of memory in the demo page reaches the terminal: kiln browser-demo --headless exits 1 with the page\'s message', async (t) => {
  if (!needsChromium(t)) return;
  const dir = await tempDir();
  try {
    const r = await runMain(['browser-demo', '--headless', '--epochs', '1', '--limit', '512', '--batch-size', '512', '--chromium-flags', '--js-flags=--wasm-max-mem-pages=2048', '--out', dir.path('never.onnx')]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^kiln browser-demo: error \[RUNTIME_ERROR\]: the demo page failed: RUNTIME_ERROR: ONNX Runtime: out of memory in the browser/);
    assert.match(r.out, /kiln demo page failed: .*out of memory/);
  } finally {
    await dir.remove();
  }
});
