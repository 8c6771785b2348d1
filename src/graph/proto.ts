/*
 * The ONNX protobuf messages Kiln reads and writes, declared for protobufjs by field number (the wire
 * format is what matters). Fields Kiln never touches are still declared where foreign models use them,
 * so reading and re-writing a model from elsewhere keeps them. The declarations are checked field by
 * field against the official schema, third_party/onnx/onnx.proto, by test/graph/onnx-schema.test.ts.
 */
import protobuf from 'protobufjs';

/*
 * int64 fields reach Kiln as plain numbers (ONNX dims and attribute values fit in 2^53), converted by
 * decodeModel's toObject ({ longs: Number }), so protobufjs' process-wide Long setting is left as the
 * process has it: another library in the same process that wants Long objects keeps them. Decoding an
 * int64 into a Long and back costs little here: a model's int64 fields are its dims and attribute
 * values, a few per node, while tensors' int64 values travel in raw_data, which no Long touches.
 */

const rep = (type: string, id: number) => ({ rule: 'repeated', type, id });
const opt = (type: string, id: number) => ({ type, id });

const schema = {
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: { fields: { key: opt('string', 1), value: opt('string', 2) } },
        OperatorSetIdProto: { fields: { domain: opt('string', 1), version: opt('int64', 2) } },
        AttributeProto: {
          fields: {
            name: opt('string', 1),
            refAttrName: opt('string', 21),
            docString: opt('string', 13),
            type: opt('int32', 20),
            f: opt('float', 2),
            i: opt('int64', 3),
            s: opt('bytes', 4),
            t: opt('TensorProto', 5),
            g: opt('GraphProto', 6),
            sparseTensor: opt('SparseTensorProto', 22),
            tp: opt('TypeProto', 14),
            floats: rep('float', 7),
            ints: rep('int64', 8),
            strings: rep('bytes', 9),
            tensors: rep('TensorProto', 10),
            graphs: rep('GraphProto', 11),
            sparseTensors: rep('SparseTensorProto', 23),
            typeProtos: rep('TypeProto', 15),
          },
        },
        ValueInfoProto: { fields: { name: opt('string', 1), type: opt('TypeProto', 2), docString: opt('string', 3) } },
        NodeProto: {
          fields: {
            input: rep('string', 1),
            output: rep('string', 2),
            name: opt('string', 3),
            opType: opt('string', 4),
            domain: opt('string', 7),
            attribute: rep('AttributeProto', 5),
            docString: opt('string', 6),
          },
        },
        TrainingInfoProto: {
          fields: {
            initialization: opt('GraphProto', 1),
            algorithm: opt('GraphProto', 2),
            initializationBinding: rep('StringStringEntryProto', 3),
            updateBinding: rep('StringStringEntryProto', 4),
          },
        },
        ModelProto: {
          fields: {
            irVersion: opt('int64', 1),
            opsetImport: rep('OperatorSetIdProto', 8),
            producerName: opt('string', 2),
            producerVersion: opt('string', 3),
            domain: opt('string', 4),
            modelVersion: opt('int64', 5),
            docString: opt('string', 6),
            graph: opt('GraphProto', 7),
            metadataProps: rep('StringStringEntryProto', 14),
            trainingInfo: rep('TrainingInfoProto', 20),
            functions: rep('FunctionProto', 25),
          },
        },
        TensorAnnotation: {
          fields: { tensorName: opt('string', 1), quantParameterTensorNames: rep('StringStringEntryProto', 2) },
        },
        GraphProto: {
          fields: {
            node: rep('NodeProto', 1),
            name: opt('string', 2),
            initializer: rep('TensorProto', 5),
            sparseInitializer: rep('SparseTensorProto', 15),
            docString: opt('string', 10),
            input: rep('ValueInfoProto', 11),
            output: rep('ValueInfoProto', 12),
            valueInfo: rep('ValueInfoProto', 13),
            quantizationAnnotation: rep('TensorAnnotation', 14),
          },
        },
        TensorProto: {
          fields: {
            dims: rep('int64', 1),
            dataType: opt('int32', 2),
            floatData: { rule: 'repeated', type: 'float', id: 4, options: { packed: true } },
            int32Data: { rule: 'repeated', type: 'int32', id: 5, options: { packed: true } },
            stringData: rep('bytes', 6),
            int64Data: { rule: 'repeated', type: 'int64', id: 7, options: { packed: true } },
            name: opt('string', 8),
            docString: opt('string', 12),
            rawData: opt('bytes', 9),
            externalData: rep('StringStringEntryProto', 13),
            dataLocation: opt('int32', 14),
            doubleData: { rule: 'repeated', type: 'double', id: 10, options: { packed: true } },
            uint64Data: { rule: 'repeated', type: 'uint64', id: 11, options: { packed: true } },
          },
        },
        SparseTensorProto: {
          fields: { values: opt('TensorProto', 1), indices: opt('TensorProto', 2), dims: rep('int64', 3) },
        },
        TensorShapeProto: {
          fields: { dim: rep('Dimension', 1) },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
              fields: { dimValue: opt('int64', 1), dimParam: opt('string', 2), denotation: opt('string', 3) },
            },
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensorType', 'sequenceType', 'mapType', 'optionalType', 'sparseTensorType'] } },
          fields: {
            tensorType: opt('TensorType', 1),
            sequenceType: opt('SequenceType', 4),
            mapType: opt('MapType', 5),
            optionalType: opt('OptionalType', 9),
            sparseTensorType: opt('TensorType', 8),
            denotation: opt('string', 6),
          },
          nested: {
            TensorType: { fields: { elemType: opt('int32', 1), shape: opt('TensorShapeProto', 2) } },
            SequenceType: { fields: { elemType: opt('TypeProto', 1) } },
            MapType: { fields: { keyType: opt('int32', 1), valueType: opt('TypeProto', 2) } },
            OptionalType: { fields: { elemType: opt('TypeProto', 1) } },
          },
        },
        FunctionProto: {
          fields: {
            name: opt('string', 1),
            input: rep('string', 4),
            output: rep('string', 5),
            attribute: rep('string', 6),
            attributeProto: rep('AttributeProto', 11),
            node: rep('NodeProto', 7),
            docString: opt('string', 8),
            opsetImport: rep('OperatorSetIdProto', 9),
            domain: opt('string', 10),
            overload: opt('string', 13),
            valueInfo: rep('ValueInfoProto', 12),
          },
        },
      },
    },
  },
};

/** The hand-declared schema as protobufjs holds it (test/graph/onnx-schema.test.ts compares it with onnx.proto). */
export const onnxSchema = protobuf.Root.fromJSON(schema);
const root = onnxSchema;
const ModelProtoType = root.lookupType('onnx.ModelProto');
const TensorProtoType = root.lookupType('onnx.TensorProto');

/* Plain-object views of the messages, as protobufjs decodes them (camelCase fields, absent = undefined). */
export interface StringStringEntry {
  key?: string;
  value?: string;
}
export interface OperatorSetId {
  domain?: string;
  version?: number;
}
export interface TensorProto {
  dims?: number[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  stringData?: Uint8Array[];
  int64Data?: number[];
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData?: StringStringEntry[];
  dataLocation?: number;
  doubleData?: number[];
  uint64Data?: number[];
}
export interface AttributeProto {
  name?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
}
export interface DimensionProto {
  dimValue?: number;
  dimParam?: string;
}
export interface TypeProto {
  tensorType?: { elemType?: number; shape?: { dim?: DimensionProto[] } };
  sequenceType?: unknown;
  mapType?: unknown;
  optionalType?: unknown;
  sparseTensorType?: unknown;
}
export interface ValueInfoProto {
  name?: string;
  type?: TypeProto;
  docString?: string;
}
export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute?: AttributeProto[];
  docString?: string;
}
export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  sparseInitializer?: unknown[];
  docString?: string;
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
  quantizationAnnotation?: unknown[];
}
/** The inputs a caller feeds: older exporters list every initializer among the graph's inputs too. */
export function dataInputs(graph: GraphProto): ValueInfoProto[] {
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  return (graph.input ?? []).filter((i) => !initializers.has(i.name));
}

export interface ModelProto {
  irVersion?: number;
  opsetImport?: OperatorSetId[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph?: GraphProto;
  metadataProps?: StringStringEntry[];
  trainingInfo?: unknown[];
  functions?: unknown[];
}

/** Attribute type discriminators (AttributeProto.AttributeType). */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;

export function encodeModel(model: ModelProto): Uint8Array {
  // int64 numbers at ±2^63 (INT64_MAX and MIN decode as those) are written back as the limits: protobufjs
  // converts numbers through Long.fromNumber, which clamps (test/graph/proto-long.test.ts).
  const message = ModelProtoType.fromObject(model);
  return ModelProtoType.encode(message).finish();
}

/** Decodes bytes as a ModelProto; throws protobufjs' error on malformed input (callers wrap it). */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const message = ModelProtoType.decode(bytes);
  return ModelProtoType.toObject(message, { longs: Number, defaults: false, arrays: true }) as ModelProto;
}

/** Decodes bytes as one TensorProto (ONNX's test data stores each input and output as one). */
export function decodeTensor(bytes: Uint8Array): TensorProto {
  const message = TensorProtoType.decode(bytes);
  return TensorProtoType.toObject(message, { longs: Number, defaults: false, arrays: true }) as TensorProto;
}
