import { KilnError } from '../errors.js';
import type { Dim, Shape, Value } from '../graph/graph.js';
import { requireInput, type OpDefinition } from '../graph/op-definition.js';
import { reduceToShape } from './reduce-to-shape.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const EINSUM_OPS: readonly OpDefinition[] = ops;

/*
 * Einsum, which torch.einsum exports as it is (attention written as einsum('bhqd,bhkd->bhqk'), bilinear
 * layers). An equation names each operand's axes with letters, '...' standing for broadcast leading
 * axes; the output is the given term, or (implicit form) '...' and the letters used once, sorted.
 */

/** An equation's terms: each operand's axis letters ('.' for the ellipsis), and the output's. */
interface Equation {
  operands: string[][];
  output: string[];
}

const ELLIPSIS = '.';

function terms(term: string): string[] {
  const t = term.replace(/\s+/g, '');
  const out: string[] = [];
  for (let i = 0; i < t.length; i++) {
    if (t.startsWith('...', i)) {
      out.push(ELLIPSIS);
      i += 2;
    } else if (/[A-Za-z]/.test(t[i]!)) out.push(t[i]!);
    else throw new KilnError('INVALID_ARGUMENT', `Einsum: '${term}' is not a term of letters and '...'`);
  }
  return out;
}

function parseEquation(equation: string, operandCount: number): Equation {
  const [lhs, rhs] = equation.split('->');
  const operands = lhs!.split(',').map(terms);
  if (operands.length !== operandCount) throw new KilnError('INVALID_ARGUMENT', `Einsum: '${equation}' names ${operands.length} operands, the node has ${operandCount}`);
  if (rhs !== undefined) return { operands, output: terms(rhs) };
  const counts = new Map<string, number>();
  for (const op of operands) for (const l of op) if (l !== ELLIPSIS) counts.set(l, (counts.get(l) ?? 0) + 1);
  const once = [...counts].filter(([, n]) => n === 1).map(([l]) => l).sort();
  return { operands, output: [...(operands.some((op) => op.includes(ELLIPSIS)) ? [ELLIPSIS] : []), ...once] };
}

const termText = (t: readonly string[]) => t.map((l) => (l === ELLIPSIS ? '...' : l)).join('');

/** Each letter's size, and the ellipsis' broadcast dims, from the operands' shapes. */
function sizes(eq: Equation, shapes: (Shape | null)[]): { letters: Map<string, Dim>; ellipsis: Dim[] | null } {
  const letters = new Map<string, Dim>();
  let ellipsis: Dim[] | null = [];
  eq.operands.forEach((term, k) => {
    const shape = shapes[k];
    if (!shape) {
      ellipsis = term.includes(ELLIPSIS) ? null : ellipsis;
      return;
    }
    const named = term.filter((l) => l !== ELLIPSIS).length;
    const span = shape.length - named;
    let axis = 0;
    for (const l of term) {
      if (l === ELLIPSIS) {
        if (ellipsis) {
          // Right-aligned broadcast of every operand's ellipsis dims.
          const dims = shape.slice(axis, axis + span);
          const rank = Math.max(ellipsis.length, dims.length);
          const merged: Dim[] = [];
          for (let i = 0; i < rank; i++) {
            const a = ellipsis[i - (rank - ellipsis.length)] ?? 1;
            const b = dims[i - (rank - dims.length)] ?? 1;
            merged.push(a === 1 ? b : b === 1 ? a : typeof a === 'number' ? a : b);
          }
          ellipsis = merged;
        }
        axis += span;
      } else {
        const d = shape[axis++]!;
        const known = letters.get(l);
        if (known === undefined || known === 1 || (typeof known !== 'number' && typeof d === 'number')) letters.set(l, d);
      }
    }
  });
  return { letters, ellipsis };
}

ops.push({
  type: 'Einsum',
  infer: (inputs, attrs) => {
    const first = requireInput(inputs, 0, 'Einsum');
    const eq = parseEquation(String(attrs.equation ?? ''), inputs.length);
    const { letters, ellipsis } = sizes(eq, inputs.map((v) => v?.shape ?? null));
    if (eq.output.includes(ELLIPSIS) && !ellipsis) return [{ dtype: first.dtype, shape: null }];
    const shape: Shape = eq.output.flatMap((l) => (l === ELLIPSIS ? ellipsis! : [letters.get(l) ?? null]));
    return [{ dtype: first.dtype, shape }];
  },
  /*
   * Einsum is linear in each operand: operand k's gradient is the Einsum of dy with the other operands
   * onto k's own term ('ij,jk->ik': dA = 'ik,jk->ij' of dy and B). Letters only k sums over (appearing
   * in neither the output nor another operand) are put back by broadcasting, and axes an operand's
   * ellipsis broadcast are summed back to its shape. An operand naming one letter twice (a diagonal,
   * 'ii->i') has no rule.
   */
  gradient: ({ graph, node, inputs, gradOutputs: [dy] }) => {
    const eq = parseEquation(String(node.attrs.equation ?? ''), inputs.length);
    const broadcast = sizes(eq, inputs.map((v) => v?.shape ?? null)).ellipsis;
    return inputs.map((x, k) => {
      const term = eq.operands[k]!;
      const named = term.filter((l) => l !== ELLIPSIS);
      if (new Set(named).size !== named.length) throw new KilnError('NO_GRADIENT', `Einsum '${String(node.attrs.equation)}': no gradient rule for an operand that names a letter twice ('${termText(term)}')`);
      // Summing the broadcast back takes the extra ellipsis axes to be leading: an ellipsis after a letter must span them all.
      const own = x!.shape ? x!.shape.length - named.length : null;
      if (term.indexOf(ELLIPSIS) > 0 && (own === null || broadcast === null || own < broadcast.length)) {
        throw new KilnError('NO_GRADIENT', `Einsum '${String(node.attrs.equation)}': no gradient rule for '${termText(term)}', whose '...' after a letter spans fewer axes than the broadcast`);
      }
      const others = eq.operands.filter((_, j) => j !== k);
      const available = new Set([...eq.output, ...others.flat()]);
      const kept = term.filter((l) => available.has(l));
      const equation = `${[eq.output, ...others].map(termText).join(',')}->${termText(kept)}`;
      let grad: Value = graph.op1('Einsum', [dy!, ...inputs.filter((_, j) => j !== k).map((v) => v!)], { equation });
      if (kept.length < term.length) {
        // Axes only this operand summed over: dy reaches every position along them alike.
        const positions = term.map((l, i) => (available.has(l) ? -1 : i)).filter((i) => i >= 0);
        grad = graph.op1('Expand', [graph.op1('Unsqueeze', [grad, graph.int64s(positions.map((i) => axisOf(term, i)), 'axes')]), graph.op1('Shape', [x!])]);
      }
      return reduceToShape(graph, grad, x!);
    });
  },
});

/** The axis term position i names: from the front before an ellipsis, from the back (negative) after it, whatever the ellipsis spans. */
function axisOf(term: readonly string[], i: number): number {
  const e = term.indexOf(ELLIPSIS);
  return e < 0 || i < e ? i : -(term.length - i);
}
