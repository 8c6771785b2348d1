/**
 * ONNX's backend test cases as Kiln's conformance suite (issue 27): every case of the installed
 * libonnx-testdata whose ops Kiln registers must import with the expected output shapes and reproduce
 * the expected outputs through Kiln's graph in ONNX Runtime (backend-cases.ts runs one case).
 *
 * Every case that does not pass is listed in skips.json with its outcome and why ("<outcome>: why").
 * The suite fails when a case's outcome differs from its entry — a new failure, a different failure,
 * or a listed case that now passes (remove it: the list only shrinks). Without the test data the
 * suite skips, except under CI (CI=true), where a missing package is a failure: .ci/run installs it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { registeredOps, opDefinition } from '../../src/ops/index.js';
import { listCases, runCase, testDataDir, writeSkipList, type CaseResult } from './backend-cases.js';

const SKIPS_FILE = new URL('../../../test/conformance/skips.json', import.meta.url);

function readSkips(): Record<string, string> {
  return JSON.parse(fs.readFileSync(SKIPS_FILE, 'utf8')) as Record<string, string>;
}

const dataPresent = fs.existsSync(testDataDir());
const inCi = process.env.CI === 'true';
const skipReason = dataPresent || inCi ? false : `ONNX backend test data not found at ${testDataDir()}: apt-get install libonnx-testdata (or set ONNX_BACKEND_TEST_DATA)`;

describe('ONNX backend test cases', () => {
  it('the test data is installed (a failure under CI)', { skip: skipReason }, () => {
    assert.ok(dataPresent, `ONNX backend test data not found at ${testDataDir()}: .ci/run installs libonnx-testdata`);
  });

  it('every case passes or fails exactly as skips.json says', { skip: skipReason || !dataPresent }, async () => {
    const started = Date.now();
    const skips = readSkips();
    const cases = listCases();
    const results: CaseResult[] = [];
    for (const c of cases) results.push(await runCase(c.id, c.dir));

    const problems: string[] = [];
    for (const r of results) {
      const listed = skips[r.id];
      if (r.outcome === 'pass') {
        if (listed !== undefined) problems.push(`${r.id} now passes: remove it from skips.json`);
        continue;
      }
      const got = r.detail ? `${r.outcome}: ${r.detail}` : r.outcome;
      if (listed === undefined) problems.push(`${r.id}: ${got} (not in skips.json)`);
      else if (!listed.startsWith(`${r.outcome}:`)) problems.push(`${r.id}: ${got}; skips.json expects '${listed}'`);
    }
    const known = new Set(results.map((r) => r.id));
    for (const id of Object.keys(skips)) if (!known.has(id)) problems.push(`${id} is in skips.json but not among the installed cases`);

    const passing = results.filter((r) => r.outcome === 'pass').length;
    const ops = registeredOps();
    const withGradients = ops.filter((op) => opDefinition(op)?.gradient).length;
    const byOutcome: Record<string, number> = {};
    for (const r of results) byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
    console.log(`${passing} of ${results.length} cases pass; ${ops.length} ops registered, ${withGradients} with gradients`);
    console.log(`outcomes: ${Object.entries(byOutcome).map(([k, v]) => `${k} ${v}`).join(', ')}; ${((Date.now() - started) / 1000).toFixed(1)} s`);

    if (process.env.KILN_WRITE_SKIPS === '1') writeSkipList(SKIPS_FILE, results, skips);
    assert.deepEqual(problems, [], `${problems.length} case(s) differ from skips.json:\n${problems.join('\n')}`);
  });
});
