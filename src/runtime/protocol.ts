import type { DType } from '../tensor.js';

/* Messages between the main thread and the runtime worker. Tensor data travels as transferred buffers. */

export interface WireTensor {
  dtype: DType;
  shape: number[];
  buffer: ArrayBuffer;
}

/** How ONNX Runtime runs a session. */
export interface SessionOptions {
  /** Threads ONNX Runtime uses inside one operator (default: all cores). */
  intraOpThreads?: number;
  /** ONNX Runtime graph optimization level (default 'all'). */
  optimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Let idle intra-op threads spin waiting for work (ONNX Runtime's default, true). Servers turn it off
   * so waiting threads do not take CPU from the threads handling requests.
   */
  allowSpinning?: boolean;
  /**
   * Where ONNX Runtime writes the graph it runs, after its optimizations (which fusions it made:
   * QLinearConv, DynamicQuantizeMatMul, ...). For inspection only: at level 'all' that file may hold
   * kernels specific to this CPU.
   */
  optimizedModelFile?: string;
  /**
   * The state namespace the session's runs read missing inputs from and store outputs into. Each
   * trainable model has its own, so that models training at once in one worker never read or
   * overwrite each other's weights ('state/params' is every model's name for its own).
   */
  stateScope?: string;
}

/** A session loaded in a Runtime's worker. */
export interface SessionInfo {
  /** The session's number in its worker. */
  id: number;
  /** The model's input names. */
  inputNames: string[];
  /** The model's output names. */
  outputNames: string[];
}

/** What one run fetches, stores back into the worker's state and checks. */
export interface RunOptions {
  /** Output names to return (default: every output not stored into state). */
  fetch?: string[];
  /** After the run, store these outputs in the worker's state under the given names (outputName → stateName). */
  store?: Record<string, string>;
  /** Outputs that must be all finite; otherwise nothing is stored and the run fails with NON_FINITE. */
  requireFinite?: string[];
}

export type Request =
  | { id: number; kind: 'load'; model: ArrayBuffer; options: SessionOptions }
  | { id: number; kind: 'run'; session: number; feeds: Record<string, WireTensor>; options: RunOptions }
  | { id: number; kind: 'setState'; tensors: Record<string, WireTensor>; scope?: string }
  | { id: number; kind: 'getState'; names: string[]; scope?: string }
  | { id: number; kind: 'deleteState'; names: string[]; scope?: string }
  | { id: number; kind: 'release'; session: number }
  | { id: number; kind: 'shutdown' };

export type Response =
  | { id: number; ok: true; info?: SessionInfo; tensors?: Record<string, WireTensor> }
  | { id: number; ok: false; message: string; nonFinite?: boolean };
