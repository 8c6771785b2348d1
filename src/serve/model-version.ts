import type { Logger } from 'pino';
import { describeModel, type ModelDescription } from '../model/onnx-model.js';
import { parseOnnx, readOnnxFile } from '../model/read-model.js';
import { Runtime } from '../runtime/runtime.js';
import type { SessionInfo } from '../runtime/protocol.js';
import { allocate, Tensor } from '../tensor.js';
import { Batcher, type BatchSettings, type Runner } from './batcher.js';
import type { ModelConfig } from './config.js';
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
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return this.runtime.run(this.session, feeds);
  }
}

export function batchSettings(config: ModelConfig, signature: Signature): BatchSettings {
  return {
    batching: signature.batchable && config.dynamicBatching && config.maxBatchSize > 1,
    maxBatchSize: config.maxBatchSize,
    maxQueueDelayMs: config.maxQueueDelayMs,
    maxQueueSize: config.maxQueueSize,
  };
}

/** Zeros for every input, variable dimensions set to `rows` (first) or 1; undefined if a rank is unknown. */
function warmupFeeds(signature: Signature, rows: number): Record<string, Tensor> | undefined {
  const feeds: Record<string, Tensor> = {};
  for (const input of signature.inputs) {
    if (!input.shape) return undefined;
    const shape = input.shape.map((d, i) => (d !== -1 ? d : i === 0 ? rows : 1));
    feeds[input.onnxName] = new Tensor(allocate(input.dtype, shape.reduce((a, b) => a * b, 1)) as never, shape, input.dtype);
  }
  return feeds;
}

export class ModelVersion {
  state: VersionState = 'LOADING';
  error: string | undefined;
  description: ModelDescription | undefined;
  signature: Signature | undefined;
  batcher: Batcher | undefined;
  config: ModelConfig;
  private runtimes: Runtime[] = [];
  private runners: SessionRunner[] = [];
  private inflight = 0;
  private idle: (() => void)[] = [];
  private cancelled = false;

  constructor(
    readonly model: string,
    readonly source: VersionSource,
    config: ModelConfig,
    private readonly log: Logger,
    readonly metrics?: VersionMetrics,
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
      const { bytes, proto } = this.source.file ? await readOnnxFile(this.source.file) : { bytes: this.source.bytes!, proto: parseOnnx(this.source.bytes!, this.what) };
      this.description = describeModel(proto, bytes.length);
      this.signature = signatureOf(this.description, this.config);
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
      this.error = err instanceof Error ? err.message : String(err);
      this.log.error({ model: this.model, version: this.version, err: this.error }, 'model version failed to load');
      return;
    }
    if (this.cancelled) {
      await this.closeRunners();
      this.state = 'UNAVAILABLE';
      return;
    }
    this.state = 'AVAILABLE';
    this.log.info({ model: this.model, version: this.version, ms: Date.now() - started, batchable: this.signature.batchable, batching: this.batcher.settings.batching }, 'model version available');
  }

  /** One run per session at batch 1 (and at maxBatchSize when batching) so first requests pay no setup. */
  private async warm(): Promise<void> {
    const sizes = [1];
    if (this.batcher!.settings.batching) sizes.push(this.config.maxBatchSize);
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
        if (this.batcher) this.batcher.settings = batchSettings(config, this.signature);
      } catch {
        // The description was accepted at load time; a renaming cannot make it unservable.
      }
    }
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
