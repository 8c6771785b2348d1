import { type FileHandle, open } from 'node:fs/promises';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { KilnError } from '../errors.js';
import { fileError, isGzip } from './files.js';

/**
 * Sequential reads from a file through an fs file handle, a chunk at a time, inflating it on the
 * way when it is gzipped, so a file larger than memory can be consumed record by record.
 */
export interface ByteStream {
  /** The next `count` bytes; fewer only at the end of the file. */
  read(count: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

const CHUNK_BYTES = 1 << 16;

async function* rawChunks(handle: FileHandle, path: string, what: string): AsyncGenerator<Uint8Array> {
  let position = 0;
  for (;;) {
    const buffer = new Uint8Array(CHUNK_BYTES);
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, position));
    } catch (cause) {
      throw fileError(path, what, cause);
    }
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

async function* inflate(compressed: AsyncIterable<Uint8Array>, path: string): AsyncGenerator<Uint8Array> {
  // The callback form of pipeline destroys every stage on failure, so an error surfaces in the loop.
  const inflated = pipeline(Readable.from(compressed), createGunzip(), () => {});
  try {
    for await (const chunk of inflated) yield chunk as Uint8Array;
  } catch (cause) {
    if (cause instanceof KilnError) throw cause;
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new KilnError('CORRUPT_FILE', `${path}: expected a complete gzip stream, found a damaged one (${reason})`, {
      cause,
    });
  }
}

class ChunkedByteStream implements ByteStream {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private ended = false;
  private closed = false;

  constructor(
    private readonly chunks: AsyncGenerator<Uint8Array>,
    private readonly handle: FileHandle,
  ) {}

  async read(count: number): Promise<Uint8Array> {
    while (this.pendingBytes < count && !this.ended) {
      const next = await this.chunks.next();
      if (next.done) {
        this.ended = true;
      } else {
        this.pending.push(next.value);
        this.pendingBytes += next.value.length;
      }
    }
    const size = Math.min(count, this.pendingBytes);
    const out = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const chunk = this.pending[0]!;
      const take = Math.min(chunk.length, size - filled);
      out.set(chunk.subarray(0, take), filled);
      filled += take;
      if (take === chunk.length) this.pending.shift();
      else this.pending[0] = chunk.subarray(take);
    }
    this.pendingBytes -= size;
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chunks.return(undefined);
    await this.handle.close();
  }
}

/** Opens `path` for sequential reading; `what` names the file's role in messages. */
export async function openByteStream(path: string, what: string): Promise<ByteStream> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    throw fileError(path, what, cause);
  }
  try {
    const probe = new Uint8Array(2);
    const { bytesRead } = await handle.read(probe, 0, 2, 0);
    const raw = rawChunks(handle, path, what);
    return new ChunkedByteStream(bytesRead === 2 && isGzip(probe) ? inflate(raw, path) : raw, handle);
  } catch (cause) {
    await handle.close();
    throw fileError(path, what, cause);
  }
}
