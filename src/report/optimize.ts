/**
 * `kiln optimize`'s report: every candidate against the original — accuracy against latency at
 * batch 64 and against size, the Pareto front drawn as a line through its members, the accuracy
 * budget as a rule, the chosen model named — and the table of candidates. Inline SVG, as the other reports.
 */
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { Candidate, OptimizeResult } from '../automl/optimize.js';
import { writeFileAtomic } from '../model/atomic-write.js';
import { formatBytes } from '../text/format.js';
import { renderSvg } from './charts.js';
import { escapeHtml, htmlPage } from './html.js';

const CONFIG = { font: 'Helvetica, Arial, sans-serif', view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' }, title: { fontSize: 14, anchor: 'start' as const } };

function role(result: OptimizeResult, c: Candidate): string {
  if (c === result.chosen) return 'chosen';
  if (c === result.original) return 'original';
  if (result.front.includes(c)) return 'Pareto front';
  return c.withinBudget ? 'within budget' : 'below budget';
}

/** Accuracy against one cost, the front connected in cost order. */
export function frontSpec(result: OptimizeResult, against: 'latency' | 'size'): TopLevelSpec {
  const all = [result.original, ...result.candidates];
  const cost = (c: Candidate) => (against === 'latency' ? c.latencyMs64 : c.sizeBytes / 1024);
  const rows = all.map((c) => ({ name: c.name, accuracy: 100 * c.accuracy, cost: cost(c), role: role(result, c) }));
  const front = result.front.map((c) => ({ cost: cost(c), accuracy: 100 * c.accuracy })).sort((a, b) => a.cost - b.cost);
  const floor = 100 * (result.original.accuracy - result.maxAccuracyDrop / 100);
  const x = { field: 'cost', type: 'quantitative' as const, title: against === 'latency' ? 'latency of a batch of 64 (ms)' : 'gzip size (KiB)', scale: { zero: true } };
  const y = { field: 'accuracy', type: 'quantitative' as const, title: 'accuracy (%)', scale: { zero: false } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: against === 'latency' ? 'Accuracy vs latency at batch 64' : 'Accuracy vs size',
    width: 480,
    height: 320,
    autosize: { type: 'fit', contains: 'padding' },
    config: CONFIG,
    layer: [
      { data: { values: front }, mark: { type: 'line', color: '#888', strokeDash: [4, 3], interpolate: 'step-after' }, encoding: { x, y } },
      { data: { values: [{ floor }] }, mark: { type: 'rule', color: '#e45756', strokeDash: [2, 2] }, encoding: { y: { field: 'floor', type: 'quantitative' } } },
      {
        data: { values: rows },
        mark: { type: 'point', filled: true, size: 70 },
        encoding: {
          x,
          y,
          color: { field: 'role', type: 'nominal', title: '', scale: { domain: ['chosen', 'original', 'Pareto front', 'within budget', 'below budget'], range: ['#54a24b', '#4c78a8', '#f58518', '#b279a2', '#bab0ac'] } },
          tooltip: [{ field: 'name' }, { field: 'accuracy', format: '.2f' }, { field: 'cost', format: '.3f' }, { field: 'role' }],
        },
      },
      { data: { values: rows.filter((r) => r.role !== 'below budget' && r.role !== 'within budget') }, mark: { type: 'text', align: 'left', dx: 7, dy: -6, fontSize: 10 }, encoding: { x, y, text: { field: 'name' } } },
    ],
  };
}

/** The candidates table: a header and one row of formatted cells per model, the original first. */
export function candidateRows(result: OptimizeResult): { header: string[]; rows: string[][] } {
  const header = ['model', 'accuracy %', 'Δ points', 'params', 'file', 'gzip', 'ms @1', 'ms @64', 'speed-up @64', 'size ×', 'front', ''];
  const rows = [result.original, ...result.candidates].map((c) => [
    c.name,
    (100 * c.accuracy).toFixed(2),
    (100 * (c.accuracy - result.original.accuracy)).toFixed(2),
    String(c.parameters),
    formatBytes(c.fileBytes),
    formatBytes(c.gzipBytes),
    c.latencyMs1.toFixed(3),
    c.latencyMs64.toFixed(2),
    `${c.speedup64.toFixed(2)}×`,
    `${c.compression.toFixed(2)}×`,
    result.front.includes(c) ? 'yes' : '',
    c === result.chosen ? 'chosen' : c.withinBudget ? '' : 'over budget',
  ]);
  return { header, rows };
}

/** `kiln optimize`'s report page as HTML: the two front charts, the chosen model, the candidates table and those not made. */
export async function renderOptimizeReport(result: OptimizeResult, options: { title?: string; notes?: string[] } = {}): Promise<string> {
  const title = options.title ?? 'Kiln optimize';
  const svgs = await Promise.all([frontSpec(result, 'latency'), frontSpec(result, 'size')].map(renderSvg));
  const { header, rows } = candidateRows(result);
  const table = ['<table>', `<thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>`, '<tbody>', ...rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`), '</tbody>', '</table>'].join('\n');
  const chosen = result.chosen
    ? `Chosen: <strong>${escapeHtml(result.chosen.name)}</strong>, accuracy ${(100 * result.chosen.accuracy).toFixed(2)}% (original ${(100 * result.original.accuracy).toFixed(2)}%), ${result.chosen.speedup64.toFixed(2)}× faster at batch 64, ${result.chosen.compression.toFixed(2)}× smaller (gzip).` +
      (result.check ? ` Timed again against the original over ${result.check.repetitions} rounds: ${result.check.speedup64.toFixed(2)}× at batch 64, ${result.check.speedup1.toFixed(2)}× at batch 1.` : '')
    : `No candidate stayed within ${result.maxAccuracyDrop} points of the original.`;
  const meta = `Objective: ${result.objective === 'latency' ? 'latency of a batch of 64' : 'gzip-compressed size'}, losing at most ${result.maxAccuracyDrop} points of accuracy; ${result.candidates.length} candidates made, ${result.skipped.length} skipped${result.budgetSpent ? ' (time budget spent)' : ''}, ${result.seconds.toFixed(0)} s.`;
  return htmlPage(title, meta, options.notes, `<p>${chosen}</p>
<h2>Pareto front</h2>
<p class="note">The front holds the models no other model beats on accuracy, latency at batch 1, latency at batch 64 and size at once (each chart shows two of these axes, so a front member can look dominated in one of them). The red rule is the accuracy budget.</p>
<div class="charts">
${svgs.map((svg) => `<div class="chart">${svg}</div>`).join('\n')}
</div>
<h2>Candidates</h2>
${table}
${result.skipped.length ? `<h2>Not made</h2>\n<ul>${result.skipped.map((s) => `<li>${escapeHtml(s.name)}: ${escapeHtml(s.reason)}</li>`).join('')}</ul>` : ''}
`);
}

/** Renders `kiln optimize`'s report and writes it atomically; returns the file's absolute path. */
export async function writeOptimizeReport(file: string, result: OptimizeResult, options: { title?: string; notes?: string[] } = {}): Promise<string> {
  await writeFileAtomic(file, new TextEncoder().encode(await renderOptimizeReport(result, options)));
  return path.resolve(file);
}
