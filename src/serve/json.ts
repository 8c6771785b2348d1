import { randomMark } from './random-mark.js';
import { badRequest } from './errors.js';

/*
 * TF Serving (and Triton) write non-finite floats as the bare tokens NaN, Infinity and -Infinity, which
 * strict JSON lacks. Requests are parsed with JSON.parse first; only a body that fails and contains
 * such a token takes the slower path, which must stay linear and close to JSON.parse's speed: a body
 * of millions of NaN tokens is parsed on the event loop, and health probes wait behind it.
 * So the tokens become values JSON.parse reads natively — Infinity and -Infinity the literals 1e999
 * and -1e999 (which overflow to exactly those; padded with spaces, so `2Infinity` stays malformed
 * rather than becoming 21e999), NaN the literal null when the text has no null of its own, else a
 * short random string — and one walk over the parsed value turns the NaN stand-ins back into NaN.
 * (A reviver function would do the same at a cost of ~20× JSON.parse on such bodies. The random
 * string is 9 characters: V8 parses strings up to that length ~3× faster than longer ones, measured
 * on 8 million of them.)
 */

const MARK = '\u0000kiln:';
const MARKED_TEXT = '\\u0000kiln:';

const OVERFLOW = Buffer.from(' 1e999 ', 'latin1');
const NEGATIVE_OVERFLOW = Buffer.from(' -1e999 ', 'latin1');

/** Which token starts at `i` (outside a string): 1 NaN, 2 Infinity, 3 -Infinity, 0 none. */
function tokenAt(b: Buffer, i: number): number {
  const c = b[i];
  if (c === 0x4e /* N */) return b[i + 1] === 0x61 && b[i + 2] === 0x4e ? 1 : 0;
  if (c === 0x2d /* - */) {
    if (b[i + 1] !== 0x49) return 0;
    i++;
  } else if (c !== 0x49 /* I */) return 0;
  // "nfinity" after the I
  return b[i + 1] === 0x6e && b[i + 2] === 0x66 && b[i + 3] === 0x69 && b[i + 4] === 0x6e && b[i + 5] === 0x69 && b[i + 6] === 0x74 && b[i + 7] === 0x79 ? (c === 0x2d ? 3 : 2) : 0;
}

const TOKEN_LENGTH = [0, 3, 8, 9];

/** The index of the quote that closes the string opened at `open` (its escapes skipped), or the length if none does. */
function stringEnd(b: Buffer, open: number): number {
  for (let i = open + 1; i < b.length; i++) {
    const c = b[i];
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x22 /* " */) return i;
  }
  return b.length;
}

/**
 * The text with NaN/Infinity tokens outside strings rewritten for JSON.parse, and what NaN became;
 * undefined if it has none. Works on UTF-8 bytes in two tight passes (count, then copy byte by byte
 * outside strings): building a string piece by piece, or copying the runs between tokens, took
 * several times as long.
 */
function rewriteNonFiniteTokens(bytes: Buffer): { text: string; nan: null | string } | undefined {
  const n = bytes.length;
  // First pass: how many NaN tokens (the only ones that may grow), any token at all, and whether the
  // text has a null literal of its own.
  let nans = 0;
  let tokens = 0;
  let hasNull = false;
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!;
    if (c === 0x22 /* " */) i = stringEnd(bytes, i);
    else if (c === 0x6e /* n: outside strings only in null */) hasNull = true;
    else if (c === 0x4e || c === 0x49 || c === 0x2d) {
      const token = tokenAt(bytes, i);
      if (token !== 0) {
        tokens++;
        if (token === 1) nans++;
        i += TOKEN_LENGTH[token]! - 1;
      }
    }
  }
  if (tokens === 0) return undefined;
  // A fresh random mark (48 bits), so no string a client writes can stand for NaN.
  const mark = hasNull ? `~${randomMark(6, 'base64url')}` : null;
  const nan = Buffer.from(mark === null ? 'null' : JSON.stringify(mark), 'latin1');
  // Second pass: copy, replacing the tokens (each Infinity gets shorter, each NaN may grow).
  const out = Buffer.allocUnsafe(n + nans * Math.max(0, nan.length - 3));
  let j = 0;
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!;
    if (c === 0x22) {
      const end = Math.min(stringEnd(bytes, i) + 1, n);
      j += bytes.copy(out, j, i, end);
      i = end - 1;
      continue;
    }
    out[j++] = c;
    if (c !== 0x4e && c !== 0x49 && c !== 0x2d) continue;
    const token = tokenAt(bytes, i);
    if (token === 0) continue;
    j--;
    const replacement = token === 1 ? nan : token === 2 ? OVERFLOW : NEGATIVE_OVERFLOW;
    for (let k = 0; k < replacement.length; k++) out[j++] = replacement[k]!;
    i += TOKEN_LENGTH[token]! - 1;
  }
  return { text: out.toString('utf8', 0, j), nan: mark };
}

/** Replaces every `stand-in` (null or the NaN mark) inside the parsed value with NaN, without recursion. */
function restoreNaN(value: unknown, standIn: null | string): unknown {
  if (value === standIn) return NaN;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const e: unknown = v[i];
        if (e === standIn) v[i] = NaN;
        else if (typeof e === 'object' && e !== null) stack.push(e);
      }
    } else if (typeof v === 'object' && v !== null) {
      const o = v as Record<string, unknown>;
      for (const key of Object.keys(o)) {
        const e = o[key];
        if (e === standIn) o[key] = NaN;
        else if (typeof e === 'object' && e !== null) stack.push(e);
      }
    }
  }
  return value;
}

/** Parses a request body (its bytes, or its text): JSON plus the NaN, Infinity and -Infinity tokens. Bad input is a 400. */
export function parseJson(body: Buffer | string): unknown {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.trim() === '') throw badRequest('the request body is empty; expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (strictError) {
    // The bytes as received, when given: encoding the text again would hold a second copy of a large body.
    const rewritten = rewriteNonFiniteTokens(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
    if (rewritten !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(rewritten.text);
      } catch {
        // Report the error in the text as sent, not in the rewritten one.
        throw badRequest(`the request body is not valid JSON: ${(strictError as Error).message}`);
      }
      return restoreNaN(parsed, rewritten.nan);
    }
    throw badRequest(`the request body is not valid JSON: ${(strictError as Error).message}`);
  }
}

function markNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? MARK + String(value) : value;
}

/**
 * Serializes a reply, writing non-finite numbers as NaN / Infinity / -Infinity tokens (as TF Serving
 * and Triton do) instead of JSON.stringify's null. `mayHaveNonFinite: false` skips the slower path.
 */
export function stringifyJson(value: unknown, mayHaveNonFinite = true): string {
  if (!mayHaveNonFinite) return JSON.stringify(value);
  const text = JSON.stringify(value, markNonFinite);
  return text.includes(MARKED_TEXT) ? text.replace(/"\\u0000kiln:(NaN|Infinity|-Infinity)"/g, '$1') : text;
}
