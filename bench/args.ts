/**
 * The benchmarks' command-line flags: one strict parser (node:util's parseArgs with `strict: true`)
 * for every script under bench/. A bench runs for minutes to hours, and a parser that skipped a
 * misspelled flag (`--seed 4,5,6` for `--seeds`) would print, after all that time, a table of the
 * defaults that reads like the answer. So an unknown flag, a flag without its value or a number that
 * is not one stops the script at once, naming the flag, and `--help` lists the flags.
 */
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type FlagSpec =
  | { type: 'string'; default?: string; /** Taken when the flag comes without a value. */ bare?: string; help?: string }
  | { type: 'number'; default?: number; help?: string }
  /** Comma-separated numbers: `--seeds 42,1,2`. */
  | { type: 'numbers'; default?: number[]; help?: string }
  | { type: 'boolean'; help?: string };

type ValueOf<S> = S extends { type: 'boolean' }
  ? boolean
  : S extends { type: 'number'; default: number }
    ? number
    : S extends { type: 'number' }
      ? number | undefined
      : S extends { type: 'numbers'; default: number[] }
        ? number[]
        : S extends { type: 'numbers' }
          ? number[] | undefined
          : S extends { default: string }
            ? string
            : string | undefined;

/** The parsed flags by name, and with `rest`, what came after `--`. */
export type Parsed<F extends Record<string, FlagSpec>> = { [K in keyof F]: ValueOf<F[K]> } & { rest: string[] };

export class BenchArgsError extends Error {}

export interface ParseOptions {
  /** Accept arguments after `--` (handed on to another program); none are accepted before it. */
  rest?: boolean;
}

/** Parses `argv` (without node and the script) strictly: 'help' for --help, else the values; throws BenchArgsError. */
export function parseBenchArgs<F extends Record<string, FlagSpec>>(flags: F, argv: readonly string[], options: ParseOptions = {}): Parsed<F> | 'help' {
  const terminator = argv.indexOf('--');
  const own = terminator < 0 ? [...argv] : argv.slice(0, terminator);
  // parseArgs has no optional values: a bare `--augment` becomes `--augment=<bare>` first.
  const args = own.map((a, i) => {
    const spec = a.startsWith('--') ? flags[a.slice(2)] : undefined;
    const next = own[i + 1];
    return spec?.type === 'string' && spec.bare !== undefined && (next === undefined || next.startsWith('-')) ? `${a}=${spec.bare}` : a;
  });
  const config: ParseArgsConfig['options'] = { help: { type: 'boolean' } };
  for (const [name, spec] of Object.entries(flags)) config[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args, options: config, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    // Node's message names the flag, then suggests `--` for positionals, which does not apply here.
    throw new BenchArgsError((err as Error).message.split('. To specify a positional')[0]!.replace(/\.$/, ''));
  }
  if (terminator >= 0 && !options.rest) throw new BenchArgsError(`unexpected arguments after '--': ${argv.slice(terminator + 1).join(' ') || '(none)'}`);
  if (values.help) return 'help';
  const out: Record<string, unknown> = { rest: terminator < 0 ? [] : argv.slice(terminator + 1) };
  for (const [name, spec] of Object.entries(flags)) {
    const given = values[name];
    if (spec.type === 'boolean') out[name] = given === true;
    else if (spec.type === 'string') out[name] = given ?? spec.default;
    else if (given === undefined) out[name] = spec.default;
    else if (spec.type === 'number') out[name] = toNumber(name, given as string);
    else out[name] = (given as string).split(',').map((part) => toNumber(name, part));
  }
  return out as Parsed<F>;
}

function toNumber(flag: string, text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new BenchArgsError(`--${flag} needs a number, got '${text}'`);
  return n;
}

/** The flag list that --help and errors print under the script's synopsis. */
export function describeFlags(flags: Record<string, FlagSpec>): string {
  const lines = Object.entries(flags).map(([name, spec]) => {
    const value = { boolean: '', number: ' N', numbers: ' N,N,...', string: spec.type === 'string' && spec.bare !== undefined ? ' [VALUE]' : ' VALUE' }[spec.type];
    const fallback = spec.type === 'boolean' ? '' : spec.type === 'string' && spec.bare !== undefined ? ` (bare: ${spec.bare})` : spec.default !== undefined ? ` (default ${spec.default})` : '';
    return [`  --${name}${value}`, `${spec.help ?? ''}${fallback}`.trim()];
  });
  const width = Math.max(...lines.map(([left]) => left!.length));
  return lines.map(([left, right]) => (right ? `${left!.padEnd(width)}  ${right}` : left!)).join('\n');
}

/**
 * For a bench's top level: parses process.argv. --help prints the synopsis and flags and exits 0;
 * an error prints itself, the synopsis and the flags to stderr and exits 2.
 */
export function benchArgs<F extends Record<string, FlagSpec>>(synopsis: string, flags: F, options: ParseOptions = {}): Parsed<F> {
  const script = path.basename(process.argv[1] ?? 'bench');
  const usage = `usage: ${synopsis}\n\n${describeFlags(flags)}`;
  try {
    const parsed = parseBenchArgs(flags, process.argv.slice(2), options);
    if (parsed !== 'help') return parsed;
    console.log(usage);
    process.exit(0);
  } catch (err) {
    if (!(err instanceof BenchArgsError)) throw err;
    console.error(`${script}: ${err.message}\n\n${usage}`);
    process.exit(2);
  }
}
