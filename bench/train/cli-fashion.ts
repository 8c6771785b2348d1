/*
 * Issue #4's criterion, run exactly as a user types it: `kiln train --dataset fashion-mnist --model
 * tutorial-cnn --epochs 2` on Debian's dataset-fashion-mnist (defaults: batch 32 as in Keras, Adam
 * 1e-3, 10% of the training images held out for validation), once per seed; prints the test accuracy
 * and time per epoch the CLI reports. Target: >= 88% test accuracy (PyTorch, similar CNN: 88.5%).
 *
 *   node dist/bench/train/cli-fashion.js [--seeds 42,1,2] [-- extra kiln train flags]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../args.js';
import { table } from './common.js';

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(here, '../../src/cli/bin.js');
const parsed = benchArgs('node dist/bench/train/cli-fashion.js [flags] [-- extra kiln train flags]', { seeds: { type: 'numbers', default: [42] } }, { rest: true });
const seeds = parsed.seeds.map(String);
const extra = parsed.rest;
const dir = mkdtempSync(join(os.tmpdir(), 'kiln-cli-fashion-'));
const rows: string[][] = [];
let below = 0;
for (const seed of seeds) {
  const args = [bin, 'train', '--dataset', 'fashion-mnist', '--model', 'tutorial-cnn', '--epochs', '2', '--seed', seed, '--out', join(dir, `model-${seed}.onnx`), ...extra];
  console.log(`$ kiln ${args.slice(1).join(' ')}`);
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`kiln train failed (${r.status}):\n${r.stderr}${r.stdout}`);
  // "Test loss 0.3245, accuracy 88.32% after 1m 19s (40s per epoch)"
  const m = /Test loss ([\d.]+), accuracy ([\d.]+)% after (.+) \((.+) per epoch\)/.exec(r.stdout);
  if (!m) throw new Error(`could not find the result line in:\n${r.stdout}`);
  const accuracy = Number(m[2]);
  if (accuracy < 88) below++;
  rows.push([seed, m[1]!, `${m[2]}%`, m[3]!, m[4]!]);
  console.log(`  test accuracy ${m[2]}%, ${m[4]} per epoch (load average ${os.loadavg()[0]!.toFixed(1)})`);
}
rmSync(dir, { recursive: true, force: true });
console.log('\n' + table(['seed', 'test loss', 'test accuracy', 'total', 'per epoch'], rows));
console.log(`target: >= 88% test accuracy: ${below === 0 ? 'met' : `NOT met for ${below} of ${seeds.length} seeds`}`);
