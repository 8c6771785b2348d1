// Owns the binary message format between coordinator and clients: an 8-byte magic, a uint32 header
// length, a JSON header (model id, round, kind, ...) and a raw little-endian payload of 32-bit words
// (float32 weights, or uint32 masked fixed-point values). Weights travel as bytes, never as JSON
// numbers: a 10 MB model stays 10 MB on the wire and decodes without parsing.
import { endianness } from 'node:os';
import { KilnError } from '../../errors.js';
import type { ModelWeights } from '../weights.js';

/** The route prefix of the coordinator's HTTP API. */
export const FEDERATED_API = '/federated/v1';

const MAGIC = 'KILNFED1';
const PREFIX = MAGIC.length + 4;
const bigEndian = endianness() === 'BE';

/** The JSON header every message carries: which model, which round, what kind. */
export interface EnvelopeHeader {
  /** The federation's model id (a hash of the coordinator's starting model): updates for another model are refused. */
  modelId: string;
  /** The round the message belongs to. */
  round: number;
  /** What the message is: 'global' weights, a client 'update', a 'masked' input. */
  kind: string;
  /** More fields, by kind. */
  [field: string]: unknown;
}

/** A decoded message: its header and its payload words. */
export interface Envelope {
  /** The header. */
  header: EnvelopeHeader;
  /** The payload: 4-byte little-endian words (read as float32 or uint32 by kind). */
  payload: Uint8Array;
}

/** Encodes a header and a payload of 32-bit words. */
export function encodeEnvelope(header: EnvelopeHeader, payload: Float32Array | Uint32Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(PREFIX + json.length + payload.byteLength);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(json.length, MAGIC.length);
  json.copy(out, PREFIX);
  const words = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  words.copy(out, PREFIX + json.length);
  if (bigEndian) out.subarray(PREFIX + json.length).swap32();
  return out;
}

/** Decodes a message; anything malformed (magic, lengths, header) is an INVALID_DATA naming the problem. */
export function decodeEnvelope(bytes: Uint8Array, what: string): Envelope {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < PREFIX || buf.toString('latin1', 0, MAGIC.length) !== MAGIC) {
    throw new KilnError('INVALID_DATA', `${what}: not a Kiln federated message (expected magic ${MAGIC} and a header, got ${buf.length} bytes starting ${JSON.stringify(buf.toString('latin1', 0, Math.min(8, buf.length)))})`);
  }
  const headerLength = buf.readUInt32LE(MAGIC.length);
  if (PREFIX + headerLength > buf.length) throw new KilnError('INVALID_DATA', `${what}: the header claims ${headerLength} bytes, the message has ${buf.length - PREFIX}`);
  let header: EnvelopeHeader;
  try {
    header = JSON.parse(buf.toString('utf8', PREFIX, PREFIX + headerLength));
  } catch {
    throw new KilnError('INVALID_DATA', `${what}: the header is not JSON`);
  }
  if (typeof header !== 'object' || header === null || typeof header.modelId !== 'string' || !Number.isInteger(header.round) || typeof header.kind !== 'string') {
    throw new KilnError('INVALID_DATA', `${what}: the header needs a string modelId, an integer round and a string kind`);
  }
  const payload = Buffer.from(buf.subarray(PREFIX + headerLength));
  if (payload.length % 4 !== 0) throw new KilnError('INVALID_DATA', `${what}: the payload has ${payload.length} bytes, not a whole number of 4-byte words`);
  if (bigEndian) payload.swap32();
  return { header, payload };
}

/** The names and shapes weights travel with, so a receiver checks them before reading the values. */
export type WeightSpecs = { name: string; dims: number[] }[];

/** Weights as specs (for the header) and one flat float32 payload. */
export function packWeights(weights: ModelWeights): { specs: WeightSpecs; payload: Float32Array } {
  const total = weights.reduce((n, w) => n + w.data.length, 0);
  const payload = new Float32Array(total);
  let offset = 0;
  for (const w of weights) {
    payload.set(w.data, offset);
    offset += w.data.length;
  }
  return { specs: weights.map((w) => ({ name: w.name, dims: [...w.dims] })), payload };
}

/**
 * Weights back from specs and a float32 payload; the specs must be well-formed and account for the
 * payload exactly (the shapes against the model are checked by the receiver, weights.ts checkCompatible).
 */
export function unpackWeights(specs: unknown, payload: Uint8Array, what: string): ModelWeights {
  if (!Array.isArray(specs) || specs.some((s) => typeof s?.name !== 'string' || !Array.isArray(s.dims) || s.dims.some((d: unknown) => !Number.isInteger(d) || (d as number) < 0))) {
    throw new KilnError('INVALID_DATA', `${what}: the header's "weights" must list {name, dims} with whole, non-negative dimensions`);
  }
  const floats = new Float32Array(payload.buffer, payload.byteOffset, payload.byteLength / 4);
  const out: ModelWeights = [];
  let offset = 0;
  for (const s of specs as WeightSpecs) {
    const size = s.dims.reduce((a, b) => a * b, 1);
    if (offset + size > floats.length) break;
    out.push({ name: s.name, dims: [...s.dims], data: floats.slice(offset, offset + size) });
    offset += size;
  }
  const declared = (specs as WeightSpecs).reduce((n, s) => n + s.dims.reduce((a, b) => a * b, 1), 0);
  if (declared !== floats.length) throw new KilnError('INVALID_SHAPE', `${what}: the header declares ${declared} float32 values, the payload holds ${floats.length}`);
  return out;
}
