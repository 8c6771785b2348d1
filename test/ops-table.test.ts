/* docs/ops.md is current: it equals what scripts/ops-table.ts generates from src/ops/ now. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { opsTable } from '../scripts/ops-table.js';
import { registeredOps } from '../src/ops/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('docs/ops.md equals a fresh generation (npm run build && node dist/scripts/ops-table.js)', () => {
  const committed = readFileSync(path.join(ROOT, 'docs', 'ops.md'), 'utf8');
  assert.equal(committed, opsTable(), 'docs/ops.md is stale: regenerate it with `npm run build && node dist/scripts/ops-table.js`');
});

test('the table lists every op in the op table once', () => {
  const listed = [...opsTable().matchAll(/^\| (\w+) \| (yes|no) \|/gm)].map((m) => m[1]!);
  assert.deepEqual([...listed].sort(), registeredOps());
});
