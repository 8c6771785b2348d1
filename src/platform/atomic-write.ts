import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KilnError } from '../errors.js';

/**
 * Writes a file so that readers see either the old content or the complete new one, never a torn
 * file: write a temporary file beside it, fsync, rename over the target, fsync the directory.
 */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(path.resolve(target));
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(tmp, 'wx');
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(tmp, target);
    try {
      const d = await fs.open(dir, 'r');
      await d.sync().finally(() => d.close());
    } catch {
      // Some file systems cannot fsync a directory; the rename itself is still atomic.
    }
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    throw new KilnError('IO_ERROR', `could not write '${target}': ${e.code ?? ''} ${e.message}`.trim(), { cause: err });
  }
}
