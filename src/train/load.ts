import { MODEL_METADATA_KEY } from '../model/sequential.js';
import { OnnxModel } from '../model/onnx-model.js';
import { readOnnxFile } from '../model/read-model.js';
import { Sequential } from './sequential.js';

/**
 * Loads an .onnx file: a Kiln model (its layer configuration is in the metadata) comes back as a
 * Sequential that can be compiled and trained further; any other ONNX model as an inference-only
 * OnnxModel.
 */
export async function loadModel(file: string): Promise<Sequential | OnnxModel> {
  const { bytes, proto } = await readOnnxFile(file);
  const isKiln = proto.metadataProps?.some((m) => m.key === MODEL_METADATA_KEY);
  return isKiln ? Sequential.fromProto(proto, file) : new OnnxModel(bytes, proto);
}
