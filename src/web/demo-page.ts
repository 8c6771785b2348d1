/**
 * The page `kiln browser-demo` serves: trains the tutorial CNN on the embedded Fashion-MNIST subset in
 * this browser (train/tutorial-run.ts, the code Node runs too), draws the running loss and accuracy
 * as it goes, evaluates on the test images and offers the trained model as an .onnx download. Its
 * state is kept in `globalThis.kilnDemo` and each milestone logged to the console, which is how
 * `kiln browser-demo --headless` follows it from the terminal.
 *
 * Query parameters: epochs (3), limit (all 10,000 training images), seed (42), batch (32), start
 * (begin at once instead of waiting for the button).
 */
import { datasets, browserRuntimeInfo, KilnError } from './index.js';
import { trainTutorialCnn, type TutorialRun } from '../train/tutorial-run.js';
import type { Logs } from '../train/callbacks.js';

/* The DOM this page touches, declared here: the project compiles against Node's types. */
interface Element {
  textContent: string | null;
  disabled?: boolean;
  onclick: (() => void) | null;
  className: string;
}
interface Canvas2D {
  clearRect(x: number, y: number, w: number, h: number): void;
  beginPath(): void;
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  stroke(): void;
  fillText(text: string, x: number, y: number): void;
  strokeStyle: string;
  fillStyle: string;
  lineWidth: number;
  font: string;
}
interface Page {
  document: { getElementById(id: string): (Element & { width?: number; height?: number; getContext?(kind: '2d'): Canvas2D | null }) | null };
  location: { search: string };
  kilnDemo: DemoState;
}
const page = globalThis as unknown as Page;

/** What the page has done so far; `kiln browser-demo --headless` polls it. */
export interface DemoState {
  state: 'waiting' | 'loading' | 'training' | 'evaluating' | 'done' | 'failed';
  environment: ReturnType<typeof browserRuntimeInfo>;
  epochs: { epoch: number; loss: number; accuracy: number }[];
  result?: { trainImages: number; epochs: number; trainSeconds: number; imagesPerSecond: number; testLoss: number; testAccuracy: number };
  error?: string;
}

const params = new URLSearchParams(page.location.search);
const number = (name: string, fallback: number) => (params.has(name) ? Number(params.get(name)) : fallback);
const settings = { epochs: number('epochs', 3), limit: params.has('limit') ? number('limit', 0) : undefined, seed: number('seed', 42), batch: number('batch', 32) };

const element = (id: string) => page.document.getElementById(id)!;
const state: DemoState = { state: 'waiting', environment: browserRuntimeInfo(), epochs: [] };
page.kilnDemo = state;

function show(id: string, text: string, className = ''): void {
  const e = element(id);
  e.textContent = text;
  e.className = className;
}

/** Running loss (left axis, from 0 to the first value) and accuracy (right axis, 0 to 1) per batch. */
const points: { loss: number; accuracy: number }[] = [];
function drawChart(): void {
  const canvas = element('chart');
  const g = canvas.getContext!('2d')!;
  const [w, h] = [canvas.width!, canvas.height!];
  const [left, right, top, bottom] = [40, w - 40, 10, h - 20];
  g.clearRect(0, 0, w, h);
  g.font = '11px sans-serif';
  g.fillStyle = '#555';
  g.fillText('loss', 4, top + 10);
  g.fillText('accuracy', right - 10, top + 10);
  const maxLoss = Math.max(...points.map((p) => p.loss), 1e-9);
  const line = (value: (p: { loss: number; accuracy: number }) => number, colour: string) => {
    g.strokeStyle = colour;
    g.lineWidth = 1.5;
    g.beginPath();
    points.forEach((p, i) => {
      const x = left + ((right - left) * i) / Math.max(1, points.length - 1);
      const y = bottom - (bottom - top) * value(p);
      if (i === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    });
    g.stroke();
  };
  line((p) => p.loss / maxLoss, '#c0392b');
  line((p) => p.accuracy, '#2471a3');
  g.fillStyle = '#555';
  g.fillText(maxLoss.toFixed(2), 4, top + 24);
  g.fillText('0', 4, bottom);
  g.fillText('1.0', right + 4, top + 24);
}

async function run(): Promise<void> {
  element('start').disabled = true;
  state.state = 'loading';
  show('status', 'Loading the embedded Fashion-MNIST subset…');
  const data = await datasets.idxDatasetFromUrl('data/');
  const trainImages = Math.min(settings.limit ?? Infinity, data.train.images.shape[0]!);
  console.log(`kiln demo page: ${trainImages} training and ${data.test.images.shape[0]} test images, ${settings.epochs} epoch(s), batch ${settings.batch}, seed ${settings.seed}; ONNX Runtime Web on ${state.environment.threads} thread(s)`);
  state.state = 'training';
  const started = performance.now();
  let epochStarted = started;
  const stepsPerEpoch = Math.ceil(trainImages / settings.batch);
  const trained: TutorialRun = await trainTutorialCnn(data, {
    epochs: settings.epochs,
    seed: settings.seed,
    batchSize: settings.batch,
    limit: settings.limit,
    callbacks: [
      {
        onBatchEnd(step: number, logs: Logs) {
          if (step % 10 !== 9) return;
          points.push({ loss: logs.loss!, accuracy: logs.accuracy! });
          drawChart();
          const epoch = Math.floor(step / stepsPerEpoch);
          show('status', `Training: epoch ${epoch + 1}/${settings.epochs}, batch ${(step % stepsPerEpoch) + 1}/${stepsPerEpoch}, loss ${logs.loss!.toFixed(4)}, accuracy ${(100 * logs.accuracy!).toFixed(1)}%`);
        },
        onEpochEnd(epoch: number, logs: Logs) {
          const now = performance.now();
          const rate = (trainImages / (now - epochStarted)) * 1000;
          epochStarted = now;
          state.epochs.push({ epoch: epoch + 1, loss: logs.loss!, accuracy: logs.accuracy! });
          console.log(`epoch ${epoch + 1}/${settings.epochs}: loss ${logs.loss!.toFixed(4)}, accuracy ${(100 * logs.accuracy!).toFixed(2)}%, ${Math.round(rate)} img/s`);
        },
      },
    ],
  });
  state.state = 'evaluating';
  state.result = {
    trainImages: trained.trainImages,
    epochs: trained.history.epoch.length,
    trainSeconds: trained.trainSeconds,
    imagesPerSecond: trained.imagesPerSecond,
    testLoss: trained.test.loss,
    testAccuracy: trained.test.accuracy,
  };
  const summary = `test accuracy ${(100 * trained.test.accuracy).toFixed(2)}% (loss ${trained.test.loss.toFixed(4)}) after ${trained.trainSeconds.toFixed(1)} s of training, ${Math.round(trained.imagesPerSecond)} images/s`;
  console.log(`kiln demo page: ${summary}`);
  show('status', `Done: ${summary}.`, 'done');
  const download = element('download');
  download.disabled = false;
  download.onclick = () => void trained.model.save('downloads://fashion-cnn.onnx').catch(fail);
  state.state = 'done';
}

function fail(err: unknown): void {
  const message = err instanceof KilnError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  state.error = message;
  state.state = 'failed';
  console.error(`kiln demo page failed: ${message}`);
  show('status', `Failed: ${message}`, 'failed');
}

show('environment', state.environment.notes.length ? state.environment.notes.join(' ') : `ONNX Runtime Web: WebAssembly with SIMD, ${state.environment.threads} thread${state.environment.threads === 1 ? '' : 's'} of ${state.environment.cores} cores; the page is ${state.environment.crossOriginIsolated ? '' : 'not '}cross-origin isolated.`, state.environment.notes.length ? 'warning' : '');
element('start').onclick = () => void run().catch(fail);
if (params.has('start')) void run().catch(fail);
