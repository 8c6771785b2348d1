import { Runtime } from '../runtime/runtime.js';
import { KilnError } from '../errors.js';
import type { SessionInfo } from '../runtime/protocol.js';
import { Tensor } from '../tensor.js';
import { countedIn, replicaGrad, replicaShare, type CompiledTraining, type ReplicatedTraining } from './training-step.js';

/*
 * Data parallelism on one machine: each replica is a runtime worker with its own single-threaded (or
 * few-threaded) ONNX Runtime session, stepping its share of every batch at the same time as the
 * others. Many ops of a training step (casts, slices, concatenations, ConvTranspose's col2im) run on
 * one thread inside ONNX Runtime however many it is given, so two one-thread replicas keep both cores
 * busy where one two-thread session leaves one idle (bench/train/README.md: `fit` a median 1.20× faster
 * at batch 64 and 1.16× at 128 on 2 cores; halves of batch 32 gain nothing beyond the noise, hence
 * the 32 rows per replica of `autoReplicas`). Every replica then applies all the gradients itself, in
 * the same order with the same arithmetic, so the replicas hold identical weights and optimizer state
 * without sending them.
 */

/**
 * Runtime workers for replicas 1, 2, … shared by every model in the process (replica 0 is the model's
 * own runtime), as the process-wide runtime is: a model trained and dropped costs no thread of its
 * own. Each fit pushes its state into them before it steps, so models take turns in them.
 */
const pool: Runtime[] = [];
function replicaRuntime(r: number): Runtime {
  return (pool[r - 1] ??= new Runtime());
}

/** The runtime replica `r` (≥ 1) of any replicated fit runs in (for tests and diagnostics). */
export function sharedReplicaRuntime(r: number): Runtime {
  if (!Number.isInteger(r) || r < 1) throw new KilnError('INVALID_ARGUMENT', `replica runtimes are numbered from 1, got ${r}`);
  return replicaRuntime(r);
}

export interface ReplicaStep {
  /** The batch's loss (weighted mean of the replicas' losses) and the other fetched outputs, summed. */
  outputs: Record<string, Tensor>;
  /** Settles when every replica has applied the update; rejects (NAN_LOSS) if it was not finite. */
  applied: Promise<void>;
}

export class ReplicaSet {
  /**
   * Set when an update failed (not finite): the replicas still hold the last good state, and no
   * later step may update it — a step already queued behind the failed one would otherwise apply
   * gradients computed on the old weights — until state is pushed again.
   */
  private failed: Error | undefined;

  private constructor(
    readonly count: number,
    readonly threads: number,
    /** Runtime 0 is the model's own (it keeps the state that pullState reads); the others are the shared pool's. */
    private readonly runtimes: Runtime[],
    private readonly gradSessions: SessionInfo[],
    private readonly applySessions: SessionInfo[],
    private readonly store: Record<string, string>,
    private readonly stateScope: string,
  ) {}

  static async open(primary: Runtime, training: CompiledTraining, count: number, threads: number, stateScope: string): Promise<ReplicaSet> {
    const replicated: ReplicatedTraining = training.replicate(count);
    const runtimes = [primary, ...Array.from({ length: count - 1 }, (_, k) => replicaRuntime(k + 1))];
    const options = { optimizationLevel: 'extended' as const, intraOpThreads: threads, stateScope };
    const grads = await Promise.allSettled(runtimes.map((rt, r) => rt.load(replicated.gradSteps[r]!, options)));
    const applies = await Promise.allSettled(runtimes.map((rt) => rt.load(replicated.applyStep, options)));
    const failed = [...grads, ...applies].find((s) => s.status === 'rejected');
    if (failed) {
      // What did load is released: nothing of a failed open stays behind in the workers.
      await Promise.all(
        [...grads.map((s, r) => [s, r] as const), ...applies.map((s, r) => [s, r] as const)].map(([s, r]) =>
          s.status === 'fulfilled' ? runtimes[r]!.release(s.value).catch(() => undefined) : undefined,
        ),
      );
      throw (failed as PromiseRejectedResult).reason;
    }
    const value = <T>(s: PromiseSettledResult<T>) => (s as PromiseFulfilledResult<T>).value;
    return new ReplicaSet(count, threads, runtimes, grads.map(value), applies.map(value), replicated.store, stateScope);
  }

  /** Copies state (weights, optimizer slots) into the replicas other than the model's own runtime. */
  async setState(state: Record<string, Tensor>): Promise<void> {
    await Promise.all(this.runtimes.slice(1).map((rt) => rt.setState(state, this.stateScope)));
    this.failed = undefined;
  }

  /**
   * One training step: `batch` (every tensor whose first dimension is `size` is split by rows) goes
   * out in contiguous shares, one per replica; `scalars` (lr, step) go to all. Resolves once every
   * replica has its gradient and the update has been queued on all of them, so the next step can be
   * queued behind it at once.
   */
  async step(batch: Record<string, Tensor>, size: number, scalars: Record<string, Tensor>, fetch: string[]): Promise<ReplicaStep> {
    const shares: [number, number][] = [];
    for (let r = 0, start = 0; r < this.count; r++) {
      const rows = Math.floor(size / this.count) + (r < size % this.count ? 1 : 0);
      shares.push([start, start + rows]);
      start += rows;
    }
    const results = await Promise.all(
      shares.map(([start, end], r) => {
        if (end === start) return undefined;
        const feeds: Record<string, Tensor> = {};
        for (const [name, t] of Object.entries(batch)) feeds[name] = t.rank > 0 && t.shape[0] === size ? t.slice(start, end) : t;
        return this.runtimes[r]!.run(this.gradSessions[r]!, feeds, { fetch: [...fetch, 'grad'], requireFinite: ['loss'] });
      }),
    );
    if (this.failed) throw this.failed;
    const applyFeeds: Record<string, Tensor> = { ...scalars };
    const firstGrad = results.find((o) => o)!.grad!;
    const outputs: Record<string, Tensor> = {};
    const sums: Record<string, number> = {};
    // Each replica's loss is a mean over its rows, or over its labelled positions for a loss over
    // positions (COUNTED fetched): weighted by those, the shares' means make the whole batch's.
    const weights = results.map((o, r) => (o ? countedIn(o, shares[r]![1] - shares[r]![0]) : 0));
    const total = weights.reduce((a, b) => a + b, 0);
    results.forEach((o, r) => {
      const [start, end] = shares[r]!;
      const share = total > 0 ? weights[r]! / total : (end - start) / size;
      // A replica with no rows (a batch smaller than the replica count) adds nothing: weight 0.
      applyFeeds[replicaGrad(r)] = o ? o.grad! : firstGrad;
      applyFeeds[replicaShare(r)] = new Tensor(Float32Array.of(share), [], 'float32');
      if (!o) return;
      for (const name of fetch) sums[name] = (sums[name] ?? 0) + (o[name]!.data as Float32Array)[0]! * (name === 'loss' ? share : 1);
    });
    for (const [name, v] of Object.entries(sums)) outputs[name] = new Tensor(Float32Array.of(v), [], 'float32');
    const applied = Promise.all(
      this.runtimes.map((rt, r) => rt.run(this.applySessions[r]!, applyFeeds, { fetch: [], store: this.store, requireFinite: ['new/params'] })),
    ).then(() => undefined);
    // Marked at once (the replies arrive in order, before any later step's gradients), and handled
    // here so that a step nobody awaits any more cannot become an unhandled rejection.
    applied.catch((err: Error) => (this.failed ??= err));
    return { outputs, applied };
  }

  /** Releases the set's sessions in every runtime (the runtimes stay: the model's own and the shared pool). */
  async close(): Promise<void> {
    await Promise.all(this.runtimes.flatMap((rt, r) => [rt.release(this.gradSessions[r]!), rt.release(this.applySessions[r]!)].map((p) => p.catch(() => undefined))));
  }
}

/** At most this many replicas by default: every replica receives every gradient, so the copies grow as count². */
export const MAX_AUTO_REPLICAS = 4;

/**
 * How many replicas fit should use: one per core (at most MAX_AUTO_REPLICAS) while each gets at least
 * `minRowsPerReplica` rows of a batch (smaller shares run ONNX Runtime's per-op overheads for too
 * little work), and only when the step can be split. `batchRows` is the batch as it will be: the batch
 * size, or fewer rows when the data set is smaller.
 */
export function autoReplicas(training: CompiledTraining, batchRows: number, cores: number, minRowsPerReplica = 32): number {
  if (training.notReplicable) return 1;
  return Math.max(1, Math.min(cores, MAX_AUTO_REPLICAS, Math.floor(batchRows / minRowsPerReplica)));
}
