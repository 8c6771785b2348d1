/**
 * A Keras-style progress bar for training epochs:
 *
 *     Epoch 3/10 12/50 [=====>........................] - loss: 0.4321 - accuracy: 0.8812 - 1,234 img/s - ETA 3s
 *
 * On a terminal it redraws one line in place; into a file or a pipe (CI logs, `> train.log`) carriage
 * returns would pile up as garbage, so there it stays silent until `finish` writes one summary line.
 * fit() draws it as well as the CLI, so it lives below both.
 */
import { KilnError } from '../errors.js';
import { formatDuration, formatNumber } from './format.js';

/** The part of a writable stream the bar uses, so tests can pass a fake one. */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  /** Terminal width; a longer line would wrap and break the in-place redraw, so it is cut to fit. */
  readonly columns?: number;
}

export type ProgressValues = Record<string, number | string>;

export interface ProgressBarOptions {
  /** Steps in the epoch (batches, usually). */
  total: number;
  /** Where to draw (default process.stderr, keeping stdout clean for results). */
  stream?: ProgressStream;
  /** Printed before the counter, e.g. 'Epoch 3/10'. */
  label?: string;
  /** Characters inside the brackets (default 30, as Keras). */
  width?: number;
  /** Items each step processes (the batch size), for the throughput figure. */
  itemsPerStep?: number;
  /** Name of an item, e.g. 'img' for '1,234 img/s'. Without it the bar shows time per step instead. */
  itemUnit?: string;
  /** Least time between redraws (default 100 ms): drawing every step of a fast model costs more than the step. */
  minRedrawMs?: number;
  /** Clock in milliseconds (default performance.now), injectable so tests control time. */
  now?: () => number;
}

/** Keras' rule: four decimals, or scientific notation for values too small to show in four. */
function formatValue(value: number | string): string {
  if (typeof value === 'string') return value;
  if (Number.isNaN(value)) return 'nan';
  return value === 0 || Math.abs(value) >= 1e-3 ? value.toFixed(4) : value.toExponential(4);
}

const CLEAR_LINE = '\r\x1b[2K';

export class ProgressBar {
  private readonly total: number;
  private readonly stream: ProgressStream;
  private readonly label: string;
  private readonly width: number;
  private readonly itemsPerStep: number;
  private readonly itemUnit: string | undefined;
  private readonly minRedrawMs: number;
  private readonly now: () => number;
  private readonly startedAt: number;
  private lastDrawAt: number | undefined;
  private lastValues: ProgressValues = {};
  private finished = false;

  constructor(options: ProgressBarOptions) {
    const { total, width = 30, itemsPerStep = 1, minRedrawMs = 100 } = options;
    if (!Number.isInteger(total) || total < 0) {
      throw new KilnError('INVALID_ARGUMENT', `progress bar total must be a non-negative integer, got ${total}`);
    }
    if (!Number.isInteger(width) || width < 1) {
      throw new KilnError('INVALID_ARGUMENT', `progress bar width must be a positive integer, got ${width}`);
    }
    this.total = total;
    this.stream = options.stream ?? process.stderr;
    this.label = options.label ?? '';
    this.width = width;
    this.itemsPerStep = itemsPerStep;
    this.itemUnit = options.itemUnit;
    this.minRedrawMs = minRedrawMs;
    this.now = options.now ?? (() => performance.now());
    this.startedAt = this.now();
  }

  /** Records progress after `current` steps; redraws on a terminal when the last draw is old enough. */
  update(current: number, values: ProgressValues = {}): void {
    if (this.finished) return;
    this.lastValues = values;
    if (!this.stream.isTTY) return;
    const now = this.now();
    const due = this.lastDrawAt === undefined || now - this.lastDrawAt >= this.minRedrawMs || current >= this.total;
    if (!due) return;
    this.lastDrawAt = now;
    this.stream.write(CLEAR_LINE + this.fitToTerminal(this.render(current, values, now, false)));
  }

  /**
   * Ends the bar with the epoch complete: the final line with total time, then a newline. `values`
   * defaults to those of the last update. Later calls do nothing.
   */
  finish(values: ProgressValues = this.lastValues): void {
    if (this.finished) return;
    this.finished = true;
    const line = this.render(this.total, values, this.now(), true);
    this.stream.write(this.stream.isTTY ? `${CLEAR_LINE}${this.fitToTerminal(line)}\n` : `${line}\n`);
  }

  private render(current: number, values: ProgressValues, now: number, done: boolean): string {
    const fractionDone = this.total === 0 ? 1 : Math.min(1, Math.max(0, current / this.total));
    const counter = `${String(current).padStart(String(this.total).length)}/${this.total}`;
    const parts = [`${this.label ? `${this.label} ` : ''}${counter} ${this.renderBar(fractionDone, current)}`];
    for (const [name, value] of Object.entries(values)) parts.push(`${name}: ${formatValue(value)}`);
    const elapsed = now - this.startedAt;
    if (current > 0 && elapsed > 0) {
      if (this.itemUnit !== undefined) {
        const perSecond = (current * this.itemsPerStep * 1000) / elapsed;
        parts.push(`${formatNumber(Math.round(perSecond))} ${this.itemUnit}/s`);
      } else {
        parts.push(`${formatDuration(elapsed / current)}/step`);
      }
    }
    if (done) {
      parts.push(formatDuration(elapsed));
    } else if (current > 0 && current < this.total && elapsed > 0) {
      // Whole seconds, rounded up: an ETA that says 0s while work remains reads as a hang.
      const remainingMs = (elapsed / current) * (this.total - current);
      parts.push(`ETA ${formatDuration(Math.ceil(remainingMs / 1000) * 1000)}`);
    }
    return parts.join(' - ');
  }

  /** `[=====>......]` as Keras draws it: '>' marks the head until the bar is full. */
  private renderBar(fractionDone: number, current: number): string {
    const filled = Math.floor(this.width * fractionDone);
    let bar = '';
    if (filled > 0) bar += '='.repeat(filled - 1) + (current < this.total ? '>' : '=');
    return `[${bar}${'.'.repeat(this.width - filled)}]`;
  }

  private fitToTerminal(line: string): string {
    const columns = this.stream.columns;
    return columns !== undefined && columns > 1 && line.length >= columns ? line.slice(0, columns - 1) : line;
  }
}
