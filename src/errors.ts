/**
 * Every failure Kiln reports on purpose is a KilnError: a stable `code` a program can branch on,
 * and a message that names what was expected and what was found.
 */
export type KilnErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_SHAPE'
  | 'UNKNOWN_ACTIVATION'
  | 'UNKNOWN_LAYER'
  | 'UNSUPPORTED_OP'
  | 'NO_GRADIENT'
  | 'FILE_NOT_FOUND'
  | 'NOT_ONNX'
  | 'CORRUPT_FILE'
  | 'INVALID_DATA'
  | 'NOT_COMPILED'
  | 'NOT_TRAINABLE'
  | 'NAN_LOSS'
  | 'RUNTIME_ERROR'
  | 'IO_ERROR'
  | 'VERSION_MISMATCH'
  | 'UNSUPPORTED_PLATFORM';

/**
 * The error Kiln throws for anything it checks: bad arguments, shapes, files, data, and failed runs.
 * `code` is stable across versions; the message may be reworded.
 */
export class KilnError extends Error {
  /** What kind of failure this is, for programs to branch on. */
  readonly code: KilnErrorCode;
  constructor(code: KilnErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KilnError';
    this.code = code;
  }
}

/** Renders a shape the way messages show it everywhere: [null, 32, 32, 3]. */
export function formatShape(shape: readonly (number | string | null)[]): string {
  return `[${shape.map((d) => (d === null ? 'null' : String(d))).join(', ')}]`;
}
