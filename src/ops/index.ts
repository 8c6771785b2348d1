/**
 * The op table: every operator Kiln knows (shape rule, and gradient rule where it has one), built from
 * the lists the files under src/ops/ export. Nothing registers itself: importing this module (Graph does,
 * for shape inference) gives the whole table, and docs/ops.md is generated from OP_FILES.
 */
import { KilnError } from '../errors.js';
import type { Graph, Node, Value } from '../graph/graph.js';
import type { InferredValue, OpDefinition } from '../graph/op-definition.js';
import { ACTIVATION_OPS } from './activation.js';
import { CONSTANT_OPS } from './constant.js';
import { CONV_OPS } from './conv.js';
import { EINSUM_OPS } from './einsum.js';
import { ELEMENTWISE_OPS } from './elementwise.js';
import { MATMUL_OPS } from './matmul.js';
import { NORMALIZATION_OPS } from './normalization.js';
import { POOL_OPS } from './pool.js';
import { QUANTIZATION_OPS } from './quantization.js';
import { RECURRENT_OPS } from './recurrent.js';
import { REDUCE_OPS } from './reduce.js';
import { SHAPE_OPS } from './shape.js';
import { TRIGONOMETRIC_OPS } from './trigonometric.js';

/** Each file under src/ops/ (relative to the repository) with the ops it defines. */
export const OP_FILES: readonly { file: string; ops: readonly OpDefinition[] }[] = [
  { file: 'src/ops/elementwise.ts', ops: ELEMENTWISE_OPS },
  { file: 'src/ops/activation.ts', ops: ACTIVATION_OPS },
  { file: 'src/ops/trigonometric.ts', ops: TRIGONOMETRIC_OPS },
  { file: 'src/ops/conv.ts', ops: CONV_OPS },
  { file: 'src/ops/pool.ts', ops: POOL_OPS },
  { file: 'src/ops/matmul.ts', ops: MATMUL_OPS },
  { file: 'src/ops/einsum.ts', ops: EINSUM_OPS },
  { file: 'src/ops/shape.ts', ops: SHAPE_OPS },
  { file: 'src/ops/reduce.ts', ops: REDUCE_OPS },
  { file: 'src/ops/normalization.ts', ops: NORMALIZATION_OPS },
  { file: 'src/ops/recurrent.ts', ops: RECURRENT_OPS },
  { file: 'src/ops/quantization.ts', ops: QUANTIZATION_OPS },
  { file: 'src/ops/constant.ts', ops: CONSTANT_OPS },
];

/** Every op definition; a later definition of the same type would replace an earlier one in the table. */
export const OPS: readonly OpDefinition[] = OP_FILES.flatMap((f) => f.ops);

const table = new Map<string, OpDefinition>(OPS.map((def) => [def.type, def]));

export function opDefinition(opType: string): OpDefinition | undefined {
  return table.get(opType);
}

/** The op types Kiln knows, sorted. */
export function registeredOps(): string[] {
  return [...table.keys()].sort();
}

/** The dtype and shape of each output of `node`, by its op's shape rule. */
export function inferOutputs(node: Node, inputs: (Value | null)[], graph: Graph): InferredValue[] {
  const def = table.get(node.opType);
  if (!def) {
    throw new KilnError('UNSUPPORTED_OP', `Kiln has no shape rule for op '${node.opType}' (known: ${registeredOps().join(', ')})`);
  }
  return def.infer(inputs, node.attrs, graph, node.outputs.length);
}
