import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Tensor, type AnyTypedArray } from '../tensor.js';
import { JSON_CONTENT_TYPE, sendAnswer, type Answer } from './answers.js';
import { binaryPart, binaryReply, BinaryReader } from './binary.js';
import { bodyValidator } from './body-validation.js';
import { fromBase64, ImageBody, imagesToTensor } from './image-requests.js';
import { classificationString, topK } from './labels.js';
import { isValidName } from './config.js';
import { checkShape, decodeElements, ElementBudget, flatValues, KSERVE_DATATYPES, kserveDatatype } from './datatypes.js';
import { badRequest } from './errors.js';
import { record } from './records.js';
import { admission, infer, selectOutputs, withVersion, type InferenceLimits } from './inference.js';
import { stringifyJson } from './json.js';
import type { ModelVersion } from './model-version.js';
import type { ModelRegistry, VersionRef } from './registry.js';
import type { TensorSpec } from './signature.js';

/*
 * KServe v2 / Open Inference Protocol (what Triton, KServe and OpenVINO Model Server speak): model
 * metadata and readiness, inference with JSON tensors, and Triton's model-repository extension.
 * Health routes live in health.ts (they need no auth).
 */

interface InferInput {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Record<string, unknown>;
  data: unknown;
}

interface InferBody {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: InferInput[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

const parameters = { type: 'object' } as const;

const inferSchema = {
  type: 'object',
  required: ['inputs'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', maxLength: 1024 },
    parameters,
    inputs: {
      type: 'array',
      minItems: 1,
      maxItems: 1024,
      items: {
        type: 'object',
        required: ['name', 'shape', 'datatype'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 256 },
          shape: { type: 'array', maxItems: 64, items: { type: 'integer' } },
          datatype: { type: 'string', enum: KSERVE_DATATYPES },
          parameters,
          data: {},
        },
      },
    },
    outputs: {
      type: 'array',
      maxItems: 1024,
      items: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 256 }, parameters },
      },
    },
  },
} as const;

function tensorMetadata(t: TensorSpec): { name: string; datatype: string; shape: number[] } {
  return { name: t.name, datatype: kserveDatatype(t.dtype), shape: t.shape ?? [-1] };
}

export function refOf(params: { version?: string }): VersionRef {
  return params.version === undefined ? {} : { version: params.version };
}

/** BYTES elements given for an image input: base64 strings in JSON (or the files of a raw image body), or Triton's length-prefixed binary form. */
function imageElements(input: InferInput, size: number, reader: BinaryReader | undefined, what: string): Uint8Array[] {
  const binarySize = input.parameters?.binary_data_size;
  if (binarySize !== undefined) {
    if (input.data !== undefined) throw badRequest(`${what}: give "data" or binary data (binary_data_size), not both`);
    if (!reader) throw badRequest(`${what}: binary_data_size is set but the request has no binary part (send the Inference-Header-Content-Length header)`);
    return reader.readBytes(size, binarySize, what);
  }
  if (!Array.isArray(input.data)) throw badRequest(`${what}: BYTES data must be a list of ${size} base64-encoded image files`);
  const flat = (input.data as unknown[]).flat(input.shape.length);
  if (flat.length !== size) throw badRequest(`${what}: shape ${JSON.stringify(input.shape)} needs ${size} images, data has ${flat.length}`);
  return flat.map((v, i) => fromBase64(v, `${what} element ${i}`));
}

/**
 * Request tensors → Kiln tensors, in the element type the model declares for each input. A BYTES
 * tensor given for a numeric image input holds image files ([N] or [N, 1]): each is preprocessed
 * into one row of the input (image-requests.ts).
 */
async function decodeInputs(version: ModelVersion, inputs: readonly InferInput[], limits: InferenceLimits, binary: Buffer | undefined): Promise<Record<string, Tensor>> {
  const specs = version.signature!.inputs;
  const reader = binary ? new BinaryReader(binary) : undefined;
  const feeds = record<Tensor>();
  // Decodes start once every input has passed its checks, so a refusal leaves none running.
  const images: (() => Promise<void>)[] = [];
  const budget = new ElementBudget(limits.maxElements);
  for (const input of inputs) {
    const what = `input '${input.name}'`;
    if (input.name in feeds) throw badRequest(`${what} is given twice`);
    const spec = specs.find((s) => s.name === input.name);
    if (!spec) throw badRequest(`unexpected ${what}; the model's inputs are ${specs.map((s) => `'${s.name}'`).join(', ')}`);
    const expected = kserveDatatype(spec.dtype);
    const size = checkShape(input.shape, what, budget);
    if (input.datatype === 'BYTES' && expected !== 'BYTES') {
      if (input.shape.length < 1 || input.shape.length > 2 || (input.shape.length === 2 && input.shape[1] !== 1)) {
        throw badRequest(`${what}: images go in a BYTES tensor of shape [N] or [N, 1] (one file per row), found ${JSON.stringify(input.shape)}`);
      }
      const files = imageElements(input, size, reader, what);
      feeds[input.name] = undefined as never; // taken, so a second input of the same name is refused
      images.push(() => imagesToTensor(version, spec, files, limits, budget).then((t) => void (feeds[input.name] = t)));
      continue;
    }
    if (input.datatype !== expected) throw badRequest(`${what} has datatype ${expected} in the model, the request says ${input.datatype}`);
    const binarySize = input.parameters?.binary_data_size;
    let data;
    if (binarySize !== undefined) {
      if (input.data !== undefined) throw badRequest(`${what}: give "data" or binary data (binary_data_size), not both`);
      if (!reader) throw badRequest(`${what}: binary_data_size is set but the request has no binary part (send the Inference-Header-Content-Length header)`);
      data = reader.read(spec.dtype, size, binarySize, what);
    } else {
      if (input.data === undefined) throw badRequest(`${what} has no "data"`);
      data = decodeElements(input.data, input.shape, spec.dtype, what);
    }
    feeds[input.name] = new Tensor(data as never, input.shape, spec.dtype);
  }
  reader?.finish();
  await Promise.all(images.map((decode) => decode()));
  return feeds;
}

/** Triton's classification extension: an output's top `count` classes per row as "score:index[:label]" strings. */
function classification(version: ModelVersion, spec: TensorSpec, t: Tensor, count: unknown): { shape: number[]; strings: string[] } {
  const what = `output '${spec.name}'`;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) throw badRequest(`${what}: the "classification" parameter must be a positive integer (how many classes), found ${JSON.stringify(count)}`);
  if (t.rank !== 1 && t.rank !== 2) throw badRequest(`${what} has shape ${JSON.stringify(t.shape)}; classification needs class scores [batch, classes] or [classes]`);
  // An integer or boolean output (an argmax's class, a flag) holds no scores; nor does a batched
  // model's output of one value per example ([batch]), which is not a row of classes.
  if (t.dtype !== 'float32' && t.dtype !== 'float64') throw badRequest(`${what} is ${t.dtype}; classification needs float class scores [batch, classes] or [classes]`);
  if (t.rank === 1 && version.signature?.batchable) throw badRequest(`${what} has shape [batch] (one value per example); classification needs class scores [batch, classes]`);
  const scores = t.rank === 1 ? t.reshape([1, t.shape[0]!]) : t;
  const classifier = version.classifier?.output.name === spec.name ? version.classifier : undefined;
  const rows = topK(scores, count, what);
  const strings = rows.flatMap((row) => row.map(({ index, score }) => classificationString(classifier, index, score)));
  return { shape: t.rank === 1 ? [rows[0]!.length] : [rows.length, rows[0]?.length ?? 0], strings };
}

/** BYTES elements as Triton's binary form: each a 4-byte little-endian length, then its bytes. */
function bytesElements(strings: string[]): Uint8Array {
  const parts = strings.flatMap((s) => {
    const bytes = Buffer.from(s, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes.length);
    return [length, bytes];
  });
  return new Uint8Array(Buffer.concat(parts));
}

function modelMetadata(registry: ModelRegistry, version: ModelVersion) {
  const model = registry.models.get(version.model)!;
  const versions = [...model.versions.values()].filter((v) => v.state === 'AVAILABLE').map((v) => v.version).sort((a, b) => a - b).map(String);
  const sig = version.signature!;
  return { name: version.model, versions, platform: 'onnxruntime_onnx', inputs: sig.inputs.map(tensorMetadata), outputs: sig.outputs.map(tensorMetadata) };
}

/**
 * KServe v2 inference, shared by the Fastify route and the fast path (fast-path.ts): a parsed body
 * (binary.ts's parseRequestBody, or an ImageBody) → the answer. A raw image body (image/jpeg, image/png)
 * is one BYTES input holding it, for the model's only input; then the body is checked against the
 * schema, decoded, queued and run.
 */
export function kserveInference(registry: ModelRegistry, limits: InferenceLimits): (model: string, ref: VersionRef, parsed: unknown) => Promise<Answer> {
  const validate = bodyValidator(inferSchema);
  return async (model, ref, parsed) => {
    let body = parsed as InferBody;
    if (parsed instanceof ImageBody) {
      const inputs = registry.resolve(model, ref).signature!.inputs;
      if (inputs.length !== 1) throw badRequest(`the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); send images as BYTES tensors in a JSON request, naming the input`);
      body = { inputs: [{ name: inputs[0]!.name, shape: [parsed.images.length], datatype: 'BYTES', data: parsed.images }] };
    }
    validate(body);
    return withVersion(registry, model, ref, async (version) => {
      const feeds = await decodeInputs(version, body.inputs, limits, binaryPart(body));
      const wanted = selectOutputs(version, body.outputs?.map((o) => o.name));
      const allBinary = body.parameters?.binary_data_output === true;
      const outputs = await infer(version, feeds, limits);
      let nonFinite = false;
      const binary: AnyTypedArray[] = [];
      const encoded = wanted.map((spec) => {
        const t = outputs[spec.name]!;
        const parameters = body.outputs?.find((o) => o.name === spec.name)?.parameters;
        const inBinary = allBinary || parameters?.binary_data === true;
        if (parameters?.classification !== undefined) {
          const { shape, strings } = classification(version, spec, t, parameters.classification);
          if (!inBinary) return { name: spec.name, datatype: 'BYTES', shape, data: strings };
          const bytes = bytesElements(strings);
          binary.push(bytes);
          return { name: spec.name, datatype: 'BYTES', shape, parameters: { binary_data_size: bytes.byteLength } };
        }
        const meta = { name: spec.name, datatype: kserveDatatype(t.dtype), shape: [...t.shape] };
        if (inBinary) {
          binary.push(t.data as AnyTypedArray);
          return { ...meta, parameters: { binary_data_size: (t.data as AnyTypedArray).byteLength } };
        }
        const { values, nonFinite: nf } = flatValues(t);
        nonFinite ||= nf;
        return { ...meta, data: values };
      });
      const response = stringifyJson({ model_name: version.model, model_version: String(version.version), ...(body.id !== undefined ? { id: body.id } : {}), outputs: encoded }, nonFinite);
      if (binary.length === 0) return { contentType: JSON_CONTENT_TYPE, body: response };
      const { body: bytes, headerLength } = binaryReply(response, binary);
      return { contentType: 'application/octet-stream', body: bytes, headerLength };
    });
  };
}

type ModelRoute = { Params: { model: string; version?: string } };
type ModelRequest = FastifyRequest<ModelRoute>;

export async function kserveRoutes(app: FastifyInstance, opts: { registry: ModelRegistry; limits: InferenceLimits }): Promise<void> {
  const { registry, limits } = opts;

  const metadata = async (req: ModelRequest) => modelMetadata(registry, registry.resolve(req.params.model, refOf(req.params)));
  app.get<ModelRoute>('/v2/models/:model', metadata);
  app.get<ModelRoute>('/v2/models/:model/versions/:version', metadata);

  // 200 ready; 503 known but not ready; 404 unknown. Bodies are empty, as the protocol asks.
  const ready = async (req: ModelRequest, reply: FastifyReply) => {
    try {
      registry.resolve(req.params.model, refOf(req.params));
      return reply.code(200).send();
    } catch (err) {
      return reply.code((err as { status?: number }).status ?? 503).send();
    }
  };
  app.get<ModelRoute>('/v2/models/:model/ready', ready);
  app.get<ModelRoute>('/v2/models/:model/versions/:version/ready', ready);

  const answer = kserveInference(registry, limits);
  const onRequest = admission(registry, (req) => {
    const params = req.params as ModelRoute['Params'];
    return { name: params.model, ref: refOf(params) };
  });
  const inferRoute = async (req: ModelRequest, reply: FastifyReply) => sendAnswer(reply, await answer(req.params.model, refOf(req.params), req.body));
  app.post<ModelRoute>('/v2/models/:model/infer', { onRequest }, inferRoute);
  app.post<ModelRoute>('/v2/models/:model/versions/:version/infer', { onRequest }, inferRoute);

  // Triton's model repository extension: list, (re)load, unload.
  app.post('/v2/repository/index', async () => {
    const index: { name: string; version?: string; state: string; reason: string }[] = [];
    for (const model of registry.models.values()) {
      if (model.versions.size === 0) index.push({ name: model.name, state: model.unloaded ? 'UNAVAILABLE' : 'UNKNOWN', reason: model.configError ?? '' });
      for (const v of model.versions.values()) {
        const failedReplacement = model.replacements.get(v.version)?.error;
        const reason = v.error ?? (failedReplacement !== undefined ? `the replaced model file failed to load, the previous one keeps serving: ${failedReplacement}` : undefined);
        index.push({ name: model.name, version: String(v.version), state: v.state === 'AVAILABLE' ? 'READY' : v.state, reason: reason ?? model.configError ?? '' });
      }
    }
    return index;
  });
  app.post<ModelRoute>('/v2/repository/models/:model/load', async (req) => {
    if (!isValidName(req.params.model)) throw badRequest(`invalid model name ${JSON.stringify(req.params.model)}`);
    await registry.loadModel(req.params.model);
    return {};
  });
  app.post<ModelRoute>('/v2/repository/models/:model/unload', async (req) => {
    await registry.unloadModel(req.params.model);
    return {};
  });
}
