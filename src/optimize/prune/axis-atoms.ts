/*
 * The algebra under structured pruning of ONNX graphs: which indices of which tensor axes must be
 * removed together. Every axis of every value is an atom; an atom may be refined into a concatenation
 * (Concat, Slice, Split: segments at offsets) or a product (Reshape, Flatten: factors, outermost first,
 * as row-major order lays them out). Ops tie atoms (unify), and unifying two refined atoms refines both
 * to their common structure, so an axis that is sliced in one place and reshaped in another ends up with
 * one structure that every tied axis shares. The leaves of that structure are the units that can be
 * removed: a leaf of size U is a group of U units, and removing unit u removes, from every axis whose
 * structure holds that leaf, each index whose coordinate at the leaf is u.
 *
 * An example (the packed attention in-projection): the projection's 96 output columns are sliced into
 * q, k, v (a concatenation of three 32s), each 32 is reshaped into 4 heads × 8 (a product), and q's
 * heads are tied to k's and v's by the attention's batched MatMuls — so the columns' structure is
 * [h·d | h·d | h·dv] with one heads leaf h of size 4, and removing head 1 removes columns 8–15, 40–47
 * and 72–79 at once.
 *
 * Sizes may follow the batch (k·N). Structures this algebra cannot hold (a slice inside an inner
 * factor, a cut through a factor, sizes that disagree) throw NotRepresentable; the caller leaves the
 * axes involved whole.
 */

/** A size that is fixed (n = 0) or k times the batch size (n = 1). */
export interface Size {
  k: number;
  n: number;
}

/** A structure the algebra cannot hold; the axes involved cannot be pruned. */
export class NotRepresentable extends Error {}

/** An atom's structure: segments (concatenated along the axis), each a product of leaves, outermost first. */
export type Structure = number[][];

interface Atom {
  parent: number;
  size: Size;
  split?: { kind: 'concat' | 'product'; parts: number[] };
}

const MAX_STEPS = 100_000;

export function formatSize(s: Size): string {
  return s.n === 0 ? String(s.k) : s.k === 1 ? 'N' : `${s.k}·N`;
}

export function sizeEquals(a: Size, b: Size): boolean {
  return a.k === b.k && a.n === b.n;
}

export function sizeTimes(a: Size, b: Size): Size {
  const n = a.n + b.n;
  if (n > 1) throw new NotRepresentable('an axis would hold the batch size twice');
  return { k: a.k * b.k, n };
}

/** a / b when b divides a exactly, else undefined. */
function sizeOver(a: Size, b: Size): Size | undefined {
  if (b.n > a.n || a.k % b.k !== 0) return undefined;
  return { k: a.k / b.k, n: a.n - b.n };
}

/** Orders sizes so that each divides the next in a divisibility chain (N-free first). */
function sizeCompare(a: Size, b: Size): number {
  return a.n - b.n || a.k - b.k;
}

/**
 * The common factors of two row-major layouts of the same elements (a reshape): the sizes between the
 * union of both layouts' trailing-product boundaries (outermost first), and which of them each axis of
 * either layout spans; NotRepresentable when the boundaries do not divide one another (the reshape
 * interleaves its axes). Axes of size 1 span no factor.
 */
export function commonFactors(a: Size[], b: Size[]): { factors: Size[]; axesA: number[][]; axesB: number[][] } {
  const describe = () => `a reshape from ${a.map(formatSize).join('×')} to ${b.map(formatSize).join('×')}`;
  const boundaries = (shape: Size[]) => {
    const out: Size[] = [];
    let p: Size = { k: 1, n: 0 };
    for (let i = shape.length - 1; i >= 0; i--) out.push((p = sizeTimes(p, shape[i]!)));
    return out;
  };
  const ba = boundaries(a);
  const bb = boundaries(b);
  const one: Size = { k: 1, n: 0 };
  if (!sizeEquals(ba.at(-1) ?? one, bb.at(-1) ?? one)) throw new NotRepresentable(`${describe()} changes the number of elements`);
  const all = [...ba, ...bb].filter((s, i, arr) => !sizeEquals(s, one) && arr.findIndex((t) => sizeEquals(s, t)) === i).sort(sizeCompare);
  // Innermost first while building; reversed at the end.
  const inner: Size[] = [];
  let prev = one;
  for (const bound of all) {
    const f = sizeOver(bound, prev);
    if (!f) throw new NotRepresentable(`${describe()} interleaves its axes`);
    inner.push(f);
    prev = bound;
  }
  const count = inner.length;
  const axesOf = (shape: Size[]) => {
    const axes: number[][] = [];
    let p = one;
    let f = 0;
    for (let i = shape.length - 1; i >= 0; i--) {
      const outer = sizeTimes(p, shape[i]!);
      const mine: number[] = [];
      while (!sizeEquals(p, outer)) {
        p = sizeTimes(p, inner[f]!);
        mine.unshift(count - 1 - f++);
      }
      axes.unshift(mine);
    }
    return axes;
  };
  return { factors: [...inner].reverse(), axesA: axesOf(a), axesB: axesOf(b) };
}

/**
 * The tensor axes of a graph as atoms, and which indices of them must be removed together: a
 * union-find of axes, each possibly refined into a concatenation or a product of smaller atoms, whose
 * leaves are the units structured pruning can remove. Built by the graph analysis and read by the
 * pruning itself; its methods are internal.
 */
export class AxisAtoms {
  private readonly atoms: Atom[] = [];
  private steps = 0;

  /** @internal */
  create(size: Size): number {
    this.atoms.push({ parent: this.atoms.length, size });
    return this.atoms.length - 1;
  }

  /** @internal */
  find(x: number): number {
    let r = x;
    while (this.atoms[r]!.parent !== r) r = this.atoms[r]!.parent;
    while (this.atoms[x]!.parent !== r) {
      const next = this.atoms[x]!.parent;
      this.atoms[x]!.parent = r;
      x = next;
    }
    return r;
  }

  /** @internal */
  size(x: number): Size {
    return this.atoms[this.find(x)]!.size;
  }

  /** @internal */
  isLeaf(x: number): boolean {
    return !this.atoms[this.find(x)]!.split;
  }

  /**
   * A new atom that is the concatenation of these (in order along the axis).
   * @internal
   */
  concat(parts: number[]): number {
    if (parts.length === 1) return parts[0]!;
    const sizes = parts.map((p) => this.size(p));
    if (sizes.some((s) => s.n !== sizes[0]!.n)) throw new NotRepresentable('a concatenation of pieces that follow the batch and pieces that do not');
    const a = this.create({ k: sizes.reduce((t, s) => t + s.k, 0), n: sizes[0]!.n });
    this.atoms[a]!.split = { kind: 'concat', parts };
    return a;
  }

  /**
   * A new atom that is the product of these (outermost first).
   * @internal
   */
  product(factors: number[]): number {
    // A factor of 1 holds nothing and would give two factors the same boundary.
    const parts = factors.filter((p) => !sizeEquals(this.size(p), { k: 1, n: 0 }));
    if (parts.length === 1) return parts[0]!;
    if (parts.length === 0) throw new NotRepresentable('an empty product');
    const a = this.create(parts.reduce<Size>((t, p) => sizeTimes(t, this.size(p)), { k: 1, n: 0 }));
    this.atoms[a]!.split = { kind: 'product', parts };
    return a;
  }

  /**
   * The atom's structure in terms of its leaves (see Structure).
   * @internal
   */
  structure(x: number): Structure {
    const r = this.find(x);
    const split = this.atoms[r]!.split;
    if (!split) return [[r]];
    if (split.kind === 'concat') return split.parts.flatMap((p) => this.structure(p));
    const parts = split.parts.map((p) => this.structure(p));
    const inner = parts.slice(1);
    if (inner.some((s) => s.length !== 1)) throw new NotRepresentable('a slice or concatenation inside an inner factor of a reshaped axis');
    const rest = inner.flatMap((s) => s[0]!);
    // A factor of 1 (an outer factor cut into single entries) holds nothing.
    const one = (f: number) => sizeEquals(this.size(f), { k: 1, n: 0 });
    return parts[0]!.map((segment) => {
      const factors = [...segment, ...rest];
      const sized = factors.filter((f) => !one(f));
      return sized.length > 0 ? sized : [factors[0]!];
    });
  }

  /**
   * Every leaf under the atom, whatever its structure (for leaving the axis whole when structure() fails).
   * @internal
   */
  leavesUnder(x: number, seen = new Set<number>()): number[] {
    const r = this.find(x);
    if (seen.has(r)) return [];
    seen.add(r);
    const split = this.atoms[r]!.split;
    return split ? split.parts.flatMap((p) => this.leavesUnder(p, seen)) : [r];
  }

  /**
   * Ties two atoms: every index of one is removed exactly when the same index of the other is.
   * @internal
   */
  unify(a: number, b: number): void {
    for (;;) {
      if (++this.steps > MAX_STEPS) throw new NotRepresentable('the axis structures do not settle');
      const ra = this.find(a);
      const rb = this.find(b);
      if (ra === rb) return;
      const sa = this.atoms[ra]!;
      const sb = this.atoms[rb]!;
      if (!sizeEquals(sa.size, sb.size)) throw new NotRepresentable(`axes of sizes ${formatSize(sa.size)} and ${formatSize(sb.size)} are tied`);
      if (!sa.split) {
        sa.parent = rb;
        return;
      }
      if (!sb.split) {
        sb.parent = ra;
        return;
      }
      const A = this.structure(ra);
      const B = this.structure(rb);
      if (this.alignSegments(A, B) || this.alignSegments(B, A)) continue;
      let refined = false;
      for (let i = 0; i < A.length && !refined; i++) refined = this.alignFactors(A[i]!, B[i]!) || this.alignFactors(B[i]!, A[i]!);
      if (refined) continue;
      if (A.length !== B.length || A.some((seg, i) => seg.length !== B[i]!.length)) throw new NotRepresentable('two axis structures do not line up');
      sb.parent = ra;
      for (let i = 0; i < A.length; i++) for (let j = 0; j < A[i]!.length; j++) this.unify(A[i]![j]!, B[i]![j]!);
      return;
    }
  }

  private segmentSize(segment: number[]): Size {
    return segment.reduce<Size>((t, f) => sizeTimes(t, this.size(f)), { k: 1, n: 0 });
  }

  /** Cuts a segment of `a` where `b` has a segment boundary that `a` lacks; true when it cut. */
  private alignSegments(a: Structure, b: Structure): boolean {
    if (a.length === 1 && b.length === 1) return false;
    // Offsets count in units of N^n: the segments of one axis all follow the batch or all do not (a
    // token axis [class token | patches] merged with the batch is [1·N | 16·N]).
    const n = this.segmentSize(a[0]!).n;
    const offsets = (s: Structure) => {
      const out: number[] = [];
      let o = 0;
      for (const seg of s) {
        const size = this.segmentSize(seg);
        if (size.n !== n) throw new NotRepresentable('segments that follow the batch next to segments that do not');
        o += size.k;
        out.push(o);
      }
      return out;
    };
    const ends = offsets(a);
    for (const cut of offsets(b)) {
      if (ends.includes(cut)) continue;
      const i = ends.findIndex((e) => e > cut);
      const start = i === 0 ? 0 : ends[i - 1]!;
      const segment = a[i]!;
      const piece = sizeOver({ k: cut - start, n }, this.segmentSize(segment.slice(1)));
      const outer = this.size(segment[0]!);
      if (!piece || piece.n !== 0 || outer.n !== 0) throw new NotRepresentable('a slice or concatenation cuts through an inner factor of a reshaped axis');
      this.splitLeaf(segment[0]!, 'concat', [piece, { k: outer.k - piece.k, n: 0 }]);
      return true;
    }
    return false;
  }

  /** Splits a factor of `a` where `b`'s factors have a boundary that `a`'s lack; true when it split. */
  private alignFactors(a: number[], b: number[]): boolean {
    const trailing = (seg: number[]) => {
      const out: Size[] = [];
      let p: Size = { k: 1, n: 0 };
      for (let i = seg.length - 1; i >= 0; i--) out.push((p = sizeTimes(p, this.size(seg[i]!))));
      return out;
    };
    const ta = trailing(a);
    const tb = trailing(b);
    let inner: Size = { k: 1, n: 0 };
    for (let i = a.length - 1; i >= 0; i--) {
      const outer = ta[a.length - 1 - i]!;
      const inside = tb.filter((t) => sizeCompare(t, inner) > 0 && sizeCompare(t, outer) < 0).sort(sizeCompare);
      if (inside.length > 0) {
        const sizes: Size[] = [];
        let prev = inner;
        for (const t of [...inside, outer]) {
          const f = sizeOver(t, prev);
          if (!f) throw new NotRepresentable('two reshapes of one axis interleave its factors');
          sizes.unshift(f);
          prev = t;
        }
        this.splitLeaf(a[i]!, 'product', sizes);
        return true;
      }
      inner = outer;
    }
    return false;
  }

  private splitLeaf(x: number, kind: 'concat' | 'product', sizes: Size[]): void {
    const r = this.find(x);
    if (this.atoms[r]!.split) throw new Error('splitLeaf: not a leaf');
    const parts = sizes.map((s) => this.create(s));
    this.atoms[r]!.split = { kind, parts };
  }
}
