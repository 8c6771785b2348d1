/*
 * The models a server knows and the state of their versions. Scans of a model source (model-sources.ts:
 * a repository in Triton's layout or fixed models given in code; on file-system events, on a poll
 * interval, on request) decide per model which versions should serve (its version policy) and
 * reconcile, make-before-break: new versions load in the background and take traffic once warmed; an
 * older version keeps serving until every wanted version is available — also when its own files were
 * deleted — so a version that fails to load never takes a model down; versions gone from disk or out
 * of policy then drain and unload. A serving version whose model.onnx is replaced in place (its size,
 * mtime or inode change) loads again beside the old one, which serves until the new one is ready and
 * keeps serving if it fails.
 */
import type { Logger } from 'pino';
import { DEFAULT_MODEL_CONFIG, isValidName, parseVersion, selectVersions, type ModelConfig } from './config.js';
import { badRequest, notFound, unavailable } from './errors.js';
import { labelsMisfit } from './labels.js';
import type { VersionMetrics } from './metrics.js';
import type { ModelSource, ScannedModel } from './model-sources.js';
import { ModelVersion, type VersionSource } from './model-version.js';
import { own } from './records.js';

export class ServedModel {
  config: ModelConfig = DEFAULT_MODEL_CONFIG;
  configError: string | undefined;
  /** The versions taking traffic (or on their way to it, or failed), by number. */
  readonly versions = new Map<number, ModelVersion>();
  /** A serving version's replacement, loading from a changed file (or failed to: then it stays, marking that file as tried). */
  readonly replacements = new Map<number, ModelVersion>();
  onDisk = new Map<number, VersionSource>();
  /** Unloaded through the repository API: serves nothing until loaded again. */
  unloaded = false;
  constructor(readonly name: string) {}

  /** The version requests without a version go to: the newest AVAILABLE one. */
  latestAvailable(): ModelVersion | undefined {
    let best: ModelVersion | undefined;
    for (const v of this.versions.values()) if (v.state === 'AVAILABLE' && (!best || v.version > best.version)) best = v;
    return best;
  }
}

export interface RegistryOptions {
  log: Logger;
  /** Rescan interval in ms (0: only file-system events and explicit reloads). */
  pollIntervalMs: number;
  metricsFor?: (model: string, version: number) => VersionMetrics;
  /** Decrypts versions whose files are encrypted models. */
  modelKey?: Uint8Array;
}

/** How a request names a version: none (the latest available), a number, or a TF Serving label. */
export interface VersionRef {
  version?: string;
  label?: string;
}

export class ModelRegistry {
  readonly models = new Map<string, ServedModel>();
  private scanning: Promise<void> | undefined;
  private scanAgain = false;
  private readonly loads = new Set<Promise<void>>();
  private readonly unloads = new Set<Promise<void>>();
  private stopWatching: (() => void) | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private closed = false;
  private started = false;

  constructor(
    private readonly source: ModelSource,
    private readonly options: RegistryOptions,
  ) {}

  /** First scan and loads (their failures are model states, not errors), then watching and polling. */
  async start(): Promise<void> {
    await this.scan();
    await this.settled();
    this.started = true;
    if (this.closed) return;
    this.stopWatching = this.source.watch?.(() => this.requestScan());
    if (this.options.pollIntervalMs > 0) {
      this.poll = setInterval(() => void this.scan().catch(() => undefined), this.options.pollIntervalMs);
      this.poll.unref();
    }
  }

  /** File-system events come in bursts; one scan follows the last of them. */
  requestScan(): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.scan().catch(() => undefined), 50);
    this.debounce.unref();
  }

  /** Scans now (after any scan in progress) and starts the loads and unloads it calls for. */
  scan(): Promise<void> {
    if (this.scanning) {
      this.scanAgain = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.scanAgain = false;
          await this.scanOnce();
        } while (this.scanAgain && !this.closed);
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    if (this.closed) return;
    let scanned: ScannedModel[];
    try {
      scanned = await this.source.scan();
    } catch (err) {
      this.options.log.error({ err: (err as Error).message }, 'model repository scan failed');
      if (!this.started) throw err;
      return;
    }
    if (this.closed) return;
    const seen = new Set<string>();
    for (const s of scanned) {
      seen.add(s.name);
      let model = this.models.get(s.name);
      if (!model) {
        model = new ServedModel(s.name);
        this.models.set(s.name, model);
      }
      // Class labels that no longer fit a serving version's output make the whole new config invalid.
      const configError = s.configError ?? (s.config ? labelsMisfit(s.config, model.versions.values()) : undefined);
      if (configError !== undefined) {
        if (model.configError !== configError) this.options.log.error({ model: s.name, err: configError }, 'invalid model config; keeping the previous one');
        model.configError = configError;
        // A model never configured successfully loads nothing until its config is fixed.
        if (model.versions.size === 0) continue;
      } else {
        model.configError = undefined;
        if (model.config !== s.config) {
          const changed = JSON.stringify(model.config) !== JSON.stringify(s.config);
          model.config = s.config!;
          for (const [number, v] of model.versions) {
            // A version that failed under the old config (class labels that did not fit, say) loads again under the new one.
            if (changed && v.state === 'FAILED') model.versions.delete(number);
            else v.applyConfig(model.config);
          }
        }
      }
      model.onDisk = s.versions;
      this.reconcile(model);
    }
    for (const model of this.models.values()) {
      if (seen.has(model.name)) continue;
      model.onDisk = new Map();
      this.reconcile(model);
    }
  }

  /** Starts the loads and unloads that bring a model's versions in line with its policy and disk. */
  private reconcile(model: ServedModel): void {
    if (this.closed) return;
    const wanted = model.unloaded ? [] : selectVersions(model.config.versionPolicy, [...model.onDisk.keys()]);
    for (const v of wanted) {
      const source = model.onDisk.get(v)!;
      const current = model.versions.get(v);
      const retry = current && (current.state === 'UNAVAILABLE' || (current.state === 'FAILED' && current.source.stamp !== source.stamp));
      if (!current || retry) this.startLoad(model, source);
    }
    // Make-before-break: a version no longer wanted (deleted, or out of policy) serves until every
    // wanted version has loaded or failed and at least one of them serves — or nothing is wanted.
    const states = wanted.map((v) => model.versions.get(v)?.state);
    const replaced = states.every((s) => s === 'AVAILABLE' || s === 'FAILED') && (wanted.length === 0 || states.includes('AVAILABLE'));
    for (const [v, current] of model.versions) {
      if (wanted.includes(v)) continue;
      if (current.state === 'LOADING' || (current.state === 'AVAILABLE' && replaced)) this.startUnload(model, current);
      else if (!model.onDisk.has(v) && current.state !== 'UNLOADING' && current.state !== 'AVAILABLE') model.versions.delete(v);
    }
    // A replacement goes when its version is no longer wanted or its file changed again (back to
    // what serves, or to something newer, which reconcile then loads as the next replacement).
    for (const [v, replacement] of model.replacements) {
      if (wanted.includes(v) && model.onDisk.get(v)?.stamp === replacement.source.stamp) continue;
      model.replacements.delete(v);
      this.startUnload(model, replacement);
    }
    for (const v of wanted) {
      const current = model.versions.get(v);
      const source = model.onDisk.get(v)!;
      if (current?.state === 'AVAILABLE' && current.source.stamp !== source.stamp && !model.replacements.has(v)) this.startReplacement(model, source);
    }
    if (model.onDisk.size === 0 && model.versions.size === 0) this.models.delete(model.name);
  }

  private newVersion(model: ServedModel, source: VersionSource): ModelVersion {
    return new ModelVersion(model.name, source, model.config, this.options.log, this.options.metricsFor?.(model.name, source.version), this.options.modelKey);
  }

  private startLoad(model: ServedModel, source: VersionSource): void {
    const version = this.newVersion(model, source);
    model.versions.set(source.version, version);
    this.track(version.load(), () => this.reconcile(model));
  }

  /**
   * Loads a serving version's changed file beside it; once warmed it takes the traffic and the old
   * one drains. A replacement that fails stays recorded (so the same file is not retried) and the old
   * one keeps serving.
   */
  private startReplacement(model: ServedModel, source: VersionSource): void {
    const replacement = this.newVersion(model, source);
    model.replacements.set(source.version, replacement);
    this.options.log.info({ model: model.name, version: source.version }, 'model file replaced; loading it beside the serving one');
    this.track(replacement.load(), () => {
      // Superseded while it loaded: reconcile already dropped it (and unloads it).
      if (model.replacements.get(source.version) !== replacement) return;
      const current = model.versions.get(source.version);
      if (replacement.state !== 'AVAILABLE') {
        if (replacement.state === 'FAILED') this.options.log.error({ model: model.name, version: source.version, err: replacement.error }, 'the replaced model file failed to load; the previous one keeps serving');
        return;
      }
      model.replacements.delete(source.version);
      model.versions.set(source.version, replacement);
      if (current) this.startUnload(model, current);
      this.reconcile(model);
    });
  }

  private track(load: Promise<void>, then: () => void): void {
    const done = load.then(() => {
      this.loads.delete(done);
      then();
    });
    this.loads.add(done);
  }

  private startUnload(model: ServedModel, version: ModelVersion): void {
    const done = version.unload().then(() => {
      this.unloads.delete(done);
      if (!model.onDisk.has(version.version) && model.versions.get(version.version) === version && version.state !== 'LOADING') {
        model.versions.delete(version.version);
      }
      if (model.onDisk.size === 0 && model.versions.size === 0 && this.models.get(model.name) === model) this.models.delete(model.name);
    });
    this.unloads.add(done);
  }

  /** Resolves when no scan, load or unload is in progress. */
  async settled(): Promise<void> {
    while (this.scanning || this.loads.size > 0 || this.unloads.size > 0) {
      await Promise.all([this.scanning, ...this.loads, ...this.unloads]);
    }
  }

  /** Every version of every model. */
  *versions(): Iterable<ModelVersion> {
    for (const m of this.models.values()) yield* m.versions.values();
  }

  model(name: string): ServedModel {
    if (!isValidName(name)) throw badRequest(`invalid model name ${JSON.stringify(name)}: expected letters, digits, '_', '.', '-' (at most 128)`);
    const model = this.models.get(name);
    if (!model) throw notFound(`unknown model '${name}'`);
    return model;
  }

  /** The version a request addresses, if it can take traffic: 400 malformed, 404 unknown, 503 not ready. */
  resolve(name: string, ref: VersionRef = {}): ModelVersion {
    const model = this.model(name);
    let number: number | undefined;
    if (ref.label !== undefined) {
      if (!isValidName(ref.label)) throw badRequest(`invalid version label ${JSON.stringify(ref.label)}`);
      number = own(model.config.versionLabels, ref.label) as number | undefined;
      if (number === undefined) {
        const known = Object.keys(model.config.versionLabels);
        throw notFound(`model '${name}' has no version label '${ref.label}'${known.length ? ` (labels: ${known.join(', ')})` : ''}`);
      }
    } else if (ref.version !== undefined) {
      number = parseVersion(ref.version);
      if (number === undefined) throw badRequest(`invalid version ${JSON.stringify(ref.version)}: expected a positive integer`);
    }
    if (number === undefined) {
      const latest = model.latestAvailable();
      if (!latest) throw unavailable(`model '${name}' has no version ready (${describeVersions(model) || 'no versions'})`);
      return latest;
    }
    const version = model.versions.get(number);
    if (!version) {
      throw notFound(`model '${name}' has no version ${number}${ref.label ? ` (label '${ref.label}')` : ''} (versions: ${[...model.versions.keys()].join(', ') || 'none'})`);
    }
    if (version.state !== 'AVAILABLE') throw unavailable(`${version.what} is not ready: ${version.state}${version.error ? ` (${version.error})` : ''}`);
    return version;
  }

  /** Server readiness: started, not closing, and every model with at least one version serving. */
  isReady(): boolean {
    if (!this.started || this.closed) return false;
    for (const m of this.models.values()) if (!m.unloaded && !m.latestAvailable()) return false;
    return true;
  }

  /** Repository API: serve a model again after unload (and rescan). */
  async loadModel(name: string): Promise<void> {
    const model = this.models.get(name);
    if (model) model.unloaded = false;
    await this.scan();
    await this.settled();
    if (!this.models.has(name)) throw notFound(`unknown model '${name}': no such directory in the repository`);
  }

  /** Repository API: drain and unload every version of a model until it is loaded again. */
  async unloadModel(name: string): Promise<void> {
    const model = this.model(name);
    model.unloaded = true;
    this.reconcile(model);
    await this.settled();
  }

  /** Stops watching; drains every version (in-flight requests finish) and frees its sessions. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.poll);
    clearTimeout(this.debounce);
    this.stopWatching?.();
    await this.scanning?.catch(() => undefined);
    await Promise.all(this.loads);
    await Promise.all([...this.versions()].map((v) => v.unload()));
    await Promise.all(this.unloads);
  }
}

function describeVersions(model: ServedModel): string {
  return [...model.versions.values()].map((v) => `version ${v.version} ${v.state}${v.error ? `: ${v.error}` : ''}`).join('; ');
}
