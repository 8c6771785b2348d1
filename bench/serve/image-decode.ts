/**
 * Which image decoder Kiln uses, measured: sharp (libvips: native, prebuilt npm binaries, decodes on
 * libuv's thread pool) against the pure-JavaScript decoders jpeg-js and pngjs (synchronous, on the
 * calling thread), on a 28×28 grey image (an embedded Fashion-MNIST test image), a 224×224 RGB image,
 * a 640×480 and a 1920×1080 RGB photo-sized image, each as JPEG (quality 90) and PNG. For each decoder and image:
 *
 * - one at a time: the median time to decode one image (latency);
 * - `--concurrency` decodes in flight, as a server under load has them: images decoded per second, and
 *   the event loop's busy time per image (performance.eventLoopUtilization), which is what a server's
 *   one JavaScript thread cannot spend on HTTP, JSON and batching while the image decodes;
 * - kiln.images.toTensor (sharp's decode, then Kiln's resize and normalization in JavaScript) to the
 *   tutorial CNN's input [1, 32, 32, 3], the cost a served image request adds;
 * - Kiln's resize against ONNX Runtime's Resize (antialias=1) in a runtime worker: time and values.
 *
 * Decoders and images take turns in every round (`--rounds`, medians shown), so that the machine's
 * drift hits them alike. Install facts are printed from node_modules: each library's packages, their
 * size on disk and whether any declares an install script. jpeg-js and pngjs are not dependencies of
 * Kiln: `npm install --no-save jpeg-js pngjs` to include them.
 *
 *   npm run build && node dist/bench/serve/image-decode.js [--seconds 0.3] [--rounds 3] [--concurrency 64]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { decodeImage } from '../../src/images/decode.js';
import { toTensor } from '../../src/images/to-tensor.js';
import { resizeBilinear } from '../../src/images/resize.js';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import type { SessionInfo } from '../../src/runtime/protocol.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';
import type { ModelDescription } from '../../src/model/onnx-model.js';
import { formatTable } from '../../src/text/format.js';
import { benchArgs } from '../args.js';
import { cpuDescription } from '../train/common.js';
import { encode, fashionImage, picture } from './test-images.js';

const args = benchArgs('node dist/bench/serve/image-decode.js [flags]', {
  seconds: { type: 'number', default: 0.3, help: 'seconds per measurement slice' },
  rounds: { type: 'number', default: 3, help: 'interleaved rounds; medians shown' },
  concurrency: { type: 'number', default: 64, help: 'decodes in flight for the throughput measurement' },
});

interface Decoder {
  name: string;
  /** Decodes to pixels; a synchronous decoder still returns a promise, settled at once. */
  decode(bytes: Buffer, format: 'jpeg' | 'png'): Promise<unknown>;
}

const require = createRequire(import.meta.url);

/** jpeg-js and pngjs when installed (--no-save), else undefined. */
function pureJs(): Decoder | undefined {
  let jpeg: { decode(b: Buffer, o: object): unknown };
  let png: { PNG: { sync: { read(b: Buffer): unknown } } };
  try {
    jpeg = require('jpeg-js');
    png = require('pngjs');
  } catch {
    return undefined;
  }
  return {
    name: 'jpeg-js + pngjs',
    decode: async (bytes, format) => (format === 'jpeg' ? jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false }) : png.PNG.sync.read(bytes)),
  };
}

const kilnSharp: Decoder = { name: 'sharp (kiln decodeImage)', decode: (bytes) => decodeImage(bytes) };

async function testImages(): Promise<{ name: string; format: 'jpeg' | 'png'; bytes: Buffer }[]> {
  const sources = [
    { name: '28×28 grey', raw: await fashionImage(), width: 28, height: 28, channels: 1 as const },
    { name: '224×224 RGB', raw: picture(224, 224), width: 224, height: 224, channels: 3 as const },
    { name: '640×480 RGB', raw: picture(640, 480), width: 640, height: 480, channels: 3 as const },
    { name: '1920×1080 RGB', raw: picture(1920, 1080), width: 1920, height: 1080, channels: 3 as const },
  ];
  const images = [];
  for (const s of sources) {
    for (const format of ['jpeg', 'png'] as const) images.push({ name: `${s.name} ${format.toUpperCase()}`, format, bytes: await encode(s.raw, s.width, s.height, s.channels, format) });
  }
  return images;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;

/** Median µs per decode, one at a time, for `seconds`. */
async function latency(work: () => Promise<unknown>, seconds: number): Promise<number> {
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await work();
    times.push((performance.now() - t) * 1000);
  }
  return median(times);
}

/** Decodes per second with `concurrency` in flight, and the event loop's busy µs per decode. */
async function underLoad(work: () => Promise<unknown>, seconds: number, concurrency: number): Promise<{ perSecond: number; busyMicros: number }> {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  const elu = performance.eventLoopUtilization();
  const worker = async () => {
    while (performance.now() < end) {
      await work();
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - start;
  const used = performance.eventLoopUtilization(elu);
  return { perSecond: (done * 1000) / elapsed, busyMicros: (used.active * 1000) / done };
}

/** Bytes on disk under a directory. */
function du(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/** A library's installed packages (the package and its dependencies, recursively, as npm placed them). */
function installFacts(root: string): { packages: string[]; bytes: number; scripts: string[] } {
  const seen = new Map<string, string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    const dir = path.join('node_modules', name);
    let manifest: { version: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; scripts?: Record<string, string> };
    try {
      manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    } catch {
      return; // an optional dependency for another platform: not installed
    }
    seen.set(name, dir);
    for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) visit(dep);
  };
  visit(root);
  const scripts: string[] = [];
  const packages: string[] = [];
  let bytes = 0;
  for (const [name, dir] of seen) {
    const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string; scripts?: Record<string, string> };
    packages.push(`${name}@${manifest.version}`);
    for (const hook of ['preinstall', 'install', 'postinstall']) if (manifest.scripts?.[hook]) scripts.push(`${name}: ${hook} "${manifest.scripts[hook]}"`);
    bytes += du(dir);
  }
  return { packages, bytes, scripts };
}

/** The tutorial CIFAR-10 CNN's input, as a served model describes it. */
const CNN_INPUT: ModelDescription = { inputs: [{ name: 'input', dtype: 'float32', shape: ['N', 32, 32, 3] }], outputs: [], metadata: {} } as unknown as ModelDescription;

async function main(): Promise<void> {
  const decoders = [kilnSharp, pureJs()].filter((d): d is Decoder => d !== undefined);
  const images = await testImages();
  console.log(`image decode benchmark: ${cpuDescription()}; node ${process.version}; sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}), libuv pool ${process.env.UV_THREADPOOL_SIZE ?? 4} threads`);
  console.log(`load average at start (other processes share these cores): ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`);
  console.log(`${args.rounds} round(s), ${args.seconds} s per slice, concurrency ${args.concurrency}; medians of the rounds`);
  if (decoders.length === 1) console.log('jpeg-js and pngjs are not installed: `npm install --no-save jpeg-js pngjs` to compare them');
  for (const d of decoders) for (const image of images) await d.decode(image.bytes, image.format);

  type Cell = { latency: number[]; perSecond: number[]; busy: number[] };
  const cells = new Map<string, Cell>();
  const cell = (key: string) => cells.get(key) ?? cells.set(key, { latency: [], perSecond: [], busy: [] }).get(key)!;
  const workloads = [
    ...decoders.flatMap((d) => images.map((image) => ({ key: `${d.name}|${image.name}`, work: () => d.decode(image.bytes, image.format) }))),
    ...images.map((image) => ({ key: `kiln toTensor → [1,32,32,3]|${image.name}`, work: () => toTensor(image.bytes, CNN_INPUT) })),
  ];
  for (let round = 0; round < args.rounds; round++) {
    for (const { key, work } of workloads) {
      const c = cell(key);
      c.latency.push(await latency(work, args.seconds));
      const loaded = await underLoad(work, args.seconds, args.concurrency);
      c.perSecond.push(loaded.perSecond);
      c.busy.push(loaded.busyMicros);
    }
  }
  const rows = [...cells].map(([key, c]) => {
    const [decoder, image] = key.split('|');
    const size = images.find((i) => i.name === image)!.bytes.length;
    return [decoder!, image!, size, Math.round(median(c.latency)), Math.round(median(c.perSecond)), Math.round(median(c.busy))];
  });
  console.log('');
  console.log(
    formatTable(rows, {
      header: ['decoder', 'image', 'bytes', 'µs one at a time', `images/s at ${args.concurrency} in flight`, 'event-loop µs per image'],
      align: ['left', 'left', 'right', 'right', 'right', 'right'],
    }),
  );
  console.log('');
  for (const [name, root] of [['sharp', 'sharp'], ['jpeg-js', 'jpeg-js'], ['pngjs', 'pngjs']] as const) {
    const facts = installFacts(root);
    if (facts.packages.length === 0) continue;
    console.log(
      `${name}: ${facts.packages.length} installed package(s) (${facts.packages.join(', ')}), ${(facts.bytes / 1e6).toFixed(1)} MB on disk; install scripts: ${facts.scripts.length ? facts.scripts.join('; ') : 'none'}`,
    );
  }
  console.log('');
  await resizeAlternatives(args.rounds, args.seconds);
  console.log(`load average at end: ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`);
}

/**
 * The resize Kiln runs in JavaScript on the event loop, against the alternative of running it in ONNX
 * Runtime (Resize, opset 18, linear, antialias=1, half_pixel) in a runtime worker thread: time per
 * image one at a time, and the largest difference from Kiln's values (which equal PIL's: see
 * test/images/to-tensor.test.ts), interleaved.
 */
async function resizeAlternatives(rounds: number, seconds: number): Promise<void> {
  const runtime = new Runtime();
  const sessions = new Map<string, SessionInfo>();
  const ortSession = async (outHeight: number, outWidth: number) => {
    const key = `${outHeight}x${outWidth}`;
    if (!sessions.has(key)) {
      const g = new Graph('resize');
      const pixels = g.op1('Cast', [g.input('x', 'uint8', ['H', 'W', 3])], { to: 1 });
      const sizes = g.constant(new Tensor(BigInt64Array.from([BigInt(outHeight), BigInt(outWidth)]), [2], 'int64'), 'sizes');
      g.output(g.op1('Resize', [pixels, '', '', sizes], { mode: 'linear', antialias: 1, axes: [0, 1] }), 'y');
      sessions.set(key, await runtime.load(encodeModel(modelToProto(g, {}, 18)), { intraOpThreads: 1 }));
    }
    return sessions.get(key)!;
  };
  const cases = [
    [224, 224, 32, 32],
    [640, 480, 224, 224],
    [1920, 1080, 224, 224],
  ] as const;
  const rows: (string | number)[][] = [];
  for (const [width, height, outWidth, outHeight] of cases) {
    const pixels = new Uint8Array(picture(width, height));
    const session = await ortSession(outHeight, outWidth);
    const input = new Tensor(pixels, [height, width, 3], 'uint8');
    const kiln = resizeBilinear(pixels, width, height, 3, outWidth, outHeight);
    const ort = (await runtime.run(session, { x: input })).y!.data as Float32Array;
    let diff = 0;
    for (let i = 0; i < kiln.length; i++) diff = Math.max(diff, Math.abs(kiln[i]! - ort[i]!));
    const times = { kiln: [] as number[], ort: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      times.kiln.push(await latency(async () => resizeBilinear(pixels, width, height, 3, outWidth, outHeight), seconds));
      times.ort.push(await latency(() => runtime.run(session, { x: input }), seconds));
    }
    rows.push([`${width}×${height} RGB → ${outWidth}×${outHeight}`, Math.round(median(times.kiln)), Math.round(median(times.ort)), diff.toFixed(2)]);
  }
  await runtime.close();
  console.log(
    formatTable(rows, {
      header: ['resize', 'Kiln, event loop: µs', 'ONNX Runtime Resize antialias=1, worker: µs', 'largest |difference| (0–255 scale)'],
      align: ['left', 'right', 'right', 'right'],
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
