/**
 * The opset upgrade (src/graph/opset-upgrade.ts): a model of opsets 6–12 rewritten at opset 13 computes
 * what it computed before. References: ONNX Runtime's own kernels of the older opset run on the
 * original file, ONNX's backend test cases (Debian's libonnx-testdata) and hand-computed values.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { tensorFromProto, tensorToProto } from '../../src/graph/onnx-io.js';
import { upgradeOpset } from '../../src/graph/opset-upgrade.js';
import { AttributeType, decodeModel, encodeModel, type AttributeProto, type ModelProto, type NodeProto, type TensorProto } from '../../src/graph/proto.js';
import { describedByShapeRules } from '../../src/model/graph-from-proto.js';
import { Tensor } from '../../src/tensor.js';
import { defaultOpset, firstMismatch, listCases, readTensors, testDataDir } from '../conformance/backend-cases.js';
import { assertClose, assertThrowsKiln } from '../model/helpers.js';

const ints = (name: string, v: number[]): AttributeProto => ({ name, type: AttributeType.INTS, ints: v });
const int = (name: string, v: number): AttributeProto => ({ name, type: AttributeType.INT, i: v });
const float = (name: string, v: number): AttributeProto => ({ name, type: AttributeType.FLOAT, f: v });
const floats = (name: string, v: number[]): AttributeProto => ({ name, type: AttributeType.FLOATS, floats: v });
const text = (name: string, v: string): AttributeProto => ({ name, type: AttributeType.STRING, s: new TextEncoder().encode(v) });
const node = (opType: string, input: string[], output: string[], attribute: AttributeProto[] = []): NodeProto => ({ opType, input, output, attribute, name: output[0] });

/** A float32 model of one input `x` at `opset`; `outputs` are float32 unless given as [name, elemType]. */
function model(opset: number, xShape: number[], nodes: NodeProto[], outputs: (string | [string, number])[], initializers: TensorProto[] = []): ModelProto {
  const info = (name: string, elemType = 1) => ({ name, type: { tensorType: { elemType } } });
  return {
    irVersion: 3,
    opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: 'upgrade-test',
      node: nodes,
      initializer: initializers,
      input: [
        { name: 'x', type: { tensorType: { elemType: 1, shape: { dim: xShape.map((d) => ({ dimValue: d })) } } } },
        // IR 3 lists every initializer among the inputs too.
        ...initializers.map((t) => ({ name: t.name, type: { tensorType: { elemType: t.dataType, shape: { dim: (t.dims ?? []).map((d) => ({ dimValue: d })) } } } })),
      ],
      output: outputs.map((o) => (typeof o === 'string' ? info(o) : info(o[0], o[1]))),
    },
  };
}

/** Runs a model in ONNX Runtime on x; every output by name. */
async function run(proto: ModelProto, x: Tensor): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(encodeModel(proto), { logSeverityLevel: 3 });
  try {
    return await session.run({ x: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) });
  } finally {
    await session.release();
  }
}

function ramp(shape: number[], scale = 0.37): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * scale) * 2), shape, 'float32');
}

/** Each value's rank and type, from Kiln's shape rules on the original (as quantize's path gets them). */
const describedBy = describedByShapeRules;

/** The upgraded model gives ONNX Runtime's outputs of the original (its older kernels) on x. */
async function assertSameAsOriginal(proto: ModelProto, x: Tensor, describe = describedBy(proto)): Promise<ModelProto> {
  const upgraded = upgradeOpset(proto, { file: 'test.onnx', describe });
  assert.equal(upgraded.opsetImport!.find((o) => !o.domain)!.version, 13);
  const [before, after] = [await run(proto, x), await run(upgraded, x)];
  for (const name of Object.keys(before)) {
    assert.deepEqual(after[name]!.dims, before[name]!.dims, `${name}: shape`);
    assertClose(Array.from(after[name]!.data as Float32Array, Number), Array.from(before[name]!.data as Float32Array, Number), 1e-6, name);
  }
  return upgraded;
}

const i64 = (name: string, v: number[]) => tensorToProto(name, new Tensor(BigInt64Array.from(v, BigInt), [v.length], 'int64'));

describe('opset upgrade: attributes that became inputs', () => {
  it('Clip, Pad, Slice, Unsqueeze, Split, ReduceSum, Squeeze, TopK and Dropout at opset 9 compute the same at 13', async () => {
    const proto = model(
      9,
      [2, 6],
      [
        node('Clip', ['x'], ['clipped'], [float('min', -0.5), float('max', 1.5)]),
        node('Pad', ['clipped'], ['padded'], [ints('pads', [0, 1, 0, 1]), float('value', 2)]), // [2, 8]
        node('Slice', ['padded'], ['sliced'], [ints('starts', [1]), ints('ends', [7]), ints('axes', [1])]), // [2, 6]
        node('Unsqueeze', ['sliced'], ['lifted'], [ints('axes', [0])]), // [1, 2, 6]
        node('Split', ['lifted'], ['a', 'b'], [int('axis', 2), ints('split', [2, 4])]),
        node('ReduceSum', ['b'], ['summed'], [ints('axes', [2]), int('keepdims', 0)]), // [1, 2]
        node('Squeeze', ['summed'], ['squeezed'], [ints('axes', [0])]), // [2]
        node('TopK', ['x'], ['top', 'where'], [int('k', 3), int('axis', 1)]),
        node('Dropout', ['a'], ['kept'], [float('ratio', 0.25)]),
      ],
      ['squeezed', 'top', ['where', 7], 'kept'],
    );
    const upgraded = await assertSameAsOriginal(proto, ramp([2, 6]));
    const ops = upgraded.graph!.node!.map((n) => `${n.opType}:${n.input!.length}:${(n.attribute ?? []).map((a) => a.name).join(',')}`);
    assert.deepEqual(ops, ['Clip:3:', 'Pad:3:', 'Slice:4:', 'Unsqueeze:2:', 'Split:2:axis', 'ReduceSum:2:keepdims', 'Squeeze:2:', 'TopK:2:axis', 'Dropout:2:']);
  });

  it('an open-ended Slice (ends = INT64_MAX, as exporters write x[:, 1:]) keeps its end', async () => {
    const open = { name: 'ends', type: AttributeType.INTS, ints: ['9223372036854775807' as never] };
    const proto = model(9, [2, 4], [node('Slice', ['x'], ['y'], [ints('starts', [1]), open, ints('axes', [1])])], ['y']);
    const upgraded = await assertSameAsOriginal(decodeModel(encodeModel(proto)), ramp([2, 4]));
    const ends = upgraded.graph!.initializer!.find((t) => t.name!.endsWith('/ends'))!;
    assert.deepEqual(Array.from(tensorFromProto(ends).data as BigInt64Array), [2n ** 63n - 1n]);
  });

  it('Clip and Pad constants take the input’s float type (float64 here)', async () => {
    const proto = model(10, [2, 3], [node('Cast', ['x'], ['wide'], [int('to', 11)]), node('Clip', ['wide'], ['c'], [float('max', 0.5)]), node('Pad', ['c'], ['p'], [ints('pads', [1, 0, 0, 0]), float('value', -3)])], [['p', 11]]);
    const upgraded = upgradeOpset(proto, { file: 'double.onnx', describe: describedBy(proto) });
    const added = upgraded.graph!.initializer!.filter((t) => t.name!.endsWith('/max') || t.name!.endsWith('/value'));
    assert.deepEqual(added.map((t) => t.dataType), [11, 11]);
    // ONNX Runtime has no float64 Clip-6 kernel to compare with: by hand.
    const x = ramp([2, 3]);
    const out = (await run(upgraded, x)).p!;
    assert.deepEqual(out.dims, [3, 3]);
    assert.deepEqual(Array.from(out.data as Float64Array), [-3, -3, -3, ...Array.from(x.data as Float32Array, (v) => Math.min(Math.fround(v), 0.5))]);
  });
});

describe('opset upgrade: Softmax before opset 13', () => {
  // Before 13, Softmax at axis 1 of [2, 3, 4] normalizes each of the 2 rows of 12 values.
  const x = ramp([2, 3, 4]);
  const byRows = (data: Float32Array) => {
    const out = new Float32Array(data.length);
    for (let r = 0; r < 2; r++) {
      const row = data.subarray(r * 12, r * 12 + 12);
      const max = Math.max(...row);
      const sum = row.reduce((s, v) => s + Math.exp(v - max), 0);
      row.forEach((v, i) => (out[r * 12 + i] = Math.exp(v - max) / sum));
    }
    return out;
  };

  for (const [what, describe] of [
    ['with the input’s rank known', undefined],
    ['with nothing known of the input (the Flatten/Reshape form works at any rank)', () => undefined],
  ] as const) {
    it(`a non-last axis normalizes the flattened rows, ${what}`, async () => {
      const proto = model(11, [2, 3, 4], [node('Softmax', ['x'], ['y'], [int('axis', 1)])], ['y']);
      const upgraded = await assertSameAsOriginal(proto, x, describe);
      assertClose(Array.from((await run(upgraded, x)).y!.data as Float32Array), Array.from(byRows(x.data as Float32Array)), 1e-6, 'rows of 12');
      assert.deepEqual(upgraded.graph!.node!.map((n) => n.opType), ['Shape', 'Flatten', 'Softmax', 'Reshape']);
    });
  }

  it('the last axis (also the default axis 1 of a matrix) stays one node, axis -1', async () => {
    for (const [shape, attrs] of [[[2, 3, 4], [int('axis', 2)]], [[4, 5], []]] as const) {
      const proto = model(9, [...shape], [node('LogSoftmax', ['x'], ['y'], [...attrs])], ['y']);
      const upgraded = await assertSameAsOriginal(proto, ramp([...shape]));
      assert.deepEqual(upgraded.graph!.node!.map((n) => n.opType), ['LogSoftmax']);
      assert.deepEqual(upgraded.graph!.node![0]!.attribute, [int('axis', -1)]);
    }
  });
});

describe('opset upgrade: Upsample and Resize-10 become Resize-13', () => {
  it('Upsample-7 (scales attribute) and Upsample-9 (scales input), nearest and linear', async () => {
    const x = ramp([1, 2, 3, 3]);
    for (const mode of ['nearest', 'linear']) {
      await assertSameAsOriginal(model(7, [1, 2, 3, 3], [node('Upsample', ['x'], ['y'], [floats('scales', [1, 1, 2, 3]), text('mode', mode)])], ['y']), x);
      const scales = tensorToProto('scales', new Tensor(Float32Array.from([1, 1, 2, 2]), [4], 'float32'));
      await assertSameAsOriginal(model(9, [1, 2, 3, 3], [node('Upsample', ['x', 'scales'], ['y'], [text('mode', mode)])], ['y'], [scales]), x);
    }
  });

  it('Resize-10 nearest rounds down when enlarging and up when shrinking, as opset 10 did', async () => {
    const x = ramp([1, 1, 5, 5]);
    for (const s of [2, 0.5, 0.6]) {
      const scales = tensorToProto('scales', new Tensor(Float32Array.from([1, 1, s, s]), [4], 'float32'));
      const upgraded = await assertSameAsOriginal(model(10, [1, 1, 5, 5], [node('Resize', ['x', 'scales'], ['y'], [text('mode', 'nearest')])], ['y'], [scales]), x);
      const nearest = upgraded.graph!.node![0]!.attribute!.find((a) => a.name === 'nearest_mode')!;
      assert.equal(new TextDecoder().decode(nearest.s), s > 1 ? 'floor' : 'ceil');
    }
  });
});

describe('opset upgrade: what opset 6 meant', () => {
  it('Add with broadcast = 1 and axis lines B up at the axis (an Unsqueeze); PRelu’s slope follows the channel axis', async () => {
    const b = tensorToProto('b', new Tensor(Float32Array.from([10, 20, 30]), [3], 'float32'));
    const slope = tensorToProto('slope', new Tensor(Float32Array.from([0.1, 0.2, 0.3]), [3], 'float32'));
    const proto = model(6, [2, 3, 4], [node('Add', ['x', 'b'], ['sum'], [int('broadcast', 1), int('axis', 1)]), node('PRelu', ['x', 'slope'], ['leaky'])], ['sum', 'leaky'], [b, slope]);
    const upgraded = upgradeOpset(proto, { file: 'six.onnx', describe: describedBy(proto) });
    const x = ramp([2, 3, 4]);
    const out = await run(upgraded, x);
    const xs = x.data as Float32Array;
    const channel = (i: number) => Math.floor(i / 4) % 3;
    assertClose(Array.from(out.sum!.data as Float32Array), Array.from(xs, (v, i) => v + [10, 20, 30][channel(i)]!), 1e-6, 'x + b along axis 1');
    assertClose(Array.from(out.leaky!.data as Float32Array), Array.from(xs, (v, i) => (v > 0 ? v : v * [0.1, 0.2, 0.3][channel(i)]!)), 1e-6, 'PRelu per channel');
  });

  it('ImageScaler (gone since opset 10) becomes scale·x + bias per channel', async () => {
    const proto = model(8, [1, 2, 2, 2], [node('ImageScaler', ['x'], ['y'], [float('scale', 2), floats('bias', [1, -1])])], ['y']);
    const upgraded = upgradeOpset(proto, { file: 'scaler.onnx' });
    const x = ramp([1, 2, 2, 2]);
    const out = (await run(upgraded, x)).y!.data as Float32Array;
    assertClose(Array.from(out), Array.from(x.data as Float32Array, (v, i) => 2 * v + (i < 4 ? 1 : -1)), 1e-6, 'ImageScaler');
  });
});

describe('opset upgrade: the model around the nodes', () => {
  it('declares opset 13 and IR 7, keeps other domains, takes initializers out of the inputs and leaves the given proto as it was', () => {
    const w = tensorToProto('w', new Tensor(Float32Array.from([1, 2]), [2], 'float32'));
    const proto = model(8, [2], [node('Mul', ['x', 'w'], ['y'])], ['y'], [w]);
    proto.opsetImport!.push({ domain: 'ai.onnx.ml', version: 2 });
    const before = JSON.stringify(proto);
    const upgraded = upgradeOpset(proto, { file: 'm.onnx' });
    assert.equal(JSON.stringify(proto), before);
    assert.equal(upgraded.irVersion, 7);
    assert.deepEqual(upgraded.opsetImport, [{ domain: 'ai.onnx.ml', version: 2 }, { domain: '', version: 13 }]);
    assert.deepEqual(upgraded.graph!.input!.map((i) => i.name), ['x']);
    assert.equal(upgradeOpset(upgraded, { file: 'm.onnx' }), upgraded, 'a model at 13 is returned as it is');
  });

  it('refuses what it cannot rewrite faithfully, every case at once, and opsets before 6', () => {
    const proto = model(
      8,
      [2, 3, 1, 1],
      [
        node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['bn'], [int('spatial', 0)]),
        node('Dropout', ['bn'], ['d', 'mask']),
        node('Mul', ['d', 'mask'], ['y']),
        { opType: 'If', input: ['c'], output: ['z'], name: 'branch', attribute: [{ name: 'then_branch', type: AttributeType.GRAPH, g: {} }] },
      ],
      ['y'],
    );
    assertThrowsKiln(() => upgradeOpset(proto, { file: 'old.onnx' }), 'UNSUPPORTED_OP', "'old.onnx' (opset 8) cannot be upgraded", 'spatial = 0', 'mask output is read', "node 'branch' (If) holds a subgraph");
    assertThrowsKiln(() => upgradeOpset({ ...proto, opsetImport: [{ domain: '', version: 5 }] }, { file: 'older.onnx' }), 'UNSUPPORTED_OP', "'older.onnx' uses ONNX opset 5", 'onnx.version_converter');
    const clipInt = model(10, [2], [node('Clip', ['x'], ['y'], [float('min', 0)])], ['y']);
    assertThrowsKiln(() => upgradeOpset(clipInt, { file: 'int.onnx', describe: () => ({ rank: 1, dtype: 'int32' }) }), 'UNSUPPORTED_OP', 'its input is int32');
  });
});

/*
 * ONNX's backend cases of opsets 6–12: each upgraded model must reproduce what ONNX Runtime computes
 * on the original, or, where ONNX Runtime has no kernel for the original (PRelu-6), the case's expected
 * outputs. Cases the upgrade refuses must be of the kinds listed here.
 */
const REFUSED_KINDS = [
  /holds a subgraph/, // If, Loop, Scan: their bodies would need the same rewrite
  /element type string|Kiln tensors carry/, // string tensors: the test cannot feed them
];

describe('opset upgrade on ONNX’s backend test cases', () => {
  const present = fs.existsSync(testDataDir());
  const skip = present || process.env.CI === 'true' ? false : `ONNX backend test data not found at ${testDataDir()}: apt-get install libonnx-testdata`;

  it('every case of opsets 6–12 computes the same at 13, or is refused for a listed reason', { skip }, async () => {
    assert.ok(present, `ONNX backend test data not found at ${testDataDir()}: .ci/run installs libonnx-testdata`);
    const problems: string[] = [];
    let same = 0;
    for (const c of listCases()) {
      const proto = decodeModel(fs.readFileSync(path.join(c.dir, 'model.onnx')));
      const opset = defaultOpset(proto);
      if (opset < 6 || opset >= 13 || !(proto.opsetImport ?? []).some((o) => !o.domain || o.domain === 'ai.onnx')) continue;
      let upgraded: ModelProto;
      let inputs: Tensor[];
      let expected: Tensor[];
      try {
        inputs = readTensors(path.join(c.dir, 'test_data_set_0'), 'input').map((t) => tensorFromProto(t.proto));
        expected = readTensors(path.join(c.dir, 'test_data_set_0'), 'output').map((t) => tensorFromProto(t.proto));
      } catch (err) {
        // Sequences, strings and unsigned wide integers: test data this test cannot feed (Kiln tensors do not carry them).
        const sequences = (proto.graph?.node ?? []).some((n) => n.opType?.startsWith('Sequence'));
        if (!sequences && !/Kiln tensors carry/.test((err as Error).message)) problems.push(`${c.id}: test data: ${(err as Error).message}`);
        continue;
      }
      try {
        upgraded = upgradeOpset(proto, { file: c.id, describe: describedBy(proto) });
      } catch (err) {
        const message = (err as Error).message;
        if (!REFUSED_KINDS.some((k) => k.test(message))) problems.push(`${c.id}: refused: ${message}`);
        continue;
      }
      const outputs = async (p: ModelProto): Promise<ort.Tensor[] | string> => {
        try {
          const session = await ort.InferenceSession.create(encodeModel(p), { logSeverityLevel: 4 });
          const feeds = Object.fromEntries(session.inputNames.map((n, k) => [n, new ort.Tensor(inputs[k]!.dtype as 'float32', inputs[k]!.data as Float32Array, [...inputs[k]!.shape])]));
          const out = await session.run(feeds);
          await session.release();
          return session.outputNames.map((n) => out[n]!);
        } catch (err) {
          return (err as Error).message.split('\n')[0]!;
        }
      };
      const [before, after] = [await outputs(proto), await outputs(upgraded)];
      if (typeof after === 'string') {
        // ONNX Runtime failing the same way on the original (StringNormalizer's locale, a training-only op) is not the upgrade's doing.
        if (typeof before !== 'string') problems.push(`${c.id}: the upgraded model fails in ONNX Runtime: ${after}`);
        continue;
      }
      const reference = typeof before === 'string' ? expected.map((t) => ({ data: t.data, dims: t.shape, float: t.dtype.startsWith('float') })) : before.map((t) => ({ data: t.data, dims: t.dims, float: t.type.startsWith('float') }));
      const differs = reference.findIndex((r, k) => after[k]!.dims.join() !== r.dims.join() || firstMismatch(after[k]!.data as Float32Array, r.data as Float32Array, r.float) >= 0);
      if (differs >= 0) problems.push(`${c.id}: output ${differs} differs from ${typeof before === 'string' ? 'the expected one' : 'ONNX Runtime’s on the original'}`);
      else same++;
    }
    assert.deepEqual(problems, []);
    console.log(`${same} backend cases of opsets 6–12 compute the same upgraded to 13`);
    // 321 cases of opsets 6–12 in libonnx-testdata 1.12 compute the same upgraded.
    assert.ok(same >= 300, `only ${same} cases compared`);
  });
});
