/** The study's results as a table: one row per trial, the best marked, for the terminal and the HTML report alike. */
import { formatTable } from '../text/format.js';
import type { SearchSpace } from './space.js';
import type { TrialResult, TuneResult } from './study.js';

function formatParam(v: unknown): string {
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) < 1e-2 || Math.abs(v) >= 1e4 ? v.toExponential(2) : v.toPrecision(3);
}

/** Header and rows: trial, state, each parameter, epochs, objective, seconds. */
export function trialTable(
  space: SearchSpace,
  trials: readonly TrialResult[],
  best?: TrialResult,
): {
  /** Column titles. */
  header: string[];
  /** One row of formatted cells per trial. */
  rows: string[][];
} {
  const header = ['trial', 'state', ...space.names, 'epochs', 'objective', 'seconds'];
  const rows = trials.map((t) => [
    `${t.id}${best && t.id === best.id ? ' *' : ''}`,
    t.state,
    ...space.names.map((n) => (n in t.params ? formatParam(t.params[n]) : '-')),
    formatParam(Math.round(t.epochs * 100) / 100),
    t.value === undefined ? '-' : t.value.toFixed(4),
    t.seconds.toFixed(1),
  ]);
  return { header, rows };
}

/** The results table as terminal text, the best trial marked with '*'. */
export function formatTrialTable(result: Pick<TuneResult, 'space' | 'trials' | 'best'>): string {
  const { header, rows } = trialTable(result.space, result.trials, result.best);
  return formatTable(rows, { header });
}
