// Owns the coordinator's rounds: which clients are available, the seeded sample of each round's
// cohort, the tasks handed to each client, every message's checks (token → client, model, round,
// attempt, phase, shape, finiteness) with a logged reason for each refusal, the wait for updates
// until all are in or the round timeout passes with --min-clients of them, aggregation through the
// Strategy, and the save of the model and the checkpoint after every round. With secure aggregation
// a round runs Bonawitz et al.'s four phases and the strategy sees only the survivors' mean.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { KilnError } from '../../errors.js';
import { Random } from '../../random.js';
import { ServeError } from '../../serve/errors.js';
import { decodeFixedPoint } from '../secure-aggregation/fixed-point.js';
import { SecureAggregationServer } from '../secure-aggregation/server.js';
import { defaultThreshold, type EncryptedShare, type KeyAdvertisement, type UnmaskResponse } from '../secure-aggregation/messages.js';
import type { ClientUpdate, Strategy } from '../strategies/strategy.js';
import { unpackWeights, type Envelope } from '../transport/envelope.js';
import type { LocalTrainingOptions } from '../local-training.js';
import { allFinite, checkCompatible, checkFiniteWeights, countValues, type ModelWeights } from '../weights.js';

/** A task the coordinator hands a client (JSON); `key` changes whenever the task does. */
export interface Task {
  /** Identifies the task; a client polls for the task after the one it last saw. */
  key: string;
  /** 'train', 'shares', 'input', 'unmask' (secure aggregation's later phases) or 'done'. */
  kind: 'train' | 'shares' | 'input' | 'unmask' | 'done';
  /** The federation's model id. */
  modelId: string;
  /** This coordinator process's run id: a restarted coordinator hands out new tasks, and refuses messages meant for its predecessor. */
  run: string;
  /** The round. */
  round: number;
  /** The attempt at the round (a round whose cohort fell below --min-clients is tried again with a new sample). */
  attempt: number;
  /** The client's id (as the tokens file names it). */
  client: string;
  /** More fields by kind: training settings and planned rounds, roster, shares, unmask request. */
  [field: string]: unknown;
}

/** How the coordinator runs its rounds. */
export interface RoundPlan {
  /** Rounds to run in all (a resumed run continues to this many). */
  rounds: number;
  /** Clients sampled per round. */
  clientsPerRound: number;
  /** Fewest updates a round may aggregate once the round timeout has passed. */
  minClients: number;
  /** Time a round waits for its cohort's updates (and, per phase, for secure aggregation's messages). */
  roundTimeoutMs: number;
  /** Local training settings sent to clients (μ comes from the strategy). */
  training: Omit<LocalTrainingOptions, 'loss' | 'proximalMu' | 'seed' | 'privacy'>;
  /** Seed for sampling and for the clients' shuffling. */
  seed: number;
  /** Run secure aggregation: the coordinator sees only the sum of the updates. */
  secureAggregation: boolean;
  /** Secure aggregation's threshold t (default: a majority of the cohort, at least 2). */
  threshold?: number;
}

/** A client dropped from a round, and why. */
export interface RoundRejection {
  /** The client's id. */
  client: string;
  /** Why it was dropped (refused message, no answer within the timeout, its own report). */
  reason: string;
}

/** One finished round, as `onRound` reports it. */
export interface RoundSummary {
  /** The round. */
  round: number;
  /** Attempts it took. */
  attempts: number;
  /** Clients sampled in the successful attempt. */
  cohort: string[];
  /** Clients whose updates were aggregated. */
  aggregated: string[];
  /** Examples behind the aggregate. */
  numExamples: number;
  /** Mean local training loss the clients reported (plain mode; secure aggregation hides it: NaN). */
  meanLoss: number;
  /** Refusals and dropouts of the round, with reasons. */
  rejected: RoundRejection[];
  /** ε spent so far, when the strategy is DP-FedAvg with an accountant. */
  epsilon?: number;
}

/** The coordinator's hooks into the world: how a finished round is made durable, and the log. */
export interface RoundHost {
  log: Logger;
  /** Saves the global model and the checkpoint after `round`; resolves once both are on disk. */
  commit(round: number, weights: ModelWeights): Promise<void>;
  /** Called after each committed round. */
  onRound?(summary: RoundSummary): void;
}

interface SecureState {
  server: SecureAggregationServer;
  threshold: number;
  advertisements: Map<string, KeyAdvertisement>;
  counts: Map<string, number>;
  responses: Map<string, UnmaskResponse>;
  totalExamples: number;
}

interface Attempt {
  round: number;
  attempt: number;
  cohort: string[];
  phase: Task['kind'];
  updates: Map<string, ClientUpdate & { loss: number }>;
  failed: Map<string, string>;
  secure: SecureState | undefined;
}

const AVAILABLE_MS = 60_000;
const POLL_MS = 25_000;

const refuse = (status: number, message: string) => new ServeError(status, message);

/** The round loop and the message handlers the HTTP routes call. */
export class Coordinator {
  private readonly tasks = new Map<string, Task>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly lastSeen = new Map<string, number>();
  private changed: () => void = () => undefined;
  private current: Attempt | undefined;
  private finished = false;
  private readonly vectorLength: number;
  /** Clients that have been told the run is over. */
  readonly toldDone = new Set<string>();
  private readonly sampled = new Set<string>();
  /** Random per process: tasks and messages of a killed predecessor never match this run's. */
  readonly runId = randomBytes(6).toString('hex');

  constructor(
    readonly modelId: string,
    private global: ModelWeights,
    private completedRounds: number,
    private readonly strategy: Strategy,
    private readonly plan: RoundPlan,
    private readonly host: RoundHost,
  ) {
    this.vectorLength = countValues(global);
  }

  /** The global weights now. */
  get weights(): ModelWeights {
    return this.global;
  }

  /** Clients sampled into a cohort so far. */
  get participants(): string[] {
    return [...this.sampled];
  }

  /** Rounds finished so far (resumed ones included). */
  get roundsDone(): number {
    return this.completedRounds;
  }

  private wake(): void {
    const c = this.changed;
    this.changed = () => undefined;
    c();
  }

  /** Resolves on the next change (a message, a poll) or at `deadline`, whichever comes first. */
  private async changeOrDeadline(deadline: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.changed = resolve;
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    });
    clearTimeout(timer);
  }

  private publish(client: string, task: Task): void {
    this.tasks.set(client, task);
    for (const w of this.waiters.get(client) ?? []) w();
  }

  /** Runs the remaining rounds; resolves when the last is committed. */
  async run(): Promise<void> {
    for (let round = this.completedRounds + 1; round <= this.plan.rounds; round++) {
      for (let attempt = 1; ; attempt++) {
        const summary = await this.runAttempt(round, attempt);
        if (summary) {
          this.completedRounds = round;
          this.host.onRound?.(summary);
          break;
        }
      }
    }
    this.finish();
  }

  /** Tells every client the run is over (pending polls are answered now). */
  finish(): void {
    this.finished = true;
    this.current = undefined;
    for (const client of new Set([...this.lastSeen.keys(), ...this.tasks.keys()])) {
      this.publish(client, { key: `${this.runId}.done`, kind: 'done', modelId: this.modelId, run: this.runId, round: this.completedRounds, attempt: 0, client });
    }
  }

  private available(): string[] {
    const now = Date.now();
    return [...this.lastSeen].filter(([, t]) => now - t < AVAILABLE_MS).map(([c]) => c).sort();
  }

  /** Waits for enough available clients, then samples the cohort (seeded by seed, round and attempt). */
  private async sample(round: number, attempt: number): Promise<string[]> {
    const deadline = Date.now() + this.plan.roundTimeoutMs;
    for (;;) {
      const available = this.available();
      if (available.length >= this.plan.clientsPerRound || (Date.now() >= deadline && available.length >= this.plan.minClients)) {
        const rng = new Random((this.plan.seed ^ Math.imul(round, 0x9e3779b1) ^ Math.imul(attempt, 0x85ebca6b)) >>> 0);
        const order = rng.permutation(available.length);
        return Array.from(order.slice(0, this.plan.clientsPerRound), (k) => available[k]!).sort();
      }
      await this.changeOrDeadline(Date.now() >= deadline ? Date.now() + 1000 : deadline);
    }
  }

  /** Waits until every cohort member answered the phase (or failed), or the deadline passed. */
  private async collect(a: Attempt, members: string[], answered: () => Set<string> | Map<string, unknown>, deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (Date.now() < deadline && members.some((c) => !answered().has(c) && !a.failed.has(c))) await this.changeOrDeadline(deadline);
    for (const c of members) if (!answered().has(c) && !a.failed.has(c)) a.failed.set(c, `no answer in phase '${a.phase}' within ${deadlineMs} ms`);
  }

  private taskFor(a: Attempt, client: string, kind: Task['kind'], fields: Record<string, unknown> = {}): Task {
    return { key: `${this.runId}.r${a.round}.a${a.attempt}.${kind}`, kind, modelId: this.modelId, run: this.runId, round: a.round, attempt: a.attempt, client, ...fields };
  }

  private async runAttempt(round: number, attempt: number): Promise<RoundSummary | undefined> {
    const cohort = await this.sample(round, attempt);
    for (const c of cohort) this.sampled.add(c);
    const a: Attempt = { round, attempt, cohort, phase: 'train', updates: new Map(), failed: new Map(), secure: undefined };
    this.current = a;
    const log = this.host.log.child({ round, attempt });
    log.info({ cohort }, 'round started');
    const training = { ...this.plan.training, proximalMu: this.strategy.proximalMu ?? 0 };
    cohort.forEach((client, k) => this.publish(client, this.taskFor(a, client, 'train', { training: { ...training, seed: (this.plan.seed + round * 1009 + k) >>> 0 }, rounds: this.plan.rounds, secure: this.plan.secureAggregation })));
    const retry = (why: string) => {
      log.warn({ failed: Object.fromEntries(a.failed) }, `round attempt abandoned: ${why}; sampling again`);
      this.current = undefined;
      for (const c of cohort) this.tasks.delete(c);
      return undefined;
    };
    let update: ClientUpdate[];
    let aggregated: string[];
    let meanLoss = Number.NaN;
    if (!this.plan.secureAggregation) {
      await this.collect(a, cohort, () => a.updates, this.plan.roundTimeoutMs);
      if (a.updates.size < this.plan.minClients) return retry(`${a.updates.size} updates arrived, --min-clients is ${this.plan.minClients}`);
      update = [...a.updates.values()].map(({ weights, numExamples }) => ({ weights, numExamples }));
      aggregated = [...a.updates.keys()].sort();
      meanLoss = [...a.updates.values()].reduce((s, u) => s + u.loss, 0) / a.updates.size;
    } else {
      const threshold = this.plan.threshold ?? defaultThreshold(cohort.length);
      const needed = Math.max(this.plan.minClients, threshold);
      const s: SecureState = { server: new SecureAggregationServer(this.context(a), threshold, this.vectorLength), threshold, advertisements: new Map(), counts: new Map(), responses: new Map(), totalExamples: 0 };
      a.secure = s;
      // Phase 0 (training, then AdvertiseKeys).
      await this.collect(a, cohort, () => s.advertisements, this.plan.roundTimeoutMs);
      if (s.advertisements.size < needed) return retry(`${s.advertisements.size} clients advertised keys, ${needed} needed (--min-clients ${this.plan.minClients}, threshold ${threshold})`);
      const roster = s.server.setRoster([...s.advertisements.values()]);
      const members = roster.map((r) => r.id);
      // Phase 1 (ShareKeys).
      a.phase = 'shares';
      for (const c of members) this.publish(c, this.taskFor(a, c, 'shares', { roster, threshold }));
      await this.collect(a, members, () => new Set(s.server.sharedKeys), this.plan.roundTimeoutMs);
      const shared = s.server.sharedKeys;
      if (shared.length < needed) return retry(`${shared.length} clients shared keys, ${needed} needed`);
      s.totalExamples = shared.reduce((n, c) => n + s.counts.get(c)!, 0);
      // Phase 2 (MaskedInputCollection).
      a.phase = 'input';
      for (const c of shared) this.publish(c, this.taskFor(a, c, 'input', { shares: s.server.sharesFor(c), totalExamples: s.totalExamples }));
      await this.collect(a, shared, () => new Set(s.server.survivors), this.plan.roundTimeoutMs);
      if (s.server.survivors.length < needed) return retry(`${s.server.survivors.length} masked inputs arrived, ${needed} needed`);
      // Phase 3 (Unmasking).
      a.phase = 'unmask';
      const request = s.server.unmaskRequest();
      if (request.dropped.length > 0) log.warn({ dropped: request.dropped }, 'clients dropped after sharing keys: removing their masks through their shared keys');
      for (const c of request.survivors) this.publish(c, this.taskFor(a, c, 'unmask', { request }));
      await this.collect(a, request.survivors, () => s.responses, this.plan.roundTimeoutMs);
      if (s.responses.size < threshold) return retry(`${s.responses.size} survivors revealed their shares, the threshold is ${threshold}`);
      let sum: Float64Array;
      try {
        sum = decodeFixedPoint(s.server.sum([...s.responses.values()]));
      } catch (err) {
        return retry(`unmasking failed: ${(err as Error).message}`);
      }
      // The survivors sent (n_i / N)·(w_i − w); dividing by their share of N gives their example-weighted mean update.
      const share = request.survivors.reduce((n, c) => n + s.counts.get(c)!, 0) / s.totalExamples;
      let offset = 0;
      const mean = this.global.map((w) => {
        const data = new Float32Array(w.data.length);
        for (let i = 0; i < data.length; i++) data[i] = w.data[i]! + sum[offset + i]! / share;
        offset += data.length;
        return { name: w.name, dims: [...w.dims], data };
      });
      update = [{ weights: mean, numExamples: request.survivors.reduce((n, c) => n + s.counts.get(c)!, 0) }];
      aggregated = request.survivors;
    }
    let next: ModelWeights;
    try {
      next = this.strategy.aggregate(this.global, update, round);
    } catch (err) {
      return retry(`aggregation refused the updates: ${(err as Error).message}`);
    }
    if (!allFinite(next)) return retry('the aggregate holds NaN or infinite values; the previous global model is kept');
    a.phase = 'done';
    await this.host.commit(round, next);
    this.global = next;
    this.current = undefined;
    for (const c of cohort) this.tasks.delete(c);
    const rejected = [...a.failed].map(([client, reason]) => ({ client, reason }));
    log.info({ aggregated, rejected }, 'round committed');
    const epsilon = (this.strategy as { epsilon?: () => number | undefined }).epsilon?.();
    return { round, attempts: attempt, cohort, aggregated, numExamples: update.reduce((n, u) => n + u.numExamples, 0), meanLoss, rejected, ...(epsilon !== undefined ? { epsilon } : {}) };
  }

  /** Secure aggregation's context: binds every secret and ciphertext to this model, round and attempt. */
  private context(a: { round: number; attempt: number }): string {
    return `${this.modelId}/run-${this.runId}/round-${a.round}/attempt-${a.attempt}`;
  }

  /** A client's long poll: the task after `after`, or undefined when none comes within the poll window. */
  async poll(client: string, after: string | undefined, signal?: AbortSignal): Promise<Task | undefined> {
    this.lastSeen.set(client, Date.now());
    this.wake();
    const ready = () => {
      const t = this.tasks.get(client) ?? (this.finished ? { key: `${this.runId}.done`, kind: 'done' as const, modelId: this.modelId, run: this.runId, round: this.completedRounds, attempt: 0, client } : undefined);
      return t && t.key !== after ? t : undefined;
    };
    let task = ready();
    if (!task) {
      await new Promise<void>((resolve) => {
        const set = this.waiters.get(client) ?? new Set();
        this.waiters.set(client, set);
        const done = () => {
          clearTimeout(timer);
          set.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, POLL_MS);
        set.add(done);
        signal?.addEventListener('abort', done);
      });
      this.lastSeen.set(client, Date.now());
      task = ready();
    }
    if (task?.kind === 'done') this.toldDone.add(client);
    return task;
  }

  /**
   * The attempt a message is for, after checking the model id, round, attempt, the sender's place
   * in the cohort and the phase; each mismatch is refused with its reason (409: stale or foreign).
   */
  private attemptFor(client: string, header: { modelId?: unknown; run?: unknown; round?: unknown; attempt?: unknown }, phase: Task['kind'], what: string): Attempt {
    if (header.modelId !== this.modelId) throw refuse(409, `${what} is for model ${JSON.stringify(header.modelId)}; this coordinator federates model ${this.modelId}`);
    if (header.run !== this.runId) throw refuse(409, `${what} is for coordinator run ${JSON.stringify(header.run)}, a predecessor of this one (${this.runId}): poll for a new task`);
    const a = this.current;
    if (!a || header.round !== a.round || header.attempt !== a.attempt) {
      throw refuse(409, `${what} is for round ${header.round} attempt ${header.attempt}; the coordinator is at ${a ? `round ${a.round} attempt ${a.attempt}` : this.finished ? 'the end of the run' : 'no open round'}`);
    }
    if (!a.cohort.includes(client)) throw refuse(403, `${what}: client '${client}' is not in round ${a.round}'s cohort`);
    if (a.failed.has(client)) throw refuse(409, `${what}: client '${client}' was already dropped from this round (${a.failed.get(client)})`);
    if (a.phase !== phase) throw refuse(409, `${what}: the round is in phase '${a.phase}', not '${phase}'`);
    return a;
  }

  /** A failed message from a cohort member drops it from the round (with the reason), so nobody waits for it. */
  private dropOnBadData(a: Attempt, client: string, what: string, check: () => void): void {
    try {
      check();
    } catch (err) {
      if (!(err instanceof KilnError) || err instanceof ServeError) throw err;
      const reason = `${what}: ${err.message}`;
      a.failed.set(client, reason);
      this.wake();
      throw refuse(400, reason);
    }
  }

  /** A plain client update (its trained weights as float32 and its example count). */
  acceptUpdate(client: string, message: Envelope): void {
    const what = `update from '${client}'`;
    const a = this.attemptFor(client, message.header, 'train', what);
    if (a.secure) throw refuse(409, `${what}: this round runs secure aggregation; send masked inputs`);
    if (a.updates.has(client)) throw refuse(409, `${what}: this client already sent its update for round ${a.round}`);
    this.dropOnBadData(a, client, what, () => {
      const n = message.header.numExamples;
      if (!Number.isInteger(n) || (n as number) <= 0) throw new KilnError('INVALID_DATA', `numExamples must be a positive integer, got ${JSON.stringify(n)}`);
      const loss = Number(message.header.loss);
      const weights = unpackWeights(message.header.weights, message.payload, what);
      checkCompatible(this.global, weights, 'the update');
      checkFiniteWeights(weights, 'the update');
      a.updates.set(client, { weights, numExamples: n as number, loss });
    });
    this.wake();
  }

  /** A client's report that it cannot take part this round (local training failed, data unusable). */
  acceptFailure(client: string, body: { modelId?: unknown; run?: unknown; round?: unknown; attempt?: unknown; reason?: unknown }): void {
    const a = this.current;
    if (!a || body.modelId !== this.modelId || body.run !== this.runId || body.round !== a.round || body.attempt !== a.attempt || !a.cohort.includes(client)) return;
    a.failed.set(client, `the client gave up: ${String(body.reason ?? 'no reason given').slice(0, 500)}`);
    this.host.log.warn({ client, round: a.round, reason: a.failed.get(client) }, 'client dropped out of the round');
    this.wake();
  }

  /** Secure aggregation phase 0: the client's public keys and its example count (sent in the clear). */
  acceptKeys(client: string, body: { modelId?: unknown; round?: unknown; attempt?: unknown; advertisement?: KeyAdvertisement; numExamples?: unknown }): void {
    const what = `keys from '${client}'`;
    const a = this.attemptFor(client, body, 'train', what);
    if (!a.secure) throw refuse(409, `${what}: this round does not run secure aggregation`);
    const s = a.secure;
    if (s.advertisements.has(client)) throw refuse(409, `${what}: already advertised`);
    this.dropOnBadData(a, client, what, () => {
      const n = body.numExamples;
      if (!Number.isInteger(n) || (n as number) <= 0) throw new KilnError('INVALID_DATA', `numExamples must be a positive integer, got ${JSON.stringify(n)}`);
      const ad = body.advertisement;
      if (!ad || ad.id !== client || typeof ad.sharingKey !== 'string' || typeof ad.maskingKey !== 'string') throw new KilnError('INVALID_DATA', `the advertisement must carry the client's own id '${client}' and two keys`);
      s.advertisements.set(client, { id: client, sharingKey: ad.sharingKey, maskingKey: ad.maskingKey });
      s.counts.set(client, n as number);
    });
    this.wake();
  }

  /** Secure aggregation phase 1: the client's encrypted shares for the others. */
  acceptShares(client: string, body: { modelId?: unknown; round?: unknown; attempt?: unknown; shares?: EncryptedShare[] }): void {
    const what = `shares from '${client}'`;
    const a = this.attemptFor(client, body, 'shares', what);
    this.dropOnBadData(a, client, what, () => a.secure!.server.addShares(client, Array.isArray(body.shares) ? body.shares : []));
    this.wake();
  }

  /** Secure aggregation phase 2: the client's masked input (uint32 words). */
  acceptMaskedInput(client: string, message: Envelope): void {
    const what = `masked input from '${client}'`;
    const a = this.attemptFor(client, message.header, 'input', what);
    this.dropOnBadData(a, client, what, () => {
      const words = new Uint32Array(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength / 4);
      a.secure!.server.addMaskedInput(client, words.slice());
    });
    this.wake();
  }

  /** Secure aggregation phase 3: the survivor's revealed shares. */
  acceptUnmask(client: string, body: { modelId?: unknown; round?: unknown; attempt?: unknown; response?: UnmaskResponse }): void {
    const what = `unmask shares from '${client}'`;
    const a = this.attemptFor(client, body, 'unmask', what);
    if (a.secure!.responses.has(client)) throw refuse(409, `${what}: already sent`);
    this.dropOnBadData(a, client, what, () => {
      const r = body.response;
      if (!r || r.from !== client || !Array.isArray(r.selfMaskShares) || !Array.isArray(r.maskingKeyShares)) throw new KilnError('INVALID_DATA', `the response must come from '${client}' and list selfMaskShares and maskingKeyShares`);
      a.secure!.responses.set(client, r);
    });
    this.wake();
  }
}
