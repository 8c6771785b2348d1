import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KilnError } from '../../errors.js';

/*
 * Writing a deployment's files all or nothing: they go into a temporary directory beside the target,
 * which is renamed into place only once every file is written. The target must not exist or be an
 * empty directory — a deploy never mixes its files with, or overwrites, files already there — and a
 * failure leaves nothing behind.
 */

/** Files by path relative to the output directory ('/' separated). */
export type OutputFiles = Map<string, string | Uint8Array>;

async function checkTarget(out: string): Promise<boolean> {
  let entries: string[];
  try {
    const stat = await fs.stat(out);
    if (!stat.isDirectory()) throw new KilnError('INVALID_ARGUMENT', `--out '${out}' exists and is not a directory`);
    entries = await fs.readdir(out);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    if (err instanceof KilnError) throw err;
    throw new KilnError('IO_ERROR', `--out '${out}' cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (entries.length > 0) {
    throw new KilnError('INVALID_ARGUMENT', `--out '${out}' exists and is not empty (${entries.length} entries, e.g. '${entries.sort()[0]}'); give a new or empty directory`);
  }
  return true;
}

/** Writes `files` as the new directory `out`; returns the paths written. */
export async function writeOutputDirectory(out: string, files: OutputFiles): Promise<string[]> {
  const target = path.resolve(out);
  const existed = await checkTarget(target);
  const parent = path.dirname(target);
  await fs.mkdir(parent, { recursive: true });
  const staging = await fs.mkdtemp(path.join(parent, `.${path.basename(target)}.kiln-`));
  try {
    for (const [relative, content] of files) {
      const file = path.join(staging, ...relative.split('/'));
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, content);
    }
    // Checked again: something may have appeared in the target while the files were written.
    if (existed) {
      await checkTarget(target);
      await fs.rmdir(target);
    }
    await fs.rename(staging, target);
  } catch (err) {
    await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
    if (err instanceof KilnError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new KilnError('IO_ERROR', `could not write '${out}': ${e.code ?? ''} ${e.message}`.trim(), { cause: err });
  }
  return [...files.keys()].map((f) => path.join(target, ...f.split('/')));
}
