/**
 * Reads what the documentation checks need out of Markdown: fenced code blocks (with their language,
 * the rest of their info string and their line), headings as GitHub anchors them, and links. Not a
 * full CommonMark parser: the subset Kiln's guides use (``` and ~~~ fences, possibly indented in
 * lists; `#` headings; inline `[text](target)` links outside code).
 */

/** A fenced code block. */
export interface CodeBlock {
  /** The first word of the info string ('ts', 'sh', 'json', ...), lowercased; '' when none. */
  lang: string;
  /** The rest of the info string ('continued' for a TypeScript block that continues the previous one). */
  info: string;
  /** The block's text, without the fences and without the fence's indentation. */
  text: string;
  /** 1-based line of the block's first text line in the file. */
  line: number;
  /** 1-based line of the closing fence (the file's last line when the block is never closed). */
  endLine: number;
}

/** A link found in running text. */
export interface Link {
  /** The target as written: a URL, a relative path, `path#anchor` or `#anchor`. */
  target: string;
  /** 1-based line. */
  line: number;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^`]*)$/;

/** The fenced code blocks of a Markdown text, in order. */
export function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, infoString] = open as unknown as [string, string, string, string];
    const [lang = '', ...rest] = infoString.trim().split(/\s+/);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = FENCE.exec(lines[j]!);
      if (close && close[2]![0] === fence[0] && close[2]!.length >= fence.length && close[3]!.trim() === '') break;
      body.push(lines[j]!.startsWith(indent) ? lines[j]!.slice(indent.length) : lines[j]!.trimStart());
    }
    blocks.push({ lang: lang.toLowerCase(), info: rest.join(' '), text: body.join('\n'), line: i + 2, endLine: Math.min(j + 1, lines.length) });
    i = j;
  }
  return blocks;
}

/** The lines of the text outside fenced code blocks, others blanked (so line numbers stay right). */
function proseLines(markdown: string): string[] {
  const lines = markdown.split('\n');
  const out = [...lines];
  for (const block of codeBlocks(markdown)) {
    for (let k = block.line - 2; k < block.endLine; k++) out[k] = '';
  }
  return out;
}

/** GitHub's anchor for a heading: lowercased, markup and punctuation dropped, spaces to hyphens. */
export function headingAnchor(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*_~]/g, (c) => (c === '_' ? '_' : ''))
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The headings of a Markdown text: their text and level. */
export function headings(markdown: string): { text: string; level: number; line: number }[] {
  const found: { text: string; level: number; line: number }[] = [];
  proseLines(markdown).forEach((line, i) => {
    const m = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (m) found.push({ text: m[2]!, level: m[1]!.length, line: i + 1 });
  });
  return found;
}

/** Every anchor a link may point at in this text (duplicates get -1, -2, ... as on GitHub). */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const h of headings(markdown)) {
    const base = headingAnchor(h.text);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Inline links `[text](target)` in running text (not in code blocks or code spans). */
export function links(markdown: string): Link[] {
  const found: Link[] = [];
  proseLines(markdown).forEach((line, i) => {
    const withoutCode = line.replace(/`[^`]*`/g, '');
    for (const m of withoutCode.matchAll(/\[(?:[^\]]|\][^(])*?\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) found.push({ target: m[1]!, line: i + 1 });
  });
  return found;
}
