import { KilnError } from '../errors.js';
import { KILN_VERSION } from '../version.js';
import { optionHelp, parseArgs } from './args.js';
import type { Command } from './command.js';
import { dataCommand } from './data.js';
import { demoCommand } from './demo.js';
import { evaluateCommand } from './evaluate.js';
import { infoCommand } from './info.js';
import { serveCommand } from './serve.js';
import { predictCommand } from './predict.js';
import { pruneCommand } from './prune.js';
import { trainCommand } from './train.js';
import { distillCommand } from './distill.js';
import { federateCommand } from './federate.js';
import { benchCommand } from './bench.js';
import { reportCommand } from './report.js';
import { quantizeCommand } from './quantize.js';
import { encryptCommand } from './encrypt.js';
import { deployCommand } from './deploy.js';
import { tuneCommand } from './tune.js';
import { optimizeCommand } from './optimize.js';
import { exportTrainerCommand } from './export-trainer.js';
import { browserDemoCommand } from './browser-demo.js';

/* Each command is a thin shell over one library call; they are listed here as they exist. */
const COMMANDS: Command[] = [demoCommand, trainCommand, evaluateCommand, infoCommand, serveCommand, predictCommand, dataCommand, pruneCommand, distillCommand, benchCommand, reportCommand, quantizeCommand, tuneCommand, optimizeCommand, encryptCommand, deployCommand, exportTrainerCommand, browserDemoCommand, federateCommand];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'kiln — define, train, evaluate, shrink and serve deep-learning models (ONNX + ONNX Runtime)',
    '',
    'Usage: kiln <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width + 2)}${c.summary}`),
    '',
    "Run 'kiln <command> --help' for a command's options.",
  ].join('\n');
}

function commandHelp(c: Command): string {
  return [`Usage: ${c.usage}`, '', c.summary, '', 'Options:', optionHelp([...c.options, { name: 'help', type: 'boolean', description: 'show this help' }])].join('\n');
}

export async function main(argv: string[], out: (line: string) => void = console.log, err: (line: string) => void = console.error): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out(mainHelp());
    return 0;
  }
  if (name === '--version') {
    out(`kiln ${KILN_VERSION}`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    err(`kiln: unknown command '${name}'. Commands: ${COMMANDS.map((c) => c.name).join(', ')}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out(commandHelp(command));
    return 0;
  }
  try {
    const parsed = parseArgs(rest, command.options, command.name);
    return (await command.run(parsed, out)) ?? 0;
  } catch (e) {
    if (e instanceof KilnError) {
      // Messages from the argument parser already name the command (they stand alone in the library).
      const prefix = `kiln ${command.name}: `;
      const message = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
      err(`kiln ${command.name}: error [${e.code}]: ${message}`);
      return 1;
    }
    throw e;
  }
}

