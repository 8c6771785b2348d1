/** Durations as users type them on the command line: 90s, 20m, 1h30m, 1.5h, or plain seconds. */
import { KilnError } from '../errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds in `text`; `flag` names the option in the error. */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) {
    throw new KilnError('INVALID_ARGUMENT', `--${flag} expects a duration such as 90s, 20m or 1h30m, got '${text}'`);
  }
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
  if (!(ms > 0)) throw new KilnError('INVALID_ARGUMENT', `--${flag} must be longer than zero, got '${text}'`);
  return ms;
}
