import { randomMark } from './random-mark.js';
import { MAX_RANK, nest } from './datatypes.js';
import { badRequest } from './errors.js';
import { parseJson } from './json.js';

/*
 * The fast path for JSON inference bodies (KServe v2 and TF Serving). A batch-1 CIFAR image is 3,072
 * numbers, ~59 KB of JSON as Python or JavaScript clients print doubles, and JSON.parse spent more time
 * on that (boxing every element, then copying into a typed array) than ONNX Runtime spent running the
 * model on it.
 * So each tensor given as a list of numbers — flat or regularly nested: KServe v2's `inputs[i].data`,
 * TF Serving's `instances` and `inputs` — is read straight from the body's bytes into a Float64Array
 * with its nesting as a shape, and only the small rest of the body goes through JSON.parse.
 *
 * Results are bit for bit those of JSON.parse, then conversion to the tensor's element type:
 * - A number whose digits make an integer below 2^53 and whose decimal exponent is within ±22 is read
 *   exactly (Clinger's fast path: such an integer times or divided by an exact power of ten is one
 *   correctly rounded operation).
 * - Others (17-digit doubles, what clients usually send) are read to within a few units in the last
 *   place of a double. For float32 tensors that is enough unless the value lies so near the midpoint
 *   between two float32 values that the error could change the rounding; such elements, and all of
 *   them where exact doubles are needed, take JSON.parse's values of the list's own text (parsed
 *   once per list).
 * - Anything else (ragged nesting, NaN/Infinity tokens, objects, malformed numbers) leaves that
 *   value to JSON.parse, and a body whose lists do not all end up where the protocol puts tensors is
 *   parsed whole by it.
 */

/** A list of JSON numbers, flat or regularly nested, read from a request body. */
export class NumberList {
  private exactValues: number[] | undefined;

  constructor(
    /** The elements, row-major: exact unless `approximate`, then each within 2^-50 (relative) or NaN. */
    readonly values: Float64Array,
    /** The nesting: [n] for a flat list of n numbers, [2, 3] for [[a, b, c], [d, e, f]]. */
    readonly shape: readonly number[],
    readonly approximate: boolean,
    /** The list's text: source[start, end), brackets included. */
    private readonly source: Buffer,
    private readonly start: number,
    private readonly end: number,
  ) {}

  get length(): number {
    return this.values.length;
  }

  /** The elements, row-major, exactly as JSON.parse reads them. */
  toNumbers(): number[] {
    if (!this.approximate) return Array.from(this.values);
    // The list holds strict JSON numbers only, so its own text parses.
    this.exactValues ??= (JSON.parse(this.source.toString('latin1', this.start, this.end)) as unknown[]).flat(this.shape.length) as number[];
    return this.exactValues;
  }

  /** The list as JSON.parse gives it: nested arrays of numbers. */
  toJson(): unknown[] {
    return nest(this.toNumbers(), this.shape) as unknown[];
  }

  /** The elements as float32, exactly as Math.fround(JSON.parse(...)) gives them. */
  toFloat32(out: Float32Array): Float32Array {
    const values = this.values;
    out.set(values);
    if (!this.approximate) return out;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      // The true double is within 2^-50 of v. Where both ends of that interval round to the same
      // float32, so does it; otherwise (or for NaN: not computed) read the element exactly.
      if (Math.fround(v * (1 - 2 ** -50)) !== Math.fround(v * (1 + 2 ** -50))) out[i] = this.toNumbers()[i]!;
    }
    return out;
  }
}

const POWERS_OF_TEN = Float64Array.from({ length: 23 }, (_, k) => 10 ** k);
const EXACT_LIMIT = 2 ** 53;
const PLACEHOLDER = '\u0000kiln-number-list:';

const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Elements are gathered here (grown as needed) and copied out at the end of each list. */
const SCRATCH_SIZE = 4096;
let scratch = new Float64Array(SCRATCH_SIZE);
/** Past this many elements (8 MiB) the grown scratch is dropped after each body, so one huge request does not hold memory for good. */
const SCRATCH_KEPT = 1 << 20;

/** Bytes the scratch buffer holds now (for tests: it must shrink back after a huge body). */
export function numberListScratchBytes(): number {
  return scratch.byteLength;
}

/**
 * Reads the list whose `[` is at `open`: numbers, or lists nested to the same depth and length
 * throughout. Returns it and the index just past its `]`, or undefined when it is anything else
 * (empty, ragged, or holding other values).
 */
export function readNumberList(bytes: Buffer, open: number, maxCount = Infinity): { list: NumberList; end: number } | undefined {
  let i = open;
  let count = 0;
  let approximate = false;
  // The depth is that of the first element; every other one must sit as deep.
  let rank = 0;
  // Reading past the end gives undefined, which fails every comparison below.
  let c = bytes[i]!;
  while (c === 0x5b /* [ */) {
    // Deeper than any tensor a request may describe: left to the ordinary path and its message.
    if (++rank > MAX_RANK) return undefined;
    c = bytes[++i]!;
    while (isSpace(c)) c = bytes[++i]!;
  }
  const shape: number[] = new Array<number>(rank).fill(-1);
  const counts: number[] = new Array<number>(rank).fill(0);
  let level = rank - 1;
  for (;;) {
    const negative = c === 0x2d; /* - */
    if (negative) c = bytes[++i]!;
    if (!(c >= 0x30 && c <= 0x39)) return undefined;
    let mantissa = 0;
    let exponent = 0;
    let digits = 0;
    // JSON: no leading zeros ("0" alone or before the point).
    if (c === 0x30) {
      c = bytes[++i]!;
      if (c >= 0x30 && c <= 0x39) return undefined;
    } else {
      while (c >= 0x30 && c <= 0x39) {
        mantissa = mantissa * 10 + (c - 0x30);
        digits++;
        c = bytes[++i]!;
      }
    }
    if (c === 0x2e /* . */) {
      c = bytes[++i]!;
      if (!(c >= 0x30 && c <= 0x39)) return undefined;
      while (c >= 0x30 && c <= 0x39) {
        mantissa = mantissa * 10 + (c - 0x30);
        // Zeros before the first significant digit leave the mantissa exact.
        if (mantissa !== 0) digits++;
        exponent--;
        c = bytes[++i]!;
      }
    }
    if (c === 0x65 || c === 0x45 /* e E */) {
      c = bytes[++i]!;
      let sign = 1;
      if (c === 0x2d || c === 0x2b) {
        if (c === 0x2d) sign = -1;
        c = bytes[++i]!;
      }
      if (!(c >= 0x30 && c <= 0x39)) return undefined;
      let e = 0;
      while (c >= 0x30 && c <= 0x39) {
        // Past 10^6 the value is 0 or Infinity anyway; the exact reading settles it.
        if (e < 1e6) e = e * 10 + (c - 0x30);
        c = bytes[++i]!;
      }
      exponent += sign * e;
    }
    // Exact below 2^53 (Clinger). Above it each further digit may round: at most 19 digits keep the
    // error within 5 units in the last place, inside toFloat32's 2^-50 allowance. Otherwise NaN.
    let value = NaN;
    if (exponent >= -22 && exponent <= 22 && digits <= 19) value = exponent < 0 ? mantissa / POWERS_OF_TEN[-exponent]! : mantissa * POWERS_OF_TEN[exponent]!;
    if (!(mantissa < EXACT_LIMIT) || value !== value) approximate = true;
    if (count === maxCount) throw badRequest(`the request's tensor lists hold more than the ${maxCount} numbers that fit in this server's limit of elements per request`);
    if (count === scratch.length) {
      const grown = new Float64Array(2 * scratch.length);
      grown.set(scratch);
      scratch = grown;
    }
    scratch[count++] = negative ? -value : value;
    counts[level]!++;
    while (isSpace(c)) c = bytes[++i]!;
    // Close the lists that end here, each as long as the first of its depth.
    while (c === 0x5d /* ] */) {
      if (shape[level] === -1) shape[level] = counts[level]!;
      else if (counts[level] !== shape[level]) return undefined;
      counts[level] = 0;
      if (--level < 0) return { list: new NumberList(scratch.slice(0, count), shape, approximate, bytes, open, i + 1), end: i + 1 };
      counts[level]!++;
      c = bytes[++i]!;
      while (isSpace(c)) c = bytes[++i]!;
    }
    if (c !== 0x2c /* , */) return undefined;
    c = bytes[++i]!;
    while (isSpace(c)) c = bytes[++i]!;
    // Open the lists that start here, down to the numbers' depth.
    while (c === 0x5b) {
      if (++level >= rank) return undefined;
      c = bytes[++i]!;
      while (isSpace(c)) c = bytes[++i]!;
    }
    if (level !== rank - 1) return undefined;
  }
}

/** Where each protocol puts tensors given as JSON lists. */
export type TensorJsonLayout = 'kserve' | 'tf-serving';

const KEYS: Record<TensorJsonLayout, Buffer[]> = {
  kserve: [Buffer.from('"data"', 'latin1')],
  'tf-serving': [Buffer.from('"instances"', 'latin1'), Buffer.from('"inputs"', 'latin1')],
};

/** Puts each placeholder found where `layout` puts tensors back as its list; returns how many. */
function placeLists(body: unknown, layout: TensorJsonLayout, placeholder: string, lists: readonly NumberList[]): number {
  const listAt = (v: unknown) => (typeof v === 'string' && v.startsWith(placeholder) ? lists[Number(v.slice(placeholder.length))] : undefined);
  if (typeof body !== 'object' || body === null) return 0;
  let placed = 0;
  if (layout === 'kserve') {
    const inputs = (body as { inputs?: unknown }).inputs;
    if (!Array.isArray(inputs)) return 0;
    for (const input of inputs) {
      const list = listAt((input as { data?: unknown } | null)?.data);
      if (list) {
        (input as { data: unknown }).data = list;
        placed++;
      }
    }
    return placed;
  }
  for (const key of ['instances', 'inputs'] as const) {
    const list = listAt((body as Record<string, unknown>)[key]);
    if (list) {
      (body as Record<string, unknown>)[key] = list;
      placed++;
    }
  }
  return placed;
}

/**
 * Parses an inference request body (JSON, with TF Serving's NaN/Infinity tokens) as parseJson does,
 * except that each tensor `layout` puts in a list of numbers (KServe v2: `inputs[i].data`; TF
 * Serving: `instances`, `inputs`) becomes a NumberList. Lists holding more than `maxElements`
 * numbers in all are a 400 as soon as the reading passes that count, before more is allocated.
 */
export function parseInferJson(bytes: Buffer, layout: TensorJsonLayout = 'kserve', maxElements = Infinity): unknown {
  try {
    return readLists(bytes, layout, maxElements);
  } finally {
    if (scratch.length > SCRATCH_KEPT) scratch = new Float64Array(SCRATCH_SIZE);
  }
}

function readLists(bytes: Buffer, layout: TensorJsonLayout, maxElements: number): unknown {
  const lists: NumberList[] = [];
  const parts: string[] = [];
  // Each body's placeholders carry a fresh random part: a string the client wrote can never pass for one.
  const placeholder = `${PLACEHOLDER}${randomMark(8, 'hex')}:`;
  // Candidate lists in body order: a value after one of the layout's keys that opens with '['.
  const found: { open: number }[] = [];
  for (const key of KEYS[layout]) {
    for (let at = bytes.indexOf(key); at >= 0; at = bytes.indexOf(key, at + key.length)) {
      let i = at + key.length;
      while (isSpace(bytes[i])) i++;
      if (bytes[i] !== 0x3a /* : */) continue;
      i++;
      while (isSpace(bytes[i])) i++;
      if (bytes[i] === 0x5b /* [ */) found.push({ open: i });
    }
  }
  found.sort((a, b) => a.open - b.open);
  let last = 0;
  let counted = 0;
  for (const { open } of found) {
    if (open < last) continue; // inside a list already read
    const read = readNumberList(bytes, open, maxElements - counted);
    if (!read) continue;
    counted += read.list.length;
    // Cut at ASCII bytes, so every piece is whole UTF-8.
    parts.push(bytes.toString('utf8', last, open), JSON.stringify(placeholder + lists.length));
    lists.push(read.list);
    last = read.end;
  }
  if (lists.length === 0) return parseJson(bytes);
  parts.push(bytes.toString('utf8', last));
  let body: unknown;
  try {
    body = JSON.parse(parts.join(''));
  } catch {
    return parseJson(bytes);
  }
  // Every list must come back exactly where the protocol puts tensors; otherwise (a "data" key
  // elsewhere, say) the body is parsed again the ordinary way.
  return placeLists(body, layout, placeholder, lists) === lists.length ? body : parseJson(bytes);
}
