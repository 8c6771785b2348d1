import { platform } from '#platform';
import { KilnError } from '../errors.js';
import type { RuntimeWorker } from '../platform/platform.js';
import { Tensor, typedArrayOver, type AnyTypedArray } from '../tensor.js';
import type { Request, Response, RunOptions, SessionInfo, SessionOptions, WireTensor } from './protocol.js';

export type { RunOptions, SessionOptions } from './protocol.js';

type Pending = { resolve: (r: Response & { ok: true }) => void; reject: (e: Error) => void };

/**
 * A tensor as it travels to the worker. Normally a copy: the caller keeps its tensor, and the copy's
 * buffer moves to the worker without sharing. A caller that hands its tensors over (`handOver`) gives
 * up their buffers instead — moved, not copied, where a tensor owns its whole buffer (a view into a
 * larger one, e.g. a pooled Buffer, is still copied).
 */
function toWire(t: Tensor, transfer: ArrayBuffer[], handOver: boolean): WireTensor {
  const data = t.data as AnyTypedArray;
  const whole = handOver && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  const buffer = whole ? (data.buffer as ArrayBuffer) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice().buffer;
  transfer.push(buffer);
  return { dtype: t.dtype, shape: [...t.shape], buffer };
}

function fromWire(w: WireTensor): Tensor {
  return new Tensor(typedArrayOver(w.dtype, w.buffer) as never, w.shape, w.dtype);
}

/**
 * A worker running ONNX Runtime (the platform's: a worker thread with onnxruntime-node under Node, a
 * Web Worker with onnxruntime-web in a browser): load models into sessions, run them, and keep named
 * state tensors (weights, optimizer state) inside the worker between runs.
 */
export class Runtime {
  private readonly worker: RuntimeWorker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  /** Set when the worker itself failed: later requests fail at once with it, rather than wait for a reply that cannot come. */
  private failure: KilnError | undefined;
  /** Session options every load() starts from (a load's own options win). */
  private readonly sessionDefaults: SessionOptions;

  /**
   * `sessionDefaults` apply to every session this worker loads, e.g. `{intraOpThreads: 1}` for a
   * runtime that runs beside others on a shared machine (parallel tuning trials, one worker each).
   */
  constructor(sessionDefaults: SessionOptions = {}) {
    this.sessionDefaults = { ...sessionDefaults };
    this.worker = platform.startRuntimeWorker();
    this.worker.onReply((res) => this.settle(res as Response));
    this.worker.onError((err) => {
      // A KilnError is the platform's own verdict (a browser that cannot run ONNX Runtime): kept as is.
      const failure = err instanceof KilnError ? err : new KilnError('RUNTIME_ERROR', `runtime worker failed: ${err.message}`, { cause: err });
      this.failure = failure;
      for (const p of this.pending.values()) p.reject(failure);
      this.pending.clear();
    });
    live.add(this);
  }

  private settle(res: Response): void {
    const p = this.pending.get(res.id);
    if (!p) return;
    this.pending.delete(res.id);
    if (res.ok) p.resolve(res);
    else p.reject(res.nonFinite ? new KilnError('NAN_LOSS', res.message) : new KilnError('RUNTIME_ERROR', `ONNX Runtime: ${res.message}`));
  }

  /** Requests sent to the worker and not yet settled. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Settles the requests whose replies have arrived, now rather than when the event loop gets to them. */
  poll(): void {
    if (this.pending.size === 0) return;
    for (const m of this.worker.takeReplies()) this.settle(m as Response);
  }

  private request(body: Record<string, unknown> & { kind: Request['kind'] }, transfer: ArrayBuffer[] = []): Promise<Response & { ok: true }> {
    if (this.closed) return Promise.reject(new KilnError('RUNTIME_ERROR', 'the runtime was closed'));
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.keepAlive(true);
      this.worker.post({ ...body, id }, transfer);
    }).finally(() => {
      if (this.pending.size === 0) this.worker.keepAlive(false);
    }) as Promise<Response & { ok: true }>;
  }

  /** Loads ONNX model bytes into a new ONNX Runtime session in the worker. */
  async load(model: Uint8Array, options: SessionOptions = {}): Promise<SessionInfo> {
    const copy = Uint8Array.from(model).buffer; // a real copy: a Buffer's slice() shares its pool
    const res = await this.request({ kind: 'load', model: copy, options: { ...this.sessionDefaults, ...options } }, [copy]);
    return res.info!;
  }

  /**
   * Runs a session. With `handOver`, the caller gives up the feeds: their buffers move to the worker
   * uncopied and the caller's tensors become unusable (a server's batch, built for this one run).
   */
  async run(session: SessionInfo, feeds: Record<string, Tensor>, options: RunOptions = {}, handOver = false): Promise<Record<string, Tensor>> {
    const transfer: ArrayBuffer[] = [];
    const wire: Record<string, WireTensor> = {};
    for (const [name, t] of Object.entries(feeds)) wire[name] = toWire(t, transfer, handOver);
    const res = await this.request({ kind: 'run', session: session.id, feeds: wire, options }, transfer);
    const out: Record<string, Tensor> = {};
    for (const [name, w] of Object.entries(res.tensors ?? {})) out[name] = fromWire(w);
    return out;
  }

  /**
   * Stores named tensors in the worker, where runs of sessions loaded with the same `stateScope` read
   * them as inputs of the same name.
   */
  async setState(tensors: Record<string, Tensor>, scope?: string): Promise<void> {
    const transfer: ArrayBuffer[] = [];
    const wire: Record<string, WireTensor> = {};
    for (const [name, t] of Object.entries(tensors)) wire[name] = toWire(t, transfer, false);
    await this.request({ kind: 'setState', tensors: wire, scope }, transfer);
  }

  /** Copies named state tensors out of the worker. */
  async getState(names: string[], scope?: string): Promise<Record<string, Tensor>> {
    const res = await this.request({ kind: 'getState', names, scope });
    const out: Record<string, Tensor> = {};
    for (const [name, w] of Object.entries(res.tensors ?? {})) out[name] = fromWire(w);
    return out;
  }

  /** Drops named state tensors from the worker. */
  async deleteState(names: string[], scope?: string): Promise<void> {
    await this.request({ kind: 'deleteState', names, scope });
  }

  /** Frees a session and its memory. */
  async release(session: SessionInfo): Promise<void> {
    await this.request({ kind: 'release', session: session.id });
  }

  /** Releases every session and stops the worker; later calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    live.delete(this);
    // Release the ONNX Runtime sessions inside the worker first: letting thread teardown finalize live
    // sessions has aborted the process at exit ("terminate called after throwing Napi::Error").
    await this.request({ kind: 'shutdown' }).catch(() => undefined);
    this.closed = true;
    await this.worker.terminate();
  }
}

/** Runtimes not yet closed; they are closed cleanly when the process is about to exit. */
const live = new Set<Runtime>();
platform.beforeExit(() => {
  for (const r of [...live]) void r.close();
});

/** Polls every open runtime (see Runtime.poll): a flooded server calls it as requests arrive. */
export function pollRuntimes(): void {
  for (const r of live) r.poll();
}

let shared: Runtime | undefined;

/** The process-wide runtime worker used by models unless they are given their own. */
export function sharedRuntime(): Runtime {
  shared ??= new Runtime();
  return shared;
}
