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

  it('refuses a missing or unknown action', async () => {
    for (const argv of [['federate'], ['federate', 'simulat']]) {
      const r = await runMain(argv);
      assert.notEqual(r.code, 0);
      assert.match(r.err, /expected the action 'simulate'/);
    }
  });
});
