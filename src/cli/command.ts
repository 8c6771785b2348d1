import type { OptionSpec, ParsedArgs } from './args.js';

/** One `kiln <name>` command: its help text, options, and a run function over the library. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec[];
  run(args: ParsedArgs, out: (line: string) => void): Promise<number | void>;
}
