/**
 * The CLI as the documentation checks see it: the commands and options `kiln --help` lists (read from
 * the CLI itself, so a command added to its registry is seen at once), and the check that every
 * `kiln <command> --option` written in a guide's shell block exists.
 */
import { main } from '../../src/cli/main.js';
import { codeBlocks } from './markdown.js';
import type { DocProblem } from './typescript.js';

/** A command and the options its `--help` lists. */
export interface CliCommand {
  name: string;
  options: string[];
}

async function helpText(argv: string[]): Promise<string> {
  const lines: string[] = [];
  const code = await main(argv, (l) => lines.push(l), (l) => lines.push(l));
  if (code !== 0) throw new Error(`kiln ${argv.join(' ')} exited with ${code}: ${lines.join('\n')}`);
  return lines.join('\n');
}

/** Every command `kiln --help` lists, with the options of its own `--help` (`help` included). */
export async function cliCommands(): Promise<CliCommand[]> {
  const help = await helpText(['--help']);
  const section = help.split(/^Commands:$/m)[1] ?? '';
  const names = [...section.matchAll(/^ {2}([a-z][\w-]*)\s/gm)].map((m) => m[1]!);
  const commands: CliCommand[] = [];
  for (const name of names) {
    const options = [...(await helpText([name, '--help'])).matchAll(/^\s+--([a-z0-9][\w-]*)/gm)].map((m) => m[1]!);
    commands.push({ name, options });
  }
  return commands;
}

const SHELL_LANGS = new Set(['sh', 'bash', 'shell', 'console']);

/**
 * Checks the `kiln ...` command lines in a Markdown file's shell blocks: the command must exist and
 * each `--option` must be one it takes. Lines continued with a backslash are read as one.
 */
export function checkCliLines(markdown: string, file: string, commands: CliCommand[]): DocProblem[] {
  const problems: DocProblem[] = [];
  const byName = new Map(commands.map((c) => [c.name, c]));
  for (const block of codeBlocks(markdown)) {
    if (!SHELL_LANGS.has(block.lang)) continue;
    const lines = block.text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const start = i;
      let line = lines[i]!;
      while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++i]!;
      // Comments and quoted text are not part of the command line.
      const command = line.replace(/(^|\s)#.*$/, '').replace(/'[^']*'|"[^"]*"/g, "''");
      for (const m of command.matchAll(/(?:^|[\s;&|(])(?:npx\s+)?kiln\s+([a-z][\w-]*)([^;&|]*)/g)) {
        const where = { file, line: block.line + start };
        const known = byName.get(m[1]!);
        if (!known) {
          problems.push({ ...where, message: `'kiln ${m[1]}' is not a command (commands: ${[...byName.keys()].join(', ')})` });
          continue;
        }
        for (const flag of m[2]!.matchAll(/(?:^|\s)--([a-z0-9][\w-]*)/g)) {
          if (!known.options.includes(flag[1]!)) problems.push({ ...where, message: `'kiln ${known.name}' has no option --${flag[1]} (options: ${known.options.map((o) => `--${o}`).join(', ')})` });
        }
      }
    }
  }
  return problems;
}
