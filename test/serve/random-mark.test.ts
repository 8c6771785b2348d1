/**
 * The random marks request bodies get (src/serve/random-mark.ts): fresh bytes every call, across the
 * pool's refills, in the encoding asked for.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomMark } from '../../src/serve/random-mark.js';

describe('randomMark', () => {
  it('hands out bytes no earlier call had, across several refills of its 4 KiB pool', () => {
    // 3,000 marks of 8 bytes are 24,000 bytes: the pool refills five times on the way.
    const marks = Array.from({ length: 3000 }, () => randomMark(8, 'hex'));
    assert.ok(marks.every((m) => /^[0-9a-f]{16}$/.test(m)));
    assert.equal(new Set(marks).size, marks.length);
    const short = Array.from({ length: 1000 }, () => randomMark(6, 'base64url'));
    assert.ok(short.every((m) => /^[A-Za-z0-9_-]{8}$/.test(m)));
    assert.equal(new Set(short).size, short.length);
  });
});
