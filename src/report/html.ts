import path from 'node:path';
import type { BenchReport } from '../bench/bench.js';
import { benchFootnote, benchHeader, benchRow } from '../bench/format.js';
import { writeFileAtomic } from '../model/atomic-write.js';
import { accuracyScatterSpec, curvePoints, renderSvg, trainingCurveSpec } from './charts.js';

/** What the report page shows besides the measurements. */
export interface ReportOptions {
  /** Page title (default 'Kiln model report'). */
  title?: string;
  /** Paragraphs shown under the title (what was run, how to reproduce it). */
  notes?: string[];
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export const STYLE = `
body { font-family: Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
p.meta, p.note { color: #555; font-size: .9rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #e5e5e5; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f6f6f6; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1.5rem; }
.chart svg { width: 100%; height: auto; }
dl { font-size: .85rem; } dt { font-weight: bold; margin-top: .4rem; } dd { margin-left: 1rem; font-family: monospace; white-space: pre-wrap; word-break: break-all; }
`;

/**
 * A self-contained page in Kiln's report style: the title, a line of facts (`metaHtml`, already
 * escaped), the caller's notes (escaped here), then `bodyHtml`. The bench, tuning and optimize
 * reports share it.
 */
export function htmlPage(title: string, metaHtml: string, notes: readonly string[] | undefined, bodyHtml: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="meta">${metaHtml}</p>
${(notes ?? []).map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('\n')}
${bodyHtml}</body>
</html>
`;
}

/**
 * The report as one self-contained HTML page: the variants' table, accuracy against size and against
 * latency, and the training curves stored in each model's metadata, as inline SVG charts. No script,
 * no stylesheet or font from elsewhere: it opens offline, from a file or an e-mail attachment.
 */
export async function renderReport(report: BenchReport, options: ReportOptions = {}): Promise<string> {
  const title = options.title ?? 'Kiln model report';
  const charts = async (specs: Parameters<typeof renderSvg>[0][]) => (await Promise.all(specs.map(renderSvg))).map((svg) => `<div class="chart">${svg}</div>`).join('\n');
  const variantCharts = await charts([accuracyScatterSpec(report.models, 'size'), accuracyScatterSpec(report.models, 'latency')]);
  const loss = curvePoints(report.models, 'loss');
  const accuracy = curvePoints(report.models, 'accuracy');
  const names = report.models.map((m) => m.name);
  const curveSpecs = [...(loss.length ? [trainingCurveSpec(loss, 'loss', names)] : []), ...(accuracy.length ? [trainingCurveSpec(accuracy, 'accuracy', names)] : [])];
  const curves = curveSpecs.length
    ? await charts(curveSpecs)
    : '<p class="note">None of these models stores a training history (metadata <code>kiln.history</code>, written by <code>fit</code>).</p>';
  const withHistory = [...new Set(loss.concat(accuracy).map((p) => p.model))];
  const header = benchHeader(report);
  const table = [
    '<table>',
    `<thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>`,
    '<tbody>',
    ...report.models.map((m) => `<tr>${benchRow(m).map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`),
    '</tbody>',
    '</table>',
  ].join('\n');
  const metadata = report.models
    .filter((m) => Object.keys(m.metadata).length > 0)
    .map((m) => `<dt>${escapeHtml(m.name)}${m.file ? ` <small>(${escapeHtml(path.basename(m.file))})</small>` : ''}</dt>${Object.entries(m.metadata).map(([k, v]) => `<dd>${escapeHtml(k)}: ${escapeHtml(v.length > 400 ? `${v.slice(0, 400)}…` : v)}</dd>`).join('')}`)
    .join('\n');
  const meta = `Measured ${escapeHtml(report.createdAt)} on ${escapeHtml(`${report.environment.cpus} × ${report.environment.cpu}`)}, Node ${escapeHtml(report.environment.node)}, ONNX Runtime ${escapeHtml(report.environment.onnxruntime)}.`;
  return htmlPage(title, meta, options.notes, `<h2>Variants</h2>
${table}
<p class="note">${escapeHtml(benchFootnote(report))} Parameters count initializer elements other than int64 shape constants and scalars; FLOPs are per example, a multiply-add counting two.</p>
<div class="charts">
${variantCharts}
</div>
<h2>Training curves</h2>
${withHistory.length ? `<p class="note">From the training history stored in the metadata of: ${escapeHtml(withHistory.join(', '))}. Solid: training data; dashed: validation data.</p>` : ''}
<div class="charts">
${curves}
</div>
${metadata ? `<h2>How each model was made</h2>\n<dl>\n${metadata}\n</dl>` : ''}
`);
}

/** Renders the report and writes it atomically; returns the file's absolute path. */
export async function writeReport(file: string, report: BenchReport, options: ReportOptions = {}): Promise<string> {
  await writeFileAtomic(file, new TextEncoder().encode(await renderReport(report, options)));
  return path.resolve(file);
}
