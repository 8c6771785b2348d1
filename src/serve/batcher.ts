import { performance } from 'node:perf_hooks';
import { concatRows, Tensor } from '../tensor.js';
import { ServeError, unavailable } from './errors.js';
import { ArrivalRate } from './queue-delay.js';
import { record } from './records.js';

/*
 * One queue per model version in front of its ONNX Runtime sessions ("runners"). A free runner takes
 * the oldest request and, with dynamic batching, every queued request of the same row shape up to
 * maxBatchSize rows; the inputs are concatenated along the first dimension, run once, and the outputs
 * split back by row counts. A lone request waits at most maxQueueDelayMs for company (with queueDelay
 * 'adaptive', only while arrivals can fill the batch: queue-delay.ts). Runners are
 * ONNX Runtime sessions in worker threads, so the event loop stays free while they compute.
 */

export interface Runner {
  /** `handOver`: the feeds are the runner's to consume (their buffers may move to the worker uncopied). */
  run(feeds: Record<string, Tensor>, handOver?: boolean): Promise<Record<string, Tensor>>;
}

export interface BatchSettings {
  /** Merge concurrent requests into one run. */
  batching: boolean;
  /** Rows one merged run may hold. */
  maxBatchSize: number;
  maxQueueDelayMs: number;
  /** 'fixed': the oldest request waits maxQueueDelayMs for company; 'adaptive': only as long as arrivals can fill the batch (queue-delay.ts). */
  queueDelay?: 'fixed' | 'adaptive';
  maxQueueSize: number;
}

export interface BatchObserver {
  /** A request left the queue after waiting this long. */
  queued(seconds: number): void;
  /** One ONNX Runtime run of `rows` rows (from `requests` requests) took this long. */
  executed(rows: number, requests: number, seconds: number): void;
}

interface Pending {
  feeds: Record<string, Tensor>;
  rows: number;
  enqueuedAt: number;
  done: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve(outputs: Record<string, Tensor>): void;
  reject(err: Error): void;
}

/**
 * Requests merge only with others whose inputs have the same types and non-batch dimensions. (Both
 * passed checkFeeds, so they have the same input names.) Compared in place: building a key string
 * per request cost ~1% of the event loop under load.
 */
function sameRowShape(a: Record<string, Tensor>, b: Record<string, Tensor>): boolean {
  for (const name in a) {
    const x = a[name]!;
    const y = b[name];
    if (!y || x.dtype !== y.dtype || x.shape.length !== y.shape.length) return false;
    for (let d = 1; d < x.shape.length; d++) if (x.shape[d] !== y.shape[d]) return false;
  }
  return true;
}

function joinRequests(batch: readonly Pending[]): Record<string, Tensor> {
  const out = record<Tensor>();
  for (const name of Object.keys(batch[0]!.feeds)) out[name] = concatRows(batch.map((p) => p.feeds[name]!));
  return out;
}

function splitRows(outputs: Record<string, Tensor>, batch: readonly Pending[], totalRows: number): Record<string, Tensor>[] {
  const parts = batch.map(() => record<Tensor>());
  for (const [name, t] of Object.entries(outputs)) {
    if (t.shape[0] !== totalRows) {
      throw new ServeError(500, `output '${name}' has ${t.shape[0]} rows for a batch of ${totalRows}: the model's first dimension is not a batch dimension; set maxBatchSize 0`);
    }
    let start = 0;
    batch.forEach((p, i) => {
      parts[i]![name] = t.slice(start, start + p.rows);
      start += p.rows;
    });
  }
  return parts;
}

export class Batcher {
  private readonly queue: Pending[] = [];
  private readonly idle: Runner[];
  private timer: NodeJS.Timeout | undefined;
  private recheck: NodeJS.Immediate | undefined;
  private readonly arrivals = new ArrivalRate();
  private readonly runnerCount: number;

  constructor(
    runners: Runner[],
    public settings: BatchSettings,
    private readonly what: string,
    private readonly observer?: BatchObserver,
  ) {
    this.idle = [...runners];
    this.runnerCount = runners.length;
  }

  /** Requests waiting for a runner. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Queues one request (already validated) and resolves with its outputs. Past `timeoutMs` it fails
   * with 503 and, if still queued, never runs.
   */
  submit(feeds: Record<string, Tensor>, rows: number, timeoutMs = 0): Promise<Record<string, Tensor>> {
    if (this.queue.length >= this.settings.maxQueueSize) {
      return Promise.reject(
        new ServeError(429, `${this.what}: the request queue is full (${this.queue.length} requests waiting, maxQueueSize ${this.settings.maxQueueSize}); retry later`),
      );
    }
    const now = performance.now();
    this.arrivals.arrived(now, this.queue.length > 0 || this.idle.length < this.runnerCount);
    return new Promise((resolve, reject) => {
      const p: Pending = {
        feeds,
        rows,
        enqueuedAt: now,
        done: false,
        timer: undefined,
        resolve: (outputs) => {
          if (p.done) return;
          p.done = true;
          clearTimeout(p.timer);
          resolve(outputs);
        },
        reject: (err) => {
          if (p.done) return;
          p.done = true;
          clearTimeout(p.timer);
          reject(err);
        },
      };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          const at = this.queue.indexOf(p);
          if (at >= 0) this.queue.splice(at, 1);
          p.reject(new ServeError(503, `${this.what}: the request timed out after ${timeoutMs} ms (${at >= 0 ? 'still queued' : 'while running'})`, { reason: 'timeout' }));
        }, timeoutMs);
      }
      this.queue.push(p);
      this.pump();
    });
  }

  /** Fails everything still queued (forced shutdown); running batches finish on their own. */
  rejectQueued(message: string): void {
    for (const p of this.queue.splice(0)) p.reject(unavailable(`${this.what}: ${message}`));
  }

  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    clearImmediate(this.recheck);
    this.recheck = undefined;
    while (this.idle.length > 0 && this.queue.length > 0) {
      const head = this.queue[0]!;
      if (!this.settings.batching) {
        this.queue.shift();
        this.execute([head], head.rows);
        continue;
      }
      const max = this.settings.maxBatchSize;
      const batch = [head];
      let rows = head.rows;
      for (let i = 1; i < this.queue.length && rows < max; i++) {
        const p = this.queue[i]!;
        if (rows + p.rows <= max && sameRowShape(head.feeds, p.feeds)) {
          batch.push(p);
          rows += p.rows;
        }
      }
      const now = performance.now();
      const wait =
        this.settings.queueDelay === 'adaptive'
          ? this.arrivals.waitMs(now, head.enqueuedAt, rows, max, this.settings.maxQueueDelayMs)
          : rows < max
            ? this.settings.maxQueueDelayMs - (now - head.enqueuedAt)
            : 0;
      if (wait > 0) {
        // Timers count whole milliseconds; the adaptive rule's sub-millisecond waits (the next arrival
        // overdue in 0.2 ms) look again after the event loop's next poll for arrivals instead.
        if (wait < 1 && this.settings.queueDelay === 'adaptive') this.recheck = setImmediate(() => this.pump());
        else this.timer = setTimeout(() => this.pump(), Math.ceil(wait));
        return;
      }
      if (batch.length === this.queue.length) this.queue.length = 0;
      else {
        const taken = new Set(batch);
        let w = 0;
        for (const p of this.queue) if (!taken.has(p)) this.queue[w++] = p;
        this.queue.length = w;
      }
      this.execute(batch, rows);
    }
  }

  private execute(batch: Pending[], rows: number): void {
    const runner = this.idle.pop()!;
    const start = performance.now();
    for (const p of batch) this.observer?.queued((start - p.enqueuedAt) / 1000);
    const feeds = batch.length === 1 ? batch[0]!.feeds : joinRequests(batch);
    // The feeds are the batch's alone (a request's decoded tensors, or their concatenation): handed over.
    runner
      .run(feeds, true)
      .then(
        (outputs) => {
          this.observer?.executed(rows, batch.length, (performance.now() - start) / 1000);
          if (batch.length === 1) batch[0]!.resolve(outputs);
          else splitRows(outputs, batch, rows).forEach((part, i) => batch[i]!.resolve(part));
        },
        (err: Error) => {
          throw err instanceof ServeError ? err : new ServeError(500, `${this.what}: model execution failed: ${err.message}`, { cause: err });
        },
      )
      .catch((err: Error) => {
        for (const p of batch) p.reject(err);
      })
      .finally(() => {
        this.idle.push(runner);
        this.pump();
      });
  }
}
