/**
 * The code in the documentation compiles: every TypeScript block of every Markdown file and every
 * example, each checked as a user's program against Kiln's public types; every `kiln` command line in
 * a shell block names a real command and real options. The checkers' own tests feed them broken code
 * on purpose, so a checker that passed everything would fail here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { checkCliLines, cliCommands, type CliCommand } from '../../scripts/docs/cli.js';
import { ROOT, exampleFiles, markdownFiles } from '../../scripts/docs/files.js';
import { checkPrograms, filePrograms, formatProblem, markdownPrograms } from '../../scripts/docs/typescript.js';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

describe('TypeScript in the documentation', () => {
  it('every ```ts block of the Markdown files and every example compiles against the public API', () => {
    const programs = [...markdownFiles().flatMap((f) => markdownPrograms(read(f), f)), ...exampleFiles().map((f) => filePrograms(read(f), f))];
    assert.ok(programs.some((p) => p.name.startsWith('docs/guide/')), 'the guides hold TypeScript blocks');
    assert.ok(programs.length >= exampleFiles().length + 10, `found only ${programs.length} programs`);
    assert.deepEqual(checkPrograms(programs, ROOT).map(formatProblem), []);
  });

  it('fails on a snippet that calls an API that does not exist, naming the Markdown file and line', () => {
    const markdown = [
      '# A guide',
      '',
      '```ts',
      "import * as kiln from 'kiln';",
      'const model = kiln.sequential();',
      '```',
      '',
      'Then:',
      '',
      '```ts continued',
      'model.compile({ optimizer: "adam", loss: "mse" });',
      'await model.trainForever();',
      '```',
    ].join('\n');
    const problems = checkPrograms(markdownPrograms(markdown, 'docs/guide/broken.md'), ROOT);
    assert.equal(problems.length, 1, problems.map(formatProblem).join('\n'));
    assert.equal(problems[0]!.file, 'docs/guide/broken.md');
    assert.equal(problems[0]!.line, 12);
    assert.match(problems[0]!.message, /Property 'trainForever' does not exist on type 'Sequential'/);
  });

  it('fails on a snippet that passes an option the API does not take', () => {
    const markdown = "```ts\nimport * as kiln from 'kiln';\nkiln.layers.dense({ units: 10, activaton: 'relu' });\n```\n";
    const problems = checkPrograms(markdownPrograms(markdown, 'g.md'), ROOT);
    assert.equal(problems.length, 1);
    assert.match(formatProblem(problems[0]!), /^g\.md:3: .*'activaton' does not exist in type 'DenseArgs'/);
  });

  it('checks each block on its own unless it says `continued`', () => {
    const markdown = "```ts\nimport * as kiln from 'kiln';\nconst t = kiln.tensor([1, 2]);\n```\n\n```ts\nconsole.log(t.shape);\n```\n";
    const problems = checkPrograms(markdownPrograms(markdown, 'g.md'), ROOT);
    assert.deepEqual(problems.map(formatProblem), ["g.md:7: Cannot find name 't'."]);
  });

  it('fails on an example that reaches into Kiln\'s source instead of the public API', () => {
    const example = "import { Sequential } from '../src/train/sequential.js';\nimport * as kiln from 'kiln';\nconst m: Sequential = kiln.sequential();\nawait m.fit(kiln.tensor([[1]]), kiln.tensor([[1]]), { epochz: 1 });\n";
    const problems = checkPrograms([filePrograms(example, 'examples/broken.ts')], ROOT).map(formatProblem);
    assert.ok(problems.some((p) => /^examples\/broken\.ts:1: imports '\.\.\/src\/train\/sequential\.js': documentation code may import only 'kiln'/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /^examples\/broken\.ts:4: .*'epochz' does not exist in type 'FitArgs'/.test(p)), problems.join('\n'));
  });
});

describe('kiln command lines in the documentation', () => {
  let commands: CliCommand[];
  before(async () => {
    commands = await cliCommands();
  });

  it('reads the commands and their options from the CLI itself', () => {
    const train = commands.find((c) => c.name === 'train');
    assert.ok(train, 'kiln train is listed');
    assert.ok(train.options.includes('epochs') && train.options.includes('train-only'));
    assert.ok(commands.length >= 12, `only ${commands.length} commands`);
  });

  it('every kiln command line in a shell block uses a real command and its options', () => {
    const problems = markdownFiles().flatMap((f) => checkCliLines(read(f), f, commands));
    assert.deepEqual(problems.map(formatProblem), []);
  });

  it('fails on an unknown command or option, naming the line; comments and other programs pass', () => {
    const markdown = [
      '```sh',
      'npx kiln demo --epochs 1            # --not-checked in a comment',
      'npx kiln train --dataset embedded \\',
      '    --epochz 2 --out m.onnx',
      'kiln serv m.onnx',
      'npm test -- --test-name-pattern=x',
      '```',
    ].join('\n');
    assert.deepEqual(checkCliLines(markdown, 'g.md', commands).map(formatProblem), [
      `g.md:3: 'kiln train' has no option --epochz (options: ${commands.find((c) => c.name === 'train')!.options.map((o) => `--${o}`).join(', ')})`,
      `g.md:5: 'kiln serv' is not a command (commands: ${commands.map((c) => c.name).join(', ')})`,
    ]);
  });
});
