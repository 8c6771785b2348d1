import { badRequest } from './errors.js';

/*
 * TF Serving (and Triton) write non-finite floats as the bare tokens NaN, Infinity and -Infinity, which
 * strict JSON lacks. Requests are parsed with JSON.parse first; only a body that fails and contains
 * such a token takes the slower path that rewrites the tokens into marked strings and revives them.
 */

const MARK = '\u0000kiln:';
const MARKED_TEXT = '\\u0000kiln:';
const TOKENS: readonly (readonly [string, number])[] = [
  ['-Infinity', -Infinity],
  ['Infinity', Infinity],
  ['NaN', NaN],
];

/** The text with NaN/Infinity tokens outside strings replaced by marked strings, or undefined if it has none. */
function markNonFiniteTokens(text: string): string | undefined {
  let out = '';
  let last = 0;
  let inString = false;
  let found = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    if (c !== 0x4e /* N */ && c !== 0x49 /* I */ && c !== 0x2d /* - */) continue;
    for (const [token] of TOKENS) {
      if (text.startsWith(token, i)) {
        out += `${text.slice(last, i)}"${MARKED_TEXT}${token}"`;
        i += token.length - 1;
        last = i + 1;
        found = true;
        break;
      }
    }
  }
  return found ? out + text.slice(last) : undefined;
}

function revive(_key: string, value: unknown): unknown {
  if (typeof value === 'string' && value.charCodeAt(0) === 0 && value.startsWith(MARK)) {
    const token = value.slice(MARK.length);
    for (const [name, number] of TOKENS) if (name === token) return number;
  }
  return value;
}

/** Parses a request body: JSON plus the NaN, Infinity and -Infinity tokens. Bad input is a 400. */
export function parseJson(text: string): unknown {
  if (text.trim() === '') throw badRequest('the request body is empty; expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (strictError) {
    const marked = markNonFiniteTokens(text);
    if (marked !== undefined) {
      try {
        return JSON.parse(marked, revive);
      } catch {
        // Report the error in the text as sent, not in the rewritten one.
      }
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
