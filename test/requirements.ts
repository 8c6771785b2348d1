import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';

/*
 * What a test needs from the machine that npm cannot install (Debian's Fashion-MNIST, a headless
 * browser). Where it is missing the test skips and says what to install; under CI (CI=true) it fails
 * instead, because .ci/run installs these and a skip there would let CI pass without the check.
 */

/** True where CI is set to anything but '', '0' or 'false' (the convention CI services follow). */
export function underCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI?.trim().toLowerCase();
  return ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false';
}

/**
 * Call first in a test body with what is missing (a sentence saying what to install) or
 * undefined; returns whether to go on. Skips outside CI, fails under it.
 */
export function needs(t: TestContext, missing: string | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (missing === undefined) return true;
  if (underCi(env)) assert.fail(`${missing}; under CI a missing requirement fails rather than skips`);
  t.skip(missing);
  return false;
}
