/** The study journal: append-only lines, a torn last line dropped, damage elsewhere and other studies refused. */
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { StudyJournal, type StudySignature } from '../../src/tune/journal.js';
import { kilnError, tempDir } from '../train/helpers.js';

const signature: StudySignature = { space: { lr: { kind: 'float', low: 0.001, high: 0.1, log: true } }, objective: { metric: 'val_accuracy' }, epochs: 2, earlyStopping: null };

describe('StudyJournal', () => {
  it('starts a new file with the study line and appends records in order', async () => {
    const t = await tempDir();
    try {
      const file = t.path('study.jsonl');
      const { journal, records } = await StudyJournal.open(file, signature);
      assert.equal(records.length, 1);
      await Promise.all([journal.append({ type: 'start', trial: 0, params: { lr: 0.01 }, at: 'now' }), journal.append({ type: 'report', trial: 0, epochs: 1, value: 0.5, metrics: {} })]);
      await journal.close();
      const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string });
      assert.deepEqual(lines.map((l) => l.type), ['study', 'start', 'report']);
      const again = await StudyJournal.open(file, signature);
      assert.equal(again.records.length, 3);
      await again.journal.close();
    } finally {
      await t.remove();
    }
  });

  it('drops a last line cut short by a crash, and cuts the file back so the next record starts on a line of its own', async () => {
    const t = await tempDir();
    try {
      const file = t.path('study.jsonl');
      const first = await StudyJournal.open(file, signature);
      await first.journal.append({ type: 'start', trial: 0, params: { lr: 0.01 }, at: 'now' });
      await first.journal.close();
      await appendFile(file, '{"type":"end","trial":0,"sta');
      const { journal, records } = await StudyJournal.open(file, signature);
      assert.deepEqual(records.map((r) => r.type), ['study', 'start']);
      await journal.append({ type: 'end', trial: 0, state: 'complete', value: 0.5, epochs: 2, seconds: 1 });
      await journal.close();
      const reread = await StudyJournal.open(file, signature);
      assert.deepEqual(reread.records.map((r) => r.type), ['study', 'start', 'end']);
      await reread.journal.close();
    } finally {
      await t.remove();
    }
  });

  it('refuses a damaged line before the last, a file that is not a journal, and a journal of another study', async () => {
    const t = await tempDir();
    try {
      const file = t.path('study.jsonl');
      const { journal } = await StudyJournal.open(file, signature);
      await journal.close();
      await appendFile(file, 'garbage\n{"type":"start","trial":0,"params":{},"at":""}\n');
      await assert.rejects(StudyJournal.open(file, signature), kilnError('CORRUPT_FILE', 'line 2'));
      await writeFile(t.path('other.jsonl'), '{"type":"start","trial":0,"params":{},"at":""}\n');
      await assert.rejects(StudyJournal.open(t.path('other.jsonl'), signature), kilnError('CORRUPT_FILE', 'not a Kiln study journal'));
      const good = t.path('good.jsonl');
      await (await StudyJournal.open(good, signature)).journal.close();
      await assert.rejects(StudyJournal.open(good, { ...signature, space: { lr: { kind: 'float', low: 0.001, high: 0.2, log: true } } }), kilnError('INVALID_ARGUMENT', 'written for another study', 'search space'));
      await assert.rejects(StudyJournal.open(good, { ...signature, epochs: 3 }), kilnError('INVALID_ARGUMENT', 'epochs per trial is 2, this search\'s is 3'));
    } finally {
      await t.remove();
    }
  });
});
