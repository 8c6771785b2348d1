import { parseJson } from './json.js';

/*
 * The fast path for KServe v2 JSON inference bodies. A batch-1 CIFAR image is 3,072 numbers, ~59 KB of
 * JSON as Python or JavaScript clients print doubles, and JSON.parse spent more time on that (boxing
 * every element, then copying into a typed array) than ONNX Runtime spent running the model on it.
 * So each flat `"data": [numbers]` list is read straight from the body's bytes into a Float64Array,
 * and only the small rest of the body goes through JSON.parse.
 *
 * Results are bit for bit those of JSON.parse, then conversion to the tensor's element type:
 * - A number whose digits make an integer below 2^53 and whose decimal exponent is within ±22 is read
 *   exactly (Clinger's fast path: such an integer times or divided by an exact power of ten is one
 *   correctly rounded operation).
 * - Others (17-digit doubles, what clients usually send) are read to within a few units in the last
 *   place of a double. For float32 tensors that is enough unless the value lies so near the midpoint
 *   between two float32 values that the error could change the rounding; such elements, and every
 *   one whose exact double is needed, are reparsed with Number() on their own text.
 * - Anything else (nested lists, NaN/Infinity tokens, malformed numbers) leaves that list to
 *   JSON.parse, and a body whose lists do not all end up at `inputs[i].data` is parsed whole by it.
 */

/** A flat list of JSON numbers read from a request body. */
export class NumberList {
  private exactValues: number[] | undefined;

  constructor(
    /** The elements: exact unless `approximate`, then each within 2^-50 (relative) or NaN. */
    readonly values: Float64Array,
    readonly approximate: boolean,
    /** The list's text: source[start, end), brackets included. */
    private readonly source: Buffer,
    private readonly start: number,
    private readonly end: number,
  ) {}

  get length(): number {
    return this.values.length;
  }

  /** The elements exactly as JSON.parse reads them. */
  toNumbers(): number[] {
    if (!this.approximate) return Array.from(this.values);
    // The list holds strict JSON numbers only, so its own text parses.
    this.exactValues ??= JSON.parse(this.source.toString('latin1', this.start, this.end)) as number[];
    return this.exactValues;
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
const PLACEHOLDER_IN_JSON = Buffer.from('\\u0000kiln-number-list:', 'latin1');
const DATA_KEY = Buffer.from('"data"', 'latin1');

const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Elements are gathered here (grown as needed) and copied out at the end of each list. */
let scratch = new Float64Array(4096);

/**
 * Reads the list of numbers whose `[` is at `open`. Returns the list and the index just past its `]`,
 * or undefined when it is not a non-empty flat list of strict JSON numbers.
 */
export function readNumberList(bytes: Buffer, open: number): { list: NumberList; end: number } | undefined {
  let i = open + 1;
  let count = 0;
  let approximate = false;
  // Reading past the end gives undefined, which fails every comparison below.
  let c = bytes[i]!;
  while (isSpace(c)) c = bytes[++i]!;
  if (c === 0x5d /* ] */) return undefined;
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
    if (count === scratch.length) {
      const grown = new Float64Array(2 * scratch.length);
      grown.set(scratch);
      scratch = grown;
    }
    scratch[count++] = negative ? -value : value;
    while (isSpace(c)) c = bytes[++i]!;
    if (c === 0x5d) return { list: new NumberList(scratch.slice(0, count), approximate, bytes, open, i + 1), end: i + 1 };
    if (c !== 0x2c /* , */) return undefined;
    c = bytes[++i]!;
    while (isSpace(c)) c = bytes[++i]!;
  }
}

/**
 * Parses a KServe v2 inference request body (JSON, with TF Serving's NaN/Infinity tokens): like
 * parseJson, except that each `inputs[i].data` that is a flat list of numbers becomes a NumberList.
 */
export function parseInferJson(bytes: Buffer): unknown {
  const lists: NumberList[] = [];
  const parts: string[] = [];
  // A body that already holds the placeholder text goes the slow way rather than be misread.
  if (bytes.indexOf(PLACEHOLDER_IN_JSON) < 0) {
    let last = 0;
    for (let at = bytes.indexOf(DATA_KEY); at >= 0; at = bytes.indexOf(DATA_KEY, at + DATA_KEY.length)) {
      let i = at + DATA_KEY.length;
      while (isSpace(bytes[i])) i++;
      if (bytes[i] !== 0x3a /* : */) continue;
      i++;
      while (isSpace(bytes[i])) i++;
      if (bytes[i] !== 0x5b /* [ */) continue;
      const read = readNumberList(bytes, i);
      if (!read) continue;
      // Cut at ASCII bytes, so every piece is whole UTF-8.
      parts.push(bytes.toString('utf8', last, i), JSON.stringify(PLACEHOLDER + lists.length));
      lists.push(read.list);
      last = read.end;
      at = read.end - DATA_KEY.length;
    }
    parts.push(bytes.toString('utf8', last));
  }
  if (lists.length === 0) return parseJson(parts.length ? parts[0]! : bytes.toString('utf8'));
  let body: unknown;
  try {
    body = JSON.parse(parts.join(''));
  } catch {
    return parseJson(bytes.toString('utf8'));
  }
  // Every list must come back exactly where the protocol puts tensor data; otherwise (a "data" key
  // elsewhere, say) the body is parsed again the ordinary way.
  let placed = 0;
  const inputs = (body as { inputs?: unknown } | null)?.inputs;
  if (Array.isArray(inputs)) {
    for (const input of inputs) {
      const data = (input as { data?: unknown } | null)?.data;
      if (typeof data === 'string' && data.startsWith(PLACEHOLDER)) {
        const k = Number(data.slice(PLACEHOLDER.length));
        (input as { data: unknown }).data = lists[k];
        placed++;
      }
    }
  }
  return placed === lists.length ? body : parseJson(bytes.toString('utf8'));
}
