import { KilnError } from '../errors.js';
import { record, recordOf } from './records.js';

/*
 * A model's serving configuration: Triton's concepts (max_batch_size, dynamic batching, version
 * policy) and TF Serving's (version labels), written as DIR/<model>/config.json. Every field is
 * optional; server-wide defaults fill the rest.
 */

/** Which versions of a model are served: the newest N, the ones listed, or all on disk (Triton's version_policy). */
export type VersionPolicy =
  | {
      /** Serve the N highest version numbers (default: 1). */
      latest: number;
    }
  | {
      /** Serve exactly these versions. */
      specific: number[];
    }
  | 'all';

/** A model's serving configuration: the fields of its config.json (all optional there), or of `serve({config})`. */
export interface ModelConfig {
  /**
   * Largest batch (first dimension) one ONNX Runtime run takes; requests with more rows are refused.
   * Above 1, concurrent requests are merged into one run (dynamic batching). 0: no limit, no merging.
   * The default bounds what one request makes ONNX Runtime allocate: its activations grow with the rows.
   */
  maxBatchSize: number;
  /**
   * Merge concurrent requests along the first dimension. Default: true where maxBatchSize is set
   * above 1 (in config.json or the server's defaults), false under the built-in 256 — merging is
   * only right for a model whose first dimension really is a batch, which its shape cannot tell.
   */
  dynamicBatching: boolean;
  /** How long the oldest queued request may wait for others to fill a batch while a runner is idle. */
  maxQueueDelayMs: number;
  /**
   * 'fixed' (default): the oldest request waits maxQueueDelayMs for company. 'adaptive': it waits only
   * while requests arrive fast enough to fill the batch, at most maxQueueDelayMs; a request to an idle
   * server runs at once (queue-delay.ts).
   */
  queueDelay: 'fixed' | 'adaptive';
  /** Requests per version admitted and not yet running, beyond which new ones get 429 before their body is read. */
  maxQueueSize: number;
  /** Bytes of request bodies per version admitted and not yet answered, beyond which new ones get 429 before their body is read (one is always admitted). */
  maxQueueBytes: number;
  /** Which versions on disk are served. */
  versionPolicy: VersionPolicy;
  /** TF Serving version labels: label → version. */
  versionLabels: Record<string, number>;
  /** Class names for :classify, by class index. */
  labels: string[] | undefined;
  /** Top classes :classify returns (default: all) and TorchServe's /predictions (default: 5). */
  topK: number | undefined;
  /** How image requests are fitted to the model's input: center crop or not, and the size for inputs whose height and width are variable. */
  image:
    | {
        /** 'center' crops the image to the input's aspect ratio around its center before resizing; 'none' resizes the whole image. */
        crop?: 'none' | 'center';
        /** [height, width] in pixels that images are resized to, for inputs whose height and width are variable. */
        size?: [number, number];
      }
    | undefined;
  /** Names clients use for the ONNX inputs / outputs: ONNX name → served name. */
  inputNames: Record<string, string>;
  /** Names clients use for the ONNX outputs: ONNX name → served name. */
  outputNames: Record<string, string>;
  /** ONNX Runtime sessions (each in its own worker thread) per loaded version. */
  instances: number;
  /** Threads ONNX Runtime uses inside one operator (default: all cores). */
  intraOpThreads: number | undefined;
}

export const DEFAULT_MODEL_CONFIG: ModelConfig = {
  maxBatchSize: 256,
  dynamicBatching: false,
  maxQueueDelayMs: 0,
  queueDelay: 'fixed',
  maxQueueSize: 1024,
  maxQueueBytes: 128 * 1024 * 1024,
  versionPolicy: { latest: 1 },
  versionLabels: record(),
  labels: undefined,
  topK: undefined,
  image: undefined,
  inputNames: record(),
  outputNames: record(),
  instances: 1,
  intraOpThreads: undefined,
};

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Model names and labels: a letter or digit then letters, digits, '_', '.', '-' (so never a path). */
export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

/** Version numbers: a positive integer written in decimal without sign or leading zeros. */
export function parseVersion(text: string): number | undefined {
  return /^[1-9][0-9]{0,14}$/.test(text) ? Number(text) : undefined;
}

function fail(where: string, message: string): never {
  throw new KilnError('INVALID_ARGUMENT', `${where}: ${message}`);
}

function integer(v: unknown, where: string, field: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(where, `"${field}" must be an integer >= ${min}, found ${JSON.stringify(v)}`);
  return v;
}

function nameMap(v: unknown, where: string, field: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, `"${field}" must be an object mapping ONNX names to served names`);
  for (const [k, name] of Object.entries(v)) {
    if (typeof name !== 'string' || name === '') fail(where, `"${field}.${k}" must be a non-empty string, found ${JSON.stringify(name)}`);
  }
  return recordOf(v as Record<string, string>);
}

function versionPolicy(v: unknown, where: string): VersionPolicy {
  if (v === 'all') return 'all';
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const p = v as Record<string, unknown>;
    if ('latest' in p) return { latest: integer(p.latest, where, 'versionPolicy.latest', 1) };
    if ('specific' in p && Array.isArray(p.specific) && p.specific.length > 0) {
      return { specific: p.specific.map((n, i) => integer(n, where, `versionPolicy.specific[${i}]`, 1)) };
    }
  }
  return fail(where, `"versionPolicy" must be "all", {"latest": N} or {"specific": [versions]}, found ${JSON.stringify(v)}`);
}

function imageConfig(v: unknown, where: string): ModelConfig['image'] {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, `"image" must be an object {"crop": "none"|"center", "size": [height, width]}`);
  const { crop, size, ...rest } = v as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) fail(where, `unknown field "image.${unknown}" (fields: crop, size)`);
  if (crop !== undefined && crop !== 'none' && crop !== 'center') fail(where, `"image.crop" must be "none" or "center", found ${JSON.stringify(crop)}`);
  if (size !== undefined && !(Array.isArray(size) && size.length === 2 && size.every((d) => Number.isInteger(d) && d >= 1 && d <= 16384))) {
    fail(where, `"image.size" must be [height, width] in whole pixels (1 to 16384), found ${JSON.stringify(size)}`);
  }
  return { ...(crop !== undefined ? { crop: crop as 'none' | 'center' } : {}), ...(size !== undefined ? { size: size as [number, number] } : {}) };
}

const FIELDS = new Set(Object.keys(DEFAULT_MODEL_CONFIG));

/** Validates a config object (config.json or serve options) over defaults; unknown fields are errors. */
export function parseModelConfig(raw: unknown, defaults: ModelConfig, where: string): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(where, `expected a JSON object, found ${raw === null ? 'null' : Array.isArray(raw) ? 'a list' : `a ${typeof raw}`}`);
  const c = raw as Record<string, unknown>;
  for (const key of Object.keys(c)) if (!FIELDS.has(key)) fail(where, `unknown field "${key}" (fields: ${[...FIELDS].join(', ')})`);
  const out: ModelConfig = { ...defaults };
  if (c.maxBatchSize !== undefined) {
    out.maxBatchSize = integer(c.maxBatchSize, where, 'maxBatchSize', 0);
    if (c.dynamicBatching === undefined) out.dynamicBatching = out.maxBatchSize > 1;
  }
  if (c.dynamicBatching !== undefined) {
    if (typeof c.dynamicBatching !== 'boolean') fail(where, `"dynamicBatching" must be true or false`);
    out.dynamicBatching = c.dynamicBatching;
  }
  if (c.maxQueueDelayMs !== undefined) {
    if (typeof c.maxQueueDelayMs !== 'number' || !(c.maxQueueDelayMs >= 0) || c.maxQueueDelayMs > 60_000) {
      fail(where, `"maxQueueDelayMs" must be a number in [0, 60000], found ${JSON.stringify(c.maxQueueDelayMs)}`);
    }
    out.maxQueueDelayMs = c.maxQueueDelayMs;
  }
  if (c.queueDelay !== undefined) {
    if (c.queueDelay !== 'fixed' && c.queueDelay !== 'adaptive') fail(where, `"queueDelay" must be "fixed" or "adaptive", found ${JSON.stringify(c.queueDelay)}`);
    out.queueDelay = c.queueDelay;
  }
  if (c.maxQueueSize !== undefined) out.maxQueueSize = integer(c.maxQueueSize, where, 'maxQueueSize', 1);
  if (c.maxQueueBytes !== undefined) out.maxQueueBytes = integer(c.maxQueueBytes, where, 'maxQueueBytes', 1);
  if (c.versionPolicy !== undefined) out.versionPolicy = versionPolicy(c.versionPolicy, where);
  if (c.versionLabels !== undefined) {
    const labels = c.versionLabels;
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) fail(where, `"versionLabels" must map label names to versions`);
    out.versionLabels = record();
    for (const [label, version] of Object.entries(labels)) {
      if (!isValidName(label)) fail(where, `version label ${JSON.stringify(label)} must be letters, digits, '_', '.', '-'`);
      out.versionLabels[label] = integer(version, where, `versionLabels.${label}`, 1);
    }
  }
  if (c.labels !== undefined) {
    if (!Array.isArray(c.labels) || !c.labels.every((l) => typeof l === 'string')) fail(where, `"labels" must be a list of class names`);
    out.labels = c.labels as string[];
  }
  if (c.topK !== undefined) out.topK = integer(c.topK, where, 'topK', 1);
  if (c.image !== undefined) out.image = imageConfig(c.image, where);
  if (c.inputNames !== undefined) out.inputNames = nameMap(c.inputNames, where, 'inputNames');
  if (c.outputNames !== undefined) out.outputNames = nameMap(c.outputNames, where, 'outputNames');
  if (c.instances !== undefined) out.instances = integer(c.instances, where, 'instances', 1);
  if (c.intraOpThreads !== undefined) out.intraOpThreads = integer(c.intraOpThreads, where, 'intraOpThreads', 1);
  return out;
}

/** The versions a policy selects from those on disk. */
export function selectVersions(policy: VersionPolicy, onDisk: readonly number[]): number[] {
  const sorted = [...onDisk].sort((a, b) => b - a);
  if (policy === 'all') return sorted;
  if ('latest' in policy) return sorted.slice(0, policy.latest);
  return sorted.filter((v) => policy.specific.includes(v));
}
