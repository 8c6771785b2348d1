import { platform } from '#platform';
import { KilnError } from '../errors.js';
import { decodeModel, encodeModel, type GraphProto, type ModelProto, type TensorProto } from '../graph/proto.js';
import { decryptModel, isEncryptedModel, missingKeyError } from './encryption.js';
import { OUTSIDE_FOLDER } from '../platform/platform.js';

/**
 * Reads and decodes an .onnx file, telling apart a missing file, a file that is not ONNX at all and a
 * truncated or corrupt one. An encrypted model (encryption.ts) is decrypted in memory with `key`.
 * Weights kept in files beside it (ONNX external data, as `onnx.save(..., save_as_external_data=True)`
 * and exporters of large models write them) are read in: the model comes back whole, in one message,
 * so ONNX Runtime and Kiln see the same graph wherever the process runs.
 */
export async function readOnnxFile(file: string, key?: Uint8Array): Promise<{ bytes: Uint8Array; proto: ModelProto }> {
  let bytes: Uint8Array;
  try {
    bytes = await platform.readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new KilnError('FILE_NOT_FOUND', `model file '${file}' does not exist`);
    if (e.code === 'EISDIR') throw new KilnError('NOT_ONNX', `'${file}' is a directory, expected an .onnx model file`);
    throw new KilnError('IO_ERROR', `could not read model file '${file}': ${e.message}`, { cause: err });
  }
  return withExternalData(await openModelBytes(bytes, file, key), file);
}

/** protobuf's limit for one message, which an ONNX model with its weights inlined must fit. */
const MESSAGE_LIMIT = 2 ** 31 - 1;

/**
 * A model read from `file`, with the external data of its tensors read in from beside that file (see
 * readOnnxFile); `shown` names it in errors (a model repository's relative path, say).
 */
export async function withExternalData(opened: { bytes: Uint8Array; proto: ModelProto }, file: string, shown = file): Promise<{ bytes: Uint8Array; proto: ModelProto }> {
  const inlined = await inlineExternalData(opened.proto, file, shown);
  if (inlined === 0) return opened;
  if (opened.bytes.length + inlined > MESSAGE_LIMIT) {
    throw new KilnError('UNSUPPORTED_OP', `'${shown}' with its ${inlined} bytes of external data does not fit one ONNX message (protobuf's limit is 2 GiB): Kiln reads models up to that size`);
  }
  return { bytes: encodeModel(opened.proto), proto: opened.proto };
}

/** Bytes per element of each ONNX element type that can hold weights. */
const ELEMENT_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

/**
 * Every tensor of the graph whose data lies outside the file: initializers and node attributes' values
 * (a Constant's), in the main graph and in every subgraph (If/Loop/Scan bodies), as onnx saves them.
 */
function externalTensors(proto: ModelProto): TensorProto[] {
  const external = (t: TensorProto | undefined): t is TensorProto => t !== undefined && (t.dataLocation === 1 || (t.externalData?.length ?? 0) > 0);
  const found: TensorProto[] = [];
  const walk = (graph: GraphProto | undefined) => {
    if (!graph) return;
    found.push(...(graph.initializer ?? []).filter(external));
    for (const n of graph.node ?? []) {
      for (const a of n.attribute ?? []) {
        found.push(...[a.t, ...(a.tensors ?? [])].filter(external));
        walk(a.g);
        for (const g of a.graphs ?? []) walk(g);
      }
    }
  };
  walk(proto.graph);
  return found;
}

/**
 * Bytes given without their file have no folder to read external data from (ONNX Runtime would look in
 * the working directory): such a model is refused, naming a tensor it lacks.
 */
export function refuseExternalData(proto: ModelProto, file: string): void {
  const first = externalTensors(proto)[0];
  if (first) throw new KilnError('INVALID_ARGUMENT', `${file}: tensor '${first.name}' keeps its data in an external file: load the model from its path, and Kiln reads that data from beside it`);
}

/**
 * Reads the external data of the model's tensors into them (raw_data), from files beside the model:
 * a location that leaves the model's folder (absolute, `..`, a link pointing out) is refused, as ONNX
 * Runtime refuses it. Returns how many bytes were read in (0: none were outside). Each tensor views
 * its part of the file's bytes (no copy), and the total is checked against protobuf's limit before
 * any copy is made.
 */
async function inlineExternalData(proto: ModelProto, model: string, shown: string): Promise<number> {
  const tensors = externalTensors(proto);
  if (tensors.length === 0) return 0;
  const files = new Map<string, Promise<Uint8Array>>();
  const read = (location: string, tensor: string) => {
    if (/^([/\\]|[a-zA-Z]:)/.test(location) || location.split(/[/\\]/).includes('..')) {
      throw new KilnError('INVALID_DATA', `'${shown}': tensor '${tensor}' keeps its data at '${location}', outside the model's folder; Kiln reads external data only from files beside the model`);
    }
    let bytes = files.get(location);
    if (!bytes) {
      bytes = platform.readBeside(model, location).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw new KilnError('FILE_NOT_FOUND', `'${shown}': the external data file '${location}' of tensor '${tensor}' does not exist beside the model`);
        if (err.code === OUTSIDE_FOLDER) throw new KilnError('INVALID_DATA', `'${shown}': tensor '${tensor}' keeps its data at '${location}', outside the model's folder (${err.message})`);
        if (err.code === 'EISDIR') throw new KilnError('INVALID_DATA', `'${shown}': tensor '${tensor}' keeps its data at '${location}', which is a folder`);
        throw new KilnError('IO_ERROR', `'${shown}': could not read the external data file '${location}': ${err.message}`, { cause: err });
      });
      files.set(location, bytes);
    }
    return bytes;
  };
  let total = 0;
  const parts: { tensor: TensorProto; data: Uint8Array; offset: number; length: number }[] = [];
  for (const t of tensors) {
    const entry = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entry.get('location');
    if (!location) throw new KilnError('CORRUPT_FILE', `'${shown}': tensor '${t.name}' is marked as stored outside the file but names no location`);
    const data = await read(location, t.name ?? '');
    const offset = Number(entry.get('offset') ?? 0);
    const count = (t.dims ?? []).reduce((a, b) => a * Number(b), 1);
    const expected = ELEMENT_BYTES[t.dataType ?? 0] === undefined ? undefined : count * ELEMENT_BYTES[t.dataType ?? 0]!;
    const length = entry.has('length') ? Number(entry.get('length')) : (expected ?? data.length - offset);
    if (!(Number.isInteger(offset) && offset >= 0 && Number.isInteger(length) && length >= 0) || offset + length > data.length) {
      throw new KilnError('CORRUPT_FILE', `'${shown}': tensor '${t.name}' reads bytes ${offset}–${offset + length} of '${location}', which holds ${data.length}: truncated or wrong`);
    }
    if (expected !== undefined && length !== expected) {
      throw new KilnError('CORRUPT_FILE', `'${shown}': tensor '${t.name}' has ${length} bytes in '${location}'; its shape [${(t.dims ?? []).join(', ')}] needs ${expected}`);
    }
    parts.push({ tensor: t, data, offset, length });
    total += length;
    if (total > MESSAGE_LIMIT) break; // withExternalData refuses it: no need to read on
  }
  if (total <= MESSAGE_LIMIT) {
    for (const { tensor, data, offset, length } of parts) {
      tensor.rawData = data.subarray(offset, offset + length);
      delete tensor.externalData;
      delete tensor.dataLocation;
    }
  }
  return total;
}

/** A model file's bytes, decrypted when they are an encrypted model, and decoded. */
export async function openModelBytes(stored: Uint8Array, file: string, key: Uint8Array | undefined): Promise<{ bytes: Uint8Array; proto: ModelProto }> {
  const bytes = isEncryptedModel(stored) ? await decryptModel(stored, key, file) : stored;
  return { bytes, proto: parseOnnx(bytes, file) };
}

/** Bytes as lowercase hex, for messages (no Buffer: this runs in browsers too). */
function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Every ONNX file starts with ModelProto field 1, ir_version, a varint: tag byte 0x08. */
const IR_VERSION_TAG = 0x08;

export function parseOnnx(bytes: Uint8Array, file = '<bytes>'): ModelProto {
  if (bytes.length === 0) throw new KilnError('NOT_ONNX', `'${file}' is empty, expected an ONNX model (protobuf ModelProto)`);
  // Encrypted bytes reach here only without their key: say that, not "not ONNX".
  if (isEncryptedModel(bytes)) throw missingKeyError(file);
  // A file that starts the way ONNX files do but does not decode whole was cut short or damaged
  // (an interrupted copy or download): say so, rather than that it is not ONNX at all.
  const looksLikeOnnx = bytes[0] === IR_VERSION_TAG;
  let proto: ModelProto;
  try {
    proto = decodeModel(bytes);
  } catch (err) {
    if (looksLikeOnnx) {
      throw new KilnError('CORRUPT_FILE', `'${file}' starts like an ONNX model but is truncated or corrupt: protobuf decoding of its ${bytes.length} bytes failed (${(err as Error).message})`, { cause: err });
    }
    throw new KilnError(
      'NOT_ONNX',
      `'${file}' is not a valid ONNX model: protobuf decoding failed (${(err as Error).message}); expected a ModelProto, found ${bytes.length} bytes starting ${hexBytes(bytes.subarray(0, 8))}`,
      { cause: err },
    );
  }
  if (!proto.graph && proto.irVersion && looksLikeOnnx) {
    throw new KilnError('CORRUPT_FILE', `'${file}' has an ONNX header (ir_version ${String(proto.irVersion)}) but no graph: truncated or corrupt (${bytes.length} bytes)`);
  }
  if (!proto.graph || !proto.irVersion) {
    throw new KilnError('NOT_ONNX', `'${file}' is not an ONNX model: it decodes but has ${proto.graph ? 'no ir_version' : 'no graph'}`);
  }
  if (!proto.opsetImport || proto.opsetImport.length === 0) {
    throw new KilnError('NOT_ONNX', `'${file}' is not a usable ONNX model: it imports no operator set`);
  }
  return proto;
}
