/**
 * `npm run docs:check`: every documentation check `npm test` runs (test/docs/), in one command that
 * lists all problems at once: TypeScript snippets and examples type-check against the public API,
 * `kiln` command lines use real commands and options, relative links resolve, every command, option
 * and exported value is covered by a guide. (The API reference's own check is `npm run docs`.)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { checkCliLines, cliCommands } from './docs/cli.js';
import { publicExports, uncoveredCommands, untaughtExports } from './docs/coverage.js';
import { ROOT, exampleFiles, guideFiles, markdownFiles } from './docs/files.js';
import { checkLinks } from './docs/links.js';
import { checkPrograms, filePrograms, formatProblem, markdownPrograms } from './docs/typescript.js';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const markdown = markdownFiles().map((file) => ({ file, text: read(file) }));
const commands = await cliCommands();
const programs = [...markdown.flatMap((m) => markdownPrograms(m.text, m.file)), ...exampleFiles().map((f) => filePrograms(read(f), f))];
const guides = guideFiles().map((file) => ({ file, text: read(file) }));

const problems = [
  ...checkPrograms(programs, ROOT).map(formatProblem),
  ...markdown.flatMap((m) => [...checkCliLines(m.text, m.file, commands), ...checkLinks(m.text, m.file, ROOT)]).map(formatProblem),
  ...uncoveredCommands(commands, guides),
  ...untaughtExports(publicExports(ROOT), guides),
];
for (const p of problems) console.log(p);
console.log(`${programs.length} TypeScript programs, ${markdown.length} Markdown files, ${commands.length} commands checked: ${problems.length} problem(s)`);
process.exitCode = problems.length ? 1 : 0;
