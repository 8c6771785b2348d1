/**
 * `kiln federate simulate` (src/cli/federate.ts) in-process: a one-round simulation on the embedded
 * subset prints its round and final accuracy, spends the DP budget it was given, and writes the HTML
 * report with the accuracy chart; a missing or unknown action is refused with the usage.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMain } from './helpers.js';

describe('kiln federate simulate', () => {
  it('prints each round with ε and writes the report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-federate-'));
    try {
      const report = join(dir, 'fed.html');
      const r = await runMain(['federate', 'simulate', '--dataset', 'embedded', '--clients', '3', '--non-iid', '2', '--rounds', '2', '--train-limit', '600', '--test-limit', '200', '--dp-epsilon', '8', '--report', report]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /DP-FedAvg: clip norm 1, noise multiplier σ = \d/);
      assert.match(r.out, /Round 1\/2 {2}test accuracy \d+\.\d\d% .* \(3 clients, .*\) {2}ε \d/);
      const eps = Number(/Final test accuracy after 2 rounds: .*\(ε = ([\d.]+)/.exec(r.out)?.[1]);
      assert.ok(eps > 7 && eps <= 8, `ε spent ${eps}`);
      const html = await readFile(report, 'utf8');
      assert.match(html, /Test accuracy per round/);
      assert.match(html, /<svg/);
      assert.match(html, /dp-fedavg non-iid 2/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('with --dp-unit example trains every client with DP-SGD and prints the largest client ε per round', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-federate-'));
    try {
      const report = join(dir, 'fed.html');
      const r = await runMain(['federate', 'simulate', '--dataset', 'embedded', '--clients', '2', '--rounds', '2', '--train-limit', '400', '--test-limit', '100', '--batch-size', '50', '--local-optimizer', 'adam', '--lr', '0.002', '--dp-unit', 'example', '--dp-epsilon', '3', '--dp-clip', '0.5', '--report', report]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /with example-level DP \(DP-SGD on every client\) at ε = 3, δ = 0\.00001/);
      const sigma = Number(/Example-level DP: every client trains with DP-SGD, clip norm 0\.5 per example, noise multiplier σ = ([\d.]+), sampling rate q = 0\.2500, 4 steps per round/.exec(r.out)?.[1]);
      assert.ok(sigma > 0, r.out);
      const eps = [...r.out.matchAll(/Round \d\/2 .* {2}ε ([\d.]+)/g)].map((m) => Number(m[1]));
      assert.equal(eps.length, 2, r.out);
      assert.ok(eps[0]! > 0 && eps[0]! < eps[1]! && eps[1]! <= 3.03, `ε per round ${eps}`);
      assert.match(r.out, /Final test accuracy after 2 rounds: .*\(example-level ε = [\d.]+ at δ = 0\.00001\)/);
      const html = await readFile(report, 'utf8');
      assert.match(html, /fedavg example-dp iid/);
      assert.match(html, /Example-level DP: DP-SGD on every client \(clip 0\.5/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a missing or unknown action', async () => {
    for (const argv of [['federate'], ['federate', 'simulat']]) {
      const r = await runMain(argv);
      assert.notEqual(r.code, 0);
      assert.match(r.err, /expected the action 'simulate'/);
    }
  });
});
