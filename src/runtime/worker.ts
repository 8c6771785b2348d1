import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import os from 'node:os';
import ort from 'onnxruntime-node';
import type { Request, SessionOptions } from './protocol.js';
import { SessionHost } from './session-host.js';

/*
 * The worker thread that owns ONNX Runtime sessions under Node (onnxruntime-node). session.run blocks
 * its thread for the whole step, so running it here keeps the main event loop free for progress
 * bars, data loading and HTTP. The sessions and state live in a SessionHost (session-host.ts), the
 * same one a browser's Web Worker runs.
 */

function sessionOptions(options: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: options.intraOpThreads ?? os.availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: options.optimizationLevel ?? 'all',
    executionMode: 'sequential',
    ...(options.allowSpinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
    // Its warning that the written file may be specific to this CPU is for deployers of that file; here it is only read back.
    ...(options.optimizedModelFile ? { optimizedModelFilePath: options.optimizedModelFile, logSeverityLevel: 3 as const } : {}),
  };
}

const host = new SessionHost(ort, sessionOptions);
// Replies go on their own port (platform/node.ts), which the main thread can read synchronously.
const replies = (workerData as { replies: MessagePort }).replies;
parentPort!.on('message', (req: Request) => host.accept(req, (res, transfer) => replies.postMessage(res, transfer)));
