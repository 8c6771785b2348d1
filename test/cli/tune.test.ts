/**
 * `kiln tune` as users run it: a real child process killed by a signal in the middle of a trial and
 * the same command run again — the study continues, no finished trial is lost or repeated — and the
 * bad inputs the issue lists, each a clear error.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../train/helpers.js';
import { runMain } from './helpers.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
const run = promisify(execFile);

type Record = { type: string; trial?: number; value?: number; state?: string };
const records = (file: string): Record[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.endsWith('}'))
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record];
          } catch {
            return [];
          }
        })
    : [];

describe('kiln tune', () => {
  it('continues a study killed mid-trial (SIGKILL) when the same command runs again: no finished trial lost or repeated', { timeout: 600_000 }, async () => {
    const t = await tempDir();
    try {
      const args = [BIN, 'tune', '--limit', '3000', '--trials', '3', '--epochs', '3', '--search', 'lr=1e-3..1e-2:log', '--search', 'filters=4,6', '--sampler', 'random', '--out', t.path('best.onnx')];
      const journal = t.path('best.study.jsonl');
      const child = spawn(process.execPath, args, { cwd: t.dir, stdio: 'ignore' });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      // Wait, by reading the journal, until one trial has ended and another has reported an epoch but
      // not ended: that trial is then mid-way (two epochs to go) when the signal arrives.
      let killedDuring: number | undefined;
      let childDone = false;
      void exited.then(() => (childDone = true));
      while (!childDone) {
        const rs = records(journal);
        const ended = new Set(rs.filter((r) => r.type === 'end').map((r) => r.trial));
        const midway = rs.find((r) => r.type === 'report' && !ended.has(r.trial));
        if (ended.size >= 1 && midway) {
          child.kill('SIGKILL');
          killedDuring = midway.trial;
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      await exited;
      assert.notEqual(killedDuring, undefined, 'the search finished before it could be interrupted');
      const before = records(journal);
      const endedBefore = before.filter((r) => r.type === 'end');
      assert.ok(!endedBefore.some((r) => r.trial === killedDuring), `trial ${killedDuring} was still running when killed`);

      const again = await run(process.execPath, args, { cwd: t.dir, timeout: 600_000 });
      assert.match(again.stdout, new RegExp(`Resumed .*: ${endedBefore.length} finished trials? kept, interrupted trial ${killedDuring} run again`));
      const after = records(journal);
      const ends = after.filter((r) => r.type === 'end');
      assert.deepEqual(ends.map((r) => r.trial).sort(), [0, 1, 2], 'each trial ended exactly once');
      for (const e of endedBefore) assert.deepEqual(ends.find((r) => r.trial === e.trial), e, `trial ${e.trial}, finished before the kill, is kept as it was`);
      assert.match(again.stdout, /Saved .*best\.onnx: test accuracy/);
      assert.ok(existsSync(t.path('best-tune-report.html')));
    } finally {
      await t.remove();
    }
  });

  it('compares trials at the sub-epoch rungs --min-epochs gives, journals them, and resumes with them', async () => {
    const t = await tempDir();
    try {
      const args = ['tune', '--out', t.path('m.onnx'), '--limit', '300', '--epochs', '2', '--asha', '--min-epochs', '0.25', '--search', 'filters=2,3', '--search', 'lr=1e-3..1e-2:log', '--sampler', 'random'];
      const first = await runMain([...args, '--trials', '3']);
      assert.equal(first.code, 0, first.err);
      assert.match(first.out, /ASHA \(η 3, rungs in epochs: 0\.25, 0\.75\)/);
      const journal = records(t.path('m.study.jsonl')) as (Record & { epochs?: number })[];
      // Every trial is scored at ¼ epoch; trial 0, first at every rung, goes on to the end.
      assert.deepEqual(journal.filter((r) => r.type === 'report' && r.trial === 0).map((r) => r.epochs), [0.25, 0.75, 1, 2]);
      assert.deepEqual([...new Set(journal.filter((r) => r.type === 'report' && r.epochs === 0.25).map((r) => r.trial))], [0, 1, 2]);
      const again = await runMain([...args, '--trials', '4']);
      assert.equal(again.code, 0, again.err);
      assert.match(again.out, /Resumed .*: 3 finished trials kept/);
      assert.deepEqual(records(t.path('m.study.jsonl')).filter((r) => r.type === 'end').map((r) => r.trial), [0, 1, 2, 3]);
    } finally {
      await t.remove();
    }
  });

  it('names each bad input', async () => {
    const t = await tempDir();
    try {
      const out = ['--out', t.path('m.onnx'), '--limit', '200', '--trials', '1', '--epochs', '1'];
      const empty = await runMain(['tune', ...out]);
      assert.equal(empty.code, 1);
      assert.match(empty.err, /search space is empty/);
      const unread = await runMain(['tune', ...out, '--search', 'lr=1e-3..1e-2', '--search', 'kernelSize=3,5']);
      assert.match(unread.err, /never reads 'kernelSize': it reads lr, batchSize/);
      const contradictory = await runMain(['tune', ...out, '--search', 'lr=1e-2..1e-3:log']);
      assert.match(contradictory.err, /'lr': the low bound 0\.01 is above the high bound 0\.001/);
      const asha = await runMain(['tune', ...out, '--search', 'lr=1e-3..1e-2', '--asha']);
      assert.match(asha.err, /budget of 1 epochs per trial is too small for early stopping/);
      const budget = await runMain(['tune', ...out, '--search', 'lr=1e-3..1e-2', '--budget', '5 minutes']);
      assert.match(budget.err, /--budget expects a duration such as 90s, 20m or 1h30m/);
      const ok = await runMain(['tune', ...out, '--search', 'filters=2,3']);
      assert.equal(ok.code, 0, ok.err);
      const other = await runMain(['tune', ...out, '--search', 'filters=2,4']);
      assert.match(other.err, /was written for another study: its search space is/);
    } finally {
      await t.remove();
    }
  });
});
