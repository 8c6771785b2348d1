/**
 * Builds Kiln's browser bundle from the compiled library (dist/src): dist/browser/kiln.js (the
 * `kiln/web` entry, ES module), dist/browser/demo.js (`kiln browser-demo`'s page script, the library
 * included) and dist/browser/kiln-worker.js (the runtime's Web Worker with
 * onnxruntime-web's JavaScript; its WebAssembly, ort-wasm-simd-threaded.{mjs,wasm}, is served from
 * the onnxruntime-web package beside it, see `kiln browser-demo`). `npm run build` runs it after tsc.
 *
 *   node dist/scripts/build-browser.js [--out DIR]
 *
 * esbuild bundles for the browser with the "browser" condition, so '#platform' resolves to
 * platform/browser.js; any import of a Node built-in (fs, worker_threads, ...) that a package does not
 * map away for browsers fails the build, which is what test/web/bundle.test.ts checks.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_OUT = path.join(ROOT, 'dist', 'browser');
export const LIBRARY_ENTRY = path.join(ROOT, 'dist', 'src', 'web', 'index.js');
export const WORKER_ENTRY = path.join(ROOT, 'dist', 'src', 'runtime', 'web-worker.js');
export const DEMO_ENTRY = path.join(ROOT, 'dist', 'src', 'web', 'demo-page.js');

export interface BrowserBundle {
  /** Output file → bytes. */
  sizes: Record<string, number>;
  /** Every input file that went into either bundle, relative to the repository root. */
  inputs: string[];
}

/** The options both bundles are built with (exported for the bundle test's probe of a Node import). */
export const BROWSER_BUILD: esbuild.BuildOptions = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  // onnxruntime-web's build that loads its WebAssembly glue from beside it instead of inlining it:
  // the glue must stay a file of its own, because WebAssembly threads start workers from it.
  conditions: ['onnxruntime-web-use-extern-wasm'],
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'silent',
  absWorkingDir: ROOT,
};

export async function buildBrowserBundle(outDir = DEFAULT_OUT, minify = true): Promise<BrowserBundle> {
  const results = await Promise.all([
    esbuild.build({ ...BROWSER_BUILD, minify, entryPoints: { kiln: LIBRARY_ENTRY }, outdir: outDir, define: { KILN_BUNDLED_WORKER: JSON.stringify('./kiln-worker.js') } }),
    esbuild.build({ ...BROWSER_BUILD, minify, entryPoints: { 'kiln-worker': WORKER_ENTRY }, outdir: outDir }),
    // The demo page's script carries its own copy of the library: the page loads nothing else.
    esbuild.build({ ...BROWSER_BUILD, minify, entryPoints: { demo: DEMO_ENTRY }, outdir: outDir, define: { KILN_BUNDLED_WORKER: JSON.stringify('./kiln-worker.js') } }),
  ]);
  const sizes: Record<string, number> = {};
  const inputs = new Set<string>();
  for (const r of results) {
    for (const [file, out] of Object.entries(r.metafile!.outputs)) if (!file.endsWith('.map')) sizes[path.relative(ROOT, path.resolve(ROOT, file))] = out.bytes;
    for (const file of Object.keys(r.metafile!.inputs)) inputs.add(file);
  }
  return { sizes, inputs: [...inputs].sort() };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--out');
  const out = at > 0 ? path.resolve(process.argv[at + 1]!) : DEFAULT_OUT;
  const bundle = await buildBrowserBundle(out).catch((err: Error) => {
    console.error(`build-browser: ${err.message}`);
    process.exit(1);
  });
  for (const [file, bytes] of Object.entries(bundle.sizes)) console.log(`${file}  ${(bytes / 1024).toFixed(1)} KiB`);
}
