/**
 * The API reference builds clean, as `npm run docs` builds it (typedoc.json: undocumented exports,
 * broken {@link}s, referenced types left out and missing relative paths are warnings, and warnings are
 * errors), and it holds every export of the package, types included. The checker's own test builds a
 * fixture project with an undocumented export and a broken link, which must fail.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildReference, documentedExports } from '../../scripts/docs/api-reference.js';
import { publicExports } from '../../scripts/docs/coverage.js';
import { ROOT } from '../../scripts/docs/files.js';

describe('API reference (TypeDoc)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kiln-api-reference-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('builds with no warning and documents every export of the package', async () => {
    const out = path.join(dir, 'api');
    // Source links need a remote named origin, which a checkout need not have (TypeDoc warns then);
    // what this test checks is the documentation, so the links are left out.
    const { problems, project } = await buildReference(path.join(ROOT, 'typedoc.json'), out, { disableSources: true });
    assert.deepEqual(problems, []);
    assert.ok(existsSync(path.join(out, 'index.html')), 'the HTML reference was written');
    const documented = documentedExports(project!);
    const missing = publicExports(ROOT).filter((e) => !documented.has(e.name)).map((e) => e.name);
    assert.deepEqual(missing, [], 'exports missing from the reference');
    assert.ok(documented.has('sequential') && documented.has('FitArgs') && documented.has('layers'));
  });

  it('fails on an undocumented export and on a broken {@link}, naming them', async () => {
    const fixture = path.join(dir, 'fixture');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(fixture);
    writeFileSync(path.join(fixture, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', skipLibCheck: true, types: [] }, include: ['index.ts'] }));
    writeFileSync(
      path.join(fixture, 'index.ts'),
      [
        '/** Documented, but its {@link NoSuchThing} goes nowhere. */',
        'export function documented(): number {',
        '  return 1;',
        '}',
        '',
        'export function forgotten(): number {',
        '  return 2;',
        '}',
      ].join('\n'),
    );
    // The project's own settings, pointed at the fixture.
    const settings = JSON.parse(readFileSync(path.join(ROOT, 'typedoc.json'), 'utf8')) as Record<string, unknown>;
    delete settings.$schema;
    writeFileSync(path.join(fixture, 'typedoc.json'), JSON.stringify({ ...settings, entryPoints: ['index.ts'], tsconfig: 'tsconfig.json', out: 'api' }));
    const { problems } = await buildReference(path.join(fixture, 'typedoc.json'), undefined);
    assert.ok(problems.some((p) => /forgotten.*does not have any documentation/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /NoSuchThing/.test(p) && /documented/.test(p)), problems.join('\n'));
    assert.ok(!problems.some((p) => /\bdocumented\b.*does not have any documentation/.test(p)), problems.join('\n'));
  });
});
