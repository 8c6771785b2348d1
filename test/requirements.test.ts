/**
 * test/requirements.ts: a test missing something from the machine skips outside CI and fails under
 * it, so CI cannot pass by skipping.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { needs, underCi } from './requirements.js';

/** A stand-in for the test context that records skips instead of skipping the real test. */
function recordingContext(): { t: TestContext; skipped: string[] } {
  const skipped: string[] = [];
  return { t: { skip: (message?: string) => skipped.push(message ?? '') } as unknown as TestContext, skipped };
}

describe('needs', () => {
  it('goes on when nothing is missing, in or out of CI', () => {
    for (const env of [{}, { CI: 'true' }]) {
      const { t, skipped } = recordingContext();
      assert.equal(needs(t, undefined, env), true);
      assert.deepEqual(skipped, []);
    }
  });

  it('skips, saying what to install, outside CI', () => {
    const { t, skipped } = recordingContext();
    assert.equal(needs(t, 'chromium not found (apt-get install chromium)', {}), false);
    assert.deepEqual(skipped, ['chromium not found (apt-get install chromium)']);
  });

  it('fails under CI instead of skipping', () => {
    const { t, skipped } = recordingContext();
    assert.throws(() => needs(t, 'chromium not found', { CI: 'true' }), /chromium not found; under CI a missing requirement fails/);
    assert.deepEqual(skipped, []);
  });

  it('reads CI as CI services set it: any value but empty, 0 or false', () => {
    assert.deepEqual(
      ['true', '1', 'yes', 'TRUE', '', '0', 'false', 'False'].map((CI) => underCi({ CI })),
      [true, true, true, true, false, false, false, false],
    );
    assert.equal(underCi({}), false);
  });
});
