import type { Logger } from 'pino';
import { describeModel, type ModelDescription } from '../model/onnx-model.js';
import { openModelBytes, readOnnxFile, withExternalData } from '../model/read-model.js';
import { Runtime } from '../runtime/runtime.js';
import type { SessionInfo } from '../runtime/protocol.js';
import { allocate, Tensor } from '../tensor.js';
import { Batcher, type BatchSettings, type Runner } from './batcher.js';
import type { ModelConfig } from './config.js';
import { ServeError } from './errors.js';
import { record } from './records.js';
import { classifierOf, type Classifier } from './labels.js';
import type { VersionMetrics } from './metrics.js';
import { signatureOf, type Signature } from './signature.js';

/*
 * One version of one model and its life: LOADING (read, sessions created, warmed) → AVAILABLE (takes
 * traffic) → UNLOADING (no new requests; in-flight ones finish) → UNAVAILABLE. A version that cannot
 * be read, decoded, loaded or warmed is FAILED, with the reason, and never takes traffic.
 */

export type VersionState = 'LOADING' | 'AVAILABLE' | 'UNLOADING' | 'UNAVAILABLE' | 'FAILED';

/** Where a version's bytes come from, and a stamp that changes when the file does. */
export interface VersionSource {
  version: number;
  file?: string;
  /** How messages name the file (its path inside the repository): clients see them, and must not learn server paths. */
  shownAs?: string;
  /** Reads the file (a repository's: never through a link out of it); without it, `file` is read by name. */
  read?: () => Promise<Uint8Array>;
  bytes?: Uint8Array;
  stamp: string;
  /** Set when the repository scan already knows the version cannot load (e.g. a path escape). */
  error?: string;
}

/** An ONNX Runtime session in its own worker thread. */
class SessionRunner implements Runner {
  constructor(
    private readonly runtime: Runtime,
    private readonly session: SessionInfo,
  ) {}
  run(feeds: Record<string, Tensor>, handOver = false): Promise<Record<string, Tensor>> {
    return this.runtime.run(this.session, feeds, {}, handOver);
  }
}

export function batchSettings(config: ModelConfig, signature: Signature): BatchSettings {
  return {
    batching: signature.batchable && config.dynamicBatching && config.maxBatchSize > 1,
    maxBatchSize: config.maxBatchSize,
    maxQueueDelayMs: config.maxQueueDelayMs,
    queueDelay: config.queueDelay,
    maxQueueSize: config.maxQueueSize,
  };
}

/** Zeros for every input, variable dimensions set to `rows` (first) or 1; undefined if a rank is unknown. */
function warmupFeeds(signature: Signature, rows: number): Record<string, Tensor> | undefined {
  const feeds = record<Tensor>();
  for (const input of signature.inputs) {
    if (!input.shape) return undefined;
    const shape = input.shape.map((d, i) => (d !== -1 ? d : i === 0 ? rows : 1));
    feeds[input.onnxName] = new Tensor(allocate(input.dtype, shape.reduce((a, b) => a * b, 1)) as never, shape, input.dtype);
  }
  return feeds;
}

/** What admission knows of a request body: the size its headers declare (Infinity when chunked) and the bytes that have arrived. */
export interface BodyProgress {
  declared: number;
  received(): number;
}

/** Input elements a warm-up run may feed: loading a version must not itself take much memory. */
const WARM_ELEMENTS = 1 << 20;

export class ModelVersion {
  state: VersionState = 'LOADING';
  error: string | undefined;
  /** When the version started taking traffic. */
  availableSince: Date | undefined;
  description: ModelDescription | undefined;
  signature: Signature | undefined;
  /** The first output as class scores, with the class names (labels.ts); undefined when it is not [N, classes]. */
  classifier: Classifier | undefined;
  batcher: Batcher | undefined;
  config: ModelConfig;
  private runtimes: Runtime[] = [];
  private runners: SessionRunner[] = [];
  private inflight = 0;
  private idle: (() => void)[] = [];
  /** Requests admitted (from their headers) and not yet answered, with their bodies' progress. */
  private readonly admitted = new Set<BodyProgress>();
  /** The sizes their headers declare, summed, and how many declare none (chunked): with none, the sum bounds what they hold. */
  private admittedDeclared = 0;
  private admittedChunked = 0;
  private cancelled = false;

  constructor(
    readonly model: string,
    readonly source: VersionSource,
    config: ModelConfig,
    private readonly log: Logger,
    readonly metrics?: VersionMetrics,
    /** The key of encrypted model files: they are decrypted in memory, never written out. */
    private readonly modelKey?: Uint8Array,
  ) {
    this.config = config;
  }

  get version(): number {
    return this.source.version;
  }

  get what(): string {
    return `model '${this.model}' version ${this.version}`;
  }

  /** Reads, loads and warms the version; never throws (failure is the FAILED state). */
  async load(): Promise<void> {
    const started = Date.now();
    this.log.info({ model: this.model, version: this.version }, 'loading model version');
    try {
      if (this.source.error) throw new Error(this.source.error);
      const { file, read, shownAs, bytes: given } = this.source;
      let bytes: Uint8Array;
      let proto;
      // A repository's version is read through its checks, then its external data from beside it.
      if (read) {
        const opened = await openModelBytes(await read(), shownAs ?? this.what, this.modelKey);
        ({ bytes, proto } = file ? await withExternalData(opened, file, shownAs ?? this.what) : opened);
      } else if (file) ({ bytes, proto } = await readOnnxFile(file, this.modelKey));
      else ({ bytes, proto } = await openModelBytes(given!, this.what, this.modelKey));
      this.description = describeModel(proto, bytes.length);
      this.signature = signatureOf(this.description, this.config);
      this.classifier = classifierOf(proto, this.description, this.signature, this.config);
      for (let i = 0; i < this.config.instances; i++) {
        const runtime = new Runtime();
        this.runtimes.push(runtime);
        // Idle ONNX Runtime threads must not spin: they would take the CPU the HTTP thread needs.
        this.runners.push(new SessionRunner(runtime, await runtime.load(bytes, { intraOpThreads: this.config.intraOpThreads, allowSpinning: false })));
      }
      this.batcher = new Batcher(this.runners, batchSettings(this.config, this.signature), this.what, this.metrics);
      await this.warm();
    } catch (err) {
      await this.closeRunners();
      this.state = 'FAILED';
      const message = err instanceof Error ? err.message : String(err);
      const { file, shownAs } = this.source;
      this.error = file !== undefined && shownAs !== undefined ? message.split(file).join(shownAs) : message;
      this.log.error({ model: this.model, version: this.version, err: this.error }, 'model version failed to load');
      return;
    }
    if (this.cancelled) {
      await this.closeRunners();
      this.state = 'UNAVAILABLE';
      return;
    }
    this.state = 'AVAILABLE';
    this.availableSince = new Date();
    this.log.info({ model: this.model, version: this.version, ms: Date.now() - started, batchable: this.signature.batchable, batching: this.batcher.settings.batching }, 'model version available');
  }

  /**
   * One run per session at batch 1 (and, when batching, at maxBatchSize rows, or as many as fit in
   * WARM_ELEMENTS input elements) so first requests pay no setup.
   */
  private async warm(): Promise<void> {
    const sizes = [1];
    if (this.batcher!.settings.batching) {
      const rowElements = Math.max(1, ...this.signature!.inputs.map((i) => (i.shape ?? []).slice(1).reduce((a, d) => a * Math.max(1, d), 1)));
      const rows = Math.min(this.config.maxBatchSize, Math.floor(WARM_ELEMENTS / rowElements));
      if (rows > 1) sizes.push(rows);
    }
    for (const rows of sizes) {
      const feeds = warmupFeeds(this.signature!, rows);
      if (!feeds) return;
      await Promise.all(this.runners.map((r) => r.run(feeds)));
    }
  }

  /** New config (config.json changed): names and batching settings apply at once. */
  applyConfig(config: ModelConfig): void {
    this.config = config;
    if (this.description && this.state !== 'FAILED') {
      try {
        this.signature = signatureOf(this.description, config);
        this.classifier = classifierOf(undefined, this.description, this.signature, config, this.classifier);
        if (this.batcher) this.batcher.settings = batchSettings(config, this.signature);
      } catch {
        // The description was accepted at load time; a renaming cannot make it unservable.
      }
    }
  }

  /**
   * Admission from a request's headers, before its body is read or parsed: refused with 429 when the
   * queue is full, when as many requests are admitted as can be queued and running, or when the
   * bytes admitted bodies hold so far plus this body's declared size would pass maxQueueBytes (one
   * request is always admitted). Admitted bodies count by the bytes that have arrived, not by what
   * their headers announce: a client announcing large bodies and then stalling holds nothing.
   * Returns the release, to call once the request is answered.
   */
  admit(body: BodyProgress): () => void {
    const { maxQueueSize, maxQueueBytes, maxBatchSize, instances } = this.config;
    const queued = this.batcher?.queued ?? 0;
    const capacity = maxQueueSize + instances * Math.max(1, maxBatchSize);
    let refusal: string | undefined;
    if (queued >= maxQueueSize) refusal = `the request queue is full (${queued} requests waiting, maxQueueSize ${maxQueueSize})`;
    else if (this.admitted.size >= capacity) refusal = `${this.admitted.size} requests are already admitted (maxQueueSize ${maxQueueSize} plus ${capacity - maxQueueSize} running)`;
    else if (this.admitted.size > 0) {
      const declared = Number.isFinite(body.declared) ? body.declared : 0;
      // Counting arrived bytes reads every admitted socket; the declared sizes bound it, and usually settle it.
      if (this.admittedChunked > 0 || this.admittedDeclared + declared > maxQueueBytes) {
        let held = 0;
        for (const other of this.admitted) held += Math.min(other.declared, other.received());
        if (held + declared > maxQueueBytes) refusal = `admitted request bodies would take ${held + declared} bytes, more than maxQueueBytes ${maxQueueBytes}`;
      }
    }
    if (refusal !== undefined) throw new ServeError(429, `${this.what}: ${refusal}; retry later`);
    const chunked = !Number.isFinite(body.declared);
    const finite = chunked ? 0 : body.declared;
    this.admitted.add(body);
    this.admittedDeclared += finite;
    if (chunked) this.admittedChunked++;
    return () => {
      if (!this.admitted.delete(body)) return;
      this.admittedDeclared -= finite;
      if (chunked) this.admittedChunked--;
    };
  }

  /** Counts a request in flight (the caller checked AVAILABLE); returns its release. */
  acquire(): () => void {
    this.inflight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.inflight === 0) for (const wake of this.idle.splice(0)) wake();
    };
  }

  /** Stops taking traffic, waits for in-flight requests, then frees the sessions. */
  async unload(): Promise<void> {
    if (this.state === 'LOADING') {
      this.cancelled = true;
      return;
    }
    if (this.state !== 'AVAILABLE') return;
    this.state = 'UNLOADING';
    this.log.info({ model: this.model, version: this.version, inflight: this.inflight }, 'draining model version');
    if (this.inflight > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    await this.closeRunners();
    this.state = 'UNAVAILABLE';
    this.log.info({ model: this.model, version: this.version }, 'model version unloaded');
  }

  private async closeRunners(): Promise<void> {
    this.runners = [];
    const runtimes = this.runtimes.splice(0);
    await Promise.all(runtimes.map((r) => r.close().catch(() => undefined)));
  }
}
