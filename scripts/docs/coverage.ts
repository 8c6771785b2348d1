/**
 * Compares what Kiln offers with what the documentation covers: every CLI command needs a guide
 * section (a heading naming `kiln <command>`) and every one of its options must be explained in a
 * guide; every value the package exports (functions, classes, namespaces, constants) must be shown in
 * a guide as `kiln.<name>`, and every export, types included, must be in the API reference (checked
 * against TypeDoc's project by the reference's test).
 */
import path from 'node:path';
import ts from 'typescript';
import type { CliCommand } from './cli.js';
import { headings } from './markdown.js';

/** A guide's path (relative to the root) and text. */
export interface Guide {
  file: string;
  text: string;
}

/** One export of the public entry point. */
export interface PublicExport {
  name: string;
  /** True for values (functions, classes, namespaces, constants); false for types only. */
  value: boolean;
}

/** The exports of the built package's public types (dist/src/index.d.ts under `root`). */
export function publicExports(root: string): PublicExport[] {
  const entry = path.join(root, 'dist', 'src', 'index.d.ts');
  const program = ts.createProgram([entry], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: true, noEmit: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  const module = source && checker.getSymbolAtLocation(source);
  if (!module) throw new Error(`${entry} not found: run npm run build first`);
  return checker.getExportsOfModule(module).map((symbol) => {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    return { name: symbol.name, value: (target.flags & ts.SymbolFlags.Value) !== 0 };
  });
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Commands without a guide section, and options no guide mentions. */
export function uncoveredCommands(commands: CliCommand[], guides: Guide[]): string[] {
  const missing: string[] = [];
  const allText = guides.map((g) => g.text).join('\n');
  const sectionHeadings = guides.flatMap((g) => headings(g.text).map((h) => h.text));
  for (const command of commands) {
    const named = new RegExp(`\\bkiln ${escape(command.name)}\\b`);
    if (!sectionHeadings.some((h) => named.test(h))) missing.push(`command 'kiln ${command.name}' has no guide section (a heading in docs/guide/ naming \`kiln ${command.name}\`)`);
    for (const option of command.options) {
      if (option === 'help') continue;
      if (!new RegExp(`--${escape(option)}(?![\\w-])`).test(allText)) missing.push(`option --${option} of 'kiln ${command.name}' is not explained in any guide`);
    }
  }
  return missing;
}

/** Exported values no guide shows as `kiln.<name>`. */
export function untaughtExports(exports: PublicExport[], guides: Guide[]): string[] {
  const allText = guides.map((g) => g.text).join('\n');
  return exports
    .filter((e) => e.value && !new RegExp(`\\bkiln\\.${escape(e.name)}\\b`).test(allText))
    .map((e) => `export '${e.name}' is not shown in any guide (as kiln.${e.name})`);
}
