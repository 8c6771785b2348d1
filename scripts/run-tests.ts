/**
 * `npm test`'s runner: hands node's test runner the compiled test files by name.
 *
 *   node dist/scripts/run-tests.js [--test-name-pattern=...] [test/serve ...]
 *
 * Why not `node --test dist/test/`: Node 20 runs every test file under a folder it is given, but
 * Node 22 and later read a folder argument as one file to run (and fail with 0 tests), and only
 * Node 21+ expands globs itself. A list of files means the same thing to Node 20, 22 and 24.
 * Positional arguments keep the files under those paths (`test/serve` or `dist/test/serve`);
 * options go to `node --test` unchanged. Two files at a time: CI has two cores.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TESTS = path.join(DIST, 'test');

/** Every compiled `*.test.js` under dist/test, sorted so runs list the same order everywhere. */
function testFiles(): string[] {
  return readdirSync(TESTS, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => path.join(TESTS, f))
    .sort();
}

/** `test/serve`, `dist/test/serve` or `test/serve/x.test.ts` → the compiled path under dist/. */
function compiledPath(arg: string): string {
  const relative = path.normalize(arg).replace(/^dist[\\/]/, '').replace(/\.ts$/, '.js');
  return path.join(DIST, relative).replace(/[\\/]$/, '');
}

function main(): void {
  const args = process.argv.slice(2);
  const options = args.filter((a) => a.startsWith('-'));
  const wanted = args.filter((a) => !a.startsWith('-')).map(compiledPath);
  const files = testFiles().filter((f) => wanted.length === 0 || wanted.some((w) => f === w || f.startsWith(w + path.sep)));
  if (files.length === 0) {
    console.error(`run-tests: no test files under ${wanted.length ? wanted.join(', ') : TESTS} (is the build done?)`);
    process.exit(1);
  }
  const child = spawn(process.execPath, ['--test', '--test-concurrency=2', ...options, ...files], { stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

main();
