import { KilnError } from '../errors.js';
import { MODEL_METADATA_KEY } from '../model/sequential.js';
import { OnnxModel, QUANTIZED_OPS } from '../model/onnx-model.js';
import { parseModelKey } from '../model/encryption.js';
import { openModelBytes, readOnnxFile, refuseExternalData } from '../model/read-model.js';
import type { ModelProto, NodeProto } from '../graph/proto.js';
import { GraphModel, type GraphModelOptions } from './graph-model.js';
import { dimensionsOfData, notAtSizes, withFreeDimensions } from '../model/imported-graph.js';
import { trainedOutput } from '../model/trained-output.js';
import type { Tensor } from '../tensor.js';
import { Sequential } from './sequential.js';

/** Options of loadModel: GraphModel's options (name, seed, layout, scale, mean, std) and the key of an encrypted model. */
export interface LoadModelOptions extends GraphModelOptions {
  /** The key of an encrypted model (`kiln encrypt`): 32 bytes, or 64 hex digits / base64 text. Decrypted in memory only. */
  key?: Uint8Array | string;
}

/**
 * Loads an .onnx model as a model that trains, from a file (a path under Node, a URL in a browser,
 * where the platform fetches it) or from its bytes: a Kiln model (its layer configuration is in the
 * metadata) as a Sequential; any other ONNX model (a PyTorch or tf2onnx export) as a GraphModel over
 * its own graph (token ids and several inputs included). A model Kiln cannot feed data to (an input of
 * another type than float32, int64 or int32) or a quantized one comes back as an inference-only
 * OnnxModel, with the reason in `notTrainable`.
 */
export async function loadModel(source: string | URL | Uint8Array | ArrayBuffer, options: LoadModelOptions = {}): Promise<Sequential | GraphModel | OnnxModel> {
  const { key: keyText, ...graphOptions } = options;
  const key = keyText === undefined ? undefined : parseModelKey(keyText, 'the "key" option');
  const isFile = typeof source === 'string' || source instanceof URL;
  const file = isFile ? String(source) : '<bytes>';
  const { bytes, proto } = isFile ? await readOnnxFile(file, key) : await openModelBytes(new Uint8Array(source), file, key);
  if (!isFile) refuseExternalData(proto, file);
  return modelFromOnnx(bytes, proto, file, graphOptions);
}

/**
 * The sizes the data gives an imported file's free input dimensions (a Hugging Face export's sequence
 * length: model/imported-graph.ts dimensionsOfData); none for a Kiln layer model or a quantized file,
 * which have nothing to size.
 */
export function dimensionsFromData(proto: ModelProto, x: Tensor | Readonly<Record<string, Tensor>>, file: string): Record<string, number> {
  const { kilnModel, quantized } = whatFileIs(proto);
  return kilnModel || quantized ? {} : dimensionsOfData(proto, x, file);
}

/** `options` with the file's free input dimensions sized as the data `x` has them (dimensionsFromData), unless they give them. */
export function sizedByData(proto: ModelProto, options: GraphModelOptions, x: Tensor | Readonly<Record<string, Tensor>>, file: string): GraphModelOptions {
  return options.dimensions ? options : { ...options, dimensions: dimensionsFromData(proto, x, file) };
}

/** Whether a file is a Kiln layer model (its configuration in the metadata), and its first quantized node if it has one. */
function whatFileIs(proto: ModelProto): { kilnModel: boolean; quantized: NodeProto | undefined } {
  return {
    kilnModel: proto.metadataProps?.some((m) => m.key === MODEL_METADATA_KEY) ?? false,
    quantized: (proto.graph?.node ?? []).find((n) => QUANTIZED_OPS.has(n.opType ?? '')),
  };
}

/**
 * `loadModel` for a model already in memory (read and decoded: read-model.ts), such as one received
 * over the network; `file` names it in errors.
 */
export async function modelFromOnnx(bytes: Uint8Array, proto: ModelProto, file: string, options: GraphModelOptions = {}): Promise<Sequential | GraphModel | OnnxModel> {
  const dimensions = options.dimensions ?? {};
  const sized = Object.keys(dimensions).length > 0;
  // The output asked for is the caller's: a wrong name is an error, whatever the file is.
  if (options.output !== undefined) trainedOutput(proto, file, options.output);
  const { kilnModel, quantized } = whatFileIs(proto);
  if (sized && (kilnModel || quantized)) {
    const sizes = Object.entries(dimensions).map(([k, v]) => `${k}=${v}`).join(', ');
    throw new KilnError('INVALID_ARGUMENT', `'${file}' is ${kilnModel ? 'a Kiln layer model, whose input shape is fixed' : 'quantized, and runs at any size as it is'}: dimensions (${sizes}) size the free input dimensions of an imported model Kiln trains`);
  }
  if (kilnModel) return Sequential.fromProto(proto, file);
  if (quantized) {
    const model = new OnnxModel(bytes, proto);
    if (options.output !== undefined) model.chooseOutput(options.output);
    model.notTrainable = `it is quantized (node '${quantized.name}' is ${quantized.opType}): train the float model, then quantize it again`;
    return model;
  }
  // Sizes given to free dimensions are the caller's: a wrong name is an error, not a model that only runs.
  const atSizes = withFreeDimensions(proto, dimensions, file);
  let model: GraphModel;
  try {
    model = await GraphModel.open(atSizes, file, { name: options.name, seed: options.seed, output: options.output });
  } catch (err) {
    if (!(err instanceof KilnError) || !['INVALID_ARGUMENT', 'INVALID_SHAPE', 'UNSUPPORTED_OP'].includes(err.code)) throw err;
    // With sizes given, a graph that does not run at them (a position table shorter than the length) is the caller's to know.
    if (sized) throw notAtSizes(file, dimensions, err);
    // What the file is stops training (its inputs, opset, batch dimension): it can still run.
    const onnx = new OnnxModel(bytes, proto);
    if (options.output !== undefined) onnx.chooseOutput(options.output);
    onnx.notTrainable = err.message;
    return onnx;
  }
  // The caller's layout, scale and mean/std: their errors are the caller's, not the file's.
  model.setPreprocessing(options);
  return model;
}
