/**
 * Which parameters mattered: each parameter's share of the objective's variance explained by that
 * parameter alone — the correlation ratio η² = Var(E[objective | parameter]) / Var(objective) over
 * the complete trials that have it. A choice parameter groups trials by value; a numeric one by
 * quantile bins of its (log-)value (as many bins as keep ≥ 2 trials each, at most 4). This is the
 * first-order ("main effect") term of a functional ANOVA (Hutter et al., fANOVA, 2014) estimated from
 * the trials directly instead of from a random-forest surrogate: cheap, dependency-free and fine for
 * ranking a handful of parameters over tens of trials; interactions are not measured. With few trials
 * per group η² is biased upwards (it fits noise), alike for every parameter with as many groups.
 */
import type { Params, SearchSpace } from './space.js';

/** A complete trial as the importance estimate uses it: its parameter values and objective. */
export interface ImportanceTrial {
  /** The trial's parameter values. */
  params: Params;
  /** The trial's objective. */
  value: number;
}

/** η² of one parameter's groups; 0 when the objective does not vary or no group has two trials. */
function correlationRatio(groups: number[][]): number {
  const all = groups.flat();
  if (all.length < 2) return 0;
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const total = all.reduce((s, v) => s + (v - mean) ** 2, 0);
  if (total <= 0) return 0;
  const between = groups.reduce((s, g) => (g.length ? s + g.length * ((g.reduce((a, b) => a + b, 0) / g.length - mean) ** 2) : s), 0);
  return between / total;
}

/** The trials' values grouped by the parameter: by value for choices, by quantile bins for ranges. */
export function groupsOf(space: SearchSpace, name: string, trials: readonly ImportanceTrial[]): number[][] {
  const spec = space.spec(name);
  const having = trials.filter((t) => name in t.params && Number.isFinite(t.value));
  if (spec.kind === 'choice') return spec.values.map((v) => having.filter((t) => t.params[name] === v).map((t) => t.value));
  const x = (t: ImportanceTrial) => (spec.log ? Math.log(t.params[name] as number) : (t.params[name] as number));
  const sorted = [...having].sort((a, b) => x(a) - x(b));
  const bins = Math.max(1, Math.min(4, Math.floor(sorted.length / 2)));
  return Array.from({ length: bins }, (_, b) => sorted.slice(Math.floor((b * sorted.length) / bins), Math.floor(((b + 1) * sorted.length) / bins)).map((t) => t.value));
}

/** Each parameter's importance (η², in [0, 1]), most important first. */
export function parameterImportance(
  space: SearchSpace,
  trials: readonly ImportanceTrial[],
): {
  /** The parameter's name. */
  name: string;
  /** Its η², from 0 (explains nothing) to 1. */
  importance: number;
}[] {
  return space.names.map((name) => ({ name, importance: correlationRatio(groupsOf(space, name, trials)) })).sort((a, b) => b.importance - a.importance || a.name.localeCompare(b.name));
}
