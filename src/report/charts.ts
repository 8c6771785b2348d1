import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { BenchEntry } from '../bench/bench.js';

/*
 * The report's charts as Vega-Lite specifications, rendered to SVG in Node by Vega (no browser, no
 * canvas: text is measured with Vega's built-in estimate). Each chart is data plus a declarative
 * spec; nothing here draws a line by hand.
 */

const WIDTH = 480;
const HEIGHT = 300;
const FONT = 'Helvetica, Arial, sans-serif';

// Every chart, axes and legends included, comes out the same size, so they line up on the page.
const AUTOSIZE = { type: 'fit' as const, contains: 'padding' as const };

const CONFIG = {
  font: FONT,
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 11 },
  title: { fontSize: 14, anchor: 'start' as const },
};

/** Vega's tableau10 scheme, the default for nominal colours, spelled out so charts can share it. */
const PALETTE = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];

/** A colour scale giving each of `all` models the same colour in every chart, showing only `shown`. */
function modelColors(all: string[], shown: string[]): { domain: string[]; range: string[] } {
  const domain = all.filter((m) => shown.includes(m));
  for (const m of shown) if (!domain.includes(m)) domain.push(m);
  return { domain, range: domain.map((m) => PALETTE[(all.includes(m) ? all.indexOf(m) : all.length + domain.indexOf(m)) % PALETTE.length]!) };
}

/** One point of a training curve. */
export interface CurvePoint {
  model: string;
  epoch: number;
  split: 'train' | 'validation';
  value: number;
}

/**
 * Points of one metric ('loss' or 'accuracy') for every model with a stored history: `metric` is the
 * training value, `val_<metric>` the validation value (Keras' History keys). A history identical to
 * one already drawn is drawn once, under the first model's name.
 */
export function curvePoints(models: Pick<BenchEntry, 'name' | 'history'>[], metric: 'loss' | 'accuracy'): CurvePoint[] {
  const points: CurvePoint[] = [];
  const drawn = new Set<string>();
  for (const m of models) {
    // A variant that carries its source's history unchanged (a post-training quantization, say) adds no curve.
    const key = JSON.stringify(m.history ?? null);
    if (drawn.has(key)) continue;
    drawn.add(key);
    for (const [key, split] of [
      [metric, 'train'],
      [`val_${metric}`, 'validation'],
    ] as const) {
      const values = m.history?.[key];
      if (!Array.isArray(values)) continue;
      values.forEach((value, i) => {
        if (typeof value === 'number' && Number.isFinite(value)) points.push({ model: m.name, epoch: i + 1, split, value: metric === 'accuracy' ? 100 * value : value });
      });
    }
  }
  return points;
}

/**
 * Training curves of one metric. `models` fixes the colour of each model (pass every variant's name in
 * the report's order), so a model has the same colour in every chart of the page.
 */
export function trainingCurveSpec(points: CurvePoint[], metric: 'loss' | 'accuracy', models: string[] = [...new Set(points.map((p) => p.model))]): TopLevelSpec {
  const title = metric === 'loss' ? 'Loss per epoch' : 'Accuracy per epoch';
  const x = { field: 'epoch', type: 'quantitative' as const, title: 'epoch', axis: { tickMinStep: 1, format: 'd' }, scale: { nice: false } };
  const y = { field: 'value', type: 'quantitative' as const, title: metric === 'loss' ? 'loss' : 'accuracy (%)', scale: { zero: false } };
  const color = { field: 'model', type: 'nominal' as const, title: 'model', scale: modelColors(models, [...new Set(points.map((p) => p.model))]) };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: WIDTH,
    height: HEIGHT,
    autosize: AUTOSIZE,
    config: CONFIG,
    data: { values: points },
    // Lines carry the legends (dashes for the split); points mark the epochs without a legend of their own.
    layer: [
      {
        mark: { type: 'line', strokeWidth: 2 },
        encoding: { x, y, color, strokeDash: { field: 'split', type: 'nominal', title: 'data', sort: ['train', 'validation'] } },
      },
      {
        mark: { type: 'point', filled: true, size: 30 },
        encoding: { x, y, color, tooltip: [{ field: 'model' }, { field: 'split' }, { field: 'epoch' }, { field: 'value', format: '.4f' }] },
      },
    ],
  };
}

/** The axis maximum: a fifth above the largest value, so the rightmost point's label fits beside it. */
function headroom(values: number[]): number {
  const max = Math.max(0, ...values.filter(Number.isFinite));
  return max > 0 ? max * 1.2 : 1;
}

/** A scatter of test accuracy against one cost, each variant labelled by name. */
export function accuracyScatterSpec(models: BenchEntry[], against: 'size' | 'latency'): TopLevelSpec {
  const rows = models.map((m) => ({
    model: m.name,
    accuracy: 100 * m.accuracy,
    sizeKiB: m.fileBytes / 1024,
    gzipKiB: m.gzipBytes / 1024,
    latencyMs: m.latencyP50Ms,
    p99Ms: m.latencyP99Ms,
  }));
  const x =
    against === 'size'
      ? { field: 'sizeKiB', type: 'quantitative' as const, title: 'file size (KiB)', scale: { domain: [0, headroom(rows.map((r) => r.sizeKiB))] } }
      : { field: 'latencyMs', type: 'quantitative' as const, title: 'latency p50 at batch 1 (ms)', scale: { domain: [0, headroom(rows.map((r) => r.latencyMs))] } };
  const encoding = {
    x,
    y: { field: 'accuracy', type: 'quantitative' as const, title: 'test accuracy (%)', scale: { zero: false, padding: 12 } },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: against === 'size' ? 'Accuracy vs file size' : 'Accuracy vs latency',
    width: WIDTH,
    height: HEIGHT,
    autosize: AUTOSIZE,
    config: CONFIG,
    data: { values: rows },
    layer: [
      {
        mark: { type: 'point', filled: true, size: 90 },
        encoding: {
          ...encoding,
          // Each point carries its name as a label, so no legend is needed (it would crowd the labels).
          color: { field: 'model', type: 'nominal', legend: null, scale: modelColors(models.map((m) => m.name), models.map((m) => m.name)) },
          tooltip: [{ field: 'model' }, { field: 'accuracy', format: '.2f' }, { field: 'sizeKiB', format: '.1f' }, { field: 'gzipKiB', format: '.1f' }, { field: 'latencyMs', format: '.3f' }, { field: 'p99Ms', format: '.3f' }],
        },
      },
      { mark: { type: 'text', align: 'left', dx: 8, dy: -6, fontSize: 11 }, encoding: { ...encoding, text: { field: 'model' } } },
    ],
  };
}

let chartCount = 0;

/**
 * Compiles a Vega-Lite spec and renders it to an SVG string. Element ids (clip paths, gradients) get
 * a per-chart prefix so that several charts inlined in one HTML page cannot refer to each other's.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const prefix = `kc${++chartCount}-`;
    return svg.replace(/\bid="([^"]+)"/g, `id="${prefix}$1"`).replace(/url\(#([^)]+)\)/g, `url(#${prefix}$1)`).replace(/href="#([^"]+)"/g, `href="#${prefix}$1"`);
  } finally {
    view.finalize();
  }
}
