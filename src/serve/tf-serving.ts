import type { FastifyInstance } from 'fastify';
import { JSON_CONTENT_TYPE, sendAnswer, type Answer } from './answers.js';
import { bodyValidator } from './body-validation.js';
import { formatShape } from '../errors.js';
import { Tensor } from '../tensor.js';
import { checkShape, decodeElements, ElementBudget, flatValues, nest, nestedShape, tfDatatype } from './datatypes.js';
import { NumberList } from './number-lists.js';
import { binaryPart, HEADER_LENGTH } from './binary.js';
import { fromBase64, ImageBody, imagesToTensor, isB64 } from './image-requests.js';
import { labelOf } from './labels.js';
import { badRequest, notFound } from './errors.js';
import { own, record } from './records.js';
import { admission, infer, withVersion, type InferenceLimits } from './inference.js';
import { stringifyJson } from './json.js';
import type { ModelVersion } from './model-version.js';
import type { ModelRegistry, VersionRef } from './registry.js';
import type { Signature, TensorSpec } from './signature.js';

/*
 * TF Serving's REST API v1 (also KServe v1): model status, metadata, :predict in the row
 * ("instances") and columnar ("inputs") formats, :classify and :regress. Paths carry a ':verb' after
 * the model, so the routes take the rest of the path and parse it here.
 */

const SIGNATURE = 'serving_default';
const PATH = /^([^/:]+)(?:\/versions\/([^/:]+)|\/labels\/([^/:]+))?(?:(\/metadata)|:([A-Za-z]+))?$/;

interface ParsedPath {
  model: string;
  ref: VersionRef;
  metadata: boolean;
  verb: string | undefined;
}

function parsePath(rest: string, method: string): ParsedPath {
  const m = PATH.exec(rest);
  if (!m) throw notFound(`no route for ${method} /v1/models/${rest}; expected /v1/models/<model>[/versions/<n>|/labels/<label>][/metadata|:predict|:classify|:regress]`);
  const [, model, version, label, metadata, verb] = m;
  return { model: model!, ref: { version, label }, metadata: metadata !== undefined, verb };
}

const STATE: Record<string, string> = { LOADING: 'LOADING', AVAILABLE: 'AVAILABLE', UNLOADING: 'UNLOADING', UNAVAILABLE: 'END', FAILED: 'END' };

function versionStatus(v: ModelVersion) {
  return {
    version: String(v.version),
    state: STATE[v.state],
    status: v.state === 'FAILED' ? { error_code: 'UNKNOWN', error_message: v.error ?? '' } : { error_code: 'OK', error_message: '' },
  };
}

function modelStatus(registry: ModelRegistry, path: ParsedPath) {
  const model = registry.model(path.model);
  let versions = [...model.versions.values()].sort((a, b) => b.version - a.version);
  if (path.ref.label !== undefined || path.ref.version !== undefined) {
    let number: number | undefined;
    if (path.ref.label !== undefined) {
      number = own(model.config.versionLabels, path.ref.label) as number | undefined;
      if (number === undefined) throw notFound(`model '${path.model}' has no version label '${path.ref.label}'`);
    } else {
      number = Number(path.ref.version);
      if (!/^[1-9][0-9]{0,14}$/.test(path.ref.version!)) throw badRequest(`invalid version ${JSON.stringify(path.ref.version)}: expected a positive integer`);
    }
    versions = versions.filter((v) => v.version === number);
    if (versions.length === 0) throw notFound(`model '${path.model}' has no version ${number}`);
  }
  return { model_version_status: versions.map(versionStatus) };
}

function tensorInfo(t: TensorSpec) {
  return {
    dtype: tfDatatype(t.dtype),
    tensor_shape: t.shape ? { dim: t.shape.map((d) => ({ size: String(d), name: '' })), unknown_rank: false } : { dim: [], unknown_rank: true },
    name: `${t.onnxName}:0`,
  };
}

function metadata(version: ModelVersion) {
  const sig = version.signature!;
  const map = (specs: TensorSpec[]) => Object.fromEntries(specs.map((s) => [s.name, tensorInfo(s)]));
  return {
    model_spec: { name: version.model, signature_name: '', version: String(version.version) },
    metadata: {
      signature_def: {
        signature_def: { [SIGNATURE]: { inputs: map(sig.inputs), outputs: map(sig.outputs), method_name: 'tensorflow/serving/predict' } },
      },
    },
  };
}

/** A JSON object (not a list, nor a list of numbers the body parser read). */
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof NumberList);
}

/** A nested JSON value → a tensor of the input's type, its shape read from the nesting. */
function decodeValue(value: unknown, spec: TensorSpec, budget: ElementBudget, what: string): Tensor {
  if (isObject(value) && 'b64' in value) throw badRequest(`${what}: a binary {"b64": ...} value must be an image file (JPEG or PNG) for the whole input, one per example`);
  const shape = nestedShape(value, what);
  checkShape(shape, what, budget);
  return new Tensor(decodeElements(value, shape, spec.dtype, what, true) as never, shape, spec.dtype);
}

/** The image files of a value that is {"b64": ...} (one example) or a list of them (one per example); else undefined. */
function imageFiles(value: unknown, what: string): Uint8Array[] | undefined {
  if (isB64(value)) return [fromBase64(value.b64, `${what}: "b64"`)];
  if (!Array.isArray(value) || value.length === 0 || !value.some(isB64)) return undefined;
  if (!value.every(isB64)) throw badRequest(`${what}: every example must be a {"b64": ...} image when one is`);
  return value.map((v, i) => fromBase64(v.b64, `${what}[${i}]: "b64"`));
}

/** A column of one input: image files when its values are {"b64": ...}, else nested numbers. */
async function decodeColumn(version: ModelVersion, value: unknown, spec: TensorSpec, budget: ElementBudget, limits: InferenceLimits, what: string): Promise<Tensor> {
  const files = imageFiles(value, what);
  return files ? imagesToTensor(version, spec, files, limits, budget) : decodeValue(value, spec, budget, what);
}

function checkSignatureName(name: unknown): void {
  if (name !== undefined && name !== '' && name !== SIGNATURE) throw badRequest(`Serving signature name: ${JSON.stringify(name)} not found in signature def (this model has "${SIGNATURE}")`);
}

function rowsNeedNames(sig: Signature, field: string) {
  return badRequest(`the model has ${sig.inputs.length} inputs (${sig.inputs.map((i) => i.name).join(', ')}); each of "${field}" must be an object {input_name: value}`);
}

/**
 * Row format: one entry per example, or one {input: value} object per example for several inputs. An
 * image input's examples are {"b64": ...} image files (bare for a one-input model, or under the input's name).
 */
async function decodeRows(version: ModelVersion, rows: unknown[] | NumberList, limits: InferenceLimits, field = 'instances'): Promise<Record<string, Tensor>> {
  const sig = version.signature!;
  if (rows instanceof NumberList) {
    // Rows that are all numbers, read by the body parser: one unnamed input, its rows stacked.
    if (sig.inputs.length > 1) throw rowsNeedNames(sig, field);
    return { [sig.inputs[0]!.name]: decodeValue(rows, sig.inputs[0]!, new ElementBudget(limits.maxElements), `input '${sig.inputs[0]!.name}'`) };
  }
  if (rows.length === 0) throw badRequest(`"${field}" is empty; send at least one example`);
  const bareImages = rows.some(isB64);
  const named = !bareImages && rows.every(isObject);
  if (!named && sig.inputs.length > 1) throw rowsNeedNames(sig, field);
  if (named) {
    const known = new Set(sig.inputs.map((i) => i.name));
    rows.forEach((r, i) => {
      for (const key of Object.keys(r as object)) if (!known.has(key)) throw badRequest(`"${field}"[${i}] names '${key}', which is not a model input (inputs: ${[...known].join(', ')})`);
    });
  }
  const feeds = record<Tensor>();
  const budget = new ElementBudget(limits.maxElements);
  for (const spec of sig.inputs) {
    const column = named
      ? rows.map((r, i) => {
          const v = own(r as object, spec.name);
          if (v === undefined) throw badRequest(`"${field}"[${i}] has no value for input '${spec.name}'`);
          return v;
        })
      : rows;
    feeds[spec.name] = await decodeColumn(version, column, spec, budget, limits, `input '${spec.name}'`);
  }
  return feeds;
}

/** Columnar format: one tensor for a single-input model, or {input: tensor}; an image input's tensor is {"b64": ...} or a list of them. */
async function decodeColumns(version: ModelVersion, inputs: unknown, limits: InferenceLimits): Promise<Record<string, Tensor>> {
  const sig = version.signature!;
  const single = sig.inputs.length === 1 ? sig.inputs[0]! : undefined;
  if (!isObject(inputs) || (single && 'b64' in inputs)) {
    if (!single) throw badRequest(`the model has ${sig.inputs.length} inputs (${sig.inputs.map((i) => i.name).join(', ')}); send "inputs" as {input_name: tensor}`);
    return Object.assign(record<Tensor>(), { [single.name]: await decodeColumn(version, inputs, single, new ElementBudget(limits.maxElements), limits, `input '${single.name}'`) });
  }
  const feeds = record<Tensor>();
  const budget = new ElementBudget(limits.maxElements);
  for (const [name, value] of Object.entries(inputs)) {
    const spec = sig.inputs.find((s) => s.name === name);
    if (!spec) throw badRequest(`"inputs" names '${name}', which is not a model input (inputs: ${sig.inputs.map((i) => i.name).join(', ')})`);
    feeds[name] = await decodeColumn(version, value, spec, budget, limits, `input '${name}'`);
  }
  return feeds;
}

function rowsOf(t: Tensor): { rows: unknown[]; nonFinite: boolean } {
  const { values, nonFinite } = flatValues(t);
  if (t.rank === 0) return { rows: [values[0]], nonFinite };
  return { rows: nest(values, t.shape) as unknown[], nonFinite };
}

/** Every field :predict, :classify and :regress take; which ones a verb accepts is checked per verb. */
const bodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    signature_name: { type: 'string' },
    // A list (checked in predict: the body parser may have read it into a NumberList).
    instances: {},
    inputs: {},
    context: { type: 'object' },
    examples: { type: 'array', minItems: 1, items: { type: 'object' } },
  },
} as const;

const VERB_FIELDS = new Map<string, string[]>([
  ['predict', ['signature_name', 'instances', 'inputs']],
  ['classify', ['signature_name', 'context', 'examples']],
  ['regress', ['signature_name', 'context', 'examples']],
]);

/** TF Serving's :predict, :classify and :regress (see the answer below). */
export function tfServingInference(registry: ModelRegistry, limits: InferenceLimits): (rest: string, parsed: unknown) => Promise<Answer> {
  const predict = async (version: ModelVersion, body: { signature_name?: string; instances?: unknown[] | NumberList; inputs?: unknown }): Promise<Answer> => {
    checkSignatureName(body.signature_name);
    if (body.instances !== undefined && !Array.isArray(body.instances) && !(body.instances instanceof NumberList)) {
      throw badRequest(`"instances" must be a list with one entry per example, found ${body.instances === null ? 'null' : typeof body.instances}`);
    }
    const hasRows = body.instances !== undefined;
    const hasColumns = body.inputs !== undefined;
    if (hasRows === hasColumns) {
      throw badRequest(hasRows ? 'a request uses either "instances" (row format) or "inputs" (columnar format), not both' : 'missing "instances" (row format) or "inputs" (columnar format)');
    }
    const sig = version.signature!;
    const feeds = hasRows ? await decodeRows(version, body.instances!, limits) : await decodeColumns(version, body.inputs, limits);
    const outputs = await infer(version, feeds, limits);
    let nonFinite = false;
    let result: unknown;
    if (hasRows) {
      const columns = sig.outputs.map((spec) => {
        const { rows, nonFinite: nf } = rowsOf(outputs[spec.name]!);
        nonFinite ||= nf;
        return { name: spec.name, rows };
      });
      if (columns.length === 1) result = { predictions: columns[0]!.rows };
      else {
        const n = columns[0]!.rows.length;
        const ragged = columns.find((c) => c.rows.length !== n);
        if (ragged) throw badRequest(`outputs do not share a batch dimension ('${ragged.name}' has ${ragged.rows.length} rows, not ${n}); use the columnar "inputs" format`);
        result = { predictions: Array.from({ length: n }, (_, i) => Object.fromEntries(columns.map((c) => [c.name, c.rows[i]]))) };
      }
    } else {
      const encode = (t: Tensor) => {
        const { values, nonFinite: nf } = flatValues(t);
        nonFinite ||= nf;
        return nest(values, t.shape);
      };
      result = sig.outputs.length === 1 ? { outputs: encode(outputs[sig.outputs[0]!.name]!) } : { outputs: Object.fromEntries(sig.outputs.map((s) => [s.name, encode(outputs[s.name]!)])) };
    }
    return { contentType: JSON_CONTENT_TYPE, body: stringifyJson(result, nonFinite) };
  };

  /** :classify and :regress take tf.Example-like feature maps: each example merged over the shared context. */
  const examples = async (version: ModelVersion, body: { signature_name?: string; context?: Record<string, unknown>; examples: Record<string, unknown>[] }) => {
    checkSignatureName(body.signature_name);
    const rows = body.examples.map((e) => ({ ...body.context, ...e }));
    const feeds = await decodeRows(version, rows, limits, 'examples');
    const outputs = await infer(version, feeds, limits);
    // The signature lists first the output a Kiln-saved model of several records (its classifier's scores).
    const spec = version.signature!.outputs[0]!;
    return { scores: outputs[spec.name]!, spec };
  };

  const classify = async (version: ModelVersion, body: Parameters<typeof examples>[1]): Promise<Answer> => {
    const { scores, spec } = await examples(version, body);
    if (scores.rank !== 2) throw badRequest(`:classify needs a model whose output has shape [batch, classes]; output '${spec.name}' has shape ${formatShape(scores.shape)}`);
    const [n, classes] = scores.shape as [number, number];
    const classifier = version.classifier?.output.name === spec.name ? version.classifier : undefined;
    const topK = Math.min(version.config.topK ?? classes, classes);
    const { values, nonFinite } = flatValues(scores);
    const results = Array.from({ length: n }, (_, i) => {
      const row = values.slice(i * classes, (i + 1) * classes) as number[];
      return row
        .map((score, c) => [labelOf(classifier, c), score] as [string, number])
        .sort((a, b) => b[1] - a[1])
        .slice(0, topK);
    });
    return { contentType: JSON_CONTENT_TYPE, body: stringifyJson({ results }, nonFinite) };
  };

  const regress = async (version: ModelVersion, body: Parameters<typeof examples>[1]): Promise<Answer> => {
    const { scores, spec } = await examples(version, body);
    const n = scores.shape[0] ?? 1;
    if (scores.size !== n || scores.rank > 2) throw badRequest(`:regress needs a model with one value per example; output '${spec.name}' has shape ${formatShape(scores.shape)}`);
    const { values, nonFinite } = flatValues(scores);
    return { contentType: JSON_CONTENT_TYPE, body: stringifyJson({ results: values }, nonFinite) };
  };

  const validate = bodyValidator(bodySchema);
  /*
   * POST /v1/models/<rest>, shared by the Fastify route and the fast path (fast-path.ts): a parsed
   * body → the answer. A raw image body is one example: {"instances": [{"b64": ...}]} for :predict,
   * {"examples": [{input: {"b64": ...}}]} otherwise; then the body is checked against the schema
   * and the verb's fields.
   */
  const answer = async (rest: string, parsed: unknown): Promise<Answer> => {
    const path = parsePath(rest, 'POST');
    let body = parsed as Record<string, unknown>;
    if (parsed instanceof ImageBody) {
      const images = parsed.images.map((b64) => ({ b64 }));
      if (path.verb === 'predict' || path.verb === undefined) body = { instances: images };
      else {
        const inputs = registry.resolve(path.model, path.ref).signature!.inputs;
        if (inputs.length !== 1) throw badRequest(`the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); send images as {"b64": ...} values in a JSON request, naming the input`);
        body = { examples: images.map((image) => ({ [inputs[0]!.name]: image })) };
      }
    }
    validate(body);
    if (path.metadata || path.verb === undefined) throw notFound(`no route for POST /v1/models/${rest}; expected :predict, :classify or :regress`);
    const verb = path.verb;
    const fields = VERB_FIELDS.get(verb);
    if (!fields) throw notFound(`unknown method ':${verb}'; expected :predict, :classify or :regress`);
    if (binaryPart(body)) throw badRequest(`binary tensor data (${HEADER_LENGTH}) is a KServe v2 extension; TF Serving requests are JSON`);
    for (const key of Object.keys(body)) if (!fields.includes(key)) throw badRequest(`:${verb} does not take "${key}" (fields: ${fields.join(', ')})`);
    if (verb !== 'predict' && body.examples === undefined) throw badRequest(`:${verb} needs "examples": [{feature: value}, ...]`);
    return withVersion(registry, path.model, path.ref, (version) =>
      verb === 'predict' ? predict(version, body as never) : verb === 'classify' ? classify(version, body as never) : regress(version, body as never),
    );
  };
  return answer;
}

/** Where a TF Serving request goes, from the path after /v1/models/ (a 404 ServeError when it matches no route). */
export function tfServingTarget(rest: string): { name: string; ref: VersionRef } {
  const path = parsePath(rest, 'POST');
  return { name: path.model, ref: path.ref };
}

export async function tfServingRoutes(app: FastifyInstance, opts: { registry: ModelRegistry; limits: InferenceLimits }): Promise<void> {
  const { registry, limits } = opts;

  app.get<{ Params: { '*': string } }>('/v1/models/*', async (req) => {
    const path = parsePath(req.params['*'], req.method);
    if (path.verb !== undefined) throw notFound(`${req.method} /v1/models/${req.params['*']}: use POST for :${path.verb}`);
    if (path.metadata) return metadata(registry.resolve(path.model, path.ref));
    return modelStatus(registry, path);
  });

  const onRequest = admission(registry, (req) => {
    const path = parsePath((req.params as { '*': string })['*'], req.method);
    return { name: path.model, ref: path.ref };
  });
  const answer = tfServingInference(registry, limits);
  app.post('/v1/models/*', { onRequest }, async (req, reply) => sendAnswer(reply, await answer((req.params as { '*': string })['*'], req.body)));
}
