/*
 * Where the files a Kiln page needs live on this machine: the prebuilt browser bundle (dist/browser,
 * written by scripts/build-browser.ts) and onnxruntime-web's WebAssembly files, which the bundle's
 * worker loads from beside itself. Both are served under one prefix (KILN_PREFIX).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KilnError } from '../errors.js';

/** The onnxruntime-web versions Kiln's browser bundle is built against (package.json's peerDependencies). */
export const ONNXRUNTIME_WEB_RANGE = '~1.30.0';

/** URL prefix under which the bundle and ONNX Runtime's files are served together. */
export const KILN_PREFIX = '/kiln/';

/** dist/browser, found from this module (dist/src/browser/assets.js). */
export function bundleDir(): string {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'browser');
  if (!existsSync(path.join(dir, 'kiln.js')) || !existsSync(path.join(dir, 'kiln-worker.js'))) {
    throw new KilnError('FILE_NOT_FOUND', `Kiln's browser bundle is missing: expected kiln.js and kiln-worker.js in ${dir} (npm run build writes them)`);
  }
  return dir;
}

/**
 * onnxruntime-web's dist folder (ort-wasm-simd-threaded.wasm and its .mjs glue). onnxruntime-web is an
 * optional peer dependency (139 MB installed, which a Node-only user should not pay for): a project
 * that trains in a browser installs it beside Kiln, and this says so when it is missing.
 */
export function onnxruntimeWebDir(): string {
  let wasm: string;
  try {
    wasm = fileURLToPath(import.meta.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  } catch (err) {
    throw new KilnError('FILE_NOT_FOUND', `training in the browser needs onnxruntime-web, an optional peer dependency of Kiln that is not installed: npm install onnxruntime-web@${ONNXRUNTIME_WEB_RANGE}`, { cause: err });
  }
  if (!existsSync(wasm)) throw new KilnError('FILE_NOT_FOUND', `onnxruntime-web is installed without its WebAssembly file ${wasm}: reinstall it (npm install onnxruntime-web@${ONNXRUNTIME_WEB_RANGE})`);
  return path.dirname(wasm);
}

/**
 * The folders a static server maps under KILN_PREFIX: the bundle first, then ONNX Runtime's files, so
 * the worker finds ort-wasm-simd-threaded.{mjs,wasm} beside itself, where onnxruntime-web looks.
 */
export function kilnFolders(): { prefix: string; dir: string }[] {
  return [
    { prefix: KILN_PREFIX, dir: bundleDir() },
    { prefix: KILN_PREFIX, dir: onnxruntimeWebDir() },
  ];
}
