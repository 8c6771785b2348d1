import type { Graph, Node, Value } from './graph.js';

/*
 * The end crop of an NCHW value: its first rows and columns, as one Slice. MaxPool's gradient builds it
 * for the rows its windows cover, and trimUnreadRows builds it and, where it meets one already there,
 * recognizes it to shorten; one builder and its recognizer side by side keep the two forms the same.
 */

/** x[:, :, :ends[0], :ends[1]]. */
export function spatialEndCrop(graph: Graph, x: Value | string, ends: readonly number[]): Value {
  return graph.op1('Slice', [x, graph.int64s([0, 0], 'starts'), graph.int64s(ends, 'ends'), graph.int64s([2, 3], 'axes')]);
}

/** Whether a node is such a crop (starts 0 on axes [2, 3], constant ends, unit steps); its ends are inputs[2]. */
export function isSpatialEndCrop(graph: Graph, slice: Node): boolean {
  if (slice.opType !== 'Slice' || slice.domain !== '') return false;
  const [, starts, ends, axes, steps] = slice.inputs;
  const constant = (name: string | undefined) => (name ? graph.constantValue(name) : undefined);
  const ints = (name: string | undefined) => Array.from((constant(name)?.data ?? []) as ArrayLike<number | bigint>, Number);
  return ints(starts).join() === '0,0' && ints(axes).join() === '2,3' && constant(ends) !== undefined && (!steps || ints(steps).join() === '1,1');
}
