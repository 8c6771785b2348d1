/**
 * Kiln reads ONNX's int64 fields as numbers without switching protobufjs' Long support off for the
 * whole process: another library sharing protobufjs (a gRPC stack, say) keeps its Long objects.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto, nodeAttributes, tensorFromProto } from '../../src/graph/onnx-io.js';
import { constantAttrValue } from '../../src/ops/constant.js';
import { decodeModel, encodeModel, onnxSchema } from '../../src/graph/proto.js';

describe('int64 fields and protobufjs Long', () => {
  it("leaves protobufjs' Long in place and decodes dims, attribute ints and versions as numbers", () => {
    assert.ok(protobuf.util.Long, 'protobufjs still decodes int64 as Long for everyone else');
    const g = new Graph('ints');
    const x = g.input('x', 'float32', ['N', 3, 8, 8]);
    g.output(g.op1('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] }));
    const proto = decodeModel(encodeModel(modelToProto(g)));
    assert.equal(typeof proto.irVersion, 'number');
    assert.equal(typeof proto.opsetImport![0]!.version, 'number');
    assert.deepEqual(proto.graph!.input![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimValue ?? d.dimParam), ['N', 3, 8, 8]);
    assert.deepEqual(proto.graph!.node![0]!.attribute!.find((a) => a.name === 'strides')!.ints, [2, 2]);
  });

  it('writes back INT64_MAX and INT64_MIN, which decode as ±2^63, as those limits (Long clamps them; not wrapped)', () => {
    const max = '9223372036854775807';
    const min = '-9223372036854775808';
    const model = {
      irVersion: 8,
      opsetImport: [{ domain: '', version: 9 }],
      graph: {
        node: [{ opType: 'Slice', input: ['x'], output: ['y'], attribute: [{ name: 'ends', type: 7, ints: [max as never, 3] }, { name: 'starts', type: 7, ints: [min as never, 0] }, { name: 'one', type: 2, i: max as never }] }],
        initializer: [{ name: 'limits', dataType: 7, dims: [2], int64Data: [max as never, min as never] }],
      },
    };
    const once = decodeModel(encodeModel(model));
    const attrs = once.graph!.node![0]!.attribute!;
    assert.equal(attrs[0]!.ints![0], 2 ** 63, 'decoded as a number');
    // Encoded again from those numbers: still the limits, read with Long.
    const again = protobuf.Root.fromJSON(onnxSchema.toJSON()).lookupType('onnx.ModelProto').decode(encodeModel(once)) as unknown as { graph: { node: { attribute: { ints: { toString(): string }[]; i: { toString(): string } }[] }[]; initializer: { int64Data: { toString(): string }[] }[] } };
    assert.deepEqual(again.graph.node[0]!.attribute[0]!.ints.map(String), [max, '3']);
    assert.deepEqual(again.graph.node[0]!.attribute[1]!.ints.map(String), [min, '0']);
    assert.equal(String(again.graph.node[0]!.attribute[2]!.i), max);
    assert.deepEqual(again.graph.initializer[0]!.int64Data.map(String), [max, min]);
  });

  it('reads INT64_MAX and INT64_MIN from int64_data and value_ints as those limits (an open Slice end stays open)', () => {
    const bytes = encodeModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        node: [{ opType: 'Constant', output: ['c'], attribute: [{ name: 'value_ints', type: 7, ints: ['9223372036854775807' as never] }] }],
        initializer: [{ name: 'ends', dataType: 7, dims: [2], int64Data: ['9223372036854775807' as never, '-9223372036854775808' as never] }],
      },
    });
    const proto = decodeModel(bytes);
    assert.deepEqual(Array.from(tensorFromProto(proto.graph!.initializer![0]!).data as BigInt64Array), [2n ** 63n - 1n, -(2n ** 63n)]);
    assert.deepEqual(Array.from(constantAttrValue(nodeAttributes(proto.graph!.node![0]!)).data as BigInt64Array), [2n ** 63n - 1n]);
  });
});
