import { KilnError } from '../../errors.js';

/*
 * Structured pruning to a parameter budget (`structured.parameters`): the one removal ratio that brings
 * a model under the budget, found the same way for Kiln's layer models (structured.ts) and for
 * imported graphs (graph-structured.ts), which each supply how many parameters a ratio leaves.
 */

/** Units a layer or group of `units` keeps when `ratio` of them go: at least one. */
export const keptUnits = (units: number, ratio: number): number => Math.max(1, Math.round(units * (1 - ratio)));

/** Checks `structured.parameters` and that it comes without `ratio`. */
export function checkParametersFraction(s: { ratio?: unknown; parameters?: unknown }): void {
  if (s.ratio !== undefined && s.parameters !== undefined) {
    throw new KilnError('INVALID_ARGUMENT', `structured pruning takes ratio (${String(s.ratio)}) or parameters (${String(s.parameters)}), not both: parameters finds the ratio`);
  }
  if (s.parameters !== undefined && !(typeof s.parameters === 'number' && s.parameters > 0 && s.parameters < 1)) {
    throw new KilnError('INVALID_ARGUMENT', `structured.parameters must be a number in (0, 1) (the fraction of the parameters removed), got ${JSON.stringify(s.parameters)}`);
  }
}

/** What {@link ratioForBudget} needs to know about the model. */
export interface BudgetSearch {
  /** Parameters the pruned model has when the searched layers/groups lose `ratio` of their units (the others as fixed). */
  parametersAt: (ratio: number) => number;
  /** Units of each layer/group the ratio applies to. */
  units: readonly number[];
  /** The unpruned model's parameters. */
  total: number;
  /** Fraction of `total` to remove, in (0, 1). */
  fraction: number;
  /** The error's text when even one unit left in each searched layer/group keeps `fewest` parameters, above the budget. */
  shortfall: (fewest: number) => string;
}

/**
 * The ratio that removes at least `fraction` of the parameters with the fewest units removed, by
 * bisection (NNCF reaches its `pruning_flops_target` the same way; the count only falls as the ratio
 * grows). Kept units change in steps (Math.round of units × (1 − ratio)), so many ratios prune alike:
 * the one returned is the middle of that step, so that the ratio reported, rounded to a few digits and
 * given back as `ratio`, prunes the same units. 0 when the budget is met without the searched units.
 */
export function ratioForBudget(search: BudgetSearch): number {
  const { parametersAt, units, total, fraction } = search;
  const target = (1 - fraction) * total;
  if (parametersAt(0) <= target) return 0;
  const most = 1 - 1e-12; // every searched layer/group down to one unit
  const fewest = parametersAt(most);
  if (fewest > target) throw new KilnError('INVALID_ARGUMENT', search.shortfall(fewest));
  let lo = 0;
  let hi = most;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (parametersAt(mid) <= target) hi = mid;
    else lo = mid;
  }
  // hi sits just past the step where the last unit needed went; find where that step ends.
  const kept = (ratio: number) => units.map((u) => keptUnits(u, ratio)).join();
  const step = kept(hi);
  let end = hi;
  let beyond = most;
  for (let i = 0; i < 60; i++) {
    const mid = (end + beyond) / 2;
    if (kept(mid) === step) end = mid;
    else beyond = mid;
  }
  return (hi + end) / 2;
}
