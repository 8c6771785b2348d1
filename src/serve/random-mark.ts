import { randomFillSync } from 'node:crypto';

/*
 * Random marks for one request body (number-lists.ts's list placeholders, json.ts's NaN mark): fresh,
 * unpredictable bytes for every body, so no string a client writes can pass for one. They come from a
 * pool the CSPRNG refills 4 KiB at a time, and no byte is handed out twice: randomBytes per body
 * measured ~3.3 µs (most of it the call itself), the pool ~0.15 µs.
 */

const pool = Buffer.alloc(4096);
let used = pool.length;

/** `bytes` random bytes never handed out before, as text. */
export function randomMark(bytes: number, encoding: 'hex' | 'base64url'): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const mark = pool.toString(encoding, used, used + bytes);
  used += bytes;
  return mark;
}
