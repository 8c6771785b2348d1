import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/*
 * An idle runtime does not hold the process open: a program that builds a model (which starts the
 * shared runtime's worker) and never runs it exits by itself. The time limit only ends a hung child; a
 * working one exits in about a second.
 */
test('a process whose models have started a runtime exits by itself when its work is done', () => {
  const index = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'index.js');
  const program = `const kiln = await import(${JSON.stringify(index)});
kiln.sequential({ layers: [kiln.layers.dense({ units: 2, inputShape: [3] })] });
console.log('done');`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-exit-'));
  const file = path.join(dir, 'program.mjs');
  writeFileSync(file, program);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 120_000 });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.signal, null, `the process did not exit by itself (killed by ${r.signal}); stderr: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'done');
});
