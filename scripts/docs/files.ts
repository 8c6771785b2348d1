/** Which files are Kiln's documentation, for the checks in scripts/docs/. */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (scripts/docs/ compiles to dist/scripts/docs/, three levels below it). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Folders that hold no documentation of Kiln's own (dependencies, build output, vendored files). */
const SKIPPED = new Set(['node_modules', 'dist', 'third_party', 'scratch', '.git', 'docs/api']);

/** Every Markdown file of the repository, relative to the root, sorted. */
export function markdownFiles(root = ROOT): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${entry.name}` : entry.name;
      if (SKIPPED.has(rel) || SKIPPED.has(entry.name)) continue;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.md')) found.push(rel);
    }
  };
  walk('');
  return found.sort();
}

/** The task guides: docs/guide/*.md. */
export function guideFiles(root = ROOT): string[] {
  return markdownFiles(root).filter((f) => f.startsWith('docs/guide/'));
}

/** The example programs: examples/*.ts. */
export function exampleFiles(root = ROOT): string[] {
  return readdirSync(path.join(root, 'examples'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `examples/${f}`)
    .sort();
}
