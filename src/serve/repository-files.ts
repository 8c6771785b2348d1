import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KilnError } from '../errors.js';

/*
 * Reading a model repository's files (config.json, model.onnx) without ever reading through a link
 * that leads out of it. Checking a path and then reading it by name leaves a gap in which a directory
 * on the path can be swapped for a link; so the file is opened first, and what was opened must be the
 * very file (device and inode) that the path resolves to inside the repository.
 */

/** Whether `real` (a resolved path) lies inside the directory `root` (resolved too). */
export function isInside(root: string, real: string): boolean {
  return real.startsWith(root + path.sep);
}

/**
 * The bytes of `file`, which must resolve inside `root` both before and after it is opened. `shown`
 * names it in errors (its path inside the repository: clients see them, so a file-system error's own
 * message, which holds the absolute path, is replaced; its `code`, ENOENT say, is kept).
 */
export async function readInside(root: string, file: string, shown: string): Promise<Buffer> {
  try {
    return await readChecked(root, file, shown);
  } catch (err) {
    if (err instanceof KilnError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw Object.assign(new KilnError('IO_ERROR', `${shown} cannot be read (${code ?? 'error'})`), { errno: code });
  }
}

async function readChecked(root: string, file: string, shown: string): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const opened = await handle.stat();
    const real = await fs.realpath(file);
    const named = await fs.stat(real);
    if (!isInside(root, real) || named.dev !== opened.dev || named.ino !== opened.ino) {
      throw new KilnError('INVALID_ARGUMENT', `${shown} links to a file outside the model repository (or changed while being read); refusing to read it`);
    }
    if (!opened.isFile()) throw new KilnError('INVALID_ARGUMENT', `${shown} is not a regular file`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
