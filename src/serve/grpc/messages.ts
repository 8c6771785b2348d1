/*
 * The KServe v2 gRPC messages (package `inference`), declared for protobufjs by field number, with
 * the protocol's snake_case names, and their TypeScript shapes as protobufjs decodes them. The
 * protocol's text is grpc_predict_v2.proto beside this file; test/serve/grpc/schema.test.ts checks
 * every message and field here against it. Declared in code rather than parsed from the .proto at
 * start-up so the package needs no file beside its JavaScript (as src/graph/proto.ts does for ONNX).
 *
 * int64 fields (shapes, int64_param, int64_contents) decode as Long objects where protobufjs found the
 * `long` package (it depends on it) and as numbers otherwise: `toNumber` and `toBigInt` accept either.
 */
import protobuf from 'protobufjs';

const rep = (type: string, id: number) => ({ rule: 'repeated', type, id });
const opt = (type: string, id: number) => ({ type, id });
const map = (type: string, id: number) => ({ keyType: 'string', type, id });

const tensorContents = {
  fields: {
    bool_contents: rep('bool', 1),
    int_contents: rep('int32', 2),
    int64_contents: rep('int64', 3),
    uint_contents: rep('uint32', 4),
    uint64_contents: rep('uint64', 5),
    fp32_contents: rep('float', 6),
    fp64_contents: rep('double', 7),
    bytes_contents: rep('bytes', 8),
  },
};

const schema = {
  nested: {
    inference: {
      nested: {
        ServerLiveRequest: { fields: {} },
        ServerLiveResponse: { fields: { live: opt('bool', 1) } },
        ServerReadyRequest: { fields: {} },
        ServerReadyResponse: { fields: { ready: opt('bool', 1) } },
        ModelReadyRequest: { fields: { name: opt('string', 1), version: opt('string', 2) } },
        ModelReadyResponse: { fields: { ready: opt('bool', 1) } },
        ServerMetadataRequest: { fields: {} },
        ServerMetadataResponse: { fields: { name: opt('string', 1), version: opt('string', 2), extensions: rep('string', 3) } },
        ModelMetadataRequest: { fields: { name: opt('string', 1), version: opt('string', 2) } },
        ModelMetadataResponse: {
          fields: {
            name: opt('string', 1),
            versions: rep('string', 2),
            platform: opt('string', 3),
            inputs: rep('TensorMetadata', 4),
            outputs: rep('TensorMetadata', 5),
          },
          nested: { TensorMetadata: { fields: { name: opt('string', 1), datatype: opt('string', 2), shape: rep('int64', 3) } } },
        },
        ModelInferRequest: {
          fields: {
            model_name: opt('string', 1),
            model_version: opt('string', 2),
            id: opt('string', 3),
            parameters: map('InferParameter', 4),
            inputs: rep('InferInputTensor', 5),
            outputs: rep('InferRequestedOutputTensor', 6),
            raw_input_contents: rep('bytes', 7),
          },
          nested: {
            InferInputTensor: {
              fields: {
                name: opt('string', 1),
                datatype: opt('string', 2),
                shape: rep('int64', 3),
                parameters: map('InferParameter', 4),
                contents: opt('InferTensorContents', 5),
              },
            },
            InferRequestedOutputTensor: { fields: { name: opt('string', 1), parameters: map('InferParameter', 2) } },
          },
        },
        ModelInferResponse: {
          fields: {
            model_name: opt('string', 1),
            model_version: opt('string', 2),
            id: opt('string', 3),
            parameters: map('InferParameter', 4),
            outputs: rep('InferOutputTensor', 5),
            raw_output_contents: rep('bytes', 6),
          },
          nested: {
            InferOutputTensor: {
              fields: {
                name: opt('string', 1),
                datatype: opt('string', 2),
                shape: rep('int64', 3),
                parameters: map('InferParameter', 4),
                contents: opt('InferTensorContents', 5),
              },
            },
          },
        },
        InferParameter: {
          oneofs: { parameter_choice: { oneof: ['bool_param', 'int64_param', 'string_param'] } },
          fields: { bool_param: opt('bool', 1), int64_param: opt('int64', 2), string_param: opt('string', 3) },
        },
        InferTensorContents: tensorContents,
      },
    },
  },
};

export const inferenceSchema = protobuf.Root.fromJSON(schema);

/** An int64 as protobufjs decodes it: a Long (low and high 32 bits) or a number. */
export type Int64 = number | { low: number; high: number; unsigned?: boolean };

export interface InferParameter {
  bool_param?: boolean | null;
  int64_param?: Int64 | null;
  string_param?: string | null;
  /** Which of the three is set (protobufjs' oneof property). */
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param';
}

export type Parameters = Record<string, InferParameter>;

export interface TensorContents {
  bool_contents?: ArrayLike<boolean>;
  int_contents?: ArrayLike<number>;
  int64_contents?: ArrayLike<Int64>;
  uint_contents?: ArrayLike<number>;
  uint64_contents?: ArrayLike<Int64>;
  fp32_contents?: ArrayLike<number>;
  fp64_contents?: ArrayLike<number>;
  bytes_contents?: ArrayLike<Uint8Array>;
}

export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: Int64[];
}

export interface ModelReadyRequest {
  name: string;
  version: string;
}

export interface ServerMetadataResponse {
  name: string;
  version: string;
  extensions: string[];
}

export interface ModelMetadataResponse {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface InferInputTensor {
  name: string;
  datatype: string;
  shape: Int64[];
  parameters?: Parameters;
  contents?: TensorContents | null;
}

export interface ModelInferRequest {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  inputs: InferInputTensor[];
  outputs?: { name: string; parameters?: Parameters }[];
  raw_input_contents?: Uint8Array[];
}

export interface InferOutputTensor {
  name: string;
  datatype: string;
  shape: Int64[];
  parameters?: Parameters;
  contents?: TensorContents | null;
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Parameters;
  outputs: InferOutputTensor[];
  raw_output_contents: Uint8Array[];
}

/** A message type by its name in package `inference` (nested ones as `Outer.Inner`). */
export function messageType(name: string): protobuf.Type {
  return inferenceSchema.lookupType(`inference.${name}`);
}

/** An int64 field's value as a JavaScript number (exact up to 2^53; larger magnitudes round). */
export function toNumber(v: Int64): number {
  if (typeof v === 'number') return v;
  return v.unsigned ? (v.high >>> 0) * 2 ** 32 + (v.low >>> 0) : v.high * 2 ** 32 + (v.low >>> 0);
}

/** An int64 field's value as a bigint, exact. */
export function toBigInt(v: Int64): bigint {
  if (typeof v === 'number') return BigInt(v);
  const bits = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned ? bits : BigInt.asIntN(64, bits);
}

/** A bigint as the low/high words protobufjs encodes int64 fields from. */
export function fromBigInt(v: bigint): { low: number; high: number } {
  const bits = BigInt.asUintN(64, v);
  return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0 };
}
