/*
 * The batching queue's adaptive wait (config queueDelay 'adaptive'): how long the oldest queued
 * request waits for company is decided from the arrivals, not fixed. A request arriving to an idle
 * server — or one whose next request is not expected before maxQueueDelayMs runs out — runs at once;
 * while requests keep arriving at their usual pace the batch waits for them, one at a time, and it
 * runs as soon as the next is overdue (two usual gaps with none: under a closed-loop load every
 * client is then waiting on the queue, and more waiting would only idle the runner), when it is full,
 * or at maxQueueDelayMs. (Triton's dynamic batcher waits its max_queue_delay for a preferred batch
 * size whatever the load, and TorchServe its max_batch_delay; this waits only while waiting is
 * filling the batch.) Pure arithmetic on the times given, so tests drive it with a fake clock.
 */

/** Weight of the newest gap in the smoothed gap between arrivals. */
const SMOOTHING = 0.2;

/** Arrivals count as paused once this many usual gaps pass without one. */
const OVERDUE_GAPS = 2;

export class ArrivalRate {
  /** Smoothed gap between arrivals, ms (Infinity until two have arrived). */
  private gapMs = Infinity;
  private lastAt = -Infinity;

  /**
   * A request arrived at `now` (ms); `busy`: requests were queued or running then. An arrival to an
   * idle server starts the estimate afresh: a client that sends its next request only once answered
   * (concurrency 1) would otherwise look like dense arrivals, and waiting for company it cannot send
   * would only add to its latency.
   */
  arrived(now: number, busy: boolean): void {
    const gap = now - this.lastAt;
    this.gapMs = !busy ? Infinity : this.gapMs === Infinity ? gap : this.gapMs + SMOOTHING * (gap - this.gapMs);
    this.lastAt = now;
  }

  /** The smoothed gap between arrivals, ms (Infinity until two have arrived since the server was idle). */
  get smoothedGapMs(): number {
    return this.gapMs;
  }

  /**
   * How much longer (ms) the oldest queued request, queued at `headAt`, should wait for a batch of
   * `rows` of `maxRows` rows to fill, given at most `maxDelayMs` of waiting: 0 when the batch is full,
   * the time is up, no rate is known (the first arrival since the server was idle), the usual gap is
   * longer than the time left, or the next arrival is overdue (OVERDUE_GAPS usual gaps since the last);
   * else until the next arrival becomes overdue (an arrival re-decides), capped by the time left.
   */
  waitMs(now: number, headAt: number, rows: number, maxRows: number, maxDelayMs: number): number {
    const left = maxDelayMs - (now - headAt);
    if (left <= 0 || rows >= maxRows || !(this.gapMs < left)) return 0;
    const due = OVERDUE_GAPS * this.gapMs - (now - this.lastAt);
    return due > 0 ? Math.min(left, due) : 0;
  }
}
