/*
 * What Kiln needs from the platform it runs on, and nothing more: a worker thread for ONNX Runtime,
 * the cores it may use, files, and where progress goes. Node (platform/node.ts) and the browser
 * (platform/browser.ts) each implement this; the library imports '#platform', which package.json's
 * "imports" resolves to node.js, or to browser.js under a bundler's "browser" condition. The rest of
 * the library is the same code on both.
 */
import type { ProgressStream } from '../text/progress.js';

/** The messages a runtime worker answers (runtime/protocol.ts), seen here only as values to carry. */
export type WorkerMessage = unknown;

/** A worker that runs the ONNX Runtime session host: Node's worker_threads Worker or a Web Worker. */
export interface RuntimeWorker {
  post(message: WorkerMessage, transfer: ArrayBuffer[]): void;
  /** Replies as the event loop delivers them. */
  onReply(handler: (message: WorkerMessage) => void): void;
  /** The worker itself failed (it did not start, or threw outside a request). */
  onError(handler: (error: Error) => void): void;
  /** Replies that have arrived, read at once where the platform can (Node); none elsewhere. */
  takeReplies(): WorkerMessage[];
  /** Whether the worker keeps the process alive while replies are due (Node); nothing elsewhere. */
  keepAlive(alive: boolean): void;
  terminate(): Promise<void>;
}

/** The error code readBeside gives a location outside the model's folder (a code of Kiln's own: no system error means it). */
export const OUTSIDE_FOLDER = 'KILN_OUTSIDE_FOLDER';

/** The platform's side of Kiln: both platform/node.ts and platform/browser.ts satisfy it. */
export interface Platform {
  /** 'node' or 'browser', for messages that differ (where a file comes from). */
  readonly name: 'node' | 'browser';
  startRuntimeWorker(): RuntimeWorker;
  /** Runs `cleanUp` when the process is about to exit (Node); the browser ends workers with the page. */
  beforeExit(cleanUp: () => void): void;
  /** Cores ONNX Runtime may use. */
  availableCores(): number;
  /**
   * A file's bytes (Node: a path; browser: a URL, fetched). A missing one fails with an error whose
   * `code` is 'ENOENT', a directory with 'EISDIR', as Node's own errors do, so callers map both alike.
   */
  readFile(file: string): Promise<Uint8Array>;
  /**
   * A file beside another (an ONNX model's external data, `location` relative to the model's folder),
   * read only when it lies inside that folder (Node: after resolving links). A missing one fails with
   * code 'ENOENT', a folder with 'EISDIR', one outside the folder with code OUTSIDE_FOLDER.
   */
  readBeside(file: string, location: string): Promise<Uint8Array>;
  /** Writes a file so readers see the old content or the whole new one (browser: see platform/browser.ts). */
  writeFileAtomic(target: string, data: Uint8Array | string): Promise<void>;
  /** Where fit() draws its progress when given no stream. */
  standardOutput(): ProgressStream;
}
