import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { fileError } from './files.js';

export interface FileDigest {
  bytes: number;
  sha256: string;
  md5: string;
}

/** SHA-256 and MD5 of a file in one streaming pass, so a file larger than memory can be checked. */
export async function digestFile(path: string, what = 'file'): Promise<FileDigest> {
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      sha256.update(chunk);
      md5.update(chunk);
      bytes += chunk.length;
    }
  } catch (cause) {
    throw fileError(path, what, cause);
  }
  return { bytes, sha256: sha256.digest('hex'), md5: md5.digest('hex') };
}
