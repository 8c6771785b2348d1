import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KILN_VERSION } from '../src/version.js';

test('KILN_VERSION is the version package.json gives', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  assert.equal(KILN_VERSION, (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version);
});
