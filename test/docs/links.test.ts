/** Relative links in the repository's Markdown resolve: the files exist, the anchors are headings. */
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, markdownFiles } from '../../scripts/docs/files.js';
import { checkLinks } from '../../scripts/docs/links.js';
import { anchors, codeBlocks, headingAnchor } from '../../scripts/docs/markdown.js';
import { formatProblem } from '../../scripts/docs/typescript.js';

describe('links in the documentation', () => {
  it('every relative link of every Markdown file resolves', () => {
    const files = markdownFiles();
    assert.ok(files.includes('README.md') && files.includes('docs/guide/README.md'), files.join(', '));
    const problems = files.flatMap((f) => checkLinks(readFileSync(path.join(ROOT, f), 'utf8'), f, ROOT));
    assert.deepEqual(problems.map(formatProblem), []);
  });

  it('anchors headings as GitHub does', () => {
    assert.equal(headingAnchor('Serving: limits and defaults'), 'serving-limits-and-defaults');
    assert.equal(headingAnchor('`kiln serve` and `kiln.serve()`'), 'kiln-serve-and-kilnserve');
    assert.equal(headingAnchor('Checkpoints / resume'), 'checkpoints--resume');
    assert.equal(headingAnchor('What [ONNX Runtime](https://onnxruntime.ai) fuses'), 'what-onnx-runtime-fuses');
    assert.deepEqual([...anchors('# A\n\n## B\n\n## B\n\n```sh\n# not a heading\n```\n')], ['a', 'b', 'b-1']);
  });

  it('fails on a missing file, a missing anchor and a link out of the repository; code and URLs are left alone', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'kiln-links-'));
    try {
      mkdirSync(path.join(root, 'docs'));
      writeFileSync(path.join(root, 'docs', 'other.md'), '# Other\n\n## Section two\n');
      const markdown = [
        '# Guide',
        'See [the other guide](other.md), [its section](other.md#section-two) and [this one](#guide).',
        'Broken: [gone](missing.md), [no such section](other.md#section-three), [outside](../../etc/passwd).',
        'Not links: `[x](nowhere.md)`, [site](https://example.com/missing.md).',
        '```md',
        '[inside a code block](nowhere.md)',
        '```',
      ].join('\n');
      assert.equal(codeBlocks(markdown).length, 1);
      assert.deepEqual(checkLinks(markdown, 'docs/guide.md', root).map(formatProblem), [
        "docs/guide.md:3: link to 'missing.md': docs/missing.md does not exist",
        "docs/guide.md:3: link to 'other.md#section-three': docs/other.md has no heading with the anchor #section-three (it has #other, #section-two)",
        "docs/guide.md:3: link to '../../etc/passwd' leads out of the repository",
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
