/*
 * Where a server's models come from: a repository in Triton's layout (DIR/<model>/<version>/model.onnx,
 * or model.onnx.enc encrypted; an optional DIR/<model>/config.json), scanned and watched for changes, or fixed models given in code.
 * A scan reports what is there now (each version's file, a stamp that changes when the file does, and
 * config errors); what to do about it is the registry's business (registry.ts).
 * Nothing is read through a link that leads out of the repository, and messages name files by their
 * path inside it: clients see them, and must not learn where the server keeps its files.
 */
import { watch, type FSWatcher } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { KilnError } from '../errors.js';
import { isValidName, parseModelConfig, parseVersion, type ModelConfig } from './config.js';
import type { VersionSource } from './model-version.js';
import { parseLabelsFile } from './labels.js';
import { isInside, readInside } from './repository-files.js';

export interface ScannedModel {
  name: string;
  config?: ModelConfig;
  configError?: string;
  versions: Map<number, VersionSource>;
}

export interface ModelSource {
  /** What is there now. Throws when the source itself is unreadable. */
  scan(): Promise<ScannedModel[]>;
  /** Calls onChange after file-system events; returns a function that stops watching. */
  watch?(onChange: () => void): () => void;
}

/** Fixed models (one file or bytes per model, served as version 1). */
export class FixedSource implements ModelSource {
  constructor(private readonly models: { name: string; file?: string; bytes?: Uint8Array; config: ModelConfig }[]) {
    for (const m of models) if (!isValidName(m.name)) throw new KilnError('INVALID_ARGUMENT', `model name '${m.name}' must be letters, digits, '_', '.', '-' (at most 128)`);
  }
  async scan(): Promise<ScannedModel[]> {
    return this.models.map((m) => ({
      name: m.name,
      config: m.config,
      versions: new Map([[1, { version: 1, file: m.file, shownAs: m.file !== undefined ? path.basename(m.file) : undefined, bytes: m.bytes, stamp: 'fixed' }]]),
    }));
  }
}

/** A version's model file: plain ONNX, or encrypted (either may be either: the loader reads the header). */
const MODEL_FILES = ['model.onnx', 'model.onnx.enc'] as const;

/** A model repository directory, Triton's layout. Nothing outside it is ever read. */
export class RepositorySource implements ModelSource {
  private readonly warned = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly defaults: ModelConfig,
    private readonly log: Logger,
  ) {}

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn({ repository: this.dir, entry: key }, message);
  }

  async scan(): Promise<ScannedModel[]> {
    let root: string;
    try {
      root = await fs.realpath(this.dir);
      if (!(await fs.stat(root)).isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new KilnError('FILE_NOT_FOUND', `model repository '${this.dir}' is not a readable directory (${(err as Error).message})`);
    }
    const models: ScannedModel[] = [];
    for (const entry of await fs.readdir(root)) {
      if (entry.startsWith('.')) continue;
      if (!isValidName(entry)) {
        this.warnOnce(entry, `skipping '${entry}': model names are letters, digits, '_', '.', '-'`);
        continue;
      }
      const dir = path.join(root, entry);
      const real = await fs.realpath(dir).catch(() => undefined);
      if (real === undefined || !(await fs.stat(real).catch(() => undefined))?.isDirectory()) continue;
      if (!isInside(root, real)) {
        this.warnOnce(entry, `skipping '${entry}': it links to a directory outside the model repository`);
        continue;
      }
      models.push(await this.scanModel(root, entry, real));
    }
    return models;
  }

  private async scanModel(root: string, name: string, dir: string): Promise<ScannedModel> {
    const model: ScannedModel = { name, versions: new Map() };
    const shownConfig = `${name}/config.json`;
    try {
      const text = (await readInside(root, path.join(dir, 'config.json'), shownConfig)).toString('utf8');
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        throw new KilnError('INVALID_ARGUMENT', `${shownConfig}: not valid JSON`);
      }
      model.config = parseModelConfig(raw, this.defaults, shownConfig);
    } catch (err) {
      if ((err as { errno?: unknown }).errno === 'ENOENT') model.config = this.defaults;
      else model.configError = err instanceof KilnError ? err.message : `${shownConfig} cannot be read`;
    }
    if (model.config) await this.readLabels(root, name, dir, model);
    for (const entry of await fs.readdir(dir).catch(() => [] as string[])) {
      const version = parseVersion(entry);
      if (version === undefined) continue;
      // model.onnx, or an encrypted model.onnx.enc (`kiln encrypt`); both at once is ambiguous.
      const [plain, encrypted] = await Promise.all(MODEL_FILES.map((f) => fs.stat(path.join(dir, entry, f)).catch(() => undefined)));
      const fileName = plain?.isFile() ? MODEL_FILES[0] : MODEL_FILES[1];
      const shownAs = `${name}/${entry}/${fileName}`;
      const file = path.join(dir, entry, fileName);
      const stat = plain?.isFile() ? plain : encrypted;
      if (!stat?.isFile()) continue;
      const real = await fs.realpath(file).catch(() => file);
      const source: VersionSource = { version, file: real, shownAs, stamp: `${stat.size}:${stat.mtimeMs}:${stat.ino}`, read: () => readInside(root, file, shownAs) };
      if (!isInside(root, real)) source.error = `${shownAs} links to a file outside the model repository; refusing to load it`;
      else if (plain?.isFile() && encrypted?.isFile()) source.error = `${name}/${entry} holds both model.onnx and model.onnx.enc; keep one`;
      model.versions.set(version, source);
    }
    return model;
  }

  /** DIR/<model>/labels.txt, one class name per line (Triton's and TorchServe's habit), into the config's labels. */
  private async readLabels(root: string, name: string, dir: string, model: ScannedModel): Promise<void> {
    const shown = `${name}/labels.txt`;
    let text: string;
    try {
      text = (await readInside(root, path.join(dir, 'labels.txt'), shown)).toString('utf8');
    } catch (err) {
      if ((err as { errno?: unknown }).errno !== 'ENOENT') model.configError = err instanceof KilnError ? err.message : `${shown} cannot be read`;
      return;
    }
    try {
      if (model.config!.labels !== this.defaults.labels) throw new KilnError('INVALID_ARGUMENT', `${shown} and ${name}/config.json "labels" both name the classes; keep one`);
      model.config = { ...model.config!, labels: parseLabelsFile(text, shown) };
    } catch (err) {
      model.config = undefined;
      model.configError = (err as Error).message;
    }
  }

  watch(onChange: () => void): () => void {
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(this.dir, { recursive: true, persistent: false }, () => onChange());
      watcher.on('error', (err) => {
        this.log.warn({ err: err.message }, 'repository watch failed; relying on the poll interval');
        watcher?.close();
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot watch the repository; relying on the poll interval');
    }
    return () => watcher?.close();
  }
}
