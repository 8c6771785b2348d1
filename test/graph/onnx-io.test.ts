/**
 * The graph builder and its ONNX serialization: shape rules applied as nodes are added, tensors and
 * attributes written the way ONNX Runtime reads them, and TensorProtos read back from whichever field
 * an exporter used.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, OnnxModel, describeModel, tensor, type Tensor } from '../../src/index.js';
import { graphToProto, modelToProto, tensorFromProto, tensorToProto } from '../../src/graph/onnx-io.js';
import { AttributeType, decodeModel, encodeModel } from '../../src/graph/proto.js';
import { assertClose, assertThrowsKiln } from '../model/helpers.js';

const values = (t: Tensor) => Array.from(t.data as ArrayLike<number | bigint>);

function runnable(graph: Graph): OnnxModel {
  const bytes = encodeModel(modelToProto(graph));
  return new OnnxModel(bytes, decodeModel(bytes));
}

describe('Graph', () => {
  it('infers each value’s shape as nodes are added, keeping the symbolic batch dimension', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['N', 3, 7, 9]);
    const w = g.initializer('w', tensor(new Float32Array(4 * 3 * 3 * 3), [4, 3, 3, 3]));
    const y = g.op1('Conv', [x, w], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    assert.deepEqual(y.shape, ['N', 4, 4, 5]);
    const p = g.op1('MaxPool', [y], { kernel_shape: [2, 2], strides: [2, 2] });
    assert.deepEqual(p.shape, ['N', 4, 2, 2]);
    const f = g.op1('Flatten', [p], { axis: 1 });
    assert.deepEqual(f.shape, ['N', 16]);
    const t = g.op1('Transpose', [x], { perm: [0, 2, 3, 1] });
    assert.deepEqual(t.shape, ['N', 7, 9, 3]);
  });

  it('gives unique names and refuses duplicates, unknown inputs and unknown ops', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['N', 2]);
    const a = g.op1('Relu', [x]);
    const b = g.op1('Relu', [x]);
    assert.notEqual(a.name, b.name);
    assertThrowsKiln(() => g.input('x', 'float32', [1]), 'INVALID_ARGUMENT', "'x'");
    assertThrowsKiln(() => g.op1('Relu', ['missing']), 'INVALID_ARGUMENT', "'missing'");
    assertThrowsKiln(() => g.op1('FancyOp', [x]), 'UNSUPPORTED_OP', "'FancyOp'");
  });

  it('refuses a Conv whose kernel does not match the input channels', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['N', 3, 5, 5]);
    const w = g.initializer('w', tensor(new Float32Array(2 * 4 * 9), [2, 4, 3, 3]));
    assertThrowsKiln(() => g.op1('Conv', [x, w], { kernel_shape: [3, 3] }), 'INVALID_SHAPE', '3 channels', '[2, 4, 3, 3]');
  });
});

describe('graphToProto / modelToProto', () => {
  it('writes float-typed attributes as FLOAT even when whole numbers, so ONNX Runtime accepts them', async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['N', 3]);
    g.output(g.op1('LeakyRelu', [x], { alpha: 2 }), 'y');
    const proto = modelToProto(g);
    const attr = proto.graph!.node![0]!.attribute![0]!;
    assert.equal(attr.type, AttributeType.FLOAT);
    assert.equal(attr.f, 2);
    const y = await runnable(g).predict(tensor([[-1, 0, 3], [-0.5, 2, -4]]));
    assert.deepEqual(y.shape, [2, 3]);
    assertClose(y.data as Float32Array, [-2, 0, 3, -1, 2, -8]);
  });

  it('writes integer lists as INTS', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['N', 1, 4, 4]);
    g.output(g.op1('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] }));
    const attrs = graphToProto(g).node![0]!.attribute!;
    assert.deepEqual(
      attrs.map((a) => [a.name, a.type, a.ints]),
      [
        ['kernel_shape', AttributeType.INTS, [2, 2]],
        ['strides', AttributeType.INTS, [2, 2]],
      ],
    );
  });

  it('declares symbolic dimensions as dim_param and drops constants nothing reads', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['N', 2]);
    g.constant(tensor([1, 2, 3]), 'unused');
    const b = g.constant(tensor([10, 20]), 'b');
    g.output(g.op1('Add', [x, b]), 'y');
    const proto = decodeModel(encodeModel(modelToProto(g, { note: 'hi' })));
    assert.deepEqual(proto.graph!.input![0]!.type!.tensorType!.shape!.dim, [{ dimParam: 'N' }, { dimValue: 2 }]);
    assert.deepEqual(proto.graph!.initializer!.map((t) => t.name), ['b']);
    assert.deepEqual(proto.metadataProps, [{ key: 'note', value: 'hi' }]);
    assert.equal(proto.producerName, 'kiln');
  });
});

describe('TensorProto conversion', () => {
  it('round-trips every Kiln dtype through raw_data', () => {
    const cases = [
      tensor([[1.5, -2], [0, 3.25]]),
      tensor(new Float64Array([1e-300, -7])),
      tensor(new Int32Array([-5, 6, 7]), [3, 1]),
      tensor([1, -(2 ** 40)], undefined, 'int64'),
      tensor(new Int8Array([-128, 127])),
      tensor(new Uint8Array([0, 255])),
      tensor([true, false], undefined, 'bool'),
    ];
    for (const t of cases) {
      const back = tensorFromProto(decodeModel(encodeModel({ irVersion: 8, graph: { initializer: [tensorToProto('t', t)] } })).graph!.initializer![0]!);
      assert.equal(back.dtype, t.dtype);
      assert.deepEqual(back.shape, t.shape);
      assert.deepEqual(Array.from(back.data as ArrayLike<number>), Array.from(t.data as ArrayLike<number>), t.dtype);
    }
  });

  it('reads float_data, double_data, int32_data and int64_data as exporters write them', () => {
    assert.deepEqual(values(tensorFromProto({ name: 'f', dataType: 1, dims: [2, 2], floatData: [1, 2, 3, 4] })), [1, 2, 3, 4]);
    assert.deepEqual(values(tensorFromProto({ name: 'd', dataType: 11, dims: [1], doubleData: [0.1] })), [0.1]);
    assert.deepEqual(values(tensorFromProto({ name: 'i', dataType: 6, dims: [2], int32Data: [-1, 9] })), [-1, 9]);
    assert.deepEqual(values(tensorFromProto({ name: 'l', dataType: 7, dims: [2], int64Data: [5, -6] })), [5n, -6n]);
    assert.deepEqual(values(tensorFromProto({ name: 'u', dataType: 2, dims: [2], int32Data: [3, 250] })), [3, 250]);
  });

  it('refuses data that does not fit the shape, external data and element types Kiln cannot hold', () => {
    assertThrowsKiln(() => tensorFromProto({ name: 'w', dataType: 1, dims: [3], floatData: [1, 2] }), 'CORRUPT_FILE', "'w'", '2 values', 'needs 3');
    assertThrowsKiln(() => tensorFromProto({ name: 'r', dataType: 1, dims: [2], rawData: new Uint8Array(7) }), 'CORRUPT_FILE', "'r'", '7 bytes', '8');
    assertThrowsKiln(() => tensorFromProto({ name: 'e', dataType: 1, dims: [2], dataLocation: 1 }), 'UNSUPPORTED_OP', 'external');
    assertThrowsKiln(() => tensorFromProto({ name: 'h', dataType: 10, dims: [2], rawData: new Uint8Array(4) }), 'UNSUPPORTED_OP', 'float16');
  });
});

describe('describeModel', () => {
  it('counts zero weights, including -0.0, from raw_data and float_data', () => {
    const raw = tensorToProto('raw', tensor(new Float32Array([0, -0, 1, 0.5, 0])));
    const d = describeModel(
      {
        irVersion: 8,
        opsetImport: [{ domain: '', version: 17 }],
        graph: { initializer: [raw, { name: 'fd', dataType: 1, dims: [3], floatData: [0, 2, 0] }] },
      },
      100,
    );
    assert.deepEqual(
      d.initializers.map((t) => [t.name, t.size, t.zeros]),
      [
        ['raw', 5, 3],
        ['fd', 3, 2],
      ],
    );
    assert.equal(d.parameters, 8);
    assert.equal(d.bytes, 100);
  });
});
