import { formatBytes, formatNumber, formatTable } from '../text/format.js';
import { formatShape } from '../errors.js';
import type { ModelProto } from '../graph/proto.js';
import type { Layer, LayerShape } from '../layers/index.js';
import { readOnnxFile } from '../model/read-model.js';
import { LayerStack, MODEL_METADATA_KEY, sequentialArgsFromProto, storedWeights, type SequentialArgs } from '../model/sequential.js';
import { TrainableModel, type CompileArgs } from './model.js';
import type { TrainingStepOptions } from './training-step.js';

/**
 * Keras' Sequential: a trainable model whose structure is a linear stack of Kiln layers. Saved files
 * carry the layer configuration, so `loadModel` gives back a Sequential that trains on.
 */
export class Sequential extends TrainableModel {
  protected readonly structure: LayerStack = new LayerStack(this);

  constructor(args: SequentialArgs = {}) {
    super(args, 'sequential');
    for (const layer of args.layers ?? []) this.add(layer);
  }

  /**
   * Kiln's layer models split a MaxPool gradient among tied maxima (GradientOptions.maxPoolTies 'all')
   * unless told otherwise: the exact tie-break made the tutorial and Fashion CNNs' training step
   * 1.21× and 1.15× slower (`node dist/bench/train/maxpool-ties.js`, 2026-12-06, 2-core VM), and
   * these models' speed is a measured target (bench/train). Imported graphs keep the exact rule: their
   * gradients must equal PyTorch's.
   */
  override compile(args: CompileArgs, stepOptions: TrainingStepOptions = {}): void {
    super.compile(args, { ...stepOptions, gradients: { maxPoolTies: 'all', ...stepOptions.gradients } });
  }

  /** The layers, in order. */
  get layers(): readonly Layer[] {
    return this.structure.layers;
  }

  /**
   * Appends a layer (named `conv2d_1`, `dense_2`, ... if it has no name); its weights are drawn from the seed.
   * A compiled model must be compiled again.
   */
  add(layer: Layer): this {
    this.structure.add(layer);
    this.invalidate();
    this.dropCompiled();
    return this;
  }

  /**
   * Whether the model ends in a softmax (probabilities, as Keras' from_logits=False expects) rather than
   * logits; Flatten and Dropout after it change nothing. GraphModel answers the same question.
   */
  get outputsProbabilities(): boolean {
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i]!;
      if (layer.className === 'Flatten' || layer.className === 'Dropout') continue;
      return layer.getConfig().activation === 'softmax';
    }
    return false;
  }

  /** Input shape followed by each layer's output shape (Keras convention, no batch dimension). */
  layerShapes(): LayerShape[] {
    return this.structure.layerShapes();
  }

  /** The serializable description of the model (layers and seed), stored in saved files. */
  toJSON(): ReturnType<LayerStack['toJSON']> {
    return this.structure.toJSON();
  }

  /** Prints (and returns) a Keras-like table of layers, output shapes and parameter counts. */
  summary(print: (line: string) => void = console.log): string {
    const shapes = this.layerShapes();
    const rows = this.layers.map((l, i) => [`${l.name} (${l.className})`, formatShape([null, ...shapes[i + 1]!]), l.countParams(shapes[i]!)]);
    const { total, trainable } = this.countParams();
    const text = [
      `Model: "${this.name}"`,
      formatTable(rows, { header: ['Layer (type)', 'Output Shape', 'Param #'] }),
      `Total params: ${formatNumber(total)} (${formatBytes(total * 4)})`,
      `Trainable params: ${formatNumber(trainable)}`,
      `Non-trainable params: ${formatNumber(total - trainable)}`,
    ].join('\n');
    print(text);
    return text;
  }

  /** Rebuilds a model from a decoded Kiln .onnx file. */
  static fromProto(proto: ModelProto, file = '<bytes>'): Sequential {
    const model = new Sequential(sequentialArgsFromProto(proto, file));
    model.restoreFromProto(proto, file);
    return model;
  }

  /** Loads metadata and weights from a Kiln-written proto into this (freshly built) model. */
  restoreFromProto(proto: ModelProto, file: string): void {
    for (const { key, value } of proto.metadataProps ?? []) {
      if (key && key !== MODEL_METADATA_KEY) this.metadata.set(key, value ?? '');
    }
    this.setWeights(storedWeights(proto, this.weights.keys(), file));
  }

  /** Reads a .onnx file Kiln saved from a Sequential (`loadModel` also takes any other ONNX model). */
  static async load(file: string): Promise<Sequential> {
    const { proto } = await readOnnxFile(file);
    return Sequential.fromProto(proto, file);
  }
}

/** A new Sequential model, Keras' `tf.keras.Sequential`: give layers now or `add()` them one by one. */
export function sequential(args: SequentialArgs | Layer[] = {}): Sequential {
  return new Sequential(Array.isArray(args) ? { layers: args } : args);
}
