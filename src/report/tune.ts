/**
 * A tuning study as one self-contained HTML page: the objective of every trial (and the best so far),
 * the two most important parameters against the objective, the importance of each parameter (with
 * how it is defined), and the table of trials. Vega-Lite charts rendered to inline SVG, as the model
 * report's.
 */
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../model/atomic-write.js';
import { trialTable } from '../tune/results-table.js';
import type { TuneResult } from '../tune/study.js';
import { renderSvg } from './charts.js';
import { escapeHtml, htmlPage } from './html.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const SIZE = { width: 480, height: 300, autosize: { type: 'fit' as const, contains: 'padding' as const } };
const CONFIG = { font: 'Helvetica, Arial, sans-serif', view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' }, title: { fontSize: 14, anchor: 'start' as const } };
const STATE_COLORS = { domain: ['complete', 'pruned', 'failed'], range: ['#4c78a8', '#f58518', '#e45756'] };

function objectiveTitle(result: TuneResult): string {
  const o = result.objective;
  const extra = [o.latencyWeight ? `${o.latencyWeight}·latency ms` : '', o.sizeWeight ? `${o.sizeWeight}·size MiB` : ''].filter(Boolean).join(' + ');
  return extra ? `${o.metric} ${result.direction === 'maximize' ? '−' : '+'} (${extra})` : o.metric;
}

/** The objective of each trial in the order they were numbered, and the best complete value so far. */
export function objectivePerTrialSpec(result: TuneResult): TopLevelSpec {
  const points = result.trials.filter((t) => t.value !== undefined).map((t) => ({ trial: t.id, value: t.value!, state: t.state, epochs: t.epochs }));
  const bestSoFar: { trial: number; best: number }[] = [];
  let best: number | undefined;
  for (const t of result.trials) {
    if (t.state === 'complete' && t.value !== undefined && (best === undefined || (result.direction === 'maximize' ? t.value > best : t.value < best))) best = t.value;
    if (best !== undefined) bestSoFar.push({ trial: t.id, best });
  }
  const x = { field: 'trial', type: 'quantitative' as const, title: 'trial', axis: { tickMinStep: 1, format: 'd' } };
  return {
    $schema: SCHEMA,
    title: 'Objective per trial',
    ...SIZE,
    config: CONFIG,
    layer: [
      { data: { values: bestSoFar }, mark: { type: 'line', interpolate: 'step-after', color: '#888' }, encoding: { x, y: { field: 'best', type: 'quantitative', title: objectiveTitle(result), scale: { zero: false } } } },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 60 },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', scale: { zero: false } },
          color: { field: 'state', type: 'nominal', title: 'trial', scale: STATE_COLORS },
          tooltip: [{ field: 'trial' }, { field: 'state' }, { field: 'epochs' }, { field: 'value', format: '.4f' }],
        },
      },
    ],
  };
}

/** One parameter against the objective over the trials that have it (log axis for log ranges). */
export function parameterSpec(result: TuneResult, name: string): TopLevelSpec {
  const spec = result.space.spec(name);
  const values = result.trials.filter((t) => t.value !== undefined && name in t.params).map((t) => ({ trial: t.id, x: spec.kind === 'choice' ? String(t.params[name]) : t.params[name], value: t.value!, state: t.state }));
  const x =
    spec.kind === 'choice'
      ? { field: 'x', type: 'nominal' as const, title: name, sort: spec.values.map(String) }
      : { field: 'x', type: 'quantitative' as const, title: name, scale: { type: spec.log ? ('log' as const) : ('linear' as const), zero: false, nice: false } };
  return {
    $schema: SCHEMA,
    title: `${name} against the objective`,
    ...SIZE,
    config: CONFIG,
    data: { values },
    mark: { type: 'point', filled: true, size: 60 },
    encoding: {
      x,
      y: { field: 'value', type: 'quantitative', title: objectiveTitle(result), scale: { zero: false } },
      color: { field: 'state', type: 'nominal', title: 'trial', scale: STATE_COLORS },
      tooltip: [{ field: 'trial' }, { field: 'x', title: name }, { field: 'value', format: '.4f' }, { field: 'state' }],
    },
  };
}

/** Options of the tuning study's report page. */
export interface TuneReportOptions {
  /** The page's title and heading (default 'Kiln tuning study'). */
  title?: string;
  /** Paragraphs under the title: the command that ran, the data. */
  notes?: string[];
}

/** The study's report page. */
export async function renderTuneReport(result: TuneResult, options: TuneReportOptions = {}): Promise<string> {
  const title = options.title ?? 'Kiln tuning study';
  const top = result.importance.slice(0, 2).map((i) => i.name);
  const svgs = await Promise.all([objectivePerTrialSpec(result), ...top.map((n) => parameterSpec(result, n))].map(renderSvg));
  const { header, rows } = trialTable(result.space, result.trials, result.best);
  const table = ['<table>', `<thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>`, '<tbody>', ...rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`), '</tbody>', '</table>'].join('\n');
  const importance = [
    '<table>',
    '<thead><tr><th>parameter</th><th>importance (η²)</th><th>searched over</th></tr></thead>',
    '<tbody>',
    ...result.importance.map((i) => `<tr><td>${escapeHtml(i.name)}</td><td>${i.importance.toFixed(3)}</td><td>${escapeHtml(result.space.describe().find((d) => d.startsWith(`${i.name}:`))!.slice(i.name.length + 2))}</td></tr>`),
    '</tbody>',
    '</table>',
  ].join('\n');
  const counts = (['complete', 'pruned', 'failed'] as const).map((s) => `${result.trials.filter((t) => t.state === s).length} ${s}`).join(', ');
  const best = result.best
    ? `Best: trial ${result.best.id}, objective ${result.best.value!.toFixed(4)} with ${escapeHtml(JSON.stringify(result.best.params))}${result.bestModelFile ? `, saved as <code>${escapeHtml(path.basename(result.bestModelFile))}</code>` : ''}.`
    : 'No trial completed.';
  const meta = `${result.trials.length} trials (${counts}); sampler ${escapeHtml(result.sampler)}; objective ${escapeHtml(objectiveTitle(result))}, ${result.direction}d.`;
  return htmlPage(title, meta, options.notes, `<p>${best}</p>
<h2>Trials</h2>
<div class="charts">
${svgs.map((svg) => `<div class="chart">${svg}</div>`).join('\n')}
</div>
<h2>Parameter importance</h2>
<p class="note">Importance is the share of the objective's variance over the complete trials that a parameter explains on its own: the correlation ratio η² = Var(E[objective | parameter]) / Var(objective), trials grouped by value for choices and by up to 4 quantile bins of the (log-)value for ranges — the first-order term of a functional ANOVA, estimated from the trials without a surrogate model. Interactions are not measured, and with few trials per group η² overstates every parameter alike.</p>
${importance}
<h2>All trials</h2>
${table}
`);
}

/** Renders the study's report and writes it atomically; returns the file's absolute path. */
export async function writeTuneReport(file: string, result: TuneResult, options: TuneReportOptions = {}): Promise<string> {
  await writeFileAtomic(file, new TextEncoder().encode(await renderTuneReport(result, options)));
  return path.resolve(file);
}
