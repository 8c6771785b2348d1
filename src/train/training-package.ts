// Owns the training package: a model's compiled training step, its evaluation step, its inference
// graph, the model file, the state training starts from (weights, optimizer slots, step) and a
// manifest, so a page (or any ONNX Runtime) can train a model defined elsewhere without Kiln's layers.
// This file builds a package in memory and reads one back, checking it is whole and of this Kiln
// version; export-trainer.ts writes one to a folder, trainer.ts trains from one.
import { platform } from '#platform';
import { KilnError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { KILN_VERSION } from '../version.js';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint.js';
import type { TrainableModel } from './model.js';
import type { AccuracyKind, FlatSlot } from './training-step.js';

export const TRAINER_FORMAT = 'kiln-trainer';
/** Bumped when the layout of a package changes; Kiln also refuses packages of another Kiln version. */
export const TRAINER_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';

/** The files of a package: training step, evaluation step, inference graph, model file, starting state. */
export type TrainerFileRole = 'trainStep' | 'evalStep' | 'inference' | 'model' | 'state';

/** The files of a package by role, with the names they have in its folder. */
export const TRAINER_FILES: Record<TrainerFileRole, string> = {
  trainStep: 'train-step.onnx',
  evalStep: 'eval-step.onnx',
  inference: 'inference.onnx',
  model: 'model.onnx',
  state: 'state.ckpt',
};

/** A training package's manifest.json: what the package holds and what wrote it. */
export interface TrainerManifest {
  /** Always 'kiln-trainer'. */
  format: typeof TRAINER_FORMAT;
  /** The package layout's version (TRAINER_FORMAT_VERSION when written). */
  formatVersion: number;
  /** The Kiln version that wrote it; another version refuses the package. */
  kilnVersion: string;
  /** The model's name. */
  name: string;
  /** One example's input and output shapes (no batch dimension). */
  inputShape: number[];
  /** One example's output shape. */
  outputShape: number[];
  /** The loss compiled into the steps, by name and configuration. */
  loss: {
    /** The loss's name. */
    name: string;
    /** Its settings. */
    config: Record<string, unknown>;
  };
  /** The optimizer compiled into the training step, by name and configuration. */
  optimizer: {
    /** The optimizer's name. */
    name: string;
    /** Its settings (learning rate, betas, ...). */
    config: Record<string, unknown>;
  };
  /** The metrics fit() reports. */
  metrics: string[];
  /** How the steps count accuracy (from the loss), or null when they do not. */
  accuracy: AccuracyKind;
  /** Where each trainable weight sits in the flat parameter vector (state/params). */
  layout: FlatSlot[];
  /** Elements in the flat parameter vector. */
  totalSize: number;
  /** Non-trainable weights the steps read and update by name (moving statistics). */
  frozen: string[];
  /** Training-step outputs stored back as state (output name → state name). */
  store: Record<string, string>;
  /** Each file by role: its name in the folder, size and SHA-256 (hex), checked on reading. */
  files: Record<
    TrainerFileRole,
    {
      /** Its name in the package's folder. */
      path: string;
      /** Its size in bytes. */
      bytes: number;
      /** Its SHA-256, lowercase hex. */
      sha256: string;
    }
  >;
}

/** A training package in memory: the manifest and each file's bytes. */
export interface TrainingPackage {
  /** What the package holds. */
  manifest: TrainerManifest;
  /** The files' bytes by role. */
  files: Record<TrainerFileRole, Uint8Array>;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The package of a compiled model: its steps, and the state its training has reached (fresh before fit). */
export async function trainingPackage(model: TrainableModel): Promise<TrainingPackage> {
  // The Trainer feeds one float32 input ('input'); refused here rather than shipped as a package no page can train.
  const others = model.otherInputs;
  if (model.inputDtype !== 'float32' || others.length > 0) {
    throw new KilnError('INVALID_ARGUMENT', `a training package trains a model of one float32 input (images, vectors); '${model.name}' takes ${others.length > 0 ? `${others.length + 1} inputs` : `${model.inputDtype} token ids`}: train it in Node (fit)`);
  }
  const { steps, weights, slots, step, inference } = model.trainingSnapshot();
  const t = steps.training;
  const fresh = (initial: number) => new Tensor(new Float32Array(t.totalSize).fill(initial), [t.totalSize], 'float32');
  const state = encodeCheckpoint({
    epoch: 0,
    step,
    rngState: [],
    optimizer: { name: steps.optimizer.name, config: steps.optimizer.config },
    weights: weights as Map<string, Tensor<'float32'>>,
    slots: new Map(steps.optimizer.slots.map((s) => [s.name, slots.get(s.name) ?? fresh(s.initial)])),
  });
  const files: Record<TrainerFileRole, Uint8Array> = {
    trainStep: t.trainStep,
    evalStep: t.evalStep,
    inference,
    model: model.toOnnx(),
    state,
  };
  const described = {} as TrainerManifest['files'];
  for (const role of Object.keys(TRAINER_FILES) as TrainerFileRole[]) {
    described[role] = { path: TRAINER_FILES[role], bytes: files[role].length, sha256: await sha256(files[role]) };
  }
  const manifest: TrainerManifest = {
    format: TRAINER_FORMAT,
    formatVersion: TRAINER_FORMAT_VERSION,
    kilnVersion: KILN_VERSION,
    name: model.name,
    inputShape: [...model.inputShape],
    outputShape: [...model.outputShape],
    loss: { name: steps.loss.name, config: steps.loss.config },
    optimizer: { name: steps.optimizer.name, config: steps.optimizer.config },
    metrics: steps.metrics,
    accuracy: t.accuracy,
    layout: t.layout,
    totalSize: t.totalSize,
    frozen: t.frozen,
    store: t.store,
    files: described,
  };
  return { manifest, files };
}

/** `name` inside a package folder or under a package URL. */
function inside(location: string, name: string): string {
  return location.endsWith('/') ? `${location}${name}` : `${location}/${name}`;
}

async function readPart(location: string, name: string, what: string): Promise<Uint8Array> {
  try {
    return await platform.readFile(inside(location, name));
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'ENOENT') throw new KilnError('FILE_NOT_FOUND', `training package '${location}' has no ${name} (${what}): not a complete package`);
    throw new KilnError('IO_ERROR', `could not read ${name} of training package '${location}': ${e.message}`, { cause: err });
  }
}

/**
 * Checks a manifest: a Kiln training package, of this format and this Kiln version. The version must
 * match exactly: the graphs' input and state names are Kiln's, and another version may name them
 * otherwise.
 */
export function checkManifest(value: unknown, location: string): TrainerManifest {
  const m = value as Partial<TrainerManifest> | null;
  if (!m || typeof m !== 'object' || m.format !== TRAINER_FORMAT) {
    throw new KilnError('CORRUPT_FILE', `'${inside(location, MANIFEST_FILE)}' is not a Kiln training package manifest (format ${JSON.stringify(m?.format)}, expected '${TRAINER_FORMAT}')`);
  }
  if (m.formatVersion !== TRAINER_FORMAT_VERSION || m.kilnVersion !== KILN_VERSION) {
    throw new KilnError(
      'VERSION_MISMATCH',
      `training package '${location}' was written by Kiln ${m.kilnVersion} (package format ${m.formatVersion}); this is Kiln ${KILN_VERSION} (format ${TRAINER_FORMAT_VERSION}): export it again with this version's \`kiln export-trainer\``,
    );
  }
  for (const field of ['inputShape', 'outputShape', 'layout', 'frozen', 'files', 'loss', 'optimizer', 'store'] as const) {
    if (m[field] === undefined) throw new KilnError('CORRUPT_FILE', `training package '${location}': the manifest has no '${field}'`);
  }
  return m as TrainerManifest;
}

/**
 * Reads a package from a folder (Node) or a URL (a browser fetches it), checking the manifest and
 * every file's size and SHA-256 against it, so a damaged or mixed-up file is named, never trained on.
 */
export async function readTrainingPackage(location: string): Promise<TrainingPackage> {
  const raw = await readPart(location, MANIFEST_FILE, 'the manifest');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(raw));
  } catch (err) {
    throw new KilnError('CORRUPT_FILE', `'${inside(location, MANIFEST_FILE)}' is not valid JSON (${(err as Error).message}): the package is damaged`);
  }
  const manifest = checkManifest(json, location);
  const files = {} as Record<TrainerFileRole, Uint8Array>;
  for (const role of Object.keys(TRAINER_FILES) as TrainerFileRole[]) {
    const entry = manifest.files[role];
    if (!entry) throw new KilnError('CORRUPT_FILE', `training package '${location}': the manifest lists no ${role} file`);
    const bytes = await readPart(location, entry.path, role);
    if (bytes.length !== entry.bytes) {
      throw new KilnError('CORRUPT_FILE', `training package '${location}': ${entry.path} has ${bytes.length} bytes, the manifest says ${entry.bytes} (truncated or replaced)`);
    }
    const digest = await sha256(bytes);
    if (digest !== entry.sha256) {
      throw new KilnError('CORRUPT_FILE', `training package '${location}': ${entry.path} has SHA-256 ${digest}, the manifest says ${entry.sha256} (damaged or replaced)`);
    }
    files[role] = bytes;
  }
  // The state must be the one these steps train: its weights and slots fit the layout.
  const state = decodeCheckpoint(files.state, inside(location, manifest.files.state.path));
  for (const slot of manifest.layout) {
    const w = state.weights.get(slot.name);
    if (!w || w.size !== slot.size) throw new KilnError('CORRUPT_FILE', `training package '${location}': the state has ${w ? `${w.size} values` : 'no weight'} for '${slot.name}', the layout ${slot.size}`);
  }
  return { manifest, files };
}
