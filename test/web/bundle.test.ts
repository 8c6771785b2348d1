/*
 * The browser entry bundles for browsers with no Node built-in anywhere in it: esbuild, told the
 * platform is a browser, fails on an import of fs, worker_threads, http, path..., so the build
 * succeeding is the check; the inputs show which platform file went in. The sizes are printed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as esbuild from 'esbuild';
import { BROWSER_BUILD, buildBrowserBundle, LIBRARY_ENTRY } from '../../scripts/build-browser.js';
import { ONNXRUNTIME_WEB_RANGE, onnxruntimeWebDir } from '../../src/browser/assets.js';

test('the browser bundle builds with no Node built-in, from the browser platform file; its size is printed', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-bundle-'));
  try {
    const bundle = await buildBrowserBundle(dir);
    const inputs = bundle.inputs.join('\n');
    assert.match(inputs, /dist\/src\/platform\/browser\.js/);
    assert.match(inputs, /dist\/src\/runtime\/session-host\.js/);
    assert.match(inputs, /onnxruntime-web\/dist\/ort\.wasm\.min\.mjs/);
    for (const nodeOnly of ['dist/src/platform/node.js', 'dist/src/runtime/worker.js', 'onnxruntime-node', 'node:']) {
      assert.ok(!inputs.includes(nodeOnly), `the browser bundle took in ${nodeOnly}`);
    }
    const size = (name: string) => (Object.entries(bundle.sizes).find(([f]) => path.basename(f) === name)![1] / 1024).toFixed(1);
    console.log(`browser bundle (minified, without onnxruntime-web's .wasm): kiln.js ${size('kiln.js')} KiB + kiln-worker.js ${size('kiln-worker.js')} KiB (the demo page's script, library included: ${size('demo.js')} KiB)`);
    assert.deepEqual(Object.keys(bundle.sizes).map((f) => path.basename(f)).sort(), ['demo.js', 'kiln-worker.js', 'kiln.js']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the same build fails on a Node built-in (the check above can fail)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-bundle-probe-'));
  try {
    const entry = path.join(dir, 'entry.js');
    await writeFile(entry, "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n");
    await assert.rejects(esbuild.build({ ...BROWSER_BUILD, entryPoints: [entry], outdir: path.join(dir, 'out'), absWorkingDir: dir }), /node:fs/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("kiln/web/trainer (training from a package) bundles without Kiln's layers", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-trainer-bundle-'));
  try {
    const entry = path.join(path.dirname(LIBRARY_ENTRY), 'trainer.js');
    const r = await esbuild.build({ ...BROWSER_BUILD, minify: true, entryPoints: { trainer: entry }, outdir: dir });
    const inputs = Object.keys(r.metafile!.inputs);
    assert.ok(inputs.some((f) => f.endsWith('dist/src/train/trainer.js')));
    const layers = inputs.filter((f) => f.includes('dist/src/layers/'));
    assert.deepEqual(layers, [], 'the trainer bundle took in the layers');
    assert.ok(!inputs.some((f) => f.startsWith('node:') || f.includes('platform/node.js')));
    const bytes = Object.entries(r.metafile!.outputs).filter(([f]) => !f.endsWith('.map')).reduce((n, [, o]) => n + o.bytes, 0);
    console.log(`kiln/web/trainer bundle (minified, without the worker and onnxruntime-web's .wasm): ${(bytes / 1024).toFixed(1)} KiB`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('onnxruntime-web is an optional peer dependency (a Node-only install does without its 139 MB), at the range the bundle is built against', async () => {
  const manifest = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as Record<string, Record<string, unknown>>;
  assert.equal(manifest.dependencies!['onnxruntime-web'], undefined, 'onnxruntime-web is a regular dependency again');
  assert.equal(manifest.peerDependencies!['onnxruntime-web'], ONNXRUNTIME_WEB_RANGE);
  assert.deepEqual(manifest.peerDependenciesMeta!['onnxruntime-web'], { optional: true });
  assert.equal(manifest.devDependencies!['onnxruntime-web'], ONNXRUNTIME_WEB_RANGE, 'the tests and the bundle build install it as a dev dependency');
  // What `kiln browser-demo` serves: the installed package's WebAssembly, of the bundled version.
  const installed = JSON.parse(await readFile(path.join(onnxruntimeWebDir(), '..', 'package.json'), 'utf8')) as { version: string };
  assert.match(installed.version, /^1\.30\./);
});
