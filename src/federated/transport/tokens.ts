// Owns the coordinator's client credentials: one bearer token per client, read from a tokens file
// (`client-id token` per line, or a bare token whose id is its line's place), and the lookup from an
// Authorization header to a client id that compares against every token in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { KilnError } from '../../errors.js';

/** Client ids by token; built by `parseTokens`. */
export interface ClientTokens {
  /** The client ids, in file order. */
  readonly ids: string[];
  /** The client an `Authorization` header names, or the reason it names none. */
  identify(authorization: string | undefined): { client: string } | { refusal: string };
}

const digest = (token: string): Buffer => createHash('sha256').update(token).digest();

/**
 * Reads a tokens file's text: one client per line, `id token` or just `token` (id `client-<line>`);
 * blank lines and lines starting with # are skipped. Tokens must be printable ASCII without spaces, at
 * least 16 characters, unique, as must ids.
 */
export function parseTokens(text: string, file: string): ClientTokens {
  const entries: { id: string; hash: Buffer }[] = [];
  const seenTokens = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    if (parts.length > 2) throw new KilnError('INVALID_DATA', `${file}:${i + 1}: expected 'client-id token' or 'token', got ${parts.length} fields`);
    const [id, token] = parts.length === 2 ? [parts[0]!, parts[1]!] : [`client-${entries.length + 1}`, parts[0]!];
    if (!/^[\x21-\x7e]{16,}$/.test(token)) throw new KilnError('INVALID_DATA', `${file}:${i + 1}: a token must be at least 16 printable ASCII characters without spaces (it travels in an Authorization header)`);
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) throw new KilnError('INVALID_DATA', `${file}:${i + 1}: client id '${id}' must be 1 to 64 letters, digits, '.', '_' or '-'`);
    if (entries.some((e) => e.id === id)) throw new KilnError('INVALID_DATA', `${file}:${i + 1}: client id '${id}' appears twice`);
    if (seenTokens.has(token)) throw new KilnError('INVALID_DATA', `${file}:${i + 1}: the token of '${id}' is also another client's`);
    seenTokens.add(token);
    entries.push({ id, hash: digest(token) });
  });
  if (entries.length === 0) throw new KilnError('INVALID_DATA', `${file}: no client tokens (one 'client-id token' per line)`);
  return {
    ids: entries.map((e) => e.id),
    identify(authorization) {
      const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
      if (!match) return { refusal: 'this route needs an Authorization: Bearer <token> header' };
      const given = digest(match[1]!.trim());
      // Every entry is compared, whichever matches, so the time taken says nothing about which one did.
      let found: string | undefined;
      for (const e of entries) if (timingSafeEqual(given, e.hash)) found ??= e.id;
      return found !== undefined ? { client: found } : { refusal: 'invalid bearer token' };
    },
  };
}

/** Reads and parses a tokens file. */
export async function readTokens(file: string): Promise<ClientTokens> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KilnError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_ERROR', `tokens file '${file}' cannot be read (${code ?? (err as Error).message})`);
  }
  return parseTokens(text, file);
}
