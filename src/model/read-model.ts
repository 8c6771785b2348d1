import { platform } from '#platform';
import { KilnError } from '../errors.js';
import { decodeModel, type ModelProto } from '../graph/proto.js';
import { decryptModel, isEncryptedModel, missingKeyError } from './encryption.js';

/**
 * Reads and decodes an .onnx file, telling apart a missing file, a file that is not ONNX at all and a
 * truncated or corrupt one. An encrypted model (encryption.ts) is decrypted in memory with `key`.
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
  return openModelBytes(bytes, file, key);
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
