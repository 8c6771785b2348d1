/**
 * Kiln reads ONNX's int64 fields as numbers without switching protobufjs' Long support off for the
 * whole process: another library sharing protobufjs (a gRPC stack, say) keeps its Long objects.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';

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
});
