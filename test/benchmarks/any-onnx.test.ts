/**
 * bench/any-onnx's benches (finetune.js, finetune-text.js, transfer.js) cannot rot silently: their flags are checked
 * (a fixture that does not exist stops finetune at once, exit 2), and each runs for real on a few
 * hundred images without PyTorch (--no-torch), printing its JSON with Kiln's figures and saying it ran
 * Kiln only. Needs Debian's Fashion-MNIST, as the benches do. (A misspelled flag and --help are
 * checked for every bench script in args.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { DEBIAN_FASHION_MNIST_DIR } from '../../src/data/mnist.js';
import { needs } from '../requirements.js';

const benchDir = fileURLToPath(new URL('../../bench/any-onnx/', import.meta.url));
const run = promisify(execFile);
const noData = existsSync(DEBIAN_FASHION_MNIST_DIR) ? undefined : `${DEBIAN_FASHION_MNIST_DIR} not present (apt-get install dataset-fashion-mnist)`;

describe('bench/any-onnx', () => {
  it('finetune.js exits 2 naming a fixture that does not exist, before loading anything', async () => {
    const r = await run(process.execPath, [path.join(benchDir, 'finetune.js'), '--fixtures', 'mlp,resnett'], { timeout: 60_000 }).then(
      () => assert.fail('an unknown fixture must fail'),
      (e: { code?: number; stderr?: string }) => e,
    );
    assert.equal(r.code, 2, `stderr: ${r.stderr}`);
    assert.match(r.stderr ?? '', /unknown fixture 'resnett'/);
  });

  it('finetune.js trains mlp, and segnet on a label per pixel, on 256 images Kiln-only and prints its JSON', async (t) => {
    if (!needs(t, noData)) return;
    const { stdout, stderr } = await run(process.execPath, [path.join(benchDir, 'finetune.js'), '--fixtures', 'mlp,segnet', '--seeds', '0', '--limit', '256', '--no-torch', '--json'], { timeout: 120_000 });
    assert.match(stderr, /PyTorch: skipped \(--no-torch\); Kiln only/);
    const out = JSON.parse(stdout) as { settings: { trainImages: number }; summary: { fixture: string; kilnAccuracy: number; kilnImagesPerSecond: number; torchAccuracy?: number; kilnError?: string }[] };
    assert.equal(out.settings.trainImages, 256);
    const [mlp] = out.summary;
    assert.equal(mlp?.fixture, 'mlp');
    assert.equal(mlp.kilnError, undefined);
    assert.equal(mlp.torchAccuracy, undefined);
    // 4 steps from the fixture's pretrained weights: well above chance (10%).
    assert.ok(mlp.kilnAccuracy > 0.3 && mlp.kilnAccuracy <= 1, `accuracy ${mlp.kilnAccuracy}`);
    assert.ok(mlp.kilnImagesPerSecond > 0);
    // Every test pixel scored: most are background (class 0), which the pretrained fixture gets right.
    const segnet = out.summary[1]!;
    assert.equal(segnet.fixture, 'segnet');
    assert.equal(segnet.kilnError, undefined);
    assert.ok(segnet.kilnAccuracy > 0.5 && segnet.kilnAccuracy <= 1, `pixel accuracy ${segnet.kilnAccuracy}`);
  });

  it('finetune.js trains vol3d on clips of the images (3-D convolutions) Kiln-only', async (t) => {
    if (!needs(t, noData)) return;
    const { stdout } = await run(process.execPath, [path.join(benchDir, 'finetune.js'), '--fixtures', 'vol3d', '--seeds', '0', '--limit', '256', '--no-torch', '--json'], { timeout: 300_000 });
    const [vol3d] = (JSON.parse(stdout) as { summary: { fixture: string; kilnAccuracy: number; kilnError?: string }[] }).summary;
    assert.equal(vol3d?.fixture, 'vol3d');
    assert.equal(vol3d.kilnError, undefined);
    // 4 steps from a fixture pretrained 100 steps: its 10,000 test clips all scored.
    assert.ok(vol3d.kilnAccuracy > 0.15 && vol3d.kilnAccuracy <= 1, `accuracy ${vol3d.kilnAccuracy}`);
  });

  it('finetune-text.js fine-tunes the four text fixtures (one input; token ids and a mask; a label per token; a causal language model) on a few hundred sequences Kiln-only', async () => {
    const { stdout, stderr } = await run(process.execPath, [path.join(benchDir, 'finetune-text.js'), '--seeds', '0', '--train', '512', '--test', '256', '--no-torch', '--json'], { timeout: 120_000 });
    assert.match(stderr, /PyTorch: skipped \(--no-torch\); Kiln only/);
    const out = JSON.parse(stdout) as { settings: { train: number }; summary: { fixture: string; kilnAccuracy: number; kilnExamplesPerSecond: number; torchAccuracy?: number }[] };
    assert.equal(out.settings.train, 512);
    assert.deepEqual(out.summary.map((s) => s.fixture), ['textcls', 'textmask', 'tokentag', 'causallm']);
    for (const s of out.summary) {
      // Figures in range and no PyTorch side; how the accuracies compare with PyTorch's is the bench run's business.
      assert.ok(s.kilnAccuracy >= 0 && s.kilnAccuracy <= 1 && s.kilnExamplesPerSecond > 0, JSON.stringify(s));
      assert.equal(s.torchAccuracy, undefined);
    }
  });

  it('transfer.js runs source, transfer and scratch on 256 images per half Kiln-only, the backbone frozen', async (t) => {
    if (!needs(t, noData)) return;
    const { stdout, stderr } = await run(process.execPath, [path.join(benchDir, 'transfer.js'), '--limit', '256', '--no-torch', '--json'], { timeout: 120_000 });
    assert.match(stderr, /Kiln only/);
    const out = JSON.parse(stdout) as { kiln: Record<'source' | 'transfer' | 'scratch', { trainImages: number; testAccuracy: number }> & { transfer: { backboneLargestChange: { weights: number; runningStats: number }; trainedWeights: string[] } }; torch: unknown };
    assert.equal(out.torch, null);
    for (const p of ['source', 'transfer', 'scratch'] as const) {
      assert.equal(out.kiln[p].trainImages, 256, p);
      assert.ok(out.kiln[p].testAccuracy >= 0 && out.kiln[p].testAccuracy <= 1, `${p} accuracy ${out.kiln[p].testAccuracy}`);
    }
    assert.deepEqual([...out.kiln.transfer.trainedWeights].sort(), ['head.bias', 'head.weight']);
    // The learned weights outside the head stay; the BatchNorm running statistics are printed, not
    // asserted: whether trainOnly holds them is GraphModel's business (its own tests), not the bench's.
    assert.equal(out.kiln.transfer.backboneLargestChange.weights, 0, 'trainOnly(head.*) must leave every other learned weight as it was');
    assert.ok(Number.isFinite(out.kiln.transfer.backboneLargestChange.runningStats));
  });
});
