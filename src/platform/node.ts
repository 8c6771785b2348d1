/*
 * The platform under Node: worker_threads for ONNX Runtime (onnxruntime-node, runtime/worker.ts), the
 * file system, os cores, process.stdout. Resolved by '#platform' everywhere but a browser build.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { writeFileAtomic } from './atomic-write.js';
import { OUTSIDE_FOLDER, type Platform, type RuntimeWorker, type WorkerMessage } from './platform.js';

/**
 * Replies come on a port of their own, which takeReplies() can also read synchronously: the event loop
 * delivers them only after every socket that is ready in the same turn, so a server flooded with
 * requests would otherwise collect its sessions' results a few times a second.
 */
function startRuntimeWorker(): RuntimeWorker {
  const { port1: replies, port2 } = new MessageChannel();
  const worker = new Worker(new URL('../runtime/worker.js', import.meta.url), { workerData: { replies: port2 }, transferList: [port2] });
  // An idle runtime must not keep the process alive.
  worker.unref();
  replies.unref();
  return {
    post: (message, transfer) => worker.postMessage(message, transfer),
    onReply(handler) {
      replies.on('message', handler);
      // Listening refs a port again: unref it after, or an idle runtime holds the process open.
      replies.unref();
    },
    onError: (handler) => void worker.on('error', handler),
    takeReplies() {
      const out: WorkerMessage[] = [];
      for (let m = receiveMessageOnPort(replies); m !== undefined; m = receiveMessageOnPort(replies)) out.push(m.message);
      return out;
    },
    keepAlive: (alive) => void (alive ? replies.ref() : replies.unref()),
    async terminate() {
      replies.close();
      await worker.terminate();
    },
  };
}

/** `location` beside `file`, read only when its real path (links resolved) lies inside the file's folder. */
async function readBeside(file: string, location: string): Promise<Uint8Array> {
  const folder = await fs.realpath(path.dirname(path.resolve(file)));
  const target = await fs.realpath(path.resolve(folder, location));
  const inside = path.relative(folder, target);
  if (inside === '..' || inside.startsWith(`..${path.sep}`) || path.isAbsolute(inside)) {
    throw Object.assign(new Error(`'${location}' resolves to ${target}, outside the model's folder ${folder}`), { code: OUTSIDE_FOLDER });
  }
  return fs.readFile(target);
}

export const platform: Platform = {
  name: 'node',
  startRuntimeWorker,
  beforeExit: (cleanUp) => void process.once('beforeExit', cleanUp),
  availableCores: () => os.availableParallelism(),
  readFile: async (file) => fs.readFile(file),
  readBeside,
  writeFileAtomic,
  standardOutput: () => process.stdout,
};
