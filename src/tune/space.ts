/**
 * The search space of a tuning study: named parameters, each a choice among values, an integer or a
 * float range (uniform, or uniform in log space), optionally active only when a choice parameter
 * takes certain values (KerasTuner's `parent_name` / `parent_values`, Optuna's define-by-run
 * branches). Also the checks that refuse an empty or contradictory space, and a canonical form that
 * a study journal stores to recognize the space it was written for.
 */
import { KilnError } from '../errors.js';

/** A parameter's value in a trial: a number, or a choice's string or boolean. */
export type ParamValue = number | string | boolean;

/** Active when the parent choice parameter takes one of `values`. */
export interface Condition {
  /** Name of the choice parameter this one depends on. */
  parent: string;
  /** The parent's values for which this parameter is active. */
  values: ParamValue[];
}

/** One parameter of a search space: a choice among values, or an integer or float range. */
export type ParamSpec =
  | {
      /** A choice among values. */
      kind: 'choice';
      /** The values to choose from. */
      values: ParamValue[];
      /** Active only when a parent choice takes certain values (default: always active). */
      when?: Condition;
    }
  | {
      /** An integer range. */
      kind: 'int';
      /** Smallest value (inclusive). */
      low: number;
      /** Largest value (inclusive). */
      high: number;
      /** Uniform in log space rather than linearly. */
      log: boolean;
      /** Active only when a parent choice takes certain values (default: always active). */
      when?: Condition;
    }
  | {
      /** A float range. */
      kind: 'float';
      /** Lower bound. */
      low: number;
      /** Upper bound. */
      high: number;
      /** Uniform in log space rather than linearly. */
      log: boolean;
      /** Active only when a parent choice takes certain values (default: always active). */
      when?: Condition;
    };

/** A search space's definition: each parameter's spec by name. */
export type SpaceDefinition = Record<string, ParamSpec>;

/** The values of one trial's active parameters. */
export type Params = Record<string, ParamValue>;

/** A choice among values (numbers, strings or booleans), as KerasTuner's `hp.Choice`. */
export function choice(values: ParamValue[], options: { when?: Condition } = {}): ParamSpec {
  return { kind: 'choice', values: [...values], ...(options.when ? { when: options.when } : {}) };
}

/** An integer in [low, high], uniform (or uniform in log space with `log`), as `hp.Int`. */
export function int(low: number, high: number, options: { log?: boolean; when?: Condition } = {}): ParamSpec {
  return { kind: 'int', low, high, log: options.log ?? false, ...(options.when ? { when: options.when } : {}) };
}

/** A float in [low, high], uniform (or uniform in log space with `log`), as `hp.Float`. */
export function float(low: number, high: number, options: { log?: boolean; when?: Condition } = {}): ParamSpec {
  return { kind: 'float', low, high, log: options.log ?? false, ...(options.when ? { when: options.when } : {}) };
}

/** A float in [low, high] whose logarithm is uniform: learning rates, weight decay. */
export function logUniform(low: number, high: number, options: { when?: Condition } = {}): ParamSpec {
  return float(low, high, { ...options, log: true });
}

function describe(spec: ParamSpec): string {
  if (spec.kind === 'choice') return `one of ${spec.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return `${spec.kind} ${spec.low}..${spec.high}${spec.log ? ' (log)' : ''}`;
}

/** A checked search space: parameters in a fixed order (parents before the parameters they govern). */
export class SearchSpace {
  /** Parameter names, every parent before its children. */
  readonly names: string[];
  private readonly specs: Map<string, ParamSpec>;

  constructor(definition: SpaceDefinition) {
    if (!definition || typeof definition !== 'object' || Object.keys(definition).length === 0) {
      throw new KilnError('INVALID_ARGUMENT', 'the search space is empty: give at least one parameter (e.g. {lr: logUniform(1e-4, 1e-2)})');
    }
    this.specs = new Map(Object.entries(definition).map(([name, spec]) => [name, checkSpec(name, spec)]));
    for (const [name, spec] of this.specs) if (spec.when) checkCondition(name, spec.when, this.specs);
    this.names = topologicalOrder(this.specs);
  }

  /** The spec of parameter `name`; throws when the space has no such parameter. */
  spec(name: string): ParamSpec {
    const s = this.specs.get(name);
    if (!s) throw new KilnError('INVALID_ARGUMENT', `the search space has no parameter '${name}' (it has ${this.names.join(', ')})`);
    return s;
  }

  /** Whether the space has a parameter `name`. */
  has(name: string): boolean {
    return this.specs.has(name);
  }

  /** Whether `name` takes part in a trial whose earlier parameters (in `names` order) are `params`. */
  isActive(name: string, params: Params): boolean {
    const when = this.spec(name).when;
    if (!when) return true;
    if (!(when.parent in params) || !this.isActive(when.parent, params)) return false;
    return when.values.some((v) => v === params[when.parent]);
  }

  /** Why a parameter is inactive in a trial, for error messages. */
  activeWhen(name: string): string | undefined {
    const when = this.spec(name).when;
    return when ? `${when.parent} is ${when.values.map((v) => JSON.stringify(v)).join(' or ')}` : undefined;
  }

  /**
   * Checks a trial's values against the space: every active parameter present and within its range,
   * no inactive or unknown one. Journals and enqueued trials pass through here.
   */
  checkParams(params: Params, what = 'trial'): void {
    for (const name of Object.keys(params)) if (!this.specs.has(name)) throw new KilnError('INVALID_DATA', `${what}: parameter '${name}' is not in the search space (${this.names.join(', ')})`);
    for (const name of this.names) {
      const active = this.isActive(name, params);
      if (!active) {
        if (name in params) throw new KilnError('INVALID_DATA', `${what}: parameter '${name}' is set, but it applies only when ${this.activeWhen(name)}`);
        continue;
      }
      if (!(name in params)) throw new KilnError('INVALID_DATA', `${what}: parameter '${name}' is missing`);
      const v = params[name]!;
      const spec = this.spec(name);
      const ok = spec.kind === 'choice' ? spec.values.some((c) => c === v) : typeof v === 'number' && v >= spec.low && v <= spec.high && (spec.kind === 'float' || Number.isInteger(v));
      if (!ok) throw new KilnError('INVALID_DATA', `${what}: parameter '${name}' is ${JSON.stringify(v)}, expected ${describe(spec)}`);
    }
  }

  /** The space as plain data in a canonical key order, as a journal stores it. */
  toJSON(): SpaceDefinition {
    const out: SpaceDefinition = {};
    for (const name of [...this.names].sort()) {
      const s = this.spec(name);
      const when = s.when ? { when: { parent: s.when.parent, values: [...s.when.values] } } : {};
      out[name] = s.kind === 'choice' ? { kind: 'choice', values: [...s.values], ...when } : { kind: s.kind, low: s.low, high: s.high, log: s.log, ...when };
    }
    return out;
  }

  /** One line per parameter, for help and reports. */
  describe(): string[] {
    return this.names.map((n) => {
      const s = this.spec(n);
      return `${n}: ${describe(s)}${s.when ? ` (when ${this.activeWhen(n)})` : ''}`;
    });
  }
}

function checkSpec(name: string, spec: ParamSpec): ParamSpec {
  const bad = (why: string) => new KilnError('INVALID_ARGUMENT', `search space parameter '${name}': ${why}`);
  if (!name) throw new KilnError('INVALID_ARGUMENT', 'search space parameters need a name');
  if (!spec || typeof spec !== 'object') throw bad('expected choice(...), int(...), float(...) or logUniform(...)');
  if (spec.kind === 'choice') {
    if (!Array.isArray(spec.values) || spec.values.length === 0) throw bad('a choice needs at least one value');
    for (const v of spec.values) {
      if (!['number', 'string', 'boolean'].includes(typeof v) || (typeof v === 'number' && !Number.isFinite(v))) throw bad(`choice values must be finite numbers, strings or booleans, got ${JSON.stringify(v)}`);
    }
    const seen = new Set<ParamValue>();
    for (const v of spec.values) {
      if (seen.has(v)) throw bad(`the value ${JSON.stringify(v)} appears twice`);
      seen.add(v);
    }
    return spec;
  }
  if (spec.kind !== 'int' && spec.kind !== 'float') throw bad(`unknown kind ${JSON.stringify((spec as { kind?: unknown }).kind)}; expected 'choice', 'int' or 'float'`);
  if (!Number.isFinite(spec.low) || !Number.isFinite(spec.high)) throw bad(`bounds must be finite numbers, got ${spec.low}..${spec.high}`);
  if (spec.low > spec.high) throw bad(`the low bound ${spec.low} is above the high bound ${spec.high}`);
  if (spec.kind === 'int' && (!Number.isInteger(spec.low) || !Number.isInteger(spec.high))) throw bad(`an int range needs integer bounds, got ${spec.low}..${spec.high}`);
  if (spec.log && spec.low <= 0) throw bad(`a log-scaled range needs a positive low bound, got ${spec.low}`);
  return spec;
}

function checkCondition(name: string, when: Condition, specs: Map<string, ParamSpec>): void {
  const bad = (why: string) => new KilnError('INVALID_ARGUMENT', `search space parameter '${name}': ${why}`);
  if (!when || typeof when.parent !== 'string' || !Array.isArray(when.values) || when.values.length === 0) throw bad('a condition needs a parent parameter and at least one of its values');
  if (when.parent === name) throw bad('it cannot depend on itself');
  const parent = specs.get(when.parent);
  if (!parent) throw bad(`it depends on '${when.parent}', which is not in the search space`);
  if (parent.kind !== 'choice') throw bad(`it depends on '${when.parent}', which is a range; conditions go on choice parameters`);
  for (const v of when.values) {
    if (!parent.values.some((c) => c === v)) throw bad(`it applies when ${when.parent} is ${JSON.stringify(v)}, which is not one of ${when.parent}'s values (${parent.values.map((c) => JSON.stringify(c)).join(', ')}): it could never be active`);
  }
}

/** Names with every parent before its children; a cycle of conditions is refused. */
function topologicalOrder(specs: Map<string, ParamSpec>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new KilnError('INVALID_ARGUMENT', `search space conditions form a cycle: ${[...path, name].join(' → ')}`);
    state.set(name, 'visiting');
    const parent = specs.get(name)!.when?.parent;
    if (parent) visit(parent, [...path, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of specs.keys()) visit(name, []);
  return order;
}

/** A space from its definition, or the space itself. */
export function searchSpace(space: SearchSpace | SpaceDefinition): SearchSpace {
  return space instanceof SearchSpace ? space : new SearchSpace(space);
}
