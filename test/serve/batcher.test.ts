import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher, type Runner } from '../../src/serve/batcher.js';
import { ArrivalRate } from '../../src/serve/queue-delay.js';
import { ServeError } from '../../src/serve/errors.js';
import { Tensor } from '../../src/tensor.js';

/** A runner that doubles its input, records each run's batch size, and takes `ms` per run. */
function doubler(ms = 5): Runner & { runs: number[] } {
  const runs: number[] = [];
  return {
    runs,
    async run(feeds) {
      const x = feeds.x!;
      runs.push(x.shape[0]!);
      await new Promise((r) => setTimeout(r, ms));
      return { y: new Tensor(Float32Array.from(x.data as Float32Array, (v) => v * 2), x.shape, 'float32') };
    },
  };
}

const rows = (n: number, start: number, width = 2) => new Tensor(Float32Array.from({ length: n * width }, (_, i) => start + i), [n, width], 'float32');

test('queued requests merge up to maxBatchSize and each gets its own rows back', async () => {
  const runner = doubler();
  const batcher = new Batcher([runner], { batching: true, maxBatchSize: 4, maxQueueDelayMs: 20, maxQueueSize: 100 }, 'test');
  const inputs = [rows(1, 0), rows(2, 10), rows(1, 20), rows(3, 30), rows(1, 40)];
  const outputs = await Promise.all(inputs.map((x) => batcher.submit({ x }, x.shape[0]!)));
  outputs.forEach((out, i) => assert.deepEqual(Array.from(out.y!.data as Float32Array), Array.from(inputs[i]!.data as Float32Array, (v) => v * 2)));
  assert.ok(runner.runs.every((n) => n <= 4));
  assert.equal(runner.runs.reduce((a, b) => a + b, 0), 8);
  assert.ok(runner.runs.length < inputs.length, `runs: ${runner.runs.join(', ')}`);
});

test('requests of different row shapes never share a run; without batching every request runs alone', async () => {
  const runner = doubler();
  const batcher = new Batcher([runner], { batching: true, maxBatchSize: 8, maxQueueDelayMs: 20, maxQueueSize: 100 }, 'test');
  await Promise.all([rows(1, 0, 2), rows(1, 0, 3), rows(1, 0, 2)].map((x) => batcher.submit({ x }, 1)));
  assert.deepEqual(runner.runs.sort(), [1, 2]);
  const alone = doubler();
  const plain = new Batcher([alone], { batching: false, maxBatchSize: 8, maxQueueDelayMs: 20, maxQueueSize: 100 }, 'test');
  await Promise.all([rows(1, 0), rows(1, 1), rows(1, 2)].map((x) => plain.submit({ x }, 1)));
  assert.deepEqual(alone.runs, [1, 1, 1]);
});

test('a failed run fails every request in it; a full queue and a timeout fail fast with 429 and 503', async () => {
  const failing: Runner = { run: () => Promise.reject(new Error('boom')) };
  const batcher = new Batcher([failing], { batching: true, maxBatchSize: 8, maxQueueDelayMs: 10, maxQueueSize: 2 }, 'model m');
  const results = await Promise.allSettled([rows(1, 0), rows(1, 1), rows(1, 2)].map((x) => batcher.submit({ x }, 1)));
  const reasons = results.map((r) => (r.status === 'rejected' ? (r.reason as ServeError) : undefined));
  assert.deepEqual(reasons.map((e) => e?.status), [500, 500, 429]);
  assert.match(reasons[0]!.message, /model m: model execution failed: boom/);
  const slow = new Batcher([doubler(200)], { batching: false, maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 10 }, 'model m');
  const first = slow.submit({ x: rows(1, 0) }, 1);
  const second = slow.submit({ x: rows(1, 0) }, 1, 50);
  await assert.rejects(second, (e: unknown) => e instanceof ServeError && e.status === 503 && /timed out after 50 ms \(still queued\)/.test(e.message));
  await first;
});

test("adaptive queue delay (fake clock): an idle server's request runs at once; dense arrivals wait while the next is due, never past maxQueueDelayMs", () => {
  const rate = new ArrivalRate();
  // The first request ever: no rate yet, no wait.
  rate.arrived(0, false);
  assert.equal(rate.waitMs(0, 0, 1, 32, 10), 0);
  // A second one 50 ms later while the first runs: the next is expected in 50 ms, after the 10 ms allowed — no wait.
  rate.arrived(50, true);
  assert.equal(rate.waitMs(50, 50, 1, 32, 10), 0);
  // Arrivals every 0.1 ms to a busy server (the smoothed gap converges from 50 ms).
  let t = 50;
  for (let i = 0; i < 100; i++) rate.arrived((t += 0.1), true);
  const gap = rate.smoothedGapMs;
  assert.ok(gap > 0.1 && gap < 0.11, `smoothed gap ${gap}`);
  // 4 of 32 rows queued, an arrival just now: wait until the next is overdue, two usual gaps.
  assert.ok(Math.abs(rate.waitMs(t, t, 4, 32, 10) - 2 * gap) < 1e-9);
  // Half a gap later, the rest of that.
  assert.ok(Math.abs(rate.waitMs(t + gap / 2, t, 4, 32, 10) - 1.5 * gap) < 1e-9);
  // Overdue: two and a half gaps with no arrival (every closed-loop client is waiting) — run.
  assert.equal(rate.waitMs(t + 2.5 * gap, t, 4, 32, 10), 0);
  // Capped by the time left: the head has waited 9.85 of 10 ms.
  assert.ok(Math.abs(rate.waitMs(t, t - 9.85, 4, 32, 10) - 0.15) < 1e-9);
  // Less time left than a usual gap: run.
  assert.equal(rate.waitMs(t, t - 9.95, 4, 32, 10), 0);
  // A full batch, or the time up: run.
  assert.equal(rate.waitMs(t, t, 32, 32, 10), 0);
  assert.equal(rate.waitMs(t, t - 10, 4, 32, 10), 0);
  // Arrivals stopped: 20 ms after the last one.
  assert.equal(rate.waitMs(t + 20, t + 15, 4, 32, 10), 0);
  // A usual gap longer than the time allowed: no wait.
  const slow = new ArrivalRate();
  slow.arrived(0, false);
  slow.arrived(20, true);
  assert.equal(slow.waitMs(20, 20, 1, 32, 10), 0);
  // maxQueueDelayMs 0 never waits.
  assert.equal(rate.waitMs(t, t, 4, 32, 0), 0);
});

test('adaptive queue delay (fake clock): one client sending each request once answered (arrivals to an idle server) never waits, however dense', () => {
  const rate = new ArrivalRate();
  let t = 0;
  for (let i = 0; i < 100; i++) {
    rate.arrived((t += 0.5), false);
    assert.equal(rate.waitMs(t, t, 1, 32, 10), 0);
  }
  // The same gaps to a busy server do wait, for the next one (two gaps).
  rate.arrived((t += 0.5), true);
  rate.arrived((t += 0.5), true);
  assert.equal(rate.waitMs(t, t, 1, 32, 10), 1);
});

test("adaptive queue delay: a lone request does not wait out maxQueueDelayMs; with 'fixed' it does", async () => {
  const queuedFor = async (queueDelay: 'fixed' | 'adaptive') => {
    const waits: number[] = [];
    const batcher = new Batcher([doubler(0)], { batching: true, maxBatchSize: 8, maxQueueDelayMs: 3000, queueDelay, maxQueueSize: 10 }, 'test', { queued: (s) => waits.push(s), executed: () => {} });
    await batcher.submit({ x: rows(1, 0) }, 1);
    return waits[0]!;
  };
  // Loose bounds: only the 3 s wait itself separates them, however loaded the machine.
  assert.ok((await queuedFor('adaptive')) < 1.5);
  assert.ok((await queuedFor('fixed')) >= 2.9);
});

test('adaptive queue delay: a burst that stops runs once the next arrival is overdue, not at maxQueueDelayMs (sub-millisecond re-checks)', async () => {
  const busy = doubler(200);
  const idle = doubler(0);
  const batcher = new Batcher([idle, busy], { batching: true, maxBatchSize: 32, maxQueueDelayMs: 60_000, queueDelay: 'adaptive', maxQueueSize: 100 }, 'test');
  // The first request takes a runner at once (no rate known); a burst then arrives while it is busy,
  // microseconds apart, and stops: the second runner takes the burst when the next is overdue.
  const first = batcher.submit({ x: rows(1, 0) }, 1);
  const burst = Array.from({ length: 6 }, (_, i) => batcher.submit({ x: rows(1, 10 * i) }, 1));
  // Loose bound: only the 60 s cap is excluded, however loaded the machine. (How the burst splits
  // into runs depends on the machine's timing — microseconds between arrivals against the time each
  // takes to queue — so only the total is checked.)
  const started = Date.now();
  await Promise.all([first, ...burst]);
  assert.ok(Date.now() - started < 30_000);
  assert.equal([...idle.runs, ...busy.runs].reduce((a, b) => a + b, 0), 7);
});
