/**
 * Type-checks documentation code as a user's program: the guides' TypeScript snippets and the
 * examples, each compiled against Kiln's public types only (`import ... from 'kiln'`, resolved
 * through the package's own exports to dist/src/index.d.ts) with the strict settings a user's
 * project would have. A snippet that calls an API that is gone, passes an option under an old name
 * or reaches into Kiln's source files fails here, naming the Markdown file and line.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { codeBlocks } from './markdown.js';

/** One program to check: text, and where each of its lines came from. */
export interface DocProgram {
  /** What the program is, for messages ('docs/guide/training.md:40', 'examples/prune.ts'). */
  name: string;
  text: string;
  /** The file each line of `text` came from and its 1-based line there, by 0-based line of `text`. */
  origin: { file: string; line: number }[];
}

/** A problem found, as `file:line: message`. */
export interface DocProblem {
  file: string;
  line: number;
  message: string;
}

export const formatProblem = (p: DocProblem): string => `${p.file}:${p.line}: ${p.message}`;

/** Declaration files (TypeScript's lib, @types/node, Kiln's dist) as parsed, by path. */
const parsedFiles = new Map<string, ts.SourceFile>();

/** Languages of fenced blocks that hold TypeScript to check. */
const TS_LANGS = new Set(['ts', 'typescript']);

/**
 * The TypeScript programs in a Markdown file: each ```ts block is a module of its own, and a block
 * whose info string says `continued` (```ts continued) is appended to the one before it, so a guide
 * can build one program across paragraphs.
 */
export function markdownPrograms(markdown: string, file: string): DocProgram[] {
  const programs: DocProgram[] = [];
  for (const block of codeBlocks(markdown)) {
    if (!TS_LANGS.has(block.lang)) continue;
    const lines = block.text.split('\n');
    const origin = lines.map((_, i) => ({ file, line: block.line + i }));
    const last = programs.at(-1);
    if (/\bcontinued\b/.test(block.info) && last) {
      last.text += '\n' + block.text;
      last.origin.push(...origin);
    } else {
      programs.push({ name: `${file}:${block.line}`, text: block.text, origin });
    }
  }
  return programs;
}

/** A whole file (an example) as one program. */
export function filePrograms(text: string, file: string): DocProgram {
  return { name: file, text, origin: text.split('\n').map((_, i) => ({ file, line: i + 1 })) };
}

/** Kiln's public entry points: what package.json's "exports" names ('kiln', 'kiln/web', 'kiln/web/trainer'). */
function publicEntries(root: string): Set<string> {
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; exports: Record<string, unknown> };
  return new Set(Object.keys(manifest.exports).map((key) => (key === '.' ? manifest.name : `${manifest.name}/${key.replace(/^\.\//, '')}`)));
}

/**
 * Type-checks the programs as ES modules inside the repository at `root` (so `'kiln'` resolves to the
 * built package's public types: run the build first). Returns every problem, mapped back to the file
 * and line each program came from; an empty list means they all compile.
 */
export function checkPrograms(programs: DocProgram[], root: string): DocProblem[] {
  const problems: DocProblem[] = [];
  // Virtual files inside the package, so that the bare name 'kiln' resolves as a user's import would.
  const virtual = new Map<string, DocProgram>();
  programs.forEach((p, i) => virtual.set(path.join(root, '.docs-check', `program-${i}.mts`), p));
  const map = (file: string, pos: number, message: string) => {
    const program = virtual.get(path.normalize(file))!;
    const sourceFile = ts.createSourceFile(file, program.text, ts.ScriptTarget.ES2022);
    const { line } = sourceFile.getLineAndCharacterOfPosition(pos);
    const origin = program.origin[line] ?? program.origin.at(-1)!;
    problems.push({ file: origin.file, line: origin.line, message });
  };

  // Module specifiers a program may import: Kiln's public entry points and Node's built-in modules.
  const entries = publicEntries(root);
  const allowedImport = (specifier: string) => entries.has(specifier) || specifier.startsWith('node:');
  for (const [file, program] of virtual) {
    const info = ts.preProcessFile(program.text, true, true);
    for (const ref of info.importedFiles) {
      if (!allowedImport(ref.fileName)) map(file, ref.pos, `imports '${ref.fileName}': documentation code may import only 'kiln', 'kiln/web' or 'kiln/web/trainer' (the public API) and node: modules`);
    }
  }

  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    typeRoots: [path.join(root, 'node_modules', '@types')],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) => {
    const program = virtual.get(path.normalize(name));
    if (program) return ts.createSourceFile(name, program.text, languageVersion, true);
    // Library and Kiln declaration files are parsed once per process: checks run one after another.
    let parsed = parsedFiles.get(name);
    if (!parsed) {
      parsed = getSourceFile(name, languageVersion, onError, shouldCreate);
      if (parsed) parsedFiles.set(name, parsed);
    }
    return parsed;
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => virtual.has(path.normalize(name)) || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => virtual.get(path.normalize(name))?.text ?? readFile(name);

  const program = ts.createProgram([...virtual.keys()], options, host);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const name = d.file ? path.normalize(d.file.fileName) : undefined;
    if (name && virtual.has(name)) map(name, d.start ?? 0, message);
    else problems.push({ file: d.file?.fileName ?? '(compiler)', line: 0, message });
  }
  return problems;
}
