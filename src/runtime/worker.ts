import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import os from 'node:os';
import ort from 'onnxruntime-node';
import { typedArrayOver } from '../tensor.js';
import { allFinite } from './finite.js';
import type { Request, Response, WireTensor } from './protocol.js';

/*
 * The worker thread that owns ONNX Runtime sessions. session.run blocks its thread for the whole
 * step, so running it here keeps the main event loop free for progress bars, data loading and HTTP.
 * It also keeps "state" tensors (weights, optimizer moments) between runs, so a training loop sends
 * only the batch each step instead of copying every weight across threads twice.
 */

const sessions = new Map<number, ort.InferenceSession>();
const state = new Map<string, ort.Tensor>();
let nextSession = 1;

const ORT_TYPE = { float32: 'float32', float64: 'float64', int32: 'int32', int64: 'int64', uint8: 'uint8', int8: 'int8', bool: 'bool' } as const;

function toOrt(t: WireTensor): ort.Tensor {
  return new ort.Tensor(ORT_TYPE[t.dtype], typedArrayOver(t.dtype, t.buffer) as never, t.shape);
}

function toWire(t: ort.Tensor, transfer: ArrayBuffer[]): WireTensor {
  const view = t.data as unknown as ArrayBufferView;
  // Own, whole buffers can be transferred; a view into a larger one is copied first.
  const buffer =
    view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && !(view.buffer instanceof SharedArrayBuffer)
      ? (view.buffer as ArrayBuffer)
      : (new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice().buffer as ArrayBuffer);
  if (!transfer.includes(buffer)) transfer.push(buffer);
  const dtype = t.type === 'bool' ? 'bool' : (t.type as WireTensor['dtype']);
  return { dtype, shape: [...t.dims], buffer };
}

async function handle(req: Request): Promise<{ res: Response; transfer: ArrayBuffer[] }> {
  const transfer: ArrayBuffer[] = [];
  switch (req.kind) {
    case 'load': {
      const session = await ort.InferenceSession.create(new Uint8Array(req.model), {
        intraOpNumThreads: req.options.intraOpThreads ?? os.availableParallelism(),
        interOpNumThreads: 1,
        graphOptimizationLevel: req.options.optimizationLevel ?? 'all',
        executionMode: 'sequential',
        ...(req.options.allowSpinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
        // Its warning that the written file may be specific to this CPU is for deployers of that file; here it is only read back.
        ...(req.options.optimizedModelFile ? { optimizedModelFilePath: req.options.optimizedModelFile, logSeverityLevel: 3 as const } : {}),
      });
      const id = nextSession++;
      sessions.set(id, session);
      return { res: { id: req.id, ok: true, info: { id, inputNames: [...session.inputNames], outputNames: [...session.outputNames] } }, transfer };
    }
    case 'run': {
      const session = sessions.get(req.session);
      if (!session) throw new Error(`session ${req.session} was released`);
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of session.inputNames) {
        const given = req.feeds[name];
        if (given) feeds[name] = toOrt(given);
        else {
          const held = state.get(name);
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
      for (const [outName, stateName] of Object.entries(store)) state.set(stateName, outputs[outName]!);
      const wanted = req.options.fetch ?? session.outputNames.filter((n) => !(n in store));
      for (const name of wanted) tensors[name] = toWire(outputs[name]!, transfer);
      return { res: { id: req.id, ok: true, tensors }, transfer };
    }
    case 'setState': {
      for (const [name, t] of Object.entries(req.tensors)) state.set(name, toOrt(t));
      return { res: { id: req.id, ok: true }, transfer };
    }
    case 'getState': {
      const tensors: Record<string, WireTensor> = {};
      for (const name of req.names) {
        const t = state.get(name);
        if (!t) throw new Error(`no state tensor named '${name}'`);
        // State tensors stay in use here, so the caller gets copies.
        const view = t.data as unknown as ArrayBufferView;
        const copy = new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice().buffer;
        transfer.push(copy);
        tensors[name] = { dtype: t.type as WireTensor['dtype'], shape: [...t.dims], buffer: copy };
      }
      return { res: { id: req.id, ok: true, tensors }, transfer };
    }
    case 'deleteState': {
      for (const n of req.names) state.delete(n);
      return { res: { id: req.id, ok: true }, transfer };
    }
    case 'shutdown': {
      // Sessions released here, not by finalizers during thread teardown (which can abort the process).
      for (const [id, s] of sessions) {
        sessions.delete(id);
        await s.release();
      }
      state.clear();
      return { res: { id: req.id, ok: true }, transfer };
    }
    case 'release': {
      const s = sessions.get(req.session);
      sessions.delete(req.session);
      await s?.release();
      return { res: { id: req.id, ok: true }, transfer };
    }
  }
}

// Requests run one at a time, in order: a session is not re-entrant and order keeps state consistent.
// Replies go on their own port (see Runtime), which the main thread can read synchronously.
const replies = (workerData as { replies: MessagePort }).replies;
let queue: Promise<void> = Promise.resolve();
parentPort!.on('message', (req: Request) => {
  queue = queue.then(async () => {
    try {
      const { res, transfer } = await handle(req);
      replies.postMessage(res, transfer);
    } catch (err) {
      replies.postMessage({ id: req.id, ok: false, message: err instanceof Error ? err.message : String(err) } satisfies Response);
    }
  });
});
