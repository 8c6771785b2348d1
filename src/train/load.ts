import { KilnError } from '../errors.js';
import { MODEL_METADATA_KEY } from '../model/sequential.js';
import { OnnxModel, QUANTIZED_OPS } from '../model/onnx-model.js';
import { parseOnnx, readOnnxFile } from '../model/read-model.js';
import { GraphModel, type GraphModelOptions } from './graph-model.js';
import { Sequential } from './sequential.js';

/**
 * Loads an .onnx model as a model that trains, from a file (a path under Node, a URL in a browser,
 * where the platform fetches it) or from its bytes: a Kiln model (its layer configuration is in the
 * metadata) as a Sequential; any other ONNX model (a PyTorch or tf2onnx export) as a GraphModel over
 * its own graph. A model Kiln cannot feed data to (several inputs, integer inputs) or a quantized one
 * comes back as an inference-only OnnxModel, with the reason in `notTrainable`.
 */
export async function loadModel(source: string | URL | Uint8Array | ArrayBuffer, options: GraphModelOptions = {}): Promise<Sequential | GraphModel | OnnxModel> {
  const file = typeof source === 'string' || source instanceof URL ? String(source) : '<bytes>';
  const { bytes, proto } = typeof source === 'string' || source instanceof URL ? await readOnnxFile(file) : { bytes: new Uint8Array(source), proto: parseOnnx(new Uint8Array(source), file) };
  if (proto.metadataProps?.some((m) => m.key === MODEL_METADATA_KEY)) return Sequential.fromProto(proto, file);
  const quantized = (proto.graph?.node ?? []).find((n) => QUANTIZED_OPS.has(n.opType ?? ''));
  if (quantized) {
    const model = new OnnxModel(bytes, proto);
    model.notTrainable = `it is quantized (node '${quantized.name}' is ${quantized.opType}): train the float model, then quantize it again`;
    return model;
  }
  let model: GraphModel;
  try {
    model = await GraphModel.open(proto, file, options);
  } catch (err) {
    // What the file is stops training (its inputs, opset, batch dimension): it can still run.
    if (!(err instanceof KilnError) || !['INVALID_ARGUMENT', 'INVALID_SHAPE', 'UNSUPPORTED_OP'].includes(err.code)) throw err;
    const onnx = new OnnxModel(bytes, proto);
    onnx.notTrainable = err.message;
    return onnx;
  }
  // The caller's layout and mean/std: their errors are the caller's, not the file's.
  model.setPreprocessing({ layout: options.layout, mean: options.mean, std: options.std });
  return model;
}
