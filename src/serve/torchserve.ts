import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Tensor } from '../tensor.js';
import { checkShape, decodeElements, ElementBudget, flatValues, nest, nestedShape } from './datatypes.js';
import { badRequest, notFound } from './errors.js';
import { fromBase64, ImageBody, imagesToTensor, isB64 } from './image-requests.js';
import { admission, infer, withVersion, type InferenceLimits } from './inference.js';
import { stringifyJson } from './json.js';
import { labelOf, probabilities, topK } from './labels.js';
import type { ModelVersion, VersionState } from './model-version.js';
import type { ModelRegistry, ServedModel, VersionRef } from './registry.js';

/*
 * TorchServe's REST APIs, so TorchServe clients and curl scripts work against Kiln unchanged:
 * - inference: `POST|PUT /predictions/{model}[/{version}]` with an image file (raw, as `curl -T
 *   cat.jpg` sends it, or a multipart form's `data` field, as `curl -F data=@cat.jpg` does) or JSON
 *   (a nested list of numbers for one example or a batch, `{"data": ...}`, or `{"data": "<base64 image>"}`),
 *   answered as TorchServe's image_classifier handler answers a classifier (a model with class names,
 *   or ending in Softmax) — {label: probability} for the top 5 (config topK), probabilities by softmax
 *   unless the model ends in one — and any other model with its outputs' values; `GET /ping` → {"status": "Healthy"};
 * - management reads: `GET /models` (paged: limit, next_page_token), `GET /models/{model}[/{version}|/all]`,
 *   in TorchServe's shapes (a Kiln version is a "model version"; its ONNX Runtime sessions are its "workers").
 * Every inference goes through the same admission, batching queue, limits, metrics and auth as the
 * KServe v2 and TF Serving routes.
 */

type PredictRoute = { Params: { model: string; version?: string } };

/** TorchServe versions are written like "1.0"; Kiln's are whole numbers: "2" and "2.0" both name version 2. */
function refOf(version: string | undefined): VersionRef {
  if (version === undefined) return {};
  return { version: /^[0-9]+\.0$/.test(version) ? version.slice(0, -2) : version };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The request's input tensor (every row of it) and whether it was one example (answered without a list around it). */
async function requestInput(version: ModelVersion, body: unknown, limits: InferenceLimits): Promise<{ x: Tensor; single: boolean }> {
  const sig = version.signature!;
  if (sig.inputs.length !== 1) {
    throw badRequest(`${version.what} has ${sig.inputs.length} inputs (${sig.inputs.map((i) => i.name).join(', ')}); /predictions feeds one: use /v2/models/${version.model}/infer`);
  }
  const spec = sig.inputs[0]!;
  const what = `input '${spec.name}'`;
  const budget = new ElementBudget(limits.maxElements);
  if (body instanceof ImageBody) return { x: await imagesToTensor(version, spec, body.images, limits, budget), single: body.images.length === 1 };
  if (body === undefined) throw badRequest('the request has no body: send an image file (curl -T cat.jpg, or -F data=@cat.jpg) or JSON');
  // TorchServe's handlers read a JSON body's "data" (or "body") field when there is one.
  const value = isObject(body) && ('data' in body || 'body' in body) ? (body.data ?? body.body) : body;
  if (typeof value === 'string' || isB64(value)) {
    const file = fromBase64(typeof value === 'string' ? value : value.b64, `"data"`);
    return { x: await imagesToTensor(version, spec, [file], limits, budget), single: true };
  }
  if (!Array.isArray(value)) throw badRequest(`the JSON body must be a nested list of numbers for ${what} (one example or a batch), {"data": ...}, or {"data": "<base64 image file>"}`);
  const shape = nestedShape(value, what);
  const rank = spec.shape?.length;
  const single = rank !== undefined && shape.length === rank - 1;
  const full = single ? [1, ...shape] : shape;
  checkShape(full, what, budget);
  return { x: new Tensor(decodeElements(single ? [value] : value, full, spec.dtype, what, true) as never, full, spec.dtype), single };
}

/**
 * The answer: for a classifier — a model with class names, or one whose graph ends in Softmax —
 * TorchServe's {label: probability} of the top k per example; else the outputs' values.
 */
function answer(version: ModelVersion, outputs: Record<string, Tensor>, single: boolean): { body: unknown; nonFinite: boolean } {
  const classifier = version.classifier;
  if (classifier && (classifier.labels || classifier.probabilities)) {
    const scores = outputs[classifier.output.name]!;
    const k = version.config.topK ?? 5;
    const classes = scores.shape[1]!;
    const rows = Array.from({ length: scores.shape[0]! }, (_, r) => Array.from((scores.data as Float32Array).subarray(r * classes, (r + 1) * classes)));
    // Probabilities in float32, as TorchServe's softmax gives them.
    const probs = rows.map((row) => Float32Array.from(probabilities(row, classifier.probabilities)));
    const top = topK(new Tensor(Float32Array.from(probs.flatMap((p) => Array.from(p))), [rows.length, classes], 'float32'), k, `output '${classifier.output.name}'`);
    const maps = top.map((row) => Object.fromEntries(row.map(({ index, score }) => [labelOf(classifier, index), score])));
    const nonFinite = top.some((row) => row.some(({ score }) => !Number.isFinite(score)));
    return { body: single ? maps[0] : maps, nonFinite };
  }
  let nonFinite = false;
  const values = (t: Tensor) => {
    const { values: flat, nonFinite: nf } = flatValues(t);
    nonFinite ||= nf;
    const rows = nest(flat, t.shape) as unknown[];
    return single && t.rank > 0 ? rows[0] : rows;
  };
  const names = version.signature!.outputs.map((o) => o.name);
  const body = names.length === 1 ? values(outputs[names[0]!]!) : Object.fromEntries(names.map((n) => [n, values(outputs[n]!)]));
  return { body, nonFinite };
}

export async function torchServeInferenceRoutes(app: FastifyInstance, opts: { registry: ModelRegistry; limits: InferenceLimits }): Promise<void> {
  const { registry, limits } = opts;
  const predict = async (req: FastifyRequest<PredictRoute>, reply: FastifyReply) =>
    withVersion(registry, req.params.model, refOf(req.params.version), async (version) => {
      const { x, single } = await requestInput(version, req.body, limits);
      const outputs = await infer(version, { [version.signature!.inputs[0]!.name]: x }, limits);
      const { body, nonFinite } = answer(version, outputs, single);
      return reply.type('application/json').send(stringifyJson(body, nonFinite));
    });
  const onRequest = admission(registry, (req) => {
    const params = req.params as PredictRoute['Params'];
    return { name: params.model, ref: refOf(params.version) };
  });
  // curl -T sends PUT; TorchServe answers both.
  for (const method of ['POST', 'PUT'] as const) {
    app.route<PredictRoute>({ method, url: '/predictions/:model', onRequest, handler: predict });
    app.route<PredictRoute>({ method, url: '/predictions/:model/:version', onRequest, handler: predict });
  }
}

/** GET /ping: "Healthy" when every model has a version serving, "Partial Healthy" when some do, else "Unhealthy" (HTTP 500). */
export async function torchServePing(app: FastifyInstance, opts: { registry: ModelRegistry; isClosing: () => boolean }): Promise<void> {
  app.get('/ping', async (_req, reply) => {
    const models = [...opts.registry.models.values()].filter((m) => !m.unloaded);
    const serving = models.filter((m) => m.latestAvailable() !== undefined).length;
    const status = opts.isClosing() || (models.length > 0 && serving === 0) ? 'Unhealthy' : serving < models.length || !opts.registry.isReady() ? 'Partial Healthy' : 'Healthy';
    return reply.code(status === 'Unhealthy' ? 500 : 200).send({ status });
  });
}

const WORKER_STATUS: Record<VersionState, string> = { LOADING: 'WORKER_STARTED', AVAILABLE: 'READY', UNLOADING: 'UNLOADING', UNAVAILABLE: 'WORKER_STOPPED', FAILED: 'WORKER_ERROR' };

function modelUrl(model: ServedModel, version?: ModelVersion): string {
  const v = version ?? model.latestAvailable() ?? [...model.versions.values()][0];
  return v?.source.shownAs ?? `${model.name}.onnx`;
}

/** TorchServe's DescribeModel entry for one version. */
function describe(model: ServedModel, v: ModelVersion) {
  const { instances, maxBatchSize, maxQueueDelayMs, maxQueueSize } = v.config;
  const queued = v.batcher?.queued ?? 0;
  return {
    modelName: model.name,
    modelVersion: String(v.version),
    modelUrl: modelUrl(model, v),
    runtime: 'onnxruntime',
    minWorkers: instances,
    maxWorkers: instances,
    batchSize: v.batcher?.settings.batching ? maxBatchSize : 1,
    maxBatchDelay: maxQueueDelayMs,
    loadedAtStartup: true,
    // ONNX Runtime sessions run in worker threads of this process: pid and memory are the process's.
    workers: Array.from({ length: instances }, (_, i) => ({
      id: String(9000 + i),
      startTime: (v.availableSince ?? new Date()).toISOString(),
      status: WORKER_STATUS[v.state],
      memoryUsage: process.memoryUsage().rss,
      pid: process.pid,
      gpu: false,
      gpuUsage: 'N/A',
    })),
    jobQueueStatus: { remainingCapacity: Math.max(0, maxQueueSize - queued), pendingRequests: queued },
  };
}

export async function torchServeManagementRoutes(app: FastifyInstance, opts: { registry: ModelRegistry }): Promise<void> {
  const { registry } = opts;
  app.get<{ Querystring: { limit?: string; next_page_token?: string } }>('/models', async (req) => {
    const { limit: limitText, next_page_token: token } = req.query;
    const limit = limitText === undefined ? 100 : Number(limitText);
    const start = token === undefined ? 0 : Number(token);
    if (!Number.isInteger(limit) || limit < 1) throw badRequest(`limit must be a positive integer, found ${JSON.stringify(limitText)}`);
    if (!Number.isInteger(start) || start < 0) throw badRequest(`next_page_token must be a token from a previous answer, found ${JSON.stringify(token)}`);
    const models = [...registry.models.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    const page = models.slice(start, start + Math.min(limit, 100));
    const next = start + page.length;
    return { ...(next < models.length ? { nextPageToken: String(next) } : {}), models: page.map((m) => ({ modelName: m.name, modelUrl: modelUrl(m) })) };
  });
  const versionsOf = (name: string, version: string | undefined) => {
    const model = registry.model(name);
    const all = [...model.versions.values()].sort((a, b) => a.version - b.version);
    if (version === 'all') return all.map((v) => describe(model, v));
    if (version === undefined) {
      const latest = model.latestAvailable() ?? all.at(-1);
      if (!latest) throw notFound(`model '${name}' has no versions`);
      return [describe(model, latest)];
    }
    const number = refOf(version).version!;
    const v = all.find((x) => String(x.version) === number);
    if (!v) throw notFound(`model '${name}' has no version ${version} (versions: ${all.map((x) => x.version).join(', ') || 'none'})`);
    return [describe(model, v)];
  };
  app.get<{ Params: { model: string } }>('/models/:model', async (req) => versionsOf(req.params.model, undefined));
  app.get<{ Params: { model: string; version: string } }>('/models/:model/:version', async (req) => versionsOf(req.params.model, req.params.version));
}
