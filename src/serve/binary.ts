import { bytesPerElement } from '../graph/dtype.js';
import { allocate, type AnyTypedArray, type DType } from '../tensor.js';
import { badRequest } from './errors.js';
import { parseJson } from './json.js';
import { parseInferJson, type TensorJsonLayout } from './number-lists.js';

/*
 * Triton's binary tensor data extension (what tritonclient's HTTP client sends by default): the body is
 * a JSON inference header of `Inference-Header-Content-Length` bytes followed by the raw tensors
 * (little-endian, row-major, BOOL one byte each) in the order of the inputs marked with
 * `parameters.binary_data_size`. Replies use the same layout for outputs asked for in binary.
 */

export const HEADER_LENGTH = 'inference-header-content-length';
const BINARY = Symbol('kiln.binary');

/**
 * Parses a request body: plain JSON, or a JSON header plus binary tensors when the header length is
 * given; an empty body is undefined. `numberLists` (the inference routes) reads the tensors given as
 * lists of numbers, where that protocol puts them, into NumberLists (at most `maxElements` numbers).
 */
export function parseRequestBody(body: Buffer, headerLength: string | string[] | undefined, numberLists?: TensorJsonLayout, maxElements = Infinity): unknown {
  if (headerLength === undefined) {
    // Bodiless POSTs (tritonclient's repository calls send none) reach the routes as no body.
    // (Scanning bytes, not decoding the body twice; a non-ASCII byte may be Unicode white space.)
    const first = body.findIndex((c) => c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09);
    if (first < 0 || (body[first]! >= 0x80 && body.toString('utf8').trim() === '')) return undefined;
    return numberLists ? parseInferJson(body, numberLists, maxElements) : parseJson(body);
  }
  const text = Array.isArray(headerLength) ? headerLength[0]! : headerLength;
  const n = /^[0-9]{1,12}$/.test(text) ? Number(text) : NaN;
  if (!(n > 0 && n <= body.length)) {
    throw badRequest(`${HEADER_LENGTH} must be the byte length of the JSON header, between 1 and the body's ${body.length} bytes; found '${text}'`);
  }
  const parsed = parseJson(body.subarray(0, n));
  if (typeof parsed === 'object' && parsed !== null) Object.defineProperty(parsed, BINARY, { value: body.subarray(n), enumerable: false });
  return parsed;
}

/** The binary part of a parsed request body, if it had one. */
export function binaryPart(body: unknown): Buffer | undefined {
  return typeof body === 'object' && body !== null ? (body as { [BINARY]?: Buffer })[BINARY] : undefined;
}

/**
 * `size` elements from their little-endian bytes (exactly size × the element's bytes; BOOL one byte
 * each, any non-zero byte true), copied: a body's bytes are not aligned for the typed array.
 */
export function elementsFromBytes(dtype: DType, size: number, bytes: Uint8Array): AnyTypedArray {
  const out = allocate(dtype, size);
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  if (dtype === 'bool') for (let i = 0; i < size; i++) (out as Uint8Array)[i] = out[i] ? 1 : 0;
  return out;
}

/** Reads consecutive binary tensors out of a request's binary part. */
export class BinaryReader {
  private offset = 0;
  constructor(private readonly bytes: Buffer) {}

  read(dtype: DType, size: number, declared: unknown, what: string): AnyTypedArray {
    const expected = size * bytesPerElement(dtype);
    if (declared !== expected) throw badRequest(`${what}: binary_data_size is ${JSON.stringify(declared)}, its shape and datatype need ${expected} bytes`);
    if (this.offset + expected > this.bytes.length) {
      throw badRequest(`${what}: needs ${expected} bytes of binary data, only ${this.bytes.length - this.offset} are left in the body`);
    }
    const out = elementsFromBytes(dtype, size, this.bytes.subarray(this.offset, this.offset + expected));
    this.offset += expected;
    return out;
  }

  /** `count` BYTES elements in Triton's binary form (each a 4-byte little-endian length, then its bytes), `declared` bytes in all. */
  readBytes(count: number, declared: unknown, what: string): Buffer[] {
    if (typeof declared !== 'number' || !Number.isInteger(declared) || declared < 4 * count) throw badRequest(`${what}: binary_data_size is ${JSON.stringify(declared)}; ${count} BYTES elements need at least ${4 * count} bytes`);
    if (this.offset + declared > this.bytes.length) throw badRequest(`${what}: needs ${declared} bytes of binary data, only ${this.bytes.length - this.offset} are left in the body`);
    const end = this.offset + declared;
    const elements: Buffer[] = [];
    let at = this.offset;
    for (let i = 0; i < count; i++) {
      const length = at + 4 <= end ? this.bytes.readUInt32LE(at) : -1;
      if (length < 0 || at + 4 + length > end) throw badRequest(`${what}: BYTES element ${i} runs past the tensor's ${declared} bytes`);
      elements.push(this.bytes.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    if (at !== end) throw badRequest(`${what}: ${count} BYTES elements take ${at - this.offset} bytes, binary_data_size says ${declared}`);
    this.offset = end;
    return elements;
  }

  /** Fails when bytes are left over: the header and the binary part disagree. */
  finish(): void {
    if (this.offset !== this.bytes.length) throw badRequest(`the body has ${this.bytes.length} bytes of binary data but the inputs declare ${this.offset}`);
  }
}

/** A reply with binary outputs: the JSON header, then each tensor's bytes. */
export function binaryReply(header: string, tensors: AnyTypedArray[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(header, 'utf8');
  const parts = [json, ...tensors.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength))];
  return { body: Buffer.concat(parts), headerLength: json.length };
}
