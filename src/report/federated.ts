/**
 * Federated simulations as one self-contained HTML page: the global model's test accuracy after every
 * round, one line per setting (strategy, split, privacy), with ε per round where a setting spends a
 * privacy budget, and a table of each setting's final figures. Vega-Lite rendered to inline SVG, as
 * the other reports.
 */
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { SimulationResult } from '../federated/simulate.js';
import { writeFileAtomic } from '../model/atomic-write.js';
import { renderSvg } from './charts.js';
import { escapeHtml, htmlPage } from './html.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const SIZE = { width: 480, height: 300, autosize: { type: 'fit' as const, contains: 'padding' as const } };
const CONFIG = { font: 'Helvetica, Arial, sans-serif', view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' }, legend: { labelFontSize: 11, titleFontSize: 11 }, title: { fontSize: 14, anchor: 'start' as const } };

/** One line per setting: test accuracy (%) after each round. */
export function accuracyPerRoundSpec(results: readonly SimulationResult[]): TopLevelSpec {
  const points = results.flatMap((r) => r.rounds.map((x) => ({ setting: r.setting, round: x.round, accuracy: 100 * x.accuracy, ...(x.epsilon !== undefined ? { epsilon: x.epsilon } : {}) })));
  const x = { field: 'round', type: 'quantitative' as const, title: 'round', axis: { tickMinStep: 1, format: 'd' }, scale: { nice: false } };
  const y = { field: 'accuracy', type: 'quantitative' as const, title: 'test accuracy (%)', scale: { zero: false } };
  const color = { field: 'setting', type: 'nominal' as const, title: 'setting' };
  return {
    $schema: SCHEMA,
    title: 'Test accuracy per round',
    ...SIZE,
    config: CONFIG,
    data: { values: points },
    layer: [
      { mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y, color } },
      { mark: { type: 'point', filled: true, size: 30 }, encoding: { x, y, color, tooltip: [{ field: 'setting' }, { field: 'round' }, { field: 'accuracy', format: '.2f' }, { field: 'epsilon', format: '.2f' }] } },
    ],
  };
}

/** Options of the federated report page. */
export interface FederatedReportOptions {
  /** The page's title (default 'Kiln federated simulation'). */
  title?: string;
  /** Paragraphs under the title: the command that ran, the data, the split. */
  notes?: string[];
}

/** The simulations' report page. */
export async function renderFederatedReport(results: readonly SimulationResult[], options: FederatedReportOptions = {}): Promise<string> {
  const title = options.title ?? 'Kiln federated simulation';
  const svg = await renderSvg(accuracyPerRoundSpec(results));
  const rows = results.map((r) => {
    const last = r.rounds.at(-1);
    const best = Math.max(...r.rounds.map((x) => x.accuracy));
    const seconds = r.rounds.reduce((a, x) => a + x.seconds, 0);
    return [r.setting, String(r.rounds.length), last ? `${(100 * last.accuracy).toFixed(2)}%` : '–', `${(100 * best).toFixed(2)}%`, last?.epsilon !== undefined ? last.epsilon.toFixed(2) : '–', `${seconds.toFixed(1)} s`];
  });
  const header = ['setting', 'rounds', 'final accuracy', 'best accuracy', 'ε spent', 'training time'];
  const table = ['<table>', `<thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>`, '<tbody>', ...rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`), '</tbody>', '</table>'].join('\n');
  const meta = `${results.length} setting${results.length === 1 ? '' : 's'}; clients per setting: ${results.map((r) => r.clientSizes.length).join(', ')}.`;
  return htmlPage(title, meta, options.notes, `<h2>Accuracy per round</h2>
<div class="charts">
<div class="chart">${svg}</div>
</div>
<h2>Settings</h2>
${table}
`);
}

/** Renders the report and writes it atomically; returns the file's absolute path. */
export async function writeFederatedReport(file: string, results: readonly SimulationResult[], options: FederatedReportOptions = {}): Promise<string> {
  await writeFileAtomic(file, new TextEncoder().encode(await renderFederatedReport(results, options)));
  return path.resolve(file);
}
