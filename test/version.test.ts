/** src/version.ts states package.json's version. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { KILN_VERSION } from '../src/version.js';

describe('KILN_VERSION', () => {
  it("is package.json's version", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(KILN_VERSION, pkg.version);
  });
});
