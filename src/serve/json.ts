import { randomBytes } from 'node:crypto';
import { badRequest } from './errors.js';

/*
 * TF Serving (and Triton) write non-finite floats as the bare tokens NaN, Infinity and -Infinity, which
 * strict JSON lacks. Requests are parsed with JSON.parse first; only a body that fails and contains
 * such a token takes the slower path, which must stay linear and close to JSON.parse's speed: a body
 * of millions of NaN tokens is parsed on the event loop, and health probes wait behind it.
 * So the tokens become values JSON.parse reads natively — Infinity and -Infinity the literals 1e999
 * and -1e999 (which overflow to exactly those), NaN the literal null when the text has no null of its
 * own, else a marked string — and one walk over the parsed value turns the NaN stand-ins back into NaN.
 * (A reviver function would do the same at a cost of ~20× JSON.parse on such bodies.)
 */

const MARK = '\u0000kiln:';
const MARKED_TEXT = '\\u0000kiln:';

const NAN = Buffer.from('NaN', 'latin1');
const INFINITY = Buffer.from('Infinity', 'latin1');
const NEGATIVE_INFINITY = Buffer.from('-Infinity', 'latin1');
const OVERFLOW = Buffer.from('1e999', 'latin1');
const NEGATIVE_OVERFLOW = Buffer.from('-1e999', 'latin1');

function startsWith(bytes: Buffer, at: number, token: Buffer): boolean {
  if (at + token.length > bytes.length) return false;
  for (let k = 1; k < token.length; k++) if (bytes[at + k] !== token[k]) return false;
  return true;
}

/**
 * The text with NaN/Infinity tokens outside strings rewritten for JSON.parse, and what NaN became;
 * undefined if it has none. Works on UTF-8 bytes in one pass: building a string piece by piece
 * took several times as long as parsing it.
 */
function rewriteNonFiniteTokens(text: string): { text: string; nan: null | string } | undefined {
  const bytes = Buffer.from(text, 'utf8');
  // First pass: how many tokens, and whether the text has a null literal of its own.
  let nans = 0;
  let infinities = 0;
  let inString = false;
  let hasNull = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x6e /* n: outside strings only in null */) hasNull = true;
    else if (c === 0x4e /* N */ && startsWith(bytes, i, NAN)) {
      nans++;
      i += NAN.length - 1;
    } else if ((c === 0x49 /* I */ && startsWith(bytes, i, INFINITY)) || (c === 0x2d /* - */ && startsWith(bytes, i, NEGATIVE_INFINITY))) {
      infinities++;
      i += (c === 0x49 ? INFINITY.length : NEGATIVE_INFINITY.length) - 1;
    }
  }
  if (nans + infinities === 0) return undefined;
  // The mark carries a fresh random part, so no string a client writes can stand for NaN.
  const mark = hasNull ? `${MARK}NaN:${randomBytes(8).toString('hex')}` : null;
  const nan = Buffer.from(mark === null ? 'null' : JSON.stringify(mark), 'latin1');
  // Second pass: copy, replacing the tokens (each Infinity gets shorter, each NaN may grow).
  const out = Buffer.allocUnsafe(bytes.length + nans * Math.max(0, nan.length - NAN.length));
  let j = 0;
  inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      out[j++] = c;
      if (c === 0x5c) out[j++] = bytes[++i]!;
      else if (c === 0x22) inString = false;
      continue;
    }
    let token: Buffer | undefined;
    let replacement: Buffer | undefined;
    if (c === 0x22) inString = true;
    else if (c === 0x4e && startsWith(bytes, i, NAN)) [token, replacement] = [NAN, nan];
    else if (c === 0x49 && startsWith(bytes, i, INFINITY)) [token, replacement] = [INFINITY, OVERFLOW];
    else if (c === 0x2d && startsWith(bytes, i, NEGATIVE_INFINITY)) [token, replacement] = [NEGATIVE_INFINITY, NEGATIVE_OVERFLOW];
    if (!token) {
      out[j++] = c;
      continue;
    }
    for (let k = 0; k < replacement!.length; k++) out[j++] = replacement![k]!;
    i += token.length - 1;
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

/** Parses a request body: JSON plus the NaN, Infinity and -Infinity tokens. Bad input is a 400. */
export function parseJson(text: string): unknown {
  if (text.trim() === '') throw badRequest('the request body is empty; expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (strictError) {
    const rewritten = rewriteNonFiniteTokens(text);
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
