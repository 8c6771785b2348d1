/*
 * `kiln browser-demo` as a library call: serve the demo page (src/web/demo-page.ts) with the browser
 * bundle, ONNX Runtime Web's files and the embedded Fashion-MNIST subset from a loopback server, then
 * either leave it for a person to open, or drive headless Chromium through it: follow the page's
 * progress, take its results, press its download button and keep the trained .onnx. A failure in the
 * page (an exception, memory exhaustion, a crashed tab) ends the run with the page's own message,
 * never a silent wait.
 */
import { embeddedDatasetDir } from '../data/embedded.js';
import { KilnError } from '../errors.js';
import type { WebEnvironment } from '../platform/web-environment.js';
import { kilnFolders } from './assets.js';
import { openHeadless } from './chromium.js';
import { DEMO_HTML } from './demo-html.js';
import { startStaticServer, type StaticServer } from './static-server.js';

export interface BrowserDemoOptions {
  epochs: number;
  seed?: number;
  batchSize?: number;
  /** Train on the first n of the 10,000 training images. */
  limit?: number;
  /** Port on 127.0.0.1 (default: any free one). */
  port?: number;
  /** Send the cross-origin isolation headers (default true); without them the page runs on one thread. */
  isolated?: boolean;
}

/** What the page reports (its `kilnDemo` state, web/demo-page.ts). */
export interface DemoPageState {
  state: string;
  environment: WebEnvironment;
  epochs: { epoch: number; loss: number; accuracy: number }[];
  result?: { trainImages: number; epochs: number; trainSeconds: number; imagesPerSecond: number; testLoss: number; testAccuracy: number };
  error?: string;
}

export interface DemoServer {
  server: StaticServer;
  /** The page's address with the run's settings in its query. */
  url: string;
}

/** Starts the loopback server with the demo page and everything it loads. */
export async function serveBrowserDemo(options: BrowserDemoOptions): Promise<DemoServer> {
  const server = await startStaticServer({
    folders: [...kilnFolders(), { prefix: '/data/', dir: embeddedDatasetDir() }],
    pages: { '/': { body: DEMO_HTML, type: 'text/html; charset=utf-8' } },
    isolated: options.isolated ?? true,
    port: options.port,
  });
  const query = new URLSearchParams({ epochs: String(options.epochs), seed: String(options.seed ?? 42), batch: String(options.batchSize ?? 32) });
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  return { server, url: `${server.url}/?${query}` };
}

export interface HeadlessDemoOptions extends BrowserDemoOptions {
  /** Where the trained model the page offers for download is saved. */
  modelFile: string;
  chromium?: string;
  /** Each line the page logs (epochs, results, warnings), as it comes. */
  onLine?: (line: string) => void;
  /** Chromium switches added to Kiln's (tests turn browser features off with them). */
  chromiumArgs?: string[];
  /** Longest the whole run may take before it is called hung (default 1 hour). */
  timeoutSeconds?: number;
}

/** Runs the demo page to the end in headless Chromium; returns the page's results once the model is saved. */
export async function runBrowserDemoHeadless(options: HeadlessDemoOptions): Promise<DemoPageState & { url: string }> {
  const { server, url } = await serveBrowserDemo(options);
  try {
    const headless = await openHeadless(`${url}&start`, { chromium: options.chromium, onConsole: options.onLine, args: options.chromiumArgs });
    try {
      const { page } = headless;
      const crashed = new Promise<never>((_, reject) => page.once('crash', () => reject(new KilnError('RUNTIME_ERROR', 'the demo page crashed (out of memory, or killed): see the lines above'))));
      crashed.catch(() => undefined);
      const timeout = (options.timeoutSeconds ?? 3600) * 1000;
      await Promise.race([page.waitForFunction("['done', 'failed'].includes(globalThis.kilnDemo?.state)", undefined, { timeout, polling: 250 }), crashed]);
      const state = (await page.evaluate('globalThis.kilnDemo')) as DemoPageState;
      if (state.state === 'failed') throw new KilnError('RUNTIME_ERROR', `the demo page failed: ${state.error}`);
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click('#download')]);
      const failure = await download.failure();
      if (failure) throw new KilnError('IO_ERROR', `the page's download of the trained model failed: ${failure}`);
      await download.saveAs(options.modelFile);
      return { ...state, url };
    } catch (err) {
      if (err instanceof Error && err.name === 'TimeoutError') throw new KilnError('RUNTIME_ERROR', `the demo page did not finish within ${options.timeoutSeconds ?? 3600} s`, { cause: err });
      throw err;
    } finally {
      await headless.close();
    }
  } finally {
    await server.close();
  }
}
