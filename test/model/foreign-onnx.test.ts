/**
 * A model Kiln did not write, built field by field the way PyTorch's exporter writes one (opset 13,
 * weights in float_data, initializers also listed as graph inputs, a symbolic batch dimension): Kiln
 * loads it as an inference-only OnnxModel, describes it, and runs it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphModel, loadModel, OnnxModel, Sequential, tensor } from '../../src/index.js';
import { decodeModel, encodeModel, type ModelProto, type ValueInfoProto } from '../../src/graph/proto.js';
import { assertClose, assertRejectsKiln, makeTempDir } from './helpers.js';

const FLOAT = 1;
/** fc.weight [3, 2] (MatMul's right operand, as torch.onnx writes a transposed Linear weight). */
const WEIGHT = [
  [1, -1],
  [2, 0.5],
  [0, 3],
];
const BIAS = [0.5, -1];

function floatInfo(name: string, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function pytorchStyleModel(): ModelProto {
  return {
    irVersion: 7,
    producerName: 'pytorch',
    producerVersion: '1.13.1',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'torch_jit',
      node: [
        { name: 'MatMul_0', opType: 'MatMul', input: ['input', 'fc.weight'], output: ['onnx::Add_3'] },
        { name: 'Add_1', opType: 'Add', input: ['fc.bias', 'onnx::Add_3'], output: ['onnx::Relu_4'] },
        { name: 'Relu_2', opType: 'Relu', input: ['onnx::Relu_4'], output: ['output'] },
      ],
      initializer: [
        { name: 'fc.weight', dims: [3, 2], dataType: FLOAT, floatData: WEIGHT.flat() },
        { name: 'fc.bias', dims: [2], dataType: FLOAT, floatData: BIAS },
      ],
      // Exporters before IR 4 had to (and older torch versions still do) list initializers as inputs.
      input: [floatInfo('input', ['batch_size', 3]), floatInfo('fc.weight', [3, 2]), floatInfo('fc.bias', [2])],
      output: [floatInfo('output', ['batch_size', 2])],
    },
  };
}

/** relu(x · W + b), computed row by row. */
function byHand(rows: number[][]): number[] {
  return rows.flatMap((row) => BIAS.map((b, j) => Math.max(0, row.reduce((s, v, i) => s + v * WEIGHT[i]![j]!, 0) + b)));
}

describe('a foreign (PyTorch-style) ONNX model', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  let file: string;

  before(async () => {
    temp = await makeTempDir();
    file = join(temp.dir, 'torch_linear.onnx');
    await writeFile(file, encodeModel(pytorchStyleModel()));
  });
  after(() => temp.remove());

  it('is written with weights in float_data, not raw_data (the fixture is what it claims)', () => {
    const proto = decodeModel(encodeModel(pytorchStyleModel()));
    for (const t of proto.graph!.initializer!) {
      assert.equal(t.rawData, undefined, `${t.name} has no raw_data`);
      assert.ok(t.floatData && t.floatData.length > 0, `${t.name} has float_data`);
    }
  });

  it('loadModel gives an imported graph that trains (not a Sequential); OnnxModel.load runs it as it is', async () => {
    const model = await loadModel(file);
    assert.ok(model instanceof GraphModel);
    assert.ok(!(model instanceof Sequential));
    assert.deepEqual(model.paramInfos().map((p) => [p.name, p.spec.trainable]), [['fc.weight', true], ['fc.bias', true]]);
    assert.ok((await OnnxModel.load(file)) instanceof OnnxModel);
  });

  it('is described with its real inputs (not the initializers), outputs, ops and parameter count', async () => {
    const model = await OnnxModel.load(file);
    const d = model.description;
    assert.equal(d.producer, 'pytorch 1.13.1');
    assert.equal(d.irVersion, 7);
    assert.deepEqual(d.opsets, [{ domain: 'ai.onnx', version: 13 }]);
    assert.deepEqual(d.inputs, [{ name: 'input', dtype: 'float32', shape: ['batch_size', 3] }]);
    assert.deepEqual(d.outputs, [{ name: 'output', dtype: 'float32', shape: ['batch_size', 2] }]);
    assert.deepEqual(d.ops, { MatMul: 1, Add: 1, Relu: 1 });
    assert.equal(d.parameters, 3 * 2 + 2);
    assert.deepEqual(
      d.initializers.map((t) => [t.name, t.shape, t.size, t.zeros]),
      [
        ['fc.weight', [3, 2], 6, 1],
        ['fc.bias', [2], 2, 0],
      ],
    );
    assert.deepEqual(d.metadata, {});
    assert.equal(model.inputs, d.inputs);
  });

  it('predicts relu(x·W + b) for any batch size', async () => {
    const model = await OnnxModel.load(file);
    const rows = [
      [1, 2, 3],
      [-1, 0, 1],
      [0.5, -2, 4],
      [-3, -3, -3],
    ];
    const y = await model.predict(tensor(rows));
    assert.deepEqual(y.shape, [4, 2]);
    assertClose(y.data as Float32Array, byHand(rows), 1e-6);
    const one = await model.predict(tensor([rows[0]!]));
    assert.deepEqual(one.shape, [1, 2]);
    assertClose(one.data as Float32Array, byHand([rows[0]!]), 1e-6);
    const named = await model.run({ input: tensor(rows) });
    assert.deepEqual(Object.keys(named), ['output']);
    // In runs of 3 (a last run of 1), joined: the same rows.
    const batched = await model.predict(tensor(rows), { batchSize: 3 });
    assert.deepEqual(batched.shape, [4, 2]);
    assertClose(batched.data as Float32Array, byHand(rows), 1e-6);
    await assertRejectsKiln(() => model.predict(tensor(rows), { batchSize: 0 }), 'INVALID_ARGUMENT', 'batchSize');
  });

  it('rejects input of the wrong shape, naming the expected and found shapes', async () => {
    const model = await OnnxModel.load(file);
    await assertRejectsKiln(() => model.predict(tensor([[1, 2, 3, 4]])), 'INVALID_SHAPE', "'input'", '[batch_size, 3]', '[1, 4]');
    await assertRejectsKiln(() => model.run({ x: tensor([[1, 2, 3]]) }), 'INVALID_ARGUMENT', "'input'");
  });

  it('cannot be loaded as a trainable Sequential, which needs Kiln’s configuration', async () => {
    await assertRejectsKiln(() => Sequential.load(file), 'NOT_ONNX', file, 'kiln.model');
  });
});
