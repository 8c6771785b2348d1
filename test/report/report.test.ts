/**
 * The HTML report (src/report/): a self-contained page with the variants' table, accuracy against
 * size and against latency, and the training curves read from the models' metadata, drawn by Vega-Lite
 * as inline SVG; it opens in headless Chromium without console errors and renders something visible
 * (the screenshot is decoded and checked not to be blank). `kiln report` writes it from model files
 * or from `kiln bench --json` output.
 *
 * The Chromium tests need Debian's `chromium` (or $KILN_CHROMIUM) and are skipped, saying so, without
 * it; under CI they fail instead (test/requirements.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { bench, renderReport, writeReport, type BenchReport } from '../../src/index.js';
import { main } from '../../src/cli/main.js';
import { makeTempDir } from '../model/helpers.js';
import { tinyCnn, tinyData, trainedTinyCnn, writeIdxDataset, type TinyData } from '../bench/fixtures.js';
import { decodePng, inkStatistics } from './png.js';
import { needs } from '../requirements.js';

const QUICK = { repetitions: 1, latencyRuns: 10, warmup: 1, throughputBatches: 1 };

function findChromium(): string | undefined {
  if (process.env.KILN_CHROMIUM) return process.env.KILN_CHROMIUM;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of ['chromium', 'chromium-browser', 'google-chrome']) if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

const CHROMIUM = findChromium();
const NO_CHROMIUM = CHROMIUM ? undefined : 'headless Chromium not found (apt-get install -y chromium, or set KILN_CHROMIUM)';

/** Runs headless Chromium on a page: its console messages (from the log on stderr) and what it was asked for. */
async function chromium(page: string, mode: { screenshot: string } | 'dump-dom'): Promise<{ stdout: string; console: string[] }> {
  const profile = await mkdtemp(join(tmpdir(), 'kiln-chromium-'));
  try {
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      '--enable-logging=stderr',
      '--v=0',
      ...(mode === 'dump-dom' ? ['--dump-dom'] : [`--screenshot=${mode.screenshot}`, '--window-size=1200,1800', '--hide-scrollbars']),
      `file://${page}`,
    ];
    const r = spawnSync(CHROMIUM!, args, { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.error, undefined, `chromium failed to run: ${r.error}`);
    // Chromium logs page console messages as "...:CONSOLE(line)] "text", source: ..." (and "Uncaught ..." for errors).
    const consoleLines = r.stderr.split('\n').filter((l) => /:CONSOLE[:(]|Uncaught|Failed to load resource/.test(l));
    return { stdout: r.stdout, console: consoleLines };
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

describe('report', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  let data: TinyData;
  let measured: BenchReport;
  let files: string[];

  before(async () => {
    temp = await makeTempDir('kiln-report-test-');
    data = await tinyData(400, 100);
    const trained = await trainedTinyCnn(data, 3);
    const small = tinyCnn(2, 4);
    // No fit: a model without history draws no curve but still sits in the table and scatter plots.
    files = [join(temp.dir, 'cnn.onnx'), join(temp.dir, 'untrained-small.onnx')];
    await trained.save(files[0]!);
    await small.save(files[1]!);
    measured = await bench(files, { x: data.test.images, y: data.test.labels }, { ...QUICK, dataset: 'embedded (first 100 test images)' });
  });
  after(() => temp.remove());

  it('is one HTML page with the table, both scatter charts and both training curves as inline SVG', async () => {
    const html = await renderReport(measured, { title: 'Tiny <report>', notes: ['made by a test'] });
    assert.ok(html.startsWith('<!DOCTYPE html>'));
    assert.ok(html.includes('<title>Tiny &lt;report&gt;</title>'), 'title escaped');
    assert.equal(html.match(/<svg\b/g)?.length, 4, 'four charts');
    for (const title of ['Accuracy vs file size', 'Accuracy vs latency', 'Loss per epoch', 'Accuracy per epoch']) assert.ok(html.includes(`Title text '${title}'`), `chart '${title}'`);
    // Each variant is a point in both scatter plots; the trained model's 3 epochs are on its curves.
    for (const name of ['cnn', 'untrained-small']) {
      assert.equal(html.match(new RegExp(`test accuracy \\(%\\): [0-9.]+; model: ${name}`, 'g'))?.length, 4, `${name}: one point and one label per scatter plot`);
      assert.ok(html.includes(`<td>${name}</td>`), `${name} in the table`);
    }
    for (const split of ['train', 'validation']) assert.ok(html.includes(`epoch: 3; loss: `) && html.includes(`model: cnn; data: ${split}`), `${split} curve`);
    assert.ok(!html.includes('model: untrained-small; data:'), 'no curve for a model without history');
    assert.ok(html.includes('Macro F1') && html.includes('p99 ms'));
  });

  it('needs nothing from the network: no script, no external stylesheet, image or font', async () => {
    const html = await renderReport(measured);
    assert.ok(!/<script/i.test(html), 'no script');
    assert.ok(!/<link\b/i.test(html), 'no linked resources');
    assert.ok(!/(src|href)\s*=\s*["']?\s*(https?:|\/\/)/i.test(html), 'no external src/href');
    assert.ok(!/url\(\s*["']?\s*(https?:|\/\/)/i.test(html) && !/@import/i.test(html), 'no external CSS');
    // Chart element ids are unique across the page, so charts cannot clip each other.
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, ids.length, 'unique ids');
  });

  it('says so when no model has a training history', async () => {
    const html = await renderReport({ ...measured, models: measured.models.map((m) => ({ ...m, history: undefined })) });
    assert.equal(html.match(/<svg\b/g)?.length, 2);
    assert.ok(html.includes('None of these models stores a training history'));
  });

  it('opens in headless Chromium with no console errors and renders charts (screenshot not blank)', async (t) => {
    if (!needs(t, NO_CHROMIUM)) return;
    const page = await writeReport(join(temp.dir, 'report.html'), measured);
    const dom = await chromium(page, 'dump-dom');
    assert.deepEqual(dom.console, [], 'console messages');
    assert.equal(dom.stdout.match(/<svg\b/g)?.length, 4, 'the loaded DOM has the four charts');
    const shot = join(temp.dir, 'report.png');
    const run = await chromium(page, { screenshot: shot });
    assert.deepEqual(run.console, [], 'console messages');
    const image = decodePng(await readFile(shot));
    assert.deepEqual([image.width, image.height], [1200, 1800]);
    const ink = inkStatistics(image);
    // A blank page is ~0% ink and one colour; the report's text, table, axes and coloured marks give more.
    assert.ok(ink.inked > 0.02, `inked fraction ${ink.inked}`);
    assert.ok(ink.colours > 50, `${ink.colours} colours`);
    if (process.env.KILN_REPORT_SCREENSHOT) await copyFile(shot, process.env.KILN_REPORT_SCREENSHOT);
  });

  it('catches console errors when there are some (the check above can fail)', async (t) => {
    if (!needs(t, NO_CHROMIUM)) return;
    const page = join(temp.dir, 'broken.html');
    await writeFile(page, '<!DOCTYPE html><html><body><p>x</p><script>console.error("kiln-probe-error"); undefinedFunction();</script></body></html>');
    const { console } = await chromium(page, 'dump-dom');
    assert.ok(console.some((l) => l.includes('kiln-probe-error')), `console.error seen: ${console.join('\n')}`);
    assert.ok(console.some((l) => l.includes('Uncaught')), 'uncaught exception seen');
  });

  it('kiln report writes the page from model files or from kiln bench --json', async () => {
    const dir = await writeIdxDataset(join(temp.dir, 'data'), data);
    const out = join(temp.dir, 'cli-report.html');
    const lines: string[] = [];
    const code = await main(['report', ...files, '--dataset', dir, '--repetitions', '1', '--latency-runs', '5', '--warmup', '1', '--out', out, '--title', 'CLI report'], (l) => lines.push(l));
    assert.equal(code, 0, lines.join('\n'));
    assert.ok(lines.join('\n').includes(`Report written to ${out}`));
    const html = await readFile(out, 'utf8');
    assert.ok(html.includes('<title>CLI report</title>') && html.match(/<svg\b/g)?.length === 4);

    const json = join(temp.dir, 'bench.json');
    await writeFile(json, JSON.stringify(measured));
    const again = join(temp.dir, 'from-json.html');
    assert.equal(await main(['report', '--bench', json, '--out', again], () => undefined), 0);
    assert.ok((await readFile(again, 'utf8')).includes('untrained-small'));
    const errors: string[] = [];
    assert.equal(await main(['report'], () => undefined, (l) => errors.push(l)), 1);
    assert.match(errors.join('\n'), /give model files/);
  });
});
