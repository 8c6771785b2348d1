/*
 * The inside of a runtime worker, the same under Node and in a browser: ONNX Runtime sessions by id,
 * the "state" tensors (weights, optimizer moments) kept between runs so a training loop sends only
 * the batch each step instead of copying every weight across threads twice, and the requests of
 * runtime/protocol.ts answered one at a time, in order. What differs per platform is only which ONNX
 * Runtime runs the sessions (onnxruntime-node or onnxruntime-web, the same API) and its session
 * options: runtime/worker.ts and runtime/web-worker.ts start a host with theirs.
 */
import type * as ortApi from 'onnxruntime-node';
import { typedArrayOver } from '../tensor.js';
import { float16ToFloat32 } from '../float16.js';
import { allFinite } from './finite.js';
import type { Request, Response, SessionOptions, WireTensor } from './protocol.js';

/** The part of ONNX Runtime's JavaScript API the host uses, which onnxruntime-node and -web share. */
export interface OrtModule {
  InferenceSession: Pick<typeof ortApi.InferenceSession, 'create'>;
  Tensor: typeof ortApi.Tensor;
}

type OrtSession = ortApi.InferenceSession;
type OrtTensor = ortApi.Tensor;

const ORT_TYPE = { float32: 'float32', float64: 'float64', int32: 'int32', int64: 'int64', uint8: 'uint8', int8: 'int8', bool: 'bool' } as const;

function toWire(t: OrtTensor, transfer: ArrayBuffer[]): WireTensor {
  // A float16 value (a float16 model's output, its intermediate values for a FLOPs count) is read as
  // float32: Kiln's tensors have no float16 type, and every binary16 number is a float32 one.
  if (t.type === 'float16') {
    // Bit patterns where the platform has no Float16Array (Node 20, 22); numbers where it has one (Node 24).
    const data = t.data as unknown;
    const buffer = (data instanceof Uint16Array ? float16ToFloat32(data) : Float32Array.from(data as ArrayLike<number>)).buffer as ArrayBuffer;
    transfer.push(buffer);
    return { dtype: 'float32', shape: [...t.dims], buffer };
  }
  const view = t.data as unknown as ArrayBufferView;
  // Own, whole buffers can be transferred; a view into a larger one is copied first.
  const buffer =
    view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && !(typeof SharedArrayBuffer !== 'undefined' && view.buffer instanceof SharedArrayBuffer)
      ? (view.buffer as ArrayBuffer)
      : (new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice().buffer as ArrayBuffer);
  if (!transfer.includes(buffer)) transfer.push(buffer);
  const dtype = t.type === 'bool' ? 'bool' : (t.type as WireTensor['dtype']);
  return { dtype, shape: [...t.dims], buffer };
}

/** A state tensor's key: its name within its scope (no scope: the worker-wide namespace). */
function stateKey(scope: string | undefined, name: string): string {
  return scope === undefined ? name : `${scope}\u0000${name}`;
}

export class SessionHost {
  private readonly sessions = new Map<number, OrtSession>();
  /** Each session's state namespace (SessionOptions.stateScope). */
  private readonly scopes = new Map<number, string | undefined>();
  /** State tensors by scoped name (stateKey). */
  private readonly state = new Map<string, OrtTensor>();
  private nextSession = 1;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly ort: OrtModule,
    /** The platform's ONNX Runtime session options for Kiln's (threads, optimization level, providers). */
    private readonly sessionOptions: (options: SessionOptions) => ortApi.InferenceSession.SessionOptions,
    /**
     * Rewrites a failure's message before it goes back (the browser host names memory exhaustion);
     * the identity elsewhere.
     */
    private readonly describeFailure: (err: unknown) => string = (err) => (err instanceof Error ? err.message : String(err)),
  ) {}

  private toOrt(t: WireTensor): OrtTensor {
    return new this.ort.Tensor(ORT_TYPE[t.dtype], typedArrayOver(t.dtype, t.buffer) as never, t.shape);
  }

  /**
   * Queues a request behind the ones before it (a session is not re-entrant, and order keeps state
   * consistent) and sends its reply with `reply` once answered.
   */
  accept(req: Request, reply: (res: Response, transfer: ArrayBuffer[]) => void): void {
    this.queue = this.queue.then(async () => {
      try {
        const { res, transfer } = await this.handle(req);
        reply(res, transfer);
      } catch (err) {
        reply({ id: req.id, ok: false, message: this.describeFailure(err) }, []);
      }
    });
  }

  private async handle(req: Request): Promise<{ res: Response; transfer: ArrayBuffer[] }> {
    const transfer: ArrayBuffer[] = [];
    switch (req.kind) {
      case 'load': {
        const session = await this.ort.InferenceSession.create(new Uint8Array(req.model), this.sessionOptions(req.options));
        const id = this.nextSession++;
        this.sessions.set(id, session);
        this.scopes.set(id, req.options.stateScope);
        return { res: { id: req.id, ok: true, info: { id, inputNames: [...session.inputNames], outputNames: [...session.outputNames] } }, transfer };
      }
      case 'run': {
        const session = this.sessions.get(req.session);
        if (!session) throw new Error(`session ${req.session} was released`);
        const scope = this.scopes.get(req.session);
        const feeds: Record<string, OrtTensor> = {};
        for (const name of session.inputNames) {
          const given = req.feeds[name];
          if (given) feeds[name] = this.toOrt(given);
          else {
            const held = this.state.get(stateKey(scope, name));
            if (!held) throw new Error(`no value fed for model input '${name}'`);
            feeds[name] = held;
          }
        }
        const store = req.options.store ?? {};
        const outputs = await session.run(feeds);
        const tensors: Record<string, WireTensor> = {};
        // A diverged step must not overwrite the last good state (weights, optimizer moments).
        for (const name of req.options.requireFinite ?? []) {
          const data = outputs[name]!.data as Float32Array;
          if (!allFinite(data)) {
            const bad = data.find((v) => !Number.isFinite(v));
            return { res: { id: req.id, ok: false, nonFinite: true, message: `output '${name}' is not finite (${bad})` }, transfer };
          }
        }
        for (const [outName, stateName] of Object.entries(store)) this.state.set(stateKey(scope, stateName), outputs[outName]!);
        const wanted = req.options.fetch ?? session.outputNames.filter((n) => !(n in store));
        for (const name of wanted) tensors[name] = toWire(outputs[name]!, transfer);
        return { res: { id: req.id, ok: true, tensors }, transfer };
      }
      case 'setState': {
        for (const [name, t] of Object.entries(req.tensors)) this.state.set(stateKey(req.scope, name), this.toOrt(t));
        return { res: { id: req.id, ok: true }, transfer };
      }
      case 'getState': {
        const tensors: Record<string, WireTensor> = {};
        for (const name of req.names) {
          const t = this.state.get(stateKey(req.scope, name));
          if (!t) throw new Error(`no state tensor named '${name}'${req.scope === undefined ? '' : ` in scope '${req.scope}'`}`);
          // State tensors stay in use here, so the caller gets copies.
          const view = t.data as unknown as ArrayBufferView;
          const copy = new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice().buffer;
          transfer.push(copy);
          tensors[name] = { dtype: t.type as WireTensor['dtype'], shape: [...t.dims], buffer: copy };
        }
        return { res: { id: req.id, ok: true, tensors }, transfer };
      }
      case 'deleteState': {
        for (const n of req.names) this.state.delete(stateKey(req.scope, n));
        return { res: { id: req.id, ok: true }, transfer };
      }
      case 'shutdown': {
        // Sessions released here, not by finalizers during thread teardown (which can abort the process).
        for (const [id, s] of this.sessions) {
          this.sessions.delete(id);
          await s.release();
        }
        this.state.clear();
        this.scopes.clear();
        return { res: { id: req.id, ok: true }, transfer };
      }
      case 'release': {
        const s = this.sessions.get(req.session);
        this.sessions.delete(req.session);
        this.scopes.delete(req.session);
        await s?.release();
        return { res: { id: req.id, ok: true }, transfer };
      }
    }
  }
}
