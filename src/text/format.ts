/**
 * Plain-text formatting for terminal output: tables (model summaries, results, confusion matrices) and
 * human-readable numbers, sizes and durations. Output is deterministic and locale-independent so that
 * tests and logs read the same on every machine. It sits below the library (model summaries, bench
 * tables) and the CLI alike, so neither has to reach up into the other for it.
 */
import { KilnError } from '../errors.js';

export type Alignment = 'left' | 'right';

export interface TableOptions {
  /** Column titles; every row must have at most this many cells. */
  header: readonly string[];
  /** Per-column alignment. By default a column whose cells are all numbers is right-aligned, others left. */
  align?: readonly Alignment[];
  /** Spaces between columns (default 2). */
  gap?: number;
  /** Character repeated under the header (default '-'). */
  rule?: string;
}

/** Width as a terminal shows it, counting code points so that e.g. 'µ' or '×' is one column. */
function displayWidth(text: string): number {
  return [...text].length;
}

function pad(text: string, width: number, align: Alignment): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(text)));
  return align === 'right' ? fill + text : text + fill;
}

/**
 * Renders rows under a header and a rule line, each column as wide as its widest cell:
 *
 *     Layer (type)        Output Shape          Param #
 *     --------------------------------------------------
 *     conv2d (Conv2D)     [null, 30, 30, 32]        896
 *
 * Number cells are written with thousands separators. Lines carry no trailing spaces and the string no
 * trailing newline.
 */
export function formatTable(rows: readonly (readonly (string | number)[])[], options: TableOptions): string {
  const { header, gap = 2, rule = '-' } = options;
  const columnCount = header.length;
  rows.forEach((row, r) => {
    if (row.length > columnCount) {
      throw new KilnError('INVALID_ARGUMENT', `table row ${r} has ${row.length} cells but the header has ${columnCount}`);
    }
  });
  if (options.align && options.align.length !== columnCount) {
    throw new KilnError(
      'INVALID_ARGUMENT',
      `table align has ${options.align.length} entries but the header has ${columnCount} columns`,
    );
  }
  const align: Alignment[] = header.map((_, c) => {
    const given = options.align?.[c];
    if (given) return given;
    const allNumbers = rows.length > 0 && rows.every((row) => typeof row[c] === 'number');
    return allNumbers ? 'right' : 'left';
  });
  const cells = rows.map((row) =>
    header.map((_, c) => {
      const cell = row[c];
      return typeof cell === 'number' ? formatNumber(cell) : (cell ?? '');
    }),
  );
  const widths = header.map((title, c) =>
    cells.reduce((widest, row) => Math.max(widest, displayWidth(row[c]!)), displayWidth(title)),
  );
  const separator = ' '.repeat(gap);
  const renderLine = (line: readonly string[]): string =>
    line.map((text, c) => pad(text, widths[c]!, align[c]!)).join(separator).trimEnd();
  const totalWidth = widths.reduce((a, b) => a + b, 0) + gap * Math.max(0, columnCount - 1);
  return [renderLine(header), rule.repeat(totalWidth), ...cells.map(renderLine)].join('\n');
}

function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * A number with thousands separators in its integer part: 122570 → '122,570', 1234.5 → '1,234.5'.
 * `fractionDigits` fixes the decimals (1234.5678 with 2 → '1,234.57'). Exponent forms and non-finite
 * values are returned as JavaScript writes them.
 */
export function formatNumber(n: number, options: { fractionDigits?: number } = {}): string {
  if (!Number.isFinite(n)) return String(n);
  const text = options.fractionDigits === undefined ? String(n) : n.toFixed(options.fractionDigits);
  if (text.includes('e')) return text;
  const sign = text.startsWith('-') ? '-' : '';
  const [integerPart, fractionPart] = text.slice(sign.length).split('.');
  return sign + groupThousands(integerPart!) + (fractionPart === undefined ? '' : `.${fractionPart}`);
}

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** A byte count in binary units: 512 → '512 B', 490280 → '478.79 KiB', 1572864 → '1.50 MiB'. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return `${n} B`;
  const sign = n < 0 ? '-' : '';
  let value = Math.abs(n);
  if (value < 1024) return `${sign}${formatNumber(value)} B`;
  let unit = 0;
  value /= 1024;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${sign}${formatNumber(value, { fractionDigits: 2 })} ${BYTE_UNITS[unit]}`;
}

/**
 * A duration for people: '850ms', '3.2s', '42s', '2m 05s', '1h 02m'. Precision drops as durations grow
 * because nobody watching a progress bar needs milliseconds of an hour-long run.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '--';
  const clamped = Math.max(0, ms);
  if (Math.round(clamped) < 1000) return `${Math.round(clamped)}ms`;
  const tenths = Math.round(clamped / 100) / 10;
  if (tenths < 10) return `${tenths}s`;
  const totalSeconds = Math.round(clamped / 1000);
  if (totalSeconds < 60) return `${totalSeconds}s`;
  const seconds = totalSeconds % 60;
  const totalMinutes = Math.floor(totalSeconds / 60);
  if (totalMinutes < 60) return `${totalMinutes}m ${String(seconds).padStart(2, '0')}s`;
  const minutes = totalMinutes % 60;
  return `${Math.floor(totalMinutes / 60)}h ${String(minutes).padStart(2, '0')}m`;
}
