/** `kiln browser-demo`: the tutorial CNN trained in a browser page, opened by a person or by headless Chromium. */
import { runBrowserDemoHeadless, serveBrowserDemo } from '../browser/demo.js';
import { embedded } from '../data/embedded.js';
import { trainTutorialCnn } from '../train/tutorial-run.js';
import { formatNumber } from '../text/format.js';
import { stringOption } from './args.js';
import type { Command } from './command.js';

const percent = (v: number) => `${(100 * v).toFixed(2)}%`;

export const browserDemoCommand: Command = {
  name: 'browser-demo',
  summary: 'Train the tutorial CNN on the embedded Fashion-MNIST subset in a browser (a page on a loopback server; --headless drives Chromium)',
  usage: 'kiln browser-demo [--headless] [--epochs 3] [--out fashion-cnn.onnx] [--compare-node]',
  options: [
    { name: 'headless', type: 'boolean', description: 'run the page in headless Chromium and print its results here' },
    { name: 'epochs', type: 'number', integer: true, min: 1, description: 'epochs to train', default: 3 },
    { name: 'limit', type: 'number', integer: true, min: 32, description: 'train on only the first n training images' },
    { name: 'batch-size', type: 'number', integer: true, min: 1, description: 'images per step', default: 32 },
    { name: 'seed', type: 'number', integer: true, description: 'seed for weights and shuffling', default: 42 },
    { name: 'port', type: 'number', integer: true, min: 0, max: 65535, description: 'port on 127.0.0.1 (default: any free one)' },
    { name: 'isolation', type: 'boolean', description: 'send the cross-origin isolation headers that give WebAssembly threads (--isolation=false: one thread)', default: true },
    { name: 'out', type: 'string', description: 'headless: where to save the model trained in the browser', default: 'fashion-cnn.onnx' },
    { name: 'chromium', type: 'string', description: 'headless: the Chromium to run (default: $KILN_CHROMIUM or /usr/bin/chromium)' },
    { name: 'chromium-flags', type: 'string', description: "headless: switches added to Chromium's, space-separated (e.g. --js-flags=--wasm-max-mem-pages=16384 to act as a device with 1 GiB for WebAssembly)" },
    { name: 'compare-node', type: 'boolean', description: 'headless: then train the same model in Node with the same seed and compare' },
  ],
  async run({ options }, out) {
    const settings = {
      epochs: Number(options.epochs),
      seed: Number(options.seed),
      batchSize: Number(options['batch-size']),
      limit: options.limit === undefined ? undefined : Number(options.limit),
      port: options.port === undefined ? undefined : Number(options.port),
      isolated: options.isolation !== false,
    };
    if (!options.headless) {
      const { server, url } = await serveBrowserDemo(settings);
      out(`kiln browser-demo: open ${url} in a browser (Chrome, Edge, Firefox or Safari on this machine) and press Train.`);
      out('Serving on 127.0.0.1 only; press Ctrl-C to stop.');
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
      await server.close();
      return 0;
    }
    const modelFile = String(options.out);
    const chromiumArgs = stringOption(options, 'chromium-flags')?.split(/\s+/).filter(Boolean);
    const page = await runBrowserDemoHeadless({ ...settings, modelFile, chromium: stringOption(options, 'chromium'), chromiumArgs, onLine: out });
    const r = page.result!;
    const env = page.environment;
    out(`Browser: test accuracy ${percent(r.testAccuracy)} (loss ${r.testLoss.toFixed(4)}) on the embedded test images after ${r.epochs} epoch(s) on ${formatNumber(r.trainImages)} images; training ${formatNumber(Math.round(r.imagesPerSecond))} images/s (headless Chromium, ONNX Runtime Web, WebAssembly SIMD, ${env.threads} thread(s))`);
    for (const note of env.notes) out(`  note: ${note}`);
    out(`Saved ${modelFile}: the weights trained in the browser (kiln serve ${modelFile} serves it)`);
    if (options['compare-node']) {
      const node = await trainTutorialCnn(await embedded(), { epochs: settings.epochs, seed: settings.seed, batchSize: settings.batchSize, limit: settings.limit });
      out(`Node:    test accuracy ${percent(node.test.accuracy)} (loss ${node.test.loss.toFixed(4)}), same seed and epochs; training ${formatNumber(Math.round(node.imagesPerSecond))} images/s (onnxruntime-node)`);
      out(`Browser − Node: ${(100 * (r.testAccuracy - node.test.accuracy)).toFixed(2)} accuracy points; the browser trained at ${((100 * r.imagesPerSecond) / node.imagesPerSecond).toFixed(0)}% of Node's rate`);
      node.model.dispose();
    }
    return 0;
  },
};
