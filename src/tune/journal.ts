/**
 * A study's journal on disk: append-only JSON lines, each written and fsync'd before the study goes
 * on, so a search killed at any moment (a signal, a power cut) leaves every finished trial recorded.
 * The first line names the study (its search space, objective and per-trial budget); a rerun pointed
 * at the same file continues that study, and one pointed at a journal of another study is refused.
 * A line cut short by a crash mid-write is the only damage a crash can do: it is dropped on reading.
 * As Optuna's JournalStorage, trials are events — started, reported (per rung/epoch), ended — and
 * the study's state is what replaying them gives.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KilnError } from '../errors.js';
import type { Params } from './space.js';

export const JOURNAL_VERSION = 1;

/** What makes two runs the same study: trials of one are comparable with trials of the other. */
export interface StudySignature {
  /** The search space in canonical form. */
  space: unknown;
  /** The objective trials are scored by. */
  objective: unknown;
  /** Epochs per trial. */
  epochs: number;
  /** The early-stopping settings (ASHA's minEpochs and reductionFactor), or null when off. */
  earlyStopping: unknown;
  /** What the trials train (CLI: data set and model preset); free-form for the library. */
  task?: unknown;
}

/** How a trial ended: complete (trained its full budget), pruned (stopped early by ASHA) or failed. */
export type TrialState = 'complete' | 'pruned' | 'failed';

/** One line of a study journal: the study's header, or a trial's start, report or end event. */
export type JournalRecord =
  | {
      /** The first line: which study the journal is for. */
      type: 'study';
      /** The journal format's version. */
      version: number;
      /** The study the journal was written for. */
      signature: StudySignature;
      /** When the journal was created (ISO 8601). */
      createdAt: string;
    }
  | {
      /** A trial started. */
      type: 'start';
      /** The trial's number. */
      trial: number;
      /** The trial's parameter values. */
      params: Params;
      /** When it started (ISO 8601). */
      at: string;
    }
  | {
      /** A trial was evaluated (at an epoch or ASHA rung). */
      type: 'report';
      /** The trial's number. */
      trial: number;
      /** Epochs trained at the evaluation. */
      epochs: number;
      /** The objective then. */
      value: number;
      /** The validation (and training) metrics then. */
      metrics: Record<string, number>;
    }
  | {
      /** A trial ended. */
      type: 'end';
      /** The trial's number. */
      trial: number;
      /** How it ended. */
      state: TrialState;
      /** The objective: final (complete) or last reported (pruned); absent for a failed trial. */
      value?: number;
      /** Epochs trained. */
      epochs: number;
      /** The last validation (and training) metrics. */
      metrics?: Record<string, number>;
      /** Weighted objectives: what the model costs. */
      cost?: {
        /** Median batch-1 inference latency, ms. */
        latencyMs?: number;
        /** Size of the model's ONNX file, bytes. */
        sizeBytes?: number;
        /** Number of parameters of the model. */
        parameters?: number;
      };
      /** Why the trial failed (failed trials). */
      error?: string;
      /** Wall-clock seconds the trial took. */
      seconds: number;
      /** Set when this trial's model was saved as the study's best. */
      saved?: string;
    };

/** The lines a journal file holds, with the damaged tail (if any) dropped and the file cut back to the last whole line. */
async function readRecords(file: string): Promise<JournalRecord[]> {
  const text = await fs.readFile(file, 'utf8');
  const lines = text.split('\n');
  const tail = lines.pop()!;
  const records: JournalRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      records.push(JSON.parse(line) as JournalRecord);
    } catch (err) {
      throw new KilnError('CORRUPT_FILE', `study journal '${file}' line ${i + 1} is not valid JSON (${(err as Error).message}); only the last line can be cut short by a crash`);
    }
  });
  // A last line with no newline was being written when the process died: it never counted.
  if (tail !== '') await fs.truncate(file, Buffer.byteLength(text) - Buffer.byteLength(tail));
  return records;
}

function describeDifference(file: string, found: StudySignature, wanted: StudySignature): string | undefined {
  for (const key of ['space', 'objective', 'epochs', 'earlyStopping', 'task'] as const) {
    const a = JSON.stringify(found[key] ?? null);
    const b = JSON.stringify(wanted[key] ?? null);
    if (a !== b) {
      const what = { space: 'search space', objective: 'objective', epochs: 'epochs per trial', earlyStopping: 'early stopping', task: 'data set and model' }[key];
      return `study journal '${file}' was written for another study: its ${what} is ${a}, this search's is ${b}. Use another journal file, or remove this one to start afresh`;
    }
  }
  return undefined;
}

/** An open study journal: appends records durably (fsync'd) in order. */
export class StudyJournal {
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    /** The journal file's path. */
    readonly file: string,
    private readonly handle: fs.FileHandle,
  ) {}

  /**
   * Opens the journal for `signature`: a new file starts with the study line; an existing one must
   * have been written for the same study, and its records are returned for the study to replay.
   */
  static async open(
    file: string,
    signature: StudySignature,
  ): Promise<{
    /** The open journal, ready for appends. */
    journal: StudyJournal;
    /** Every record in the file, the study line first (for a new file, only that line). */
    records: JournalRecord[];
  }> {
    let records: JournalRecord[] = [];
    let exists = true;
    try {
      records = await readRecords(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') exists = false;
      else if (err instanceof KilnError) throw err;
      else throw new KilnError('IO_ERROR', `could not read study journal '${file}': ${(err as Error).message}`, { cause: err });
    }
    if (exists && records.length > 0) {
      const head = records[0]!;
      if (head.type !== 'study') throw new KilnError('CORRUPT_FILE', `'${file}' is not a Kiln study journal: its first line is not a study record`);
      if (head.version !== JOURNAL_VERSION) throw new KilnError('CORRUPT_FILE', `study journal '${file}' has version ${head.version}; this Kiln reads version ${JOURNAL_VERSION}`);
      const difference = describeDifference(file, head.signature, signature);
      if (difference) throw new KilnError('INVALID_ARGUMENT', difference);
    }
    await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'a');
    } catch (err) {
      throw new KilnError('IO_ERROR', `could not open study journal '${file}': ${(err as Error).message}`, { cause: err });
    }
    const journal = new StudyJournal(file, handle);
    if (records.length === 0) {
      const head: JournalRecord = { type: 'study', version: JOURNAL_VERSION, signature, createdAt: new Date().toISOString() };
      await journal.append(head);
      records = [head];
    }
    return { journal, records };
  }

  /** Appends one record and fsyncs it; records are written in the order append() is called. */
  append(record: JournalRecord): Promise<void> {
    const line = `${JSON.stringify(record)}\n`;
    const next = this.queue.then(async () => {
      await this.handle.write(line);
      await this.handle.datasync();
    });
    // A failed write fails its caller; later appends still run.
    this.queue = next.catch(() => undefined);
    return next.catch((err) => {
      throw new KilnError('IO_ERROR', `could not write study journal '${this.file}': ${(err as Error).message}`, { cause: err });
    });
  }

  /** Waits for pending appends and closes the file. */
  async close(): Promise<void> {
    await this.queue;
    await this.handle.close();
  }
}
