import { KilnError } from '../errors.js';
import type { DType } from '../tensor.js';

/** ONNX TensorProto.DataType numbers for the dtypes Kiln tensors carry. */
const ONNX_CODE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
};

/** Every ONNX element type by number, for describing foreign models (not all can become Kiln tensors). */
export const ONNX_TYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
};

export function onnxTypeCode(dtype: DType): number {
  return ONNX_CODE[dtype];
}

export function dtypeFromOnnx(code: number): DType {
  for (const [name, c] of Object.entries(ONNX_CODE)) if (c === code) return name as DType;
  throw new KilnError(
    'UNSUPPORTED_OP',
    `ONNX element type ${ONNX_TYPE_NAMES[code] ?? code} is not one Kiln tensors carry (float32, float64, int32, int64, uint8, int8, bool)`,
  );
}

export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case 'float64':
    case 'int64':
      return 8;
    case 'float32':
    case 'int32':
      return 4;
    default:
      return 1;
  }
}
