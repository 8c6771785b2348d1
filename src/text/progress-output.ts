// Owns progressOutput, the CLI commands' stream for fit()'s progress bar. Apart from progress.ts
// because it is built on Node's streams, and the bar itself also runs in browsers.
import { Writable } from 'node:stream';

/**
 * Where a command's training progress goes: a terminal gets the live bar itself; anywhere else (a
 * pipe, a log file, the in-process runner the tests use) the finished lines go through the command's
 * own output function, in order with its other lines.
 */
export function progressOutput(out: (line: string) => void, terminal: NodeJS.WriteStream = process.stdout): NodeJS.WritableStream & { isTTY?: boolean } {
  if (terminal.isTTY) return terminal;
  let pending = '';
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, done) {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') out(line);
      done();
    },
  });
}
