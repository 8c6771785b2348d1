/**
 * modelFromSpec: the trainable model a short description names — a preset, a Kiln or foreign .onnx file
 * (continue training it) or a JSON list of layers. `kiln train` and `kiln distill` take it as --model.
 */
import { existsSync, promises as fs } from 'node:fs';
import { KilnError } from '../errors.js';
import { layerFromConfig, preset, PRESETS, type SerializedLayer } from '../layers/index.js';
import { GraphModel, type GraphModelOptions } from './graph-model.js';
import { modelFromOnnx, sizedByData } from './load.js';
import { readOnnxFile } from '../model/read-model.js';
import type { Tensor } from '../tensor.js';
import type { TrainableModel } from './model.js';
import { Sequential, sequential } from './sequential.js';

/**
 * A model from a preset name, a Kiln .onnx file (continue training it) or a JSON list of layers; new
 * models draw their initial weights from `seed`. `imported` (layout, normalization) applies to ONNX
 * files other tools wrote; it is a function so that it is read, and its flags checked, only for them.
 */
export async function modelFromSpec(
  spec: string,
  inputShape: number[],
  numClasses: number,
  seed?: number,
  imported: () => GraphModelOptions = () => ({}),
  /** The data the model will train on: a file's free input dimensions (a sequence length) take its sizes, unless `imported` gives them. */
  data?: Tensor | Readonly<Record<string, Tensor>>,
): Promise<TrainableModel> {
  if (PRESETS[spec]) return sequential({ layers: preset(spec, inputShape, numClasses), seed });
  if (!existsSync(spec)) throw new KilnError('FILE_NOT_FOUND', `--model '${spec}' is neither a preset (${Object.keys(PRESETS).join(', ')}) nor an existing file`);
  if (spec.endsWith('.json')) {
    let layers: SerializedLayer[];
    try {
      const parsed = JSON.parse(await fs.readFile(spec, 'utf8'));
      layers = Array.isArray(parsed) ? parsed : parsed?.layers;
    } catch (err) {
      throw new KilnError('INVALID_DATA', `model description '${spec}' is not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(layers)) throw new KilnError('INVALID_DATA', `model description '${spec}' must be a list of layers or {"layers": [...]}`);
    return sequential({ layers: layers.map((l, i) => layerFromConfig(l, `${spec} layer ${i}`)), seed });
  }
  const options = imported();
  const { bytes, proto } = await readOnnxFile(spec);
  const model = await modelFromOnnx(bytes, proto, spec, data ? sizedByData(proto, options, data, spec) : options);
  if (model instanceof Sequential || model instanceof GraphModel) return model;
  throw new KilnError('NOT_TRAINABLE', `'${spec}' can be run, not trained: ${model.notTrainable ?? 'Kiln cannot feed it data'}`);
}
