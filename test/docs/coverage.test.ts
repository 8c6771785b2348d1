/**
 * Everything Kiln offers is documented: each CLI command has a guide section and each of its options
 * is explained in a guide; each exported value is shown in a guide as `kiln.<name>`. (Every export,
 * types included, is in the API reference: test/docs/api-reference.test.ts.) The lists come from the
 * CLI's registry and the built package's types, so a command or export added without documentation
 * fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { cliCommands, type CliCommand } from '../../scripts/docs/cli.js';
import { publicExports, uncoveredCommands, untaughtExports, type Guide } from '../../scripts/docs/coverage.js';
import { ROOT, guideFiles } from '../../scripts/docs/files.js';

describe('documentation coverage', () => {
  let commands: CliCommand[];
  let guides: Guide[];
  before(async () => {
    commands = await cliCommands();
    guides = guideFiles().map((file) => ({ file, text: readFileSync(path.join(ROOT, file), 'utf8') }));
  });

  it('every CLI command has a guide section and every option is explained', () => {
    assert.deepEqual(uncoveredCommands(commands, guides), []);
  });

  it('every exported value is shown in a guide', () => {
    const exports = publicExports(ROOT);
    assert.ok(exports.some((e) => e.name === 'sequential' && e.value));
    assert.ok(exports.some((e) => e.name === 'FitArgs' && !e.value), 'type-only exports are told apart');
    assert.deepEqual(untaughtExports(exports, guides), []);
  });

  it('fails on a command, an option or an export the guides do not cover', () => {
    const guide: Guide = { file: 'docs/guide/x.md', text: '# The `kiln train` command\n\nUse `--epochs`. In code: `kiln.sequential()`.\n' };
    assert.deepEqual(
      uncoveredCommands(
        [
          { name: 'train', options: ['epochs', 'epochs-per-step', 'help'] },
          { name: 'tune', options: ['trials', 'help'] },
        ],
        [guide],
      ),
      [
        "option --epochs-per-step of 'kiln train' is not explained in any guide",
        "command 'kiln tune' has no guide section (a heading in docs/guide/ naming `kiln tune`)",
        "option --trials of 'kiln tune' is not explained in any guide",
      ],
    );
    assert.deepEqual(
      untaughtExports(
        [
          { name: 'sequential', value: true },
          { name: 'seq', value: true },
          { name: 'SequentialArgs', value: false },
        ],
        [guide],
      ),
      ["export 'seq' is not shown in any guide (as kiln.seq)"],
    );
  });
});
