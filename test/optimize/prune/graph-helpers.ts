/**
 * Shared by the structured-pruning tests on imported graphs: the exported fixtures, small ONNX models
 * written node by node (for patterns the fixtures lack: Flatten of a feature map, Concat, an op the
 * analysis does not follow), group lookups, and zeroing a group's units in a model's weights.
 */
import { readFileSync } from 'node:fs';
import { tensorToProto } from '../../../src/graph/onnx-io.js';
import { AttributeType, decodeModel, type AttributeProto, type ModelProto, type NodeProto } from '../../../src/graph/proto.js';
import { analyzeGraph, measureFacts, unitIndex, type ChannelGroup, type GraphAnalysis } from '../../../src/optimize/prune/graph-groups.js';
import { Random } from '../../../src/random.js';
import { Tensor } from '../../../src/tensor.js';

export const FIXTURES = 'test/fixtures/exported';

export function fixtureProto(name: string): ModelProto {
  return decodeModel(readFileSync(`${FIXTURES}/${name}.onnx`));
}

export async function analyzeFixture(name: string): Promise<GraphAnalysis> {
  return analyzeGraph(await measureFacts(fixtureProto(name), `${name}.onnx`));
}

export async function analyzeProto(proto: ModelProto): Promise<GraphAnalysis> {
  return analyzeGraph(await measureFacts(proto, 'test model'));
}

/** A group's weights as 'tensor:axis' strings, sorted. */
export function memberSet(g: ChannelGroup): string[] {
  return g.members.map((m) => `${m.tensor}:${m.axis}`).sort();
}

/** The group produced by exactly these nodes. */
export function groupOf(a: GraphAnalysis, ...producers: string[]): ChannelGroup {
  const found = a.groups.filter((g) => g.producers.length === producers.length && producers.every((p) => g.producers.includes(p)));
  if (found.length !== 1) throw new Error(`${found.length} groups produced by ${producers.join(' + ')}; groups: ${a.groups.map((g) => `[${g.kind} ${g.units}: ${g.producers.join(', ')}]`).join(' ')}`);
  return found[0]!;
}

/** For one weight axis of a group: the unit each index belongs to (-1: none). */
export function unitsAlong(a: GraphAnalysis, g: ChannelGroup, tensor: string, axis: number): number[] {
  return [...unitIndex(a.atoms, a.atoms.structure(a.axes.get(tensor)![axis]!), g.leaf)];
}

/**
 * The weights with the given units of a group set to zero in every tensor of the group (producer
 * rows, biases, normalization parameters and statistics, consumer columns).
 */
export function zeroUnits(a: GraphAnalysis, weights: ReadonlyMap<string, Tensor>, zero: ReadonlyMap<ChannelGroup, readonly number[]>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of weights) out.set(name, new Tensor((t.data as Float32Array).slice(), [...t.shape], 'float32'));
  for (const [g, units] of zero) {
    for (const m of g.members) {
      const t = out.get(m.tensor);
      if (!t) continue;
      const unit = unitsAlong(a, g, m.tensor, m.axis);
      const inner = t.shape.slice(m.axis + 1).reduce((p, d) => p * d, 1);
      const data = t.data as Float32Array;
      for (let i = 0; i < data.length; i++) if (units.includes(unit[Math.floor(i / inner) % t.shape[m.axis]!]!)) data[i] = 0;
    }
  }
  return out;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Seeded NCHW-free images [n, ...shape] in [0, 1). */
export function images(n: number, shape: number[], seed = 5): Tensor<'float32'> {
  const rng = new Random(seed);
  const size = n * shape.reduce((p, d) => p * d, 1);
  return new Tensor(Float32Array.from({ length: size }, () => rng.next()), [n, ...shape], 'float32');
}

// ---- small ONNX models written node by node ----

type Attr = number | number[] | string;

function attribute(name: string, v: Attr): AttributeProto {
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  return Number.isInteger(v) && name !== 'alpha' && name !== 'beta' && name !== 'bias' ? { name, type: AttributeType.INT, i: v } : { name, type: AttributeType.FLOAT, f: v };
}

export function node(op: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}, name = outputs[0]!): NodeProto {
  return { opType: op, name, input: inputs, output: outputs, attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) };
}

/** A 1-D int64 constant (shapes, indices, slice bounds). */
export const i64 = (...v: number[]): Tensor => new Tensor(BigInt64Array.from(v, BigInt), [v.length], 'int64');

/** A seeded float weight. */
export function weight(shape: number[], seed: number, scale = 0.5): Tensor {
  const rng = new Random(seed);
  return new Tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.uniform(-scale, scale)), shape, 'float32');
}

/** A model with one float input [batch, ...inputShape] and one output [batch, classes], opset 13. */
export function model(inputShape: number[], output: string, classes: number, nodes: NodeProto[], weights: Record<string, Tensor>): ModelProto {
  const info = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'test',
    graph: {
      name: 'test',
      node: nodes,
      initializer: Object.entries(weights).map(([name, t]) => tensorToProto(name, t)),
      input: [info('input', ['batch', ...inputShape])],
      output: [info(output, ['batch', classes])],
    },
  };
}

/**
 * Conv c1 → LRN (an op the group analysis does not follow, node 'local_response_norm') → Conv c2 →
 * pool → Gemm: c1's group sits behind the LRN, c2's does not.
 */
export function convBehindLrnModel(): ModelProto {
  return model([1, 4, 4], 'logits', 3, [
    node('Conv', ['input', 'w1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    node('LRN', ['c1'], ['lrn'], { size: 3 }, 'local_response_norm'),
    node('Conv', ['lrn', 'w2'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    node('GlobalAveragePool', ['c2'], ['p']),
    node('Flatten', ['p'], ['f']),
    node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }),
  ], { w1: weight([4, 1, 3, 3], 1), w2: weight([6, 4, 3, 3], 2), fc: weight([3, 6], 3) });
}

/** An RNN (hidden 6) over x [N, 5, 4] with the given outputs (Y, Y_h), its final state into a 3-way Gemm. */
export function recurrentModel(outputs: [string, string]): ModelProto {
  return model([5, 4], 'logits', 3, [
    node('Transpose', ['input'], ['steps'], { perm: [1, 0, 2] }),
    { ...node('RNN', ['steps', 'w', 'r', 'b'], outputs, { hidden_size: 6 }), name: 'rnn' },
    node('Transpose', [outputs[1]], ['last'], { perm: [1, 0, 2] }),
    node('Flatten', ['last'], ['f']),
    { ...node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }), name: 'fc' },
  ], { w: weight([1, 6, 4], 1), r: weight([1, 6, 6], 2), b: weight([1, 12], 3), fc: weight([3, 6], 4) });
}
