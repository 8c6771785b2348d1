/**
 * What the exact MaxPool tie-break costs: one training step (forward, backward, Adam) of the tutorial
 * and Fashion CNNs compiled with GradientOptions.maxPoolTies 'first' (the gradient to a window's first
 * maximum, as PyTorch does) and 'all' (to every tied position), timed alternately in the same run on
 * the same batch of real-looking images (a blank border, so ties occur as on Fashion-MNIST).
 * Kiln's layer models train with 'all' because of this figure; imported graphs with 'first'.
 */
import os from 'node:os';
import ort from 'onnxruntime-node';
import { accuracyKind, compileTraining } from '../../src/train/training-step.js';
import { resolveLoss } from '../../src/train/losses.js';
import { resolveOptimizer } from '../../src/train/optimizers.js';
import type { Sequential } from '../../src/train/sequential.js';
import { benchArgs } from '../args.js';
import { fashionCnn, tutorialCnn } from './common.js';

const args = benchArgs('node dist/bench/train/maxpool-ties.js [flags]', {
  'batch-size': { type: 'number', default: 64, help: 'examples per step' },
  rounds: { type: 'number', default: 12, help: 'alternating rounds (the median is printed)' },
  steps: { type: 'number', default: 8, help: 'steps per round and variant' },
  threads: { type: 'number', default: 2, help: 'ONNX Runtime intra-op threads' },
});

const loss = resolveLoss({ name: 'sparseCategoricalCrossentropy', config: { fromLogits: true } });
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;

async function stepRunner(model: Sequential, ties: 'first' | 'all', batch: number): Promise<() => Promise<unknown>> {
  const c = compileTraining(model, loss, resolveOptimizer('adam'), accuracyKind(loss, true), { gradients: { maxPoolTies: ties } });
  const session = await ort.InferenceSession.create(c.trainStep, { graphOptimizationLevel: 'extended', intraOpNumThreads: args.threads });
  const flat = new Float32Array(c.totalSize);
  for (const l of c.layout) flat.set(model.weights.get(l.name)!.data as Float32Array, l.offset);
  const [h, w, ch] = model.inputShape as [number, number, number];
  const images = new Float32Array(batch * h * w * ch);
  for (let i = 0; i < images.length; i++) {
    const y = Math.floor(i / (w * ch)) % h;
    const x = Math.floor(i / ch) % w;
    const inside = y > h / 5 && y < (4 * h) / 5 && x > w / 5 && x < (4 * w) / 5;
    images[i] = inside ? Math.round(((i * 2654435761) % 1000) / 100) / 10 : 0; // 11 grey levels inside, blank around
  }
  const feeds: Record<string, ort.Tensor> = {
    'state/params': new ort.Tensor('float32', flat, [c.totalSize]),
    input: new ort.Tensor('float32', images, [batch, h, w, ch]),
    labels: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 10)), [batch]),
    lr: new ort.Tensor('float32', Float32Array.of(0.001), []),
    step: new ort.Tensor('float32', Float32Array.of(1), []),
  };
  for (const name of session.inputNames) feeds[name] ??= new ort.Tensor('float32', new Float32Array(c.totalSize), [c.totalSize]);
  return () => session.run(feeds);
}

console.log(`machine: ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? '?'}; node ${process.version}; load average ${os.loadavg()[0]!.toFixed(2)}; batch ${args['batch-size']}, ${args.threads} threads`);
for (const [name, make] of [['tutorial CNN (32x32x3)', tutorialCnn], ['Fashion CNN (28x28x1)', fashionCnn]] as const) {
  const runners = { first: await stepRunner(make(), 'first', args['batch-size']), all: await stepRunner(make(), 'all', args['batch-size']) };
  const times: Record<string, number[]> = { first: [], all: [] };
  for (const run of Object.values(runners)) for (let i = 0; i < 3; i++) await run();
  for (let r = 0; r < args.rounds; r++) {
    for (const [k, run] of Object.entries(runners)) {
      const t0 = performance.now();
      for (let i = 0; i < args.steps; i++) await run();
      times[k]!.push((performance.now() - t0) / args.steps);
    }
  }
  const [first, all] = [median(times.first!), median(times.all!)];
  console.log(`${name}: ${first.toFixed(1)} ms per step with the exact tie-break, ${all.toFixed(1)} ms without: ${(first / all).toFixed(2)}x`);
}
process.exit(0);
