/**
 * The text form of a search space, as `kiln tune --search` takes it, one parameter per string:
 *
 *   lr=1e-4..1e-2:log            a float range, uniform in log space
 *   dropout=0..0.5               a float range
 *   units=32..256:int            an integer range (`:int:log` for log-uniform integers)
 *   batchSize=32,64,128          a choice (numbers, true/false or words)
 *   momentum=0..0.9@optimizer=sgd,rmsprop   active only when optimizer is sgd or rmsprop
 */
import { KilnError } from '../errors.js';
import { choice, float, int, SearchSpace, type Condition, type ParamSpec, type ParamValue, type SpaceDefinition } from './space.js';

function parseValue(text: string): ParamValue {
  const t = text.trim();
  if (t === 'true') return true;
  if (t === 'false') return false;
  const n = Number(t);
  return t !== '' && Number.isFinite(n) ? n : t;
}

function parseNumber(text: string, flag: string, what: string): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(n)) throw new KilnError('INVALID_ARGUMENT', `--search '${flag}': the ${what} bound '${text}' is not a number`);
  return n;
}

/** One `name=spec[@parent=values]` string as a parameter name and its spec. */
export function parseSearchParameter(text: string): [string, ParamSpec] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new KilnError('INVALID_ARGUMENT', `--search '${text}': expected name=values, e.g. lr=1e-4..1e-2:log or batchSize=32,64`);
  const name = text.slice(0, eq).trim();
  if (!/^[A-Za-z_][\w.-]*$/.test(name)) throw new KilnError('INVALID_ARGUMENT', `--search '${text}': '${name}' is not a parameter name`);
  let body = text.slice(eq + 1);
  let when: Condition | undefined;
  const at = body.indexOf('@');
  if (at >= 0) {
    const condition = body.slice(at + 1);
    body = body.slice(0, at);
    const ceq = condition.indexOf('=');
    if (ceq <= 0 || ceq === condition.length - 1) throw new KilnError('INVALID_ARGUMENT', `--search '${text}': a condition reads @parent=value[,value], e.g. @optimizer=sgd`);
    when = { parent: condition.slice(0, ceq).trim(), values: condition.slice(ceq + 1).split(',').map(parseValue) };
  }
  const options = when ? { when } : {};
  if (body.trim() === '') throw new KilnError('INVALID_ARGUMENT', `--search '${text}': no values after '='`);
  const range = /^(.*?)\.\.(.*?)((?::(?:int|log))*)$/.exec(body);
  if (range) {
    const low = parseNumber(range[1]!, text, 'low');
    const high = parseNumber(range[2]!, text, 'high');
    const flags = range[3]!.split(':').filter(Boolean);
    const log = flags.includes('log');
    return [name, flags.includes('int') ? int(low, high, { log, ...options }) : float(low, high, { log, ...options })];
  }
  if (/:(int|log)$/.test(body)) throw new KilnError('INVALID_ARGUMENT', `--search '${text}': ':int' and ':log' go with a range low..high`);
  return [name, choice(body.split(',').map(parseValue), options)];
}

/** A search space from `--search` strings; a parameter given twice is an error. */
export function parseSearchSpace(texts: readonly string[]): SearchSpace {
  const definition: SpaceDefinition = {};
  for (const text of texts) {
    const [name, spec] = parseSearchParameter(text);
    if (name in definition) throw new KilnError('INVALID_ARGUMENT', `--search gives '${name}' twice; give each parameter once`);
    definition[name] = spec;
  }
  return new SearchSpace(definition);
}
