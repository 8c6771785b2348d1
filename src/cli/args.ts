import { KilnError } from '../errors.js';

export interface OptionSpec {
  name: string;
  type: 'string' | 'number' | 'boolean';
  description: string;
  default?: string | number | boolean;
  /** Number options: the value must be a whole number. */
  integer?: boolean;
  /** Number options: the smallest value accepted. */
  min?: number;
  /** Number options: the largest value accepted. */
  max?: number;
  /** String options: may be given several times; the values are collected in order (read with stringListOption). */
  repeatable?: boolean;
  /** The option may also stand alone (`--structured` followed by another option or nothing): then it holds true. */
  valueOptional?: boolean;
}

export interface ParsedArgs {
  positionals: string[];
  options: Record<string, string | string[] | number | boolean | undefined>;
}

/** What a number option accepts, as the error says it: 'an integer from 2 to 8', 'an integer of at least 1', 'at least 0'. */
function numberRule(spec: OptionSpec): string {
  const kind = spec.integer ? 'an integer' : 'a number';
  if (spec.min !== undefined && spec.max !== undefined) return `${kind} from ${spec.min} to ${spec.max}`;
  if (spec.min !== undefined) return spec.integer ? `an integer of at least ${spec.min}` : `at least ${spec.min}`;
  if (spec.max !== undefined) return spec.integer ? `an integer of at most ${spec.max}` : `at most ${spec.max}`;
  return kind;
}

/**
 * Parses `--name value`, `--name=value` and boolean `--flag` against a command's declared options;
 * anything undeclared is an error naming the command's options. Number options given on the command
 * line are held to their `integer`, `min` and `max` (defaults are the command's own and are not re-checked).
 */
export function parseArgs(argv: string[], specs: OptionSpec[], command: string): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const options: ParsedArgs['options'] = {};
  for (const s of specs) if (s.default !== undefined) options[s.name] = s.default;
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const [rawName, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const spec = byName.get(rawName);
    if (!spec) {
      throw new KilnError('INVALID_ARGUMENT', `kiln ${command}: unknown option --${rawName} (options: ${specs.map((s) => `--${s.name}`).join(', ') || 'none'})`);
    }
    if (spec.type === 'boolean') {
      options[spec.name] = inline === undefined ? true : inline !== 'false';
      continue;
    }
    if (spec.valueOptional && inline === undefined && (i + 1 >= argv.length || argv[i + 1]!.startsWith('--'))) {
      options[spec.name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new KilnError('INVALID_ARGUMENT', `kiln ${command}: --${spec.name} needs a value`);
    if (spec.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new KilnError('INVALID_ARGUMENT', `kiln ${command}: --${spec.name} expects a number, got '${value}'`);
      if ((spec.integer && !Number.isInteger(n)) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new KilnError('INVALID_ARGUMENT', `kiln ${command}: --${spec.name} must be ${numberRule(spec)}, got '${value}'`);
      }
      options[spec.name] = n;
    } else if (spec.repeatable) options[spec.name] = [...((options[spec.name] as string[] | undefined) ?? []), value];
    else options[spec.name] = value;
  }
  return { positionals, options };
}

/** Options as parseArgs returns them; commands read them through the typed accessors below. */
export type ParsedOptions = ParsedArgs['options'];

/**
 * One option's value, held to the type its spec declares. parseArgs only stores values of that type
 * (defaults included), so a mismatch is a bug in the command's spec and is reported as one rather than
 * passed on under a cast.
 */
function typedOption<T extends 'string' | 'number' | 'boolean'>(options: ParsedOptions, name: string, type: T): { string: string; number: number; boolean: boolean }[T] | undefined {
  const value = options[name];
  if (value === undefined) return undefined;
  if (typeof value !== type) throw new Error(`option --${name} holds a ${typeof value}, but is read as a ${type}: the command's option spec and its use disagree`);
  return value as { string: string; number: number; boolean: boolean }[T];
}

/** A string option's value; undefined when neither given nor defaulted. */
export function stringOption(options: ParsedOptions, name: string): string | undefined {
  return typedOption(options, name, 'string');
}

/** A repeatable string option's values in the order given; empty when not given. */
export function stringListOption(options: ParsedOptions, name: string): string[] {
  const value = options[name];
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`option --${name} holds a ${typeof value}, but is read as a list: its spec needs repeatable: true`);
  return value;
}

/** A number option's value; undefined when neither given nor defaulted. */
export function numberOption(options: ParsedOptions, name: string): number | undefined {
  return typedOption(options, name, 'number');
}

/** A string option that has a default in its spec, so it always holds a value. */
export function defaultedString(options: ParsedOptions, name: string): string {
  const value = stringOption(options, name);
  if (value === undefined) throw new Error(`option --${name} has no value: its spec needs a default`);
  return value;
}

/** A number option that has a default in its spec, so it always holds a value. */
export function defaultedNumber(options: ParsedOptions, name: string): number {
  const value = numberOption(options, name);
  if (value === undefined) throw new Error(`option --${name} has no value: its spec needs a default`);
  return value;
}

export function optionHelp(specs: OptionSpec[]): string {
  const width = Math.max(0, ...specs.map((s) => s.name.length + (s.type === 'boolean' ? 0 : 8)));
  return specs
    .map((s) => {
      const value = `<${s.type === 'number' ? 'n' : 'value'}>`;
      const left = `--${s.name}${s.type === 'boolean' ? '' : s.valueOptional ? ` [${value}]` : ` ${value}`}`;
      const def = s.default !== undefined ? ` (default: ${s.default})` : '';
      return `  ${left.padEnd(width + 4)}${s.description}${def}`;
    })
    .join('\n');
}
