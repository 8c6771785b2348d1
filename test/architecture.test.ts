/*
 * The import-direction check: every relative import under src/ goes to the importing file's own layer
 * or one below it, in the order docs/architecture.md draws (read from there, so the order is written
 * once).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = path.join(ROOT, 'src');

/** Layer rank by name (0 at the bottom), from the diagram between the markers in docs/architecture.md. */
export function layerOrder(doc: string): Map<string, number> {
  const block = /<!-- layers:begin -->([\s\S]*?)<!-- layers:end -->/.exec(doc);
  assert.ok(block, 'docs/architecture.md has no <!-- layers:begin --> ... <!-- layers:end --> block');
  const rows = block[1]!.split('\n').filter((l) => l.includes('│')).map((l) => l.split('│')[0]!.split(',').map((n) => n.trim()).filter(Boolean));
  const rank = new Map<string, number>();
  rows.reverse().forEach((names, i) => names.forEach((n) => rank.set(n, i)));
  return rank;
}

/** A file's layer: its first folder under src/, or its own name for top-level files (errors.ts → errors). */
function layerOf(file: string): string {
  const parts = path.relative(SRC, file).split(path.sep);
  return parts.length > 1 ? parts[0]! : parts[0]!.replace(/\.ts$/, '');
}

/** The relative module specifiers a TypeScript file imports or re-exports, statically or dynamically. */
export function relativeImports(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s*['"](\.[^'"]+)['"]/gm, // import x from './a', export * from './a' (across lines)
    /^\s*import\s*['"](\.[^'"]+)['"]/gm, // import './a' for its side effects
    /\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g, // await import('./a')
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]!);
  return found;
}

const sourceFiles = (): string[] =>
  readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(SRC, f))
    .sort();

test('the import scanner sees every form of relative import', () => {
  const source = `import { a } from '../a.js';\nimport type {\n  B,\n} from "./b.js";\nexport * from './c.js';\nimport './d.js';\nconst e = await import('../e.js');\nimport fs from 'node:fs';`;
  assert.deepEqual(relativeImports(source).sort(), ['../a.js', '../e.js', './b.js', './c.js', './d.js']);
});

test('every file under src/ imports only from its own layer or those below (docs/architecture.md)', () => {
  const rank = layerOrder(readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8'));
  const problems: string[] = [];
  for (const file of sourceFiles()) {
    const from = layerOf(file);
    const fromRank = rank.get(from);
    const shown = path.relative(ROOT, file);
    if (fromRank === undefined) {
      problems.push(`${shown}: layer '${from}' is not in docs/architecture.md's diagram`);
      continue;
    }
    for (const spec of relativeImports(readFileSync(file, 'utf8'))) {
      const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
      if (!target.startsWith(SRC + path.sep)) {
        problems.push(`${shown}: imports '${spec}', outside src/`);
        continue;
      }
      const to = layerOf(target);
      const toRank = rank.get(to);
      if (toRank === undefined) problems.push(`${shown}: imports '${spec}' from layer '${to}', which is not in docs/architecture.md's diagram`);
      else if (toRank > fromRank) problems.push(`${shown} (${from}): imports '${spec}' from the higher layer ${to}`);
    }
  }
  assert.deepEqual(problems, [], `imports against the layer order:\n${problems.join('\n')}`);
});

/**
 * Package imports ('#platform') name a different file per condition (Node's, the browser's): each one
 * they can resolve to, from package.json's "imports", as a source path under src/.
 */
export function packageImportTargets(pkg: { imports?: Record<string, unknown> }, specifier: string): string[] {
  const targets: string[] = [];
  const walk = (entry: unknown) => {
    if (typeof entry === 'string') targets.push(entry);
    else if (entry && typeof entry === 'object') for (const v of Object.values(entry)) walk(v);
  };
  walk(pkg.imports?.[specifier]);
  return [...new Set(targets.filter((t) => !t.endsWith('.d.ts')).map((t) => path.join(ROOT, t.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'))))];
}

test("imports of '#platform' obey the layer order for every file it resolves to (Node's and the browser's)", () => {
  const rank = layerOrder(readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8'));
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { imports?: Record<string, unknown> };
  const platformFiles = packageImportTargets(pkg, '#platform');
  assert.deepEqual(platformFiles.map((f) => path.relative(ROOT, f)).sort(), ['src/platform/browser.ts', 'src/platform/node.ts']);
  const problems: string[] = [];
  let importers = 0;
  for (const file of sourceFiles()) {
    const source = readFileSync(file, 'utf8');
    if (!/from\s*['"]#platform['"]/.test(source)) continue;
    importers++;
    for (const target of platformFiles) {
      const fromRank = rank.get(layerOf(file))!;
      const to = layerOf(target);
      if ((rank.get(to) ?? Infinity) > fromRank) problems.push(`${path.relative(ROOT, file)}: '#platform' resolves to ${path.relative(ROOT, target)} in the higher layer ${to}`);
    }
  }
  assert.ok(importers > 0, "no file imports '#platform'");
  assert.deepEqual(problems, []);
});

