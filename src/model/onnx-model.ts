import { KilnError, formatShape } from '../errors.js';
import { ONNX_TYPE_NAMES } from '../graph/dtype.js';
import { dataInputs, type ModelProto, type ValueInfoProto } from '../graph/proto.js';
import { sharedRuntime, type Runtime } from '../runtime/runtime.js';
import type { SessionInfo } from '../runtime/protocol.js';
import { Tensor, concatRows } from '../tensor.js';
import { parseModelKey } from './encryption.js';
import { readOnnxFile, refuseExternalData } from './read-model.js';
import type { Preprocessing } from './imported-graph.js';
import { checkFileInputs, declaredPreprocessing } from './input-adapter.js';
import { examplesIn, inputsNamed, sliceInputs, type ModelInputs } from './input-rows.js';
import { idOutOfRange, idTables, sharedDimensionMismatch, type IdTable } from './input-values.js';
import { rescalingAtInput, type InputRescaling } from './input-rescaling.js';
import { trainedOutput } from './trained-output.js';

/** One input or output of an ONNX graph. */
export interface TensorDescription {
  /** Its name in the graph (what `run()` feeds and returns). */
  name: string;
  /** ONNX element type ('float32', 'int64', ...). */
  dtype: string;
  /** Sizes, symbolic names, or null for unknown dimensions. */
  shape: (number | string | null)[] | null;
  /** For an input of token ids: the embedding table they index (ids must be in [0, rows)). */
  ids?: IdTable;
}

/** What `kiln info` shows of any ONNX model, Kiln-made or not. */
export interface ModelDescription {
  /** The tool that wrote the file, with its version ('pytorch 1.13.1', 'kiln 0.1.0'). */
  producer: string;
  /** The ONNX IR version of the file. */
  irVersion: number;
  /** The operator sets the graph imports. */
  opsets: {
    /** 'ai.onnx' for the standard operators, or a custom domain such as 'com.microsoft'. */
    domain: string;
    /** The opset version. */
    version: number;
  }[];
  /** The graph's data inputs (initializers listed as inputs by older exporters are left out). */
  inputs: TensorDescription[];
  /** The graph's outputs. */
  outputs: TensorDescription[];
  /** Node count per op type. */
  ops: Record<string, number>;
  /**
   * The node that rescales the image input itself (Keras' Rescaling layer: ×1/255), where there is one:
   * the model takes raw 0–255 pixels, and Kiln feeds it so unless a scale is declared.
   */
  inputRescaling?: InputRescaling;
  /** Elements in initializers (weights and constants). */
  parameters: number;
  /** Every initializer (weights and constants). */
  initializers: {
    /** Its name in the graph. */
    name: string;
    /** ONNX element type ('float32', 'int64', 'int8', ...). */
    dtype: string;
    /** Its dimensions. */
    shape: number[];
    /** Number of elements. */
    size: number;
    /** How many of them are exactly zero (the sparsity pruning leaves). */
    zeros: number;
  }[];
  /** The file's metadata_props (Kiln stores its model configuration, training settings and history here). */
  metadata: Record<string, string>;
  /** Size of the file in bytes. */
  bytes: number;
}

/** Ops whose presence means a graph is quantized already (quantize refuses it again; loadModel does not train it). */
export const QUANTIZED_OPS = new Set([
  'QuantizeLinear',
  'DequantizeLinear',
  'DynamicQuantizeLinear',
  'QLinearConv',
  'QLinearMatMul',
  'MatMulInteger',
  'ConvInteger',
  'QGemm',
  'QLinearAdd',
  'QLinearMul',
  'QLinearGlobalAveragePool',
  'QLinearAveragePool',
  'QLinearConcat',
  'DynamicQuantizeMatMul',
  'MatMulIntegerToFloat',
]);

function describeValue(v: ValueInfoProto): TensorDescription {
  const t = v.type?.tensorType;
  return {
    name: v.name ?? '',
    dtype: t ? (ONNX_TYPE_NAMES[t.elemType ?? 0] ?? `type ${t.elemType}`) : 'non-tensor',
    shape: t?.shape ? (t.shape.dim ?? []).map((d) => (d.dimValue !== undefined ? Number(d.dimValue) : (d.dimParam ?? null))) : null,
  };
}

/** Zero elements of an initializer, counted from raw bytes without decoding it (for sparsity). */
function countZeros(raw: Uint8Array | undefined, elemSize: number, floats: number[] | undefined): number {
  if (floats && floats.length) return floats.filter((v) => v === 0).length;
  if (!raw || elemSize === 0) return 0;
  let zeros = 0;
  outer: for (let i = 0; i + elemSize <= raw.length; i += elemSize) {
    for (let b = 0; b < elemSize; b++) {
      // -0.0 has only the sign bit set and is still zero.
      const byte = raw[i + b]!;
      if (byte !== 0 && !(b === elemSize - 1 && byte === 0x80)) continue outer;
    }
    zeros++;
  }
  return zeros;
}

const ELEM_SIZE: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

function rescalingField(proto: ModelProto): { inputRescaling?: InputRescaling } {
  const inputRescaling = rescalingAtInput(proto);
  return inputRescaling ? { inputRescaling } : {};
}

function withIds(d: TensorDescription, tables: ReadonlyMap<string, IdTable>): TensorDescription {
  const ids = tables.get(d.name);
  return ids ? { ...d, ids } : d;
}

/** What `kiln info` shows for any ONNX model, Kiln-made or not. */
export function describeModel(proto: ModelProto, bytes: number): ModelDescription {
  const graph = proto.graph ?? {};
  const tables = idTables(proto);
  const ops: Record<string, number> = {};
  for (const n of graph.node ?? []) {
    const key = n.domain ? `${n.domain}.${n.opType}` : (n.opType ?? '?');
    ops[key] = (ops[key] ?? 0) + 1;
  }
  const initializers = (graph.initializer ?? []).map((t) => {
    const shape = (t.dims ?? []).map(Number);
    const size = shape.reduce((a, b) => a * b, 1);
    return {
      name: t.name ?? '',
      dtype: ONNX_TYPE_NAMES[t.dataType ?? 0] ?? `type ${t.dataType}`,
      shape,
      size,
      zeros: countZeros(t.rawData, ELEM_SIZE[t.dataType ?? 0] ?? 0, t.floatData),
    };
  });
  return {
    producer: [proto.producerName, proto.producerVersion].filter(Boolean).join(' ') || 'unknown',
    irVersion: Number(proto.irVersion ?? 0),
    opsets: (proto.opsetImport ?? []).map((o) => ({ domain: o.domain || 'ai.onnx', version: Number(o.version ?? 0) })),
    inputs: dataInputs(graph).map((v) => withIds(describeValue(v), tables)),
    outputs: (graph.output ?? []).map(describeValue),
    ops,
    ...rescalingField(proto),
    parameters: initializers.reduce((n, t) => n + t.size, 0),
    initializers,
    metadata: Object.fromEntries((proto.metadataProps ?? []).map((m) => [m.key ?? '', m.value ?? ''])),
    bytes,
  };
}

/**
 * Any ONNX model, including ones Kiln did not write (a PyTorch export, say): inspect it and run it.
 * Inference only: without Kiln's layer configuration there is nothing to train.
 */
export class OnnxModel {
  /** What the file holds: inputs, outputs, operators, parameters (`describeModel`). */
  readonly description: ModelDescription;
  /** Why Kiln cannot train this model (set by loadModel when it tried). */
  notTrainable: string | undefined;
  /** The output chosen by the caller (loadModel's `output`), over the one the file records. */
  private chosenOutput: string | undefined;
  private session: SessionInfo | undefined;

  constructor(
    /** The .onnx file's bytes. */
    readonly bytes: Uint8Array,
    /** The decoded ONNX ModelProto (field names as in onnx.proto, camelCase). */
    readonly proto: ModelProto,
    private readonly runtime: Runtime = sharedRuntime(),
  ) {
    // Bytes alone have no folder to read external data from: refused with that reason, not ONNX Runtime's.
    refuseExternalData(proto, 'the model');
    this.description = describeModel(proto, bytes.length);
  }

  /** Reads an .onnx file; an encrypted one (`kiln encrypt`) is decrypted in memory with `key`. */
  static async load(file: string, options: { key?: Uint8Array | string } = {}): Promise<OnnxModel> {
    const { bytes, proto } = await readOnnxFile(file, options.key === undefined ? undefined : parseModelKey(options.key, 'the "key" option'));
    return new OnnxModel(bytes, proto);
  }

  /**
   * The input preprocessing the file declares (layout, scale, mean/std: `kiln train --layout/--scale/--mean/--std`);
   * scale 1 (raw pixels) for a model that rescales its own input and declares no scale.
   */
  get preprocessing(): Preprocessing {
    return declaredPreprocessing(this.proto);
  }

  /** The graph's data inputs. */
  get inputs(): TensorDescription[] {
    return this.description.inputs;
  }

  /** The graph's outputs. */
  get outputs(): TensorDescription[] {
    return this.description.outputs;
  }

  /** The output predict returns and a classifier's scores are read from: the one a Kiln-saved file records, else the first. */
  get primaryOutput(): string {
    return this.chosenOutput ?? trainedOutput(this.proto, 'the model');
  }

  /** Makes `output` (one of the graph's) the one predict returns and scores are read from. */
  chooseOutput(output: string): void {
    this.chosenOutput = trainedOutput(this.proto, 'the model', output);
  }

  /** Runs the model with named inputs; returns every output by name. */
  async run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    for (const input of this.inputs) {
      const t = feeds[input.name];
      if (!t) throw new KilnError('INVALID_ARGUMENT', `model input '${input.name}' was not given (inputs: ${this.inputs.map((i) => i.name).join(', ')})`);
      if (input.shape && (t.rank !== input.shape.length || input.shape.some((d, i) => typeof d === 'number' && d !== t.shape[i]))) {
        throw new KilnError('INVALID_SHAPE', `input '${input.name}' must have shape ${formatShape(input.shape)}, got ${formatShape(t.shape)}`);
      }
      const bad = input.ids && t.dtype === input.dtype ? idOutOfRange(t, input.ids, `input '${input.name}'`) : undefined;
      if (bad) throw bad;
    }
    const mismatch = sharedDimensionMismatch(new Map(this.inputs.map((i) => [i.name, i.shape])), feeds, (name) => `input '${name}'`);
    if (mismatch) throw mismatch;
    this.session ??= await this.runtime.load(this.bytes);
    return this.runtime.run(this.session, feeds);
  }

  /**
   * The first output for x, in one run or, with `batchSize`, in runs of that many examples (memory
   * stays flat over a large x), their outputs concatenated. x is a tensor for a model of one input, or
   * tensors by input name for a model of several (token ids and an attention mask), as `run` takes them.
   */
  async predict(
    x: ModelInputs,
    options: {
      /** Examples per run (default: all of x in one). */
      batchSize?: number;
    } = {},
  ): Promise<Tensor> {
    checkFileInputs(x, this.inputs, 'x');
    // Only the model's own inputs are counted, sliced and fed: other keys of x are left unread (checkInputNames).
    const own = inputsNamed(x, this.inputs.map((i) => i.name));
    const feeds = (part: ModelInputs): Record<string, Tensor> => (part instanceof Tensor ? { [this.inputs[0]!.name]: part } : { ...part });
    const output = this.primaryOutput;
    const { batchSize } = options;
    if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize > 0)) throw new KilnError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${batchSize}`);
    const n = examplesIn(own);
    if (batchSize === undefined || n <= batchSize) return (await this.run(feeds(own)))[output]!;
    const parts: Tensor[] = [];
    for (let start = 0; start < n; start += batchSize) parts.push((await this.run(feeds(sliceInputs(own, start, start + batchSize))))[output]!);
    return concatRows(parts);
  }
}
