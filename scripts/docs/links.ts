/**
 * Checks the relative links of Markdown files: the file or folder a link names must exist, and an
 * anchor (`guide.md#section`, `#section`) must be a heading of the Markdown file it points into.
 * Links to other sites are left alone (the check runs offline).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { anchors, links } from './markdown.js';
import type { DocProblem } from './typescript.js';

/** Broken relative links in `file` (relative to `root`), whose text is `markdown`. */
export function checkLinks(markdown: string, file: string, root: string): DocProblem[] {
  const problems: DocProblem[] = [];
  const anchorsOf = new Map<string, Set<string>>();
  const anchorSet = (target: string) => {
    let set = anchorsOf.get(target);
    if (!set) anchorsOf.set(target, (set = anchors(target === file ? markdown : readFileSync(path.join(root, target), 'utf8'))));
    return set;
  };
  for (const link of links(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) continue; // https:, mailto:, ...
    const [rawPath = '', anchor] = link.target.split('#', 2) as [string, string | undefined];
    const targetPath = decodeURI(rawPath);
    const target = targetPath === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), targetPath));
    const where = { file, line: link.line };
    if (target.startsWith('..')) {
      problems.push({ ...where, message: `link to '${link.target}' leads out of the repository` });
      continue;
    }
    if (target !== file && !existsSync(path.join(root, target))) {
      problems.push({ ...where, message: `link to '${link.target}': ${target} does not exist` });
      continue;
    }
    if (anchor === undefined || anchor === '') continue;
    if (!target.endsWith('.md') || (target !== file && statSync(path.join(root, target)).isDirectory())) {
      problems.push({ ...where, message: `link to '${link.target}': anchors are checked only in Markdown files, and ${target} is not one` });
      continue;
    }
    if (!anchorSet(target).has(anchor.toLowerCase())) {
      problems.push({ ...where, message: `link to '${link.target}': ${target} has no heading with the anchor #${anchor} (it has ${[...anchorSet(target)].map((a) => `#${a}`).join(', ') || 'no headings'})` });
    }
  }
  return problems;
}
