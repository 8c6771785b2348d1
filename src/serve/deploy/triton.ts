import { KilnError } from '../../errors.js';
import type { DType } from '../../tensor.js';
import { DEFAULT_MODEL_CONFIG, type ModelConfig, type VersionPolicy } from '../config.js';
import type { Signature, TensorSpec } from '../signature.js';
import { writeOutputDirectory, type OutputFiles } from './output-directory.js';
import { readRepository, type RepositoryModel } from './repository.js';

/*
 * `kiln deploy triton`: a Kiln model repository as a Triton model repository, so Triton's ONNX Runtime
 * backend serves the same models with the same batching: DIR/<model>/<version>/model.onnx copied,
 * and beside each model a config.pbtxt (Triton's ModelConfig in protobuf text format) carrying Kiln's
 * config.json — max_batch_size, dynamic_batching (Kiln merges up to maxBatchSize rows after at most
 * maxQueueDelayMs: preferred_batch_size [maxBatchSize] and max_queue_delay_microseconds), the queue
 * limit, instance_group (CPU instances), version_policy, intra-op threads and class labels. What
 * Triton has no place for is listed in the result's notes rather than dropped silently.
 */

export interface DeployTritonOptions {
  modelRepository: string;
  out: string;
}

export interface DeployResult {
  files: string[];
  /** Settings the target cannot carry, and what to do about them. */
  notes: string[];
}

/** Triton's DataType names for the element types Kiln serves. */
const TRITON_TYPE: Record<DType, string> = {
  float32: 'TYPE_FP32',
  float64: 'TYPE_FP64',
  int8: 'TYPE_INT8',
  int32: 'TYPE_INT32',
  int64: 'TYPE_INT64',
  uint8: 'TYPE_UINT8',
  bool: 'TYPE_BOOL',
};

/** A string in protobuf text format: printable ASCII as is, quotes and backslashes escaped, every other byte in octal. */
function quoted(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, 'utf8')) {
    if (byte === 0x22 || byte === 0x5c) out += `\\${String.fromCharCode(byte)}`;
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return `${out}"`;
}

/** A message's fields in text format: scalars `name: value`, messages `name { ... }`, repeated as lists. */
type TextValue = string | number | { enum: string } | TextMessage | TextValue[];
interface TextMessage {
  [field: string]: TextValue | undefined;
}

function textValue(v: TextValue, indent: string): string {
  if (typeof v === 'string') return quoted(v);
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x !== 'object' || 'enum' in (x as object))) return `[ ${v.map((x) => textValue(x, indent)).join(', ')} ]`;
    return `[\n${v.map((x) => `${indent}  ${textValue(x, `${indent}  `)}`).join(',\n')}\n${indent}]`;
  }
  if ('enum' in v && typeof v.enum === 'string') return v.enum;
  return `{\n${textFields(v as TextMessage, `${indent}  `)}${indent}}`;
}

function textFields(message: TextMessage, indent: string): string {
  let out = '';
  for (const [name, v] of Object.entries(message)) {
    if (v === undefined) continue;
    // Message fields (and lists of messages) go without a colon, as Triton's own examples write them.
    const messages = Array.isArray(v) ? v.length > 0 && v.every((x) => typeof x === 'object' && !Array.isArray(x) && !('enum' in x && typeof x.enum === 'string')) : typeof v === 'object' && !('enum' in v && typeof v.enum === 'string');
    out += `${indent}${name}${messages ? ' ' : ': '}${textValue(v, indent)}\n`;
  }
  return out;
}

function versionPolicy(policy: VersionPolicy): TextMessage {
  if (policy === 'all') return { all: {} };
  if ('latest' in policy) return { latest: { num_versions: policy.latest } };
  return { specific: { versions: policy.specific } };
}

/**
 * A tensor's dims for Triton: without the batch dimension when the model batches (max_batch_size > 0).
 * A tensor of one value per example ([batch]: an argmax's class) leaves no dims, which Triton refuses:
 * its model configuration says dims [1] with reshape { shape: [ ] } for it.
 */
function tensor(spec: TensorSpec, batched: boolean, model: string): TextMessage {
  if (!spec.shape) throw new KilnError('INVALID_ARGUMENT', `model '${model}': '${spec.onnxName}' has no declared rank, which Triton's config.pbtxt needs (dims)`);
  const dims = batched ? spec.shape.slice(1) : spec.shape;
  const scalar = batched && dims.length === 0;
  return { name: spec.onnxName, data_type: { enum: TRITON_TYPE[spec.dtype] }, dims: scalar ? [1] : dims, ...(scalar ? { reshape: { shape: [] } } : {}) };
}

/** config.pbtxt for one model, and the notes on what it cannot say. */
export function tritonConfig(name: string, config: ModelConfig, signature: Signature): { text: string; notes: string[] } {
  const notes: string[] = [];
  const batched = signature.batchable && config.maxBatchSize > 0;
  const merging = batched && config.dynamicBatching && config.maxBatchSize > 1;
  const message: TextMessage = {
    name,
    platform: 'onnxruntime_onnx',
    max_batch_size: batched ? config.maxBatchSize : 0,
    version_policy: versionPolicy(config.versionPolicy),
    input: signature.inputs.map((s) => tensor(s, batched, name)),
    output: signature.outputs.map((s, i) => ({ ...tensor(s, batched, name), ...(i === 0 && config.labels ? { label_filename: 'labels.txt' } : {}) })),
    dynamic_batching: merging
      ? {
          preferred_batch_size: [config.maxBatchSize],
          max_queue_delay_microseconds: Math.round(config.maxQueueDelayMs * 1000),
          default_queue_policy: { max_queue_size: config.maxQueueSize },
        }
      : undefined,
    instance_group: [{ count: config.instances, kind: { enum: 'KIND_CPU' } }],
    parameters: config.intraOpThreads !== undefined ? [{ key: 'intra_op_thread_count', value: { string_value: String(config.intraOpThreads) } }] : undefined,
  };
  const renamed = [...signature.inputs, ...signature.outputs].filter((s) => s.name !== s.onnxName);
  if (renamed.length > 0) {
    notes.push(`${name}: Triton names tensors as the ONNX file does; clients must use ${renamed.map((s) => `'${s.onnxName}' for '${s.name}'`).join(', ')} (config.json inputNames/outputNames have no Triton equivalent)`);
  }
  if (Object.keys(config.versionLabels).length > 0) notes.push(`${name}: version labels (${Object.keys(config.versionLabels).join(', ')}) are TF Serving's; Triton addresses versions by number only`);
  if (config.topK !== undefined) notes.push(`${name}: topK ${config.topK} is per request in Triton (the classification parameter of an output)`);
  if (config.maxQueueBytes !== DEFAULT_MODEL_CONFIG.maxQueueBytes) notes.push(`${name}: maxQueueBytes has no Triton equivalent (max_queue_size bounds requests, not bytes)`);
  return { text: `# Written by kiln deploy triton from ${name}/config.json.\n${textFields(message, '')}`, notes };
}

function modelFiles(model: RepositoryModel, files: OutputFiles, notes: string[]): void {
  const encrypted = model.versions.find((v) => v.encrypted);
  if (encrypted) {
    throw new KilnError('INVALID_ARGUMENT', `${encrypted.shownAs} is encrypted (kiln encrypt), which Triton cannot read; deploy the plain model to Triton, or serve the encrypted one with kiln serve --key-file`);
  }
  const { text, notes: modelNotes } = tritonConfig(model.name, model.config, model.versions.at(-1)!.signature!);
  notes.push(...modelNotes);
  files.set(`${model.name}/config.pbtxt`, text);
  if (model.config.labels) files.set(`${model.name}/labels.txt`, `${model.config.labels.join('\n')}\n`);
  for (const v of model.versions) files.set(`${model.name}/${v.version}/model.onnx`, v.bytes);
}

/** Writes the Triton model repository to `out` (new or empty), all or nothing. */
export async function deployTriton(options: DeployTritonOptions): Promise<DeployResult> {
  const models = await readRepository(options.modelRepository);
  const files: OutputFiles = new Map();
  const notes: string[] = [];
  for (const model of models) modelFiles(model, files, notes);
  return { files: await writeOutputDirectory(options.out, files), notes };
}
